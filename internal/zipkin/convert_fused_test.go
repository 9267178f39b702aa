package zipkin

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// fusedEdgeCases are spans that exercise each branch of the fused path:
// special and case-folded keys, keys that need sanitising, values outside
// the canonical subset, and limits.
var fusedEdgeCases = []string{
	`[{"traceId":"1","id":"2","parentId":"3","kind":"CLIENT","name":"GET /x","timestamp":1700000000000000,"duration":1500,` +
		`"localEndpoint":{"serviceName":"Svc","ipv4":"10.0.0.1"},"annotations":[{"timestamp":1700000000000001,"value":"cs"}],` +
		`"tags":{"source":"my host","Source":"x","application":" app ","cluster":"c1","shard":"s1","error":"false","component":"proxy",` +
		`"debug":"true","service":"tagged","span.kind":"weird","HTTP.Status_Code":"500","http.status_code":"200","guid:x-request-id":"abc",` +
		`"blank":"  ","é":"v"}}]`,
	`[{"traceId":"1","id":"2","tags":{"~tilde":"v"}}]`,
	`[{"traceId":"1","id":"2","tags":{"\u2206~x":"v","\u0394y":"v"}}]`,
	`[{"traceId":"00000000000000000000000000000001","id":"2","debug":true,"tags":{"debug":"false","x":"a\"b"}}]`,
	`[{"traceId":"1","id":"2","debug":true,"name":"a*b","tags":{"x":"line\nbreak"}}]`,
	`[{"traceId":"1","id":"2","name":"caf\u00e9","tags":{"x":"\u00e9"}}]`,
	`[{"traceId":"1","id":"2","tags":{"source":"\u00e9 host","x":"` + strings.Repeat("v", 300) + `"}}]`,
	`[{"traceId":"1","id":"2","kind":"SERVER","annotations":[{"timestamp":1,"value":"a"}],"tags":{` + manyTags(25) + `}}]`,
	`[{"traceId":"1","id":"2","kind":"PRODUCER","timestamp":1,"tags":{"` + strings.Repeat("k", 200) + `":"v"}}]`,
	`[{"traceId":"1","id":"2","localEndpoint":{"serviceName":" "},"tags":{"source":"","error":" "}}]`,
	// A raw newline, which JSON forbids but the reference accepts, in a
	// value that is otherwise plain: the line must not take it verbatim.
	"[{\"traceId\":\"1\",\"id\":\"2\",\"tags\":{\"a\":\"raw\nline long enough\",\"b\":\"x\ny\",\"c\":\"ok\"}}]",
	// RED tags the fused path writes with fixed keys, with values that
	// are not plain (escaped, non-ASCII) and so must be checked.
	`[{"traceId":"1","id":"2","tags":{"application":"a\"pp","cluster":"c\\1","shard":"\u00e9"}}]`,
	`[{"traceId":"1","id":"2","tags":{"application":"\u00e9"}}]`,
	`[{"traceId":"1","id":"2","tags":{"cluster":"c\"1"}}]`,
	`[{"traceId":"1","id":"2","tags":{"shard":"s\n1"}}]`,
	// Span logs of several annotations that need escaping, with and
	// without a kind.
	`[{"traceId":"1","id":"2","timestamp":1700000000000000,"annotations":[{"timestamp":1,"value":"a<b"},` +
		`{"timestamp":1700000000000002,"value":"\u2028 \"q\" \u00e9"},{"timestamp":-5,"value":"x"}]}]`,
	`[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","kind":"CONSUMER","timestamp":1700000000000000,` +
		`"annotations":[{"timestamp":12345678901234567,"value":"ws"},{"timestamp":99999999,"value":"wr"}]}]`,
	// The shapes of the fixed annotations before service (trace ID
	// length, parent, kind, annotations) and after the tags (debug,
	// ipv4, span logs), one span after the other so that each follows
	// another shape, and again.
	`[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","parentId":"0123456789abcdef","kind":"SERVER",` +
		`"timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"s","ipv4":"10.1.2.3"},` +
		`"annotations":[{"timestamp":1700000000000001,"value":"ss"}],"tags":{"component":"proxy"}},` +
		`{"traceId":"0000000000000000a2fb4a1d1a96d312","id":"0000000000000001","parentId":"fedcba9876543210","debug":true,` +
		`"timestamp":1700000000000000,"localEndpoint":{"serviceName":"s","ipv4":"192.168.100.254"},"tags":{"x":"y"}},` +
		`{"traceId":"a2fb4a1d1a96d312","id":"a2fb4a1d1a96d313","kind":"CLIENT","timestamp":1700000000000000,` +
		`"annotations":[{"timestamp":1,"value":"cs"}],"localEndpoint":{"serviceName":"s","ipv4":"1.0.0.9"}},` +
		`{"traceId":"a2fb4a1d1a96d312","id":"a2fb4a1d1a96d314","kind":"PRODUCER","timestamp":1700000000000000,` +
		`"localEndpoint":{"serviceName":"s","ipv4":"1.0.0.9"},"tags":{"application":"tagged"}},` +
		`{"traceId":"a2fb4a1d1a96d312","id":"a2fb4a1d1a96d315","parentId":"a2fb4a1d1a96d312","timestamp":1700000000000000,` +
		`"annotations":[{"timestamp":1,"value":"x"}],"localEndpoint":{"serviceName":"s","ipv4":"1.0.0.9"},"tags":{"shard":"s2"}},` +
		`{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","parentId":"0123456789abcdef","kind":"SERVER",` +
		`"timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"s","ipv4":"10.1.2.3"},` +
		`"annotations":[{"timestamp":1700000000000001,"value":"ss"}],"tags":{"component":"proxy","cluster":" "}}]`,
	// A Decoder's IDs with a source tag, which the shape's text (source
	// "zipkin") cannot give, plain or not, and then without one.
	`[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","parentId":"0123456789abcdef","kind":"SERVER",` +
		`"annotations":[{"timestamp":1,"value":"ss"}],"tags":{"source":"pod-1"}},` +
		`{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d313","parentId":"0123456789abcdef","kind":"SERVER",` +
		`"annotations":[{"timestamp":1,"value":"ss"}],"tags":{"source":"pod 1"}},` +
		`{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d314","parentId":"0123456789abcdef","kind":"SERVER",` +
		`"annotations":[{"timestamp":1,"value":"ss"}]}]`,
	// More addresses and names than the Converter keeps, cycled, so that
	// entries are refilled and found again.
	manyAddresses(6, 2),
	// One annotation per span, the span logs' end kept by kind: an empty
	// value first, then values that change within a kind.
	`[{"traceId":"1","id":"2","kind":"SERVER","annotations":[{"timestamp":1,"value":""}]},` +
		`{"traceId":"1","id":"3","kind":"SERVER","annotations":[{"timestamp":2,"value":"ss"}]},` +
		`{"traceId":"1","id":"4","kind":"SERVER","annotations":[{"timestamp":3,"value":"s\"s"}]},` +
		`{"traceId":"1","id":"5","annotations":[{"timestamp":4,"value":"ss"}]},` +
		`{"traceId":"1","id":"6","kind":"SERVER","annotations":[{"timestamp":5,"value":"sr"},{"timestamp":6,"value":"ss"}]}]`,
}

