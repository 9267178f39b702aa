package zipkin

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// The worked example of proxy.md §5.6, byte for byte.
func TestWorkedExample(t *testing.T) {
	body := `[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b7","parentId":"b7ad6b7169203331",
  "kind":"SERVER","name":"ratings.default.svc.cluster.local:9080/*",
  "timestamp":1712000000123456,"duration":2500,
  "localEndpoint":{"serviceName":"ratings.default","ipv4":"10.1.2.3","port":9080},
  "tags":{"component":"proxy","error":"true","guid:x-request-id":"5c1e","http.method":"GET",
          "http.status_code":"503","response_flags":"UF"}}]`
	spans := mustDecode(t, body)
	if len(spans) != 1 {
		t.Fatalf("got %d spans", len(spans))
	}
	c := Converter{SpanLogs: true}
	var out wavefront.Span
	red := c.Convert(&spans[0], &out)
	want := `"ratings.default.svc.cluster.local:9080/-" source="zipkin"` +
		` spanId="00000000-0000-0000-00f0-67aa0ba902b7" traceId="4bf92f35-77b3-4da6-a3ce-929d0e0e4736"` +
		` "zipkinSpanId"="00f067aa0ba902b7" "zipkinTraceId"="4bf92f3577b34da6a3ce929d0e0e4736"` +
		` "parent"="00000000-0000-0000-b7ad-6b7169203331" "span.kind"="server" "service"="ratings.default"` +
		` "component"="proxy" "error"="true" "guid-x-request-id"="5c1e" "http.method"="GET"` +
		` "http.status_code"="503" "response_flags"="UF" "application"="Zipkin" "cluster"="none"` +
		` "shard"="none" "ipv4"="10.1.2.3" 1712000000123 2` + "\n"
	if got := spanLine(&out); got != want {
		t.Errorf("span line\n got %s\nwant %s", got, want)
	}
	if logs := c.AppendLogs(nil, &spans[0], &out, "_sampledByPolicy=NONE"); len(logs) > 0 {
		t.Errorf("span logs for a span without annotations: %s", logs)
	}
	wantRED := map[string]string{
		"Application": "Zipkin", "Service": "ratings.default", "Cluster": "none", "Shard": "none",
		"Component": "proxy", "Operation": "ratings.default.svc.cluster.local:9080/-", "Source": "zipkin",
		"SpanKind": "server", "HTTPStatusCode": "503",
	}
	checkRED(t, &red, wantRED)
	if !red.IsError || red.DurationMicros != 2500 || out.DurationMillis != 2 || red.DurationMillis != 2 {
		t.Errorf("IsError=%v DurationMicros=%d DurationMillis=%d, RED's %d", red.IsError, red.DurationMicros, out.DurationMillis, red.DurationMillis)
	}
}

func checkRED(t *testing.T, red *RED, want map[string]string) {
	t.Helper()
	got := map[string]string{
		"Application": string(red.Application), "Service": string(red.Service), "Cluster": string(red.Cluster),
		"Shard": string(red.Shard), "Component": string(red.Component), "Operation": string(red.Operation),
		"Source": string(red.Source), "SpanKind": string(red.SpanKind), "HTTPStatusCode": string(red.HTTPStatusCode),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("RED.%s = %q, want %q", k, got[k], v)
		}
	}
}

// tagString renders annotations as k=v pairs for compact assertions.
func tagString(tags []wavefront.Tag) string {
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(t.Key) + "=" + string(t.Value))
	}
	return b.String()
}

