package export

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meshwave/meshwave/internal/wavefront"
)

func TestMetricName(t *testing.T) {
	for in, want := range map[string]string{
		"istio.requests.total.value": "istio_requests_total_value",
		"already_fine:ratio":         "already_fine:ratio",
		"4xx.count":                  "_4xx_count",
		"∆requests.count":            "requests_count_delta",
		"Δbytes":                     "bytes_delta",
		"résumé-time/µs":             "r_sum__time__s",
		"~sys.cpu":                   "_sys_cpu",
	} {
		if got := MetricName(in); got != want {
			t.Errorf("MetricName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"app":           "app",
		"response.code": "response_code",
		"a:b":           "a_b",
		"1st":           "_1st",
		"__name__":      "tag__name__",
		"_x":            "_x",
	} {
		if got := LabelName(in); got != want {
			t.Errorf("LabelName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCentroidQuantile(t *testing.T) {
	cs := []wavefront.Centroid{{Count: 2, Mean: 10}, {Count: 3, Mean: 20}}
	for _, c := range []struct{ q, want float64 }{
		{0, 10}, {0.2, 10}, {0.5, 16}, {0.7, 20}, {1, 20},
	} {
		if got := centroidQuantile(cs, 5, c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q=%v: %v, want %v", c.q, got, c.want)
		}
	}
	one := []wavefront.Centroid{{Count: 7, Mean: 3.5}}
	if got := centroidQuantile(one, 7, 0.99); got != 3.5 {
		t.Errorf("single centroid: %v", got)
	}
}

// record builds a queue record of kind k from lines.
func record(k Kind, lines ...string) []byte {
	return append([]byte{byte(k)}, strings.Join(lines, "\n")+"\n"...)
}

// decodeRW undoes what a remote-write receiver undoes.
func decodeRW(t testing.TB, body []byte) *prompb.WriteRequest {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		t.Fatalf("prompb: %v", err)
	}
	return &wr
}

// seriesText renders a series as name{k="v",...} ts value, labels in
// their wire order.
func seriesText(ts prompb.TimeSeries) []string {
	var lb []string
	for _, l := range ts.Labels {
		lb = append(lb, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	var out []string
	for _, s := range ts.Samples {
		out = append(out, fmt.Sprintf("{%s} %d %v", strings.Join(lb, ","), s.Timestamp, s.Value))
	}
	return out
}

func TestRemoteWriteConvert(t *testing.T) {
	m := newMetrics(nil, "t")
	c := newRWConverter(4, m)
	recs := [][]byte{
		record(Points,
			`"istio.requests.total.value" 42 1700000000123 source="pod-a" "app"="web" "response.code"="200"`,
			`"∆requests.count" 3 1700000000000 source="pod-a"`,
			`"x" 1 1700000000000 source="s" "a.b"="first" "a_b"="second"`,
			`"x" +Inf 1700000001000 source="s"`,
			`not a point`),
		record(Histograms, `!M 1700000040000 #2 10 #3 20 "latency.ms" source="pod-a" "quantile"="clash"`),
		record(Spans, `"ignored" source="s" spanId="1" traceId="2" 1700000000000 5`),
	}
	var got []string
	var sizes []int
	err := c.convert(recs, whole(t, func(body []byte, n int) error {
		wr := decodeRW(t, body)
		samples := 0
		for _, ts := range wr.Timeseries {
			if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("labels not sorted: %v", ts.Labels)
			}
			samples += len(ts.Samples)
			got = append(got, seriesText(ts)...)
		}
		if samples != n {
			t.Errorf("send says %d samples, body has %d", n, samples)
		}
		sizes = append(sizes, n)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{__name__="istio_requests_total_value",app="web",response_code="200",source="pod-a"} 1700000000123 42`,
		`{__name__="requests_count_delta",source="pod-a"} 1700000000000 3`,
		`{__name__="x",a_b="first",source="s"} 1700000000000 1`,
		`{__name__="x",source="s"} 1700000001000 +Inf`,
		// The bin is the minute: 1700000040000 ms floors to 1700000040 s.
		`{__name__="latency_ms_count",granularity="minute",source="pod-a"} 1700000040000 5`,
		`{__name__="latency_ms_sum",granularity="minute",source="pod-a"} 1700000040000 80`,
		`{__name__="latency_ms",granularity="minute",quantile="0.5",source="pod-a"} 1700000040000 16`,
		`{__name__="latency_ms",granularity="minute",quantile="0.75",source="pod-a"} 1700000040000 20`,
		`{__name__="latency_ms",granularity="minute",quantile="0.9",source="pod-a"} 1700000040000 20`,
		`{__name__="latency_ms",granularity="minute",quantile="0.95",source="pod-a"} 1700000040000 20`,
		`{__name__="latency_ms",granularity="minute",quantile="0.99",source="pod-a"} 1700000040000 20`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// At most 4 samples per request, but a histogram's series stay together.
	if !slices.Equal(sizes, []int{4, 7}) {
		t.Errorf("request sizes %v, want [4 7]", sizes)
	}
	// a_b repeated a.b; the histogram's quantile tag clashed.
	if n := testutil.ToFloat64(m.collisions); n != 2 {
		t.Errorf("collisions = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.dropped.WithLabelValues("unparsable")); n != 1 {
		t.Errorf("unparsable = %v, want 1", n)
	}
}

const (
	traceUUID = "7b3bf470-9456-11e8-9eb6-529269fb1459"
	rootUUID  = "00000000-0000-0000-9eb6-529269fb1451"
	childUUID = "00000000-0000-0000-9eb6-529269fb1452"
)

func decodeOTLP(t testing.TB, body []byte) *tracepb.TracesData {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var td tracepb.TracesData
	if err := proto.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	return &td
}

// kvText renders string attributes as k=v, in order.
func kvText(kvs []*commonpb.KeyValue) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+kv.Value.GetStringValue())
	}
	return strings.Join(out, " ")
}

func TestOTLPConvert(t *testing.T) {
	m := newMetrics(nil, "t")
	c := newOTLPConverter(0, m)
	recs := [][]byte{
		record(Spans,
			fmt.Sprintf(`"getAll" source="web-1" spanId="%s" traceId="%s" "application"="shop" "service"="front" "cluster"="c1" "shard"="s1" "span.kind"="server" "http.method"="GET" 1700000000000 250`, rootUUID, traceUUID),
			fmt.Sprintf(`"db query" source="db-1" spanId="%s" traceId="%s" "parent"="%s" "followsFrom"="%s" "application"="shop" "service"="db" "error"="true" "_spanLogs"="true" 1700000000010 40`, childUUID, traceUUID, rootUUID, rootUUID)),
		record(SpanLogs,
			fmt.Sprintf(`{"traceId":"%s","spanId":"%s","logs":[{"timestamp":1700000000015000,"fields":{"event":"retry","attempt":"2"}}]}`, traceUUID, childUUID),
			fmt.Sprintf(`{"traceId":"%s","spanId":"%s","logs":[{"timestamp":1,"fields":{"x":"y"}}]}`, traceUUID, "00000000-0000-0000-0000-00000000abcd")),
		record(Points, `"x" 1 1700000000000 source="s"`),
	}
	var bodies []*tracepb.TracesData
	if err := c.convert(recs, whole(t, func(body []byte, n int) error {
		if n != 2 {
			t.Errorf("send says %d spans, want 2", n)
		}
		bodies = append(bodies, decodeOTLP(t, body))
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 1 || len(bodies[0].ResourceSpans) != 2 {
		t.Fatalf("want one request with two resources, got %v", bodies)
	}
	traceID, _ := hex.DecodeString("7b3bf470945611e89eb6529269fb1459")
	rootID, _ := hex.DecodeString("9eb6529269fb1451")
	childID, _ := hex.DecodeString("9eb6529269fb1452")

	front := bodies[0].ResourceSpans[0]
	if got := kvText(front.Resource.Attributes); got != `service.name=front application=shop cluster=c1 shard=s1 host.name=web-1` {
		t.Errorf("front resource: %s", got)
	}
	root := front.ScopeSpans[0].Spans[0]
	if root.Name != "getAll" || !bytes.Equal(root.TraceId, traceID) || !bytes.Equal(root.SpanId, rootID) || root.ParentSpanId != nil ||
		root.Kind != tracepb.Span_SPAN_KIND_SERVER || root.StartTimeUnixNano != 1700000000000e6 || root.EndTimeUnixNano != 1700000000250e6 ||
		root.Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET || kvText(root.Attributes) != "http.method=GET" {
		t.Errorf("root span: %v", root)
	}
	db := bodies[0].ResourceSpans[1]
	if got := kvText(db.Resource.Attributes); got != `service.name=db application=shop host.name=db-1` {
		t.Errorf("db resource: %s", got)
	}
	child := db.ScopeSpans[0].Spans[0]
	if !bytes.Equal(child.ParentSpanId, rootID) || !bytes.Equal(child.SpanId, childID) || child.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		child.StartTimeUnixNano != 1700000000010e6 || child.EndTimeUnixNano != 1700000000050e6 || len(child.Attributes) != 0 {
		t.Errorf("child span: %v", child)
	}
	if len(child.Links) != 1 || !bytes.Equal(child.Links[0].SpanId, rootID) || !bytes.Equal(child.Links[0].TraceId, traceID) {
		t.Errorf("followsFrom link: %v", child.Links)
	}
	if len(child.Events) != 1 || child.Events[0].Name != "retry" || child.Events[0].TimeUnixNano != 1700000000015000e3 || kvText(child.Events[0].Attributes) != "attempt=2" {
		t.Errorf("span log event: %v", child.Events)
	}
	if n := testutil.ToFloat64(m.dropped.WithLabelValues("span_logs_without_span")); n != 1 {
		t.Errorf("orphan span logs = %v, want 1", n)
	}
}

func TestOTLPID(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{traceUUID, 16, "7b3bf470945611e89eb6529269fb1459"},
		{rootUUID, 8, "9eb6529269fb1451"},
		{"abc", 8, "0000000000000abc"},
		{"7b3bf470-9456-11e8-9eb6-529269fb1459", 8, "9eb6529269fb1459"},
	} {
		if got := hex.EncodeToString(otlpID([]byte(c.in), c.n)); got != c.want {
			t.Errorf("otlpID(%q, %d) = %s, want %s", c.in, c.n, got, c.want)
		}
	}
	// Not hex, or all zeros: hashed, stable and non-zero.
	for _, in := range []string{"not-a-uuid", "00000000-0000-0000-0000-000000000000", ""} {
		a, b := otlpID([]byte(in), 16), otlpID([]byte(in), 16)
		if !bytes.Equal(a, b) || !slices.ContainsFunc(a, func(x byte) bool { return x != 0 }) {
			t.Errorf("otlpID(%q) = %x, %x", in, a, b)
		}
	}
}

func TestOTLPPartialSuccess(t *testing.T) {
	c := newOTLPConverter(0, newMetrics(nil, "t"))
	var ps []byte
	ps = protowire.AppendTag(ps, 1, protowire.VarintType)
	ps = protowire.AppendVarint(ps, 3)
	ps = protowire.AppendTag(ps, 2, protowire.BytesType)
	ps = protowire.AppendString(ps, "too old")
	var answer []byte
	answer = protowire.AppendTag(answer, 1, protowire.BytesType)
	answer = protowire.AppendBytes(answer, ps)
	if n, msg := c.rejected(answer); n != 3 || msg != "too old" {
		t.Errorf("rejected = %d %q, want 3 \"too old\"", n, msg)
	}
	for _, full := range [][]byte{nil, []byte("{}"), []byte("<html>"), {0x0a, 0x00}} {
		if n, _ := c.rejected(full); n != 0 {
			t.Errorf("rejected(%q) = %d, want 0", full, n)
		}
	}
}

func TestRemoteWriteGroupsSeries(t *testing.T) {
	c := newRWConverter(0, newMetrics(nil, "t"))
	rec := record(Points,
		`"a" 1 1700000000000 source="s" "k"="v"`,
		`"a" 1 1700000000000 source="t" "k"="v"`,
		`"a" 2 1700000001000 source="s" "k"="v"`,
		`"a" 3 1699999999000 source="s" "k"="v"`)
	var wr *prompb.WriteRequest
	if err := c.convert([][]byte{rec}, whole(t, func(body []byte, n int) error { wr = decodeRW(t, body); return nil })); err != nil {
		t.Fatal(err)
	}
	if len(wr.Timeseries) != 2 {
		t.Fatalf("want 2 time series, got %v", wr.Timeseries)
	}
	// Arrival order is kept within a series: the receiver judges order.
	got := seriesText(wr.Timeseries[0])
	want := []string{
		`{__name__="a",k="v",source="s"} 1700000000000 1`,
		`{__name__="a",k="v",source="s"} 1700000001000 2`,
		`{__name__="a",k="v",source="s"} 1699999999000 3`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("series s: %v, want %v", got, want)
	}
}

// whole adapts a callback on bodies to convert's send: each request is
// encoded whole.
func whole(t testing.TB, f func(body []byte, n int) error) func(request) error {
	return func(r request) error {
		body, err := r.encode(0, r.items())
		if err != nil {
			t.Fatal(err)
		}
		return f(body, r.items())
	}
}