// manyAddresses is a body of rounds of n spans, each from its own IPv4
// address and with its own name, one not ASCII.
func manyAddresses(n, rounds int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n * rounds {
		if i > 0 {
			b.WriteByte(',')
		}
		name := fmt.Sprintf("route-%d/*", i%n)
		if i%n == n-1 {
			name = "routé"
		}
		fmt.Fprintf(&b, `{"traceId":"a2fb4a1d1a96d312","id":"%016x","kind":"SERVER","name":%q,"timestamp":1700000000000000,`+
			`"annotations":[{"timestamp":1,"value":"ss"}],"localEndpoint":{"serviceName":"s","ipv4":"10.0.%d.%d"}}`, i+1, name, i%n, 200+i%n)
	}
	b.WriteByte(']')
	return b.String()
}

func manyTags(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%02d":"v"`, i)
	}
	return b.String()
}

// fusedConfigs are the converter and validation settings the differential
// checks run under.
func fusedConfigs() (convs []Converter, decs []*wavefront.Decoder) {
	convs = []Converter{{}, {SpanLogs: true}, {SpanLogs: true, DefaultApplication: "app", DefaultService: "svc", DefaultOperation: "op"},
		{DefaultApplication: `a"pp`}, {SpanLogs: true, DefaultApplication: " app"}, {DefaultApplication: "\x01"}}
	tight := wavefront.DefaultLimits()
	tight.MaxSpanAnnotations, tight.MaxSpanKeyLength, tight.MaxSpanValueLength = 12, 10, 20
	tight.MaxSpanNameLength, tight.MaxSourceLength = 8, 8
	window := wavefront.DefaultLimits()
	window.SpanDropDelay, window.Prefill = time.Hour, time.Hour
	now := func() time.Time { return time.UnixMilli(1700000000000) }
	// At the edges of the fixed annotations: zipkinTraceId's key and a
	// span ID fit, _spanSecondaryId and a parent's UUID do not.
	edge := wavefront.DefaultLimits()
	edge.MaxSpanAnnotations, edge.MaxSpanKeyLength, edge.MaxSpanValueLength = 9, 13, 16
	decs = []*wavefront.Decoder{meshDecoder(), {}, {Limits: &tight}, {Limits: &window, Now: now}, {Limits: &edge}}
	return convs, decs
}

