package wavefront

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// cloneSpan deep-copies s, so a test can tell whether a call modified it.
func cloneSpan(s *Span) Span {
	c := Span{Name: bytes.Clone(s.Name), Source: bytes.Clone(s.Source), SpanID: bytes.Clone(s.SpanID),
		TraceID: bytes.Clone(s.TraceID), StartMillis: s.StartMillis, DurationMillis: s.DurationMillis}
	for _, t := range s.Tags {
		c.Tags = append(c.Tags, Tag{bytes.Clone(t.Key), bytes.Clone(t.Value)})
	}
	return c
}

// checkCanonicalSpan compares AppendCanonicalSpan with ValidateSpan +
// AppendSpan on copies of s: a true must mean the general path accepts s
// without truncation and writes the same bytes; a false must leave dst and
// s alone.
func checkCanonicalSpan(t *testing.T, lim *Limits, s *Span) bool {
	t.Helper()
	now := func() time.Time { return time.UnixMilli(1712000000000) }
	fast, slow := &Decoder{Limits: lim, Now: now}, &Decoder{Limits: lim, Now: now}
	a, b := cloneSpan(s), cloneSpan(s)
	got, ok := fast.AppendCanonicalSpan([]byte("prefix "), &a)
	if !ok {
		if string(got) != "prefix " {
			t.Fatalf("declined but wrote %q", got)
		}
		if want := cloneSpan(s); string(AppendSpan(nil, &a)) != string(AppendSpan(nil, &want)) {
			t.Fatalf("declined but modified the span")
		}
		return false
	}
	if err := slow.ValidateSpan(&b); err != nil {
		t.Fatalf("fast path accepted what ValidateSpan rejects (%v): %s", err, got)
	}
	if full := slow.TruncatedAnnotations(); len(full) > 0 {
		t.Fatalf("fast path accepted a span ValidateSpan truncates: %s", got)
	}
	if want := AppendSpan([]byte("prefix "), &b); string(got) != string(want) {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	if len(fast.TruncatedAnnotations()) > 0 {
		t.Fatal("TruncatedAnnotations not empty after the fast path")
	}
	return true
}

// checkSpanLineTags compares SpanLine.Tags with AppendCanonicalSpan for a
// span whose keys it takes (name bytes, non-empty) and whose values are
// all non-empty, with each value marked plain when it is, the key texts
// in one buffer with SpanTagSpare spare bytes as Tags needs, and their
// longest key, which Tags checks against the limit.
func checkSpanLineTags(t *testing.T, lim *Limits, s *Span) {
	t.Helper()
	tags := make([]SpanTag, 0, len(s.Tags)+1)
	var texts []byte
	var at []int
	longest := 0
	for _, tag := range s.Tags {
		if len(tag.Key) == 0 || len(tag.Value) == 0 {
			return
		}
		for _, c := range tag.Key {
			if !allowedNameByte[c] {
				return
			}
		}
		// Plain vouches for trimmed ends too; a value with a blank end
		// is left to Tags' checks.
		plain := !isSpace(tag.Value[0]) && !isSpace(tag.Value[len(tag.Value)-1])
		for _, c := range tag.Value {
			plain = plain && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '\n'
		}
		at = append(at, len(texts))
		texts = AppendSpanKey(texts, tag.Key)
		longest = max(longest, len(tag.Key))
		tags = append(tags, SpanTag{Value: tag.Value, Plain: plain})
	}
	at = append(at, len(texts))
	texts = AppendSpanKey(texts, []byte("a.key.longer.than.any.limit.left.out"))
	tags = append(tags, SpanTag{}) // an empty Value is skipped, and its key not checked
	at = append(at, len(texts))
	texts = append(texts, make([]byte, SpanTagSpare)...)
	for i := range tags {
		tags[i].KeyText = texts[at[i]:at[i+1]]
	}
	room := 0
	for _, tag := range tags {
		if len(tag.Value) > 0 {
			room += len(tag.KeyText) + len(tag.Value) + len(`"`)
		}
	}
	now := func() time.Time { return time.UnixMilli(1712000000000) }
	d := &Decoder{Limits: lim, Now: now}
	a := cloneSpan(s)
	want, wantOK := d.AppendCanonicalSpan([]byte("prefix "), &a)
	// The exact room and more give the same line; less must fail, not
	// write past it.
	for _, extra := range []int{0, 1, 100} {
		got, gotOK := spanLineTags(d, s, tags, room+extra, longest)
		if gotOK != wantOK || string(got) != string(want) {
			t.Fatalf("Tags (room %d+%d): ok=%v %q\nAppendCanonicalSpan: ok=%v %q", room, extra, gotOK, got, wantOK, want)
		}
	}
	if room > 0 {
		if got, ok := spanLineTags(d, s, tags, room-1, longest); ok || string(got) != "prefix " {
			t.Fatalf("Tags with room %d, one short: ok=%v %q", room-1, ok, got)
		}
	}
}

// spanLineTags writes s's line through BeginCanonicalSpan and Tags(tags,
// room, longestKey).
func spanLineTags(d *Decoder, s *Span, tags []SpanTag, room, longestKey int) ([]byte, bool) {
	got := []byte("prefix ")
	l, ok := d.BeginCanonicalSpan(got, s.Name, s.Source, s.SpanID, s.TraceID, false, false, s.StartMillis, s.DurationMillis)
	if !ok {
		return got, false
	}
	if !l.Tags(tags, room, longestKey) {
		return l.Discard(), false
	}
	return l.End(), true
}

func TestAppendCanonicalSpanZipkin(t *testing.T) {
	// A converted Envoy span takes the fast path.
	line := `"tracing-bdectujw.example.com" source="zipkin" spanId="00000000-0000-0000-dfdf-78be9f9802f3" traceId="00000000-0000-0000-dfdf-78be9f9802f3" ` +
		`"zipkinSpanId"="dfdf78be9f9802f3" "span.kind"="server" "_spanSecondaryId"="server" "service"="kourier-knative" "component"="proxy" ` +
		`"guid-x-request-id"="4d8666a7-fe4d-99dc-90fe-c10c404392ac" "http.url"="http://tracing-bdectujw.example.com/" "user_agent"="knative.dev/TestTracing/tracing-cdnyafeq" ` +
		`"application"="Zipkin" "ipv4"="10.244.1.3" "_spanLogs"="true" 1712000000123 7`
	var d Decoder
	var s Span
	if err := d.parseSpan([]byte(line), &s); err != nil {
		t.Fatal(err)
	}
	lim := DefaultLimits()
	if !checkCanonicalSpan(t, &lim, &s) {
		t.Error("a converted Envoy span was declined")
	}
	checkSpanLineTags(t, &lim, &s)
}

// FuzzAppendCanonicalSpan parses span lines without validating them and
// checks the fast path against the general one under default and tight
// limits.
func FuzzAppendCanonicalSpan(f *testing.F) {
	for _, s := range []string{
		`"op" source="zipkin" spanId="s" traceId="t" "k"="v" 1712000000123 7`,
		`"op*x" source="h" spanId="s" traceId="t" "k"="v" 1712000000123 7`,
		`"a.longer.operation*name" source="h" spanId="s" traceId="t" "k"="v" 1712000000123 7`,
		`"a.longer.operation.name*" source="h" spanId="s" traceId="t" "k"="v" 1712000000123 7`,
		`" op" source="h " spanId="s" traceId="t" "k"=" v" 1712000000123 7`,
		`"op" source="h" spanId="s" traceId="t" "a:b"="v" "~k"="v" "∆k"="v" 1712000000123 7`,
		`"op" source="h" spanId="s" traceId="t" "k"="say \"hi\"\\n" "é"="ü" 1712000000123 7`,
		`"op" source="h" spanId="s" traceId="t" "k"="a value longer than sixteen" 1712000000123 7`,
		// Keys whose texts are longer than the four words Tags copies at
		// once, between short ones.
		`"op" source="h" spanId="s" traceId="t" "a"="v" "a.key.of.twenty-seven.bytes"="v" "a.key.that.is.longer.than.thirty-two.bytes"="w" "b"="x" 1712000000123 7`,
		`"op" source="h" spanId="s" traceId="t" "k"="v" 1 7`,
		`"op" source="h" spanId="" traceId="t" "k"="\t" 1712000000123 7`,
	} {
		f.Add([]byte(s))
	}
	tight := DefaultLimits()
	tight.MaxSpanNameLength, tight.MaxSourceLength, tight.MaxSpanKeyLength, tight.MaxSpanValueLength, tight.MaxSpanAnnotations = 8, 8, 4, 16, 3
	tight.SpanDropDelay = time.Hour
	def := DefaultLimits()
	f.Fuzz(func(t *testing.T, line []byte) {
		var d Decoder
		var s Span
		if d.parseSpan(line, &s) != nil {
			return
		}
		checkCanonicalSpan(t, &def, &s)
		checkCanonicalSpan(t, &tight, &s)
		checkSpanLineTags(t, &def, &s)
		checkSpanLineTags(t, &tight, &s)
	})
}

// envoySpan is a converted Envoy span, as the Zipkin port builds it.
func envoySpan(tb testing.TB) Span {
	line := `"tracing-bdectujw.example.com" source="zipkin" spanId="00000000-0000-0000-dfdf-78be9f9802f3" traceId="00000000-0000-0000-dfdf-78be9f9802f3" ` +
		`"zipkinSpanId"="dfdf78be9f9802f3" "zipkinTraceId"="dfdf78be9f9802f3" "span.kind"="server" "_spanSecondaryId"="server" "service"="kourier-knative" ` +
		`"component"="proxy" "downstream_cluster"="-" "guid-x-request-id"="4d8666a7-fe4d-99dc-90fe-c10c404392ac" "http.method"="GET" "http.protocol"="HTTP/1.1" ` +
		`"http.status_code"="200" "http.url"="http://tracing-bdectujw.example.com/" "node_id"="3scale-kourier-gateway" "peer.address"="10.244.1.1" ` +
		`"request_size"="0" "response_flags"="-" "response_size"="14872" "upstream_cluster"="serving-tests/tracing-bdectujw" ` +
		`"user_agent"="knative.dev/TestTracing/tracing-cdnyafeq" "application"="Zipkin" "cluster"="none" "shard"="none" "ipv4"="10.244.1.3" "_spanLogs"="true" 1712000000123 7`
	var d Decoder
	var s Span
	if err := d.parseSpan([]byte(line), &s); err != nil {
		tb.Fatal(err)
	}
	return cloneSpan(&s)
}

// BenchmarkAppendCanonicalSpan/general is the path it replaces.
func BenchmarkAppendCanonicalSpan(b *testing.B) {
	s := envoySpan(b)
	lim := DefaultLimits()
	lim.MaxSpanAnnotations = MeshSpanAnnotations
	d := Decoder{Limits: &lim}
	var buf []byte
	b.Run("canonical", func(b *testing.B) {
		for b.Loop() {
			var ok bool
			if buf, ok = d.AppendCanonicalSpan(buf[:0], &s); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		for b.Loop() {
			if err := d.ValidateSpan(&s); err != nil {
				b.Fatal(err)
			}
			buf = AppendSpan(buf[:0], &s)
		}
	})
}

func TestAppendInt(t *testing.T) {
	vals := []int64{0, 7, 9, 10, 99, 100, 1234, 99999999, 1e8, 1e8 + 1, 123456789012, 1712000000123,
		1712000000123456, 1e15, 1e16 - 1, 1e16, 1e17 + 3, -1, -1712000000123, math.MaxInt64, math.MinInt64}
	for p := int64(1); p > 0 && p <= math.MaxInt64/10; p *= 10 {
		vals = append(vals, p-1, p, p+1, 5*p)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		vals = append(vals, r.Int64N(1<<uint(r.IntN(62)+1)))
	}
	for _, v := range vals {
		if got, want := string(AppendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Errorf("AppendInt(%d) = %q, want %q", v, got, want)
		}
	}
}

// Annotations writes what Tag writes for the same annotations, and
// declines exactly when a limit would.
func TestSpanLineAnnotations(t *testing.T) {
	tags := []Tag{{[]byte("zipkinSpanId"), []byte("0123456789abcdef")}, {[]byte("parent"), []byte("00000000-0000-0000-0123-456789abcdef")},
		{[]byte("_spanSecondaryId"), []byte("server")}}
	var text []byte
	for _, tag := range tags {
		text = append(append(AppendSpanKey(text, tag.Key), tag.Value...), '"')
	}
	for _, lim := range []struct{ n, key, value int }{{100, 100, 100}, {3, 16, 36}, {2, 16, 36}, {3, 15, 36}, {3, 16, 35}} {
		l := DefaultLimits()
		l.MaxSpanAnnotations, l.MaxSpanKeyLength, l.MaxSpanValueLength = lim.n, lim.key, lim.value
		d := &Decoder{Limits: &l}
		begin := func() SpanLine {
			sl, ok := d.BeginCanonicalSpan([]byte("prefix "), []byte("op"), []byte("src"), []byte("id"), []byte("tid"), false, false, 1712000000000, 1)
			if !ok {
				t.Fatal("BeginCanonicalSpan declined")
			}
			return sl
		}
		want, wantOK := begin(), true
		for _, tag := range tags {
			wantOK = wantOK && want.Tag(tag.Key, tag.Value)
		}
		got := begin()
		gotOK := got.Annotations(text, len(tags), len("_spanSecondaryId"), len("00000000-0000-0000-0123-456789abcdef"))
		if gotOK != wantOK || gotOK && string(got.End()) != string(want.End()) {
			t.Errorf("limits %+v: Annotations ok=%v, Tag ok=%v", lim, gotOK, wantOK)
		}
	}
}

// BeginCanonicalSpanText writes what BeginCanonicalSpan and Annotations
// write for the same source, IDs and annotations, and declines exactly
// when one of them would.
func TestBeginCanonicalSpanText(t *testing.T) {
	tags := []Tag{{[]byte("zipkinSpanId"), []byte("0123456789abcdef")}, {[]byte("_spanSecondaryId"), []byte("server")}}
	src, spanID, traceID := []byte("zipkin"), []byte("00000000-0000-0000-0123-456789abcdef"), []byte("00000000-0000-0000-0000-000000000001")
	text := append(append(append(append(append(append([]byte(` source="`), src...), `" spanId="`...), spanID...), `" traceId="`...), traceID...), '"')
	var annotations []byte
	for _, tag := range tags {
		annotations = append(append(AppendSpanKey(annotations, tag.Key), tag.Value...), '"')
	}
	text = append(text, annotations...)
	for _, lim := range []struct{ n, key, value, name, source int }{{100, 100, 100, 100, 100}, {2, 16, 16, 2, 6},
		{1, 16, 16, 2, 6}, {2, 15, 16, 2, 6}, {2, 16, 15, 2, 6}, {2, 16, 16, 1, 6}, {2, 16, 16, 2, 5}} {
		l := DefaultLimits()
		l.MaxSpanAnnotations, l.MaxSpanKeyLength, l.MaxSpanValueLength = lim.n, lim.key, lim.value
		l.MaxSpanNameLength, l.MaxSourceLength = lim.name, lim.source
		d := &Decoder{Limits: &l}
		var want []byte
		w, wantOK := d.BeginCanonicalSpan([]byte("prefix "), []byte("op"), src, spanID, traceID, true, true, 1712000000000, 1)
		if wantOK = wantOK && w.Annotations(annotations, len(tags), len("_spanSecondaryId"), len("0123456789abcdef")); wantOK {
			want = w.End()
		}
		for _, plainName := range []bool{false, true} {
			var got []byte
			g, gotOK := d.BeginCanonicalSpanText([]byte("prefix "), []byte("op"), plainName, len(src), text, len(tags), len("_spanSecondaryId"), len("0123456789abcdef"), 1712000000000, 1)
			if gotOK {
				got = g.End()
			}
			if gotOK != wantOK || string(got) != string(want) {
				t.Errorf("limits %+v, plain name %v: BeginCanonicalSpanText ok=%v %q, BeginCanonicalSpan and Annotations ok=%v %q", lim, plainName, gotOK, got, wantOK, want)
			}
		}
	}
}