func TestFixturesConvert(t *testing.T) {
	want := map[string]struct{ prefix, name, ts, logTS string }{
		"envoy-kourier-zipkin-v2-post-1.json": {
			"zipkinSpanId=dfdf78be9f9802f3 zipkinTraceId=dfdf78be9f9802f3 span.kind=server _spanSecondaryId=server service=kourier-knative component=proxy downstream_cluster=- guid-x-request-id=4d8666a7-fe4d-99dc-90fe-c10c404392ac http.method=GET",
			"tracing-bdectujw.example.com", "1689241786518 7", "1689241786526291"},
		"envoy-kourier-zipkin-v2-post-2.json": {
			"zipkinSpanId=a22f524cde88a549 zipkinTraceId=a22f524cde88a549 span.kind=server _spanSecondaryId=server service=kourier-knative",
			"tracing-bdectujw.example.com", "1689241785728 0", "1689241785729605"},
		"envoy-kourier-zipkin-v2-post-3.json": {
			"zipkinSpanId=edb21d2a980a87db zipkinTraceId=edb21d2a980a87db span.kind=server _spanSecondaryId=server service=kourier-knative",
			"internalkourier", "1689241787200 0", "1689241787200582"},
	}
	for name, body := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Skip("no expectations for this fixture")
			}
			if enc, err := Detect(body); err != nil || enc != JSONV2 {
				t.Fatalf("Detect = %v, %v", enc, err)
			}
			spans, err := decodeAll(t, body)
			if err != nil || len(spans) != 1 {
				t.Fatalf("decode: %d spans, %v", len(spans), err)
			}
			c := Converter{SpanLogs: true}
			var out wavefront.Span
			red := c.Convert(&spans[0], &out)
			tags := tagString(out.Tags)
			if !strings.HasPrefix(tags, w.prefix) {
				t.Errorf("tags\n got %s\nwant prefix %s", tags, w.prefix)
			}
			if !strings.HasSuffix(tags, "application=Zipkin cluster=none shard=none ipv4=10.244.1.3 _spanLogs=true") {
				t.Errorf("tags end: %s", tags)
			}
			for _, kv := range []string{"upstream_cluster=", "node_id=3scale-kourier-gateway", "http.status_code=200", "response_flags=-", "peer.address="} {
				if !strings.Contains(tags, kv) {
					t.Errorf("missing %s in %s", kv, tags)
				}
			}
			line := spanLine(&out)
			if !strings.HasPrefix(line, `"`+w.name+`" source="zipkin" spanId="00000000-0000-0000-`) || !strings.HasSuffix(line, " "+w.ts+"\n") {
				t.Errorf("line %s", line)
			}
			if red.IsError || string(red.SpanKind) != "server" || string(red.HTTPStatusCode) != "200" || string(red.Component) != "proxy" {
				t.Errorf("RED %+v", red)
			}
			b := c.AppendLogs(nil, &spans[0], &out, "_sampledByPolicy=NONE")
			wantLogs := `{"customer":"default","traceId":"` + string(out.TraceID) + `","spanId":"` + string(out.SpanID) +
				`","spanSecondaryId":"server","logs":[{"timestamp":` + w.logTS + `,"fields":{"annotation":"ss"}}],"span":"_sampledByPolicy=NONE"}` + "\n"
			if string(b) != wantLogs {
				t.Errorf("span logs\n got %s\nwant %s", b, wantLogs)
			}
		})
	}
}