// meshDecoder validates with the limits the proxy uses.
func meshDecoder() *wavefront.Decoder {
	lim := wavefront.DefaultLimits()
	lim.MaxSpanAnnotations = wavefront.MeshSpanAnnotations
	return &wavefront.Decoder{Limits: &lim}
}

// checkFused compares Converter.AppendCanonicalSpan with Convert followed
// by wavefront's AppendCanonicalSpan: same bytes, RED and span fields when
// it accepts, and it accepts whenever the two steps do.
func checkFused(t *testing.T, c *Converter, d *wavefront.Decoder, z *Span) {
	t.Helper()
	var ref wavefront.Span
	refRED := c.Convert(z, &ref)
	want, wantOK := d.AppendCanonicalSpan([]byte("prefix "), &ref)
	wantRED := redString(&refRED)
	// ref's slices are valid only until the next conversion.
	ref = wavefront.Span{Name: bytes.Clone(ref.Name), Source: bytes.Clone(ref.Source), SpanID: bytes.Clone(ref.SpanID),
		TraceID: bytes.Clone(ref.TraceID), StartMillis: ref.StartMillis, DurationMillis: ref.DurationMillis}
	var out wavefront.Span
	// A RED left from another span: every field must be set anew.
	stale := []byte("stale")
	gotRED := RED{Application: stale, Service: stale, Cluster: stale, Shard: stale, Component: stale, Operation: stale,
		Source: stale, SpanKind: stale, HTTPStatusCode: stale, CustomTags: []wavefront.Tag{{Key: stale, Value: stale}},
		IsError: true, DurationMicros: -1, DurationMillis: -1}
	got, gotOK := c.AppendCanonicalSpanTo([]byte("prefix "), z, &out, &gotRED, d)
	switch {
	case gotOK != wantOK:
		t.Fatalf("fused ok=%v, Convert+AppendCanonicalSpan ok=%v for %s\nreference line: %s", gotOK, wantOK, spanString(z), want)
	case string(got) != string(want):
		t.Fatalf("fused line differs for %s\n got %q\nwant %q", spanString(z), got, want)
	case gotOK && redString(&gotRED) != wantRED:
		t.Fatalf("fused RED differs for %s\n got %s\nwant %s", spanString(z), redString(&gotRED), wantRED)
	case gotOK && (string(out.Name) != string(ref.Name) || string(out.Source) != string(ref.Source) ||
		string(out.TraceID) != string(ref.TraceID) || string(out.SpanID) != string(ref.SpanID) ||
		out.StartMillis != ref.StartMillis || out.DurationMillis != ref.DurationMillis):
		t.Fatalf("fused span fields differ: %+v, want %+v", out, ref)
	}
	if gotOK && c.SpanLogs {
		// AppendLogs must write the same span logs from either span, and
		// what wavefront.AppendSpanLogs writes.
		for _, sampledBy := range []string{"_sampledByPolicy=NONE", "", "x"} {
			want := appendSpanLogs(t, nil, z, &out, sampledBy)
			if a, b := c.AppendLogs(nil, z, &out, sampledBy), c.AppendLogs(nil, z, &ref, sampledBy); string(a) != string(want) || string(b) != string(want) {
				t.Fatalf("span logs differ: %s and %s, want %s", a, b, want)
			}
		}
	}
}