// istioBody is what an Istio 1.2x sidecar pair sends (istio.md §8.1): a
// 128-bit trace, a CLIENT span from productpage and the SERVER span from
// reviews, plus a root span with a 64-bit trace ID.
const istioBody = `[
 {"traceId":"80f198ee56343ba864fe8b2a57d3eff7","id":"e457b5a2e4d86bd1","parentId":"05e3ac9a4f6e3b90","kind":"CLIENT",
  "name":"reviews.default.svc.cluster.local:9080/*","timestamp":1712000000100000,"duration":12345,
  "localEndpoint":{"serviceName":"productpage.default","ipv4":"10.244.0.12","port":0},
  "annotations":[{"timestamp":1712000000112345,"value":"cr"}],
  "tags":{"component":"proxy","node_id":"sidecar~10.244.0.12~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local",
   "guid:x-request-id":"9b5c8d3e-5f2a-9a1b-8c7d-1e2f3a4b5c6d","http.url":"http://reviews:9080/reviews/0","http.method":"GET",
   "http.protocol":"HTTP/1.1","http.status_code":"200","downstream_cluster":"-","user_agent":"python-requests/2.28.1",
   "request_size":"0","response_size":"358","response_flags":"-",
   "upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local",
   "upstream_cluster.name":"outbound|9080||reviews.default.svc.cluster.local","peer.address":"10.244.0.12",
   "istio.canonical_service":"productpage","istio.canonical_revision":"v1","istio.mesh_id":"cluster.local","istio.namespace":"default"}},
 {"traceId":"80f198ee56343ba864fe8b2a57d3eff7","id":"7a7c8e6b1b9d2f01","parentId":"e457b5a2e4d86bd1","kind":"SERVER",
  "name":"reviews.default.svc.cluster.local:9080/*","timestamp":1712000000101000,"duration":9000,
  "localEndpoint":{"serviceName":"reviews.default","ipv4":"10.244.0.25","port":0},
  "annotations":[{"timestamp":1712000000110000,"value":"ss"}],
  "tags":{"component":"proxy","node_id":"sidecar~10.244.0.25~reviews-v3-55545c459b-fmf5f.default~default.svc.cluster.local",
   "http.status_code":"503","error":"true","response_flags":"UF","upstream_cluster":"inbound|9080||",
   "istio.canonical_service":"reviews","istio.mesh_id":"cluster.local","istio.namespace":"default"}},
 {"traceId":"05e3ac9a4f6e3b90","id":"05e3ac9a4f6e3b90","kind":"SERVER","name":"productpage.default.svc.cluster.local:9080/productpage",
  "timestamp":1712000000090000,"duration":50000,"localEndpoint":{"serviceName":"productpage.default","ipv4":"10.244.0.12"},
  "annotations":[{"timestamp":1712000000140000,"value":"ss"}],"tags":{"component":"proxy","http.status_code":"200"}}
]`

func TestIstioSpans(t *testing.T) {
	spans := mustDecode(t, istioBody)
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	c := Converter{SpanLogs: true, CustomTagKeys: []string{"istio.namespace", "missing"}}
	var out wavefront.Span

	red := c.Convert(&spans[0], &out)
	tags := tagString(out.Tags)
	for _, kv := range []string{
		"zipkinTraceId=80f198ee56343ba864fe8b2a57d3eff7", "parent=00000000-0000-0000-05e3-ac9a4f6e3b90",
		"span.kind=client _spanSecondaryId=client service=productpage.default component=proxy",
		"guid-x-request-id=9b5c8d3e", "istio.canonical_service=productpage", "istio.mesh_id=cluster.local",
		"istio.namespace=default", "node_id=sidecar~10.244.0.12~", "upstream_cluster=outbound|9080||reviews",
		"ipv4=10.244.0.12 _spanLogs=true",
	} {
		if !strings.Contains(tags, kv) {
			t.Errorf("missing %q in %s", kv, tags)
		}
	}
	if string(out.TraceID) != "80f198ee-5634-3ba8-64fe-8b2a57d3eff7" || string(out.SpanID) != "00000000-0000-0000-e457-b5a2e4d86bd1" {
		t.Errorf("ids %s %s", out.TraceID, out.SpanID)
	}
	if red.IsError || string(red.SpanKind) != "client" || tagString(red.CustomTags) != "istio.namespace=default" {
		t.Errorf("RED %+v custom %s", red, tagString(red.CustomTags))
	}

	red = c.Convert(&spans[1], &out)
	if !red.IsError || string(red.HTTPStatusCode) != "503" || string(red.Service) != "reviews.default" {
		t.Errorf("server RED %+v", red)
	}
	if !strings.Contains(tagString(out.Tags), "error=true") {
		t.Error("no error=true")
	}

	red = c.Convert(&spans[2], &out)
	if string(out.TraceID) != "00000000-0000-0000-05e3-ac9a4f6e3b90" || strings.Contains(tagString(out.Tags), "parent=") {
		t.Errorf("root span: %s", spanLine(&out))
	}
	// A 200 without an error tag is never an error (§6).
	if red.IsError {
		t.Error("root span marked as error")
	}
}

// Shared spans: Zipkin's client and server halves of one RPC share an ID.
func TestSharedSpan(t *testing.T) {
	spans := mustDecode(t, `[
	{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","kind":"CLIENT","shared":true,"name":"get",
	 "timestamp":1712000000000000,"duration":5000,"localEndpoint":{"serviceName":"frontend"},"tags":{}},
	{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","kind":"SERVER","shared":true,"name":"get",
	 "timestamp":1712000000001000,"duration":3000,"localEndpoint":{"serviceName":"Backend"},
	 "annotations":[{"timestamp":1712000000002000,"value":"cache miss"}]}]`)
	if spans[0].Shared || !spans[1].Shared {
		t.Errorf("shared = %v %v; the client half must not be shared", spans[0].Shared, spans[1].Shared)
	}
	c := Converter{SpanLogs: true}
	var a, b wavefront.Span
	c.Convert(&spans[0], &a)
	ta := tagString(a.Tags)
	sa := string(a.SpanID)
	c.Convert(&spans[1], &b)
	tb := tagString(b.Tags)
	if sa != string(b.SpanID) {
		t.Errorf("span IDs differ: %s %s", sa, b.SpanID)
	}
	if !strings.Contains(ta, "span.kind=client service=frontend") || strings.Contains(ta, "_spanSecondaryId") {
		t.Errorf("client tags %s", ta)
	}
	if !strings.Contains(tb, "span.kind=server _spanSecondaryId=server service=backend") || !strings.HasSuffix(tb, "_spanLogs=true") {
		t.Errorf("server tags %s", tb)
	}
	var logs wavefront.SpanLogs
	line := c.AppendLogs(nil, &spans[1], &b, "_sampledByPolicy=NONE")
	if err := wavefront.DecodeSpanLogs(line, &logs); err != nil || *logs.SpanSecondaryID != "server" || logs.Logs[0].Fields["annotation"] != "cache miss" {
		t.Errorf("logs %s: %v", line, err)
	}
}

// §5.3 item by item: special tags, defaults, debug, Source, ordering.
func TestConvertRules(t *testing.T) {
	spans := mustDecode(t, `[{"traceId":"1","id":"2","parentId":"2","debug":true,
	 "tags":{"application":"shop","cluster":"eu","shard":" s1 ","Source":"x","source":"my host/1","service":"svc2",
	  "span.kind":"weird","error":"false","debug":"false","blank":"  ","Application":"A","k*":"v\nw"}}]`)
	c := Converter{DefaultService: "dsvc", DefaultOperation: "op*x", CustomTagKeys: []string{"service"}}
	var out wavefront.Span
	red := c.Convert(&spans[0], &out)
	want := `"op-x" source="my-host-1" spanId="00000000-0000-0000-0000-000000000002" traceId="00000000-0000-0000-0000-000000000001"` +
		` "zipkinSpanId"="0000000000000002" "zipkinTraceId"="0000000000000001" "service"="dsvc" "Application"="A"` +
		` "debug"="false" "error"="true" "k-"="v\nw" "service"="svc2" "span.kind"="weird"` +
		` "application"="shop" "cluster"="eu" "shard"="s1" "debug"="true" 0 0` + "\n"
	if got := spanLine(&out); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	checkRED(t, &red, map[string]string{"Application": "shop", "Service": "svc2", "Cluster": "eu", "Shard": "s1",
		"Component": "", "SpanKind": "weird", "Source": "my-host-1", "Operation": "op-x"})
	if !red.IsError || tagString(red.CustomTags) != "service=svc2" {
		t.Errorf("IsError %v custom %s", red.IsError, tagString(red.CustomTags))
	}

	// Refresh after a rule removed annotations: fallbacks and sticky error.
	out.Tags = out.Tags[:2]
	c.Refresh(&red, &out)
	if string(red.Application) != "shop" || red.SpanKind != nil || !red.IsError || len(red.CustomTags) != 0 {
		t.Errorf("after refresh %+v", red)
	}
}

func TestSanitizeKey(t *testing.T) {
	var c Converter
	for in, want := range map[string]string{
		"guid:x-request-id": "guid-x-request-id",
		"a/b":               "a-b",
		"~x:y":              "~x-y",
		"∆~a b":             "∆~a-b",
		"é":                 "-",
		"😀k":                "--k",
		"ok.key_1,2-3":      "ok.key_1,2-3",
		"x~":                "x-",
	} {
		for range 2 { // the second time from the cache of dirty keys
			if got := string(c.sanitizeKey([]byte(in))); got != want {
				t.Errorf("sanitizeKey(%q) = %q, want %q", in, got, want)
			}
		}
	}
}