func redString(r *RED) string {
	return fmt.Sprintf("app=%q svc=%q cluster=%q shard=%q comp=%q op=%q src=%q kind=%q status=%q custom=%d err=%v dur=%d ms=%d",
		r.Application, r.Service, r.Cluster, r.Shard, r.Component, r.Operation, r.Source, r.SpanKind, r.HTTPStatusCode,
		len(r.CustomTags), r.IsError, r.DurationMicros, r.DurationMillis)
}

func checkFusedBody(t *testing.T, body []byte) {
	t.Helper()
	convs, decs := fusedConfigs()
	var dec Decoder
	_ = dec.Decode(body, JSONV2, func(z *Span) error {
		for i := range convs {
			for _, d := range decs {
				checkFused(t, &convs[i], d, z)
			}
		}
		return nil
	})
}

func TestAppendCanonicalSpanMatchesConvert(t *testing.T) {
	for name, body := range fixtures(t) {
		t.Run(name, func(t *testing.T) { checkFusedBody(t, body) })
	}
	checkFusedBody(t, []byte(istioBody))
	for _, body := range fusedEdgeCases {
		checkFusedBody(t, []byte(body))
	}
	// The fused path must actually be taken for Envoy's spans.
	c := Converter{SpanLogs: true}
	d := meshDecoder()
	var out wavefront.Span
	for _, z := range mustDecode(t, string(fixtures(t)["envoy-kourier-zipkin-v2-post-1.json"])) {
		if _, _, ok := c.AppendCanonicalSpan(nil, &z, &out, d); !ok {
			t.Fatalf("fused path declined an Envoy span: %s", spanString(&z))
		}
	}
	// And it leaves custom RED tags to Convert.
	c.CustomTagKeys = []string{"component"}
	z := mustDecode(t, fusedEdgeCases[0])[0]
	if _, _, ok := c.AppendCanonicalSpan(nil, &z, &out, d); ok {
		t.Fatal("fused path accepted a span with CustomTagKeys set")
	}
}

// Spans not from a Decoder may have IDs of other lengths, which take the
// general way through the plan's line instead of the fixed texts.
func TestAppendCanonicalSpanOtherIDLengths(t *testing.T) {
	convs, decs := fusedConfigs()
	for _, body := range append([]string{string(fixtures(t)["envoy-kourier-zipkin-v2-post-1.json"]), istioBody}, fusedEdgeCases[len(fusedEdgeCases)-1]) {
		for _, z := range mustDecode(t, body) {
			for _, ids := range [][3]string{{"abc", "1", "2"}, {"0123456789abcdef01", "a", "b"}, {"12345", "123456789", "0123456789abcdef0"}} {
				z := z
				z.TraceID, z.ID = []byte(ids[0]), []byte(ids[1])
				if z.ParentID != nil {
					z.ParentID = []byte(ids[2])
				}
				for i := range convs {
					for _, d := range decs {
						checkFused(t, &convs[i], d, &z)
					}
				}
			}
		}
	}
}

// FuzzAppendCanonicalSpan decodes JSON v2 bodies and checks the fused path
// against Convert and wavefront's AppendCanonicalSpan for every span.
func FuzzAppendCanonicalSpan(f *testing.F) {
	f.Add([]byte(istioBody))
	for _, body := range fusedEdgeCases {
		f.Add([]byte(body))
	}
	for _, body := range fixtures(f) {
		f.Add(body)
	}
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) { checkFusedBody(t, atPageEnd(body)) })
}