// AppendLogs writes by hand what wavefront.AppendSpanLogs writes for the
// SpanLogs the reference builds from a span's annotations (§5.5).
func TestAppendLogsMatchesAppendSpanLogs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	c := Converter{SpanLogs: true}
	for range 500 {
		z := Span{TraceID: []byte("463ac35c9f6413ad48485a3953bb6124"), ID: []byte("a2fb4a1d1a96d312"), Kind: Kind(r.IntN(5))}
		for range r.IntN(4) {
			z.Annotations = append(z.Annotations, Annotation{r.Int64N(1<<53) - 1<<52, []byte(randString(r, 12))})
		}
		var out wavefront.Span
		c.Convert(&z, &out)
		sampledBy := []string{"", "_sampledByPolicy=NONE", "_sampledByPolicy=<p\"1>"}[r.IntN(3)]
		got := c.AppendLogs([]byte("prefix"), &z, &out, sampledBy)
		want := appendSpanLogs(t, []byte("prefix"), &z, &out, sampledBy)
		if string(got) != string(want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	}
	c.SpanLogs = false
	z := Span{TraceID: []byte("1"), ID: []byte("2"), Annotations: []Annotation{{1, []byte("a")}}}
	var out wavefront.Span
	c.Convert(&z, &out)
	if got := c.AppendLogs(nil, &z, &out, "x"); len(got) > 0 {
		t.Errorf("span logs while disabled: %s", got)
	}
}

// appendSpanLogs is what AppendLogs must write, by wavefront.AppendSpanLogs.
func appendSpanLogs(t *testing.T, dst []byte, z *Span, out *wavefront.Span, sampledBy string) []byte {
	t.Helper()
	if len(z.Annotations) == 0 {
		return dst
	}
	sl := wavefront.SpanLogs{Customer: "default", TraceID: string(out.TraceID), SpanID: string(out.SpanID), Span: sampledBy}
	if z.Kind != KindUnset {
		id := strings.ToLower(z.Kind.String())
		sl.SpanSecondaryID = &id
	}
	for _, a := range z.Annotations {
		sl.Logs = append(sl.Logs, wavefront.SpanLog{Timestamp: a.Timestamp, Fields: wavefront.LogFields{"annotation": string(a.Value)}})
	}
	dst, err := wavefront.AppendSpanLogs(dst, &sl)
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// uuid against its definition (§5.4) at every length: left-padded with
// zeros to 32 characters and hyphenated 8-4-4-4-12; IDs with '-' or over
// 32 characters are kept as they are.
func TestUUID(t *testing.T) {
	var c Converter
	const hex = "0123456789abcdef0123456789abcdef0"
	for n := 1; n <= len(hex); n++ {
		id := []byte(hex[:n])
		want := string(id)
		if n <= 32 {
			p := strings.Repeat("0", 32-n) + want
			want = p[0:8] + "-" + p[8:12] + "-" + p[12:16] + "-" + p[16:20] + "-" + p[20:32]
		}
		c.arena.reset()
		if got := string(c.uuid(id)); got != want {
			t.Errorf("uuid(%q) = %q, want %q", id, got, want)
		}
	}
	if got := string(c.uuid([]byte("ab-cd"))); got != "ab-cd" {
		t.Errorf("uuid(ab-cd) = %q", got)
	}
}

// appendIPv4 writes what netip does, for every byte value in each place.
func TestAppendIPv4(t *testing.T) {
	for i := range 256 {
		for _, a := range [][4]byte{{byte(i), 0, 0, 0}, {255, byte(i), 9, 10}, {1, 99, byte(i), 100}, {0, 200, 7, byte(i)}, {byte(i), byte(i), byte(i), byte(i)}} {
			if got, want := string(appendIPv4([]byte("x"), a)), "x"+netip.AddrFrom4(a).String(); got != want {
				t.Fatalf("appendIPv4(%v) = %q, want %q", a, got, want)
			}
		}
	}
}
