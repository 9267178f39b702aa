package wavefront

import (
	"strings"
	"testing"
)

const (
	tid = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
	sid = "00000000-0000-0000-00f0-67aa0ba902b7"
)

func TestSpanExamples(t *testing.T) {
	prefix := `op source=s traceId=` + tid + ` spanId=` + sid + ` `
	for _, tc := range []struct {
		nums       string
		start, dur int64
	}{
		{"1712000000500 1712000000750", 1712000000500, 250},
		{"1712000000 3", 1712000000000, 3000},
		{"1712000000500000 250000", 1712000000500, 250},
		{"1712000000500000000 1712000000750000000", 1712000000500, 250},
		{"1712000000 1712000001", 1712000000000, 1000},
	} {
		var s Span
		if err := newTestDecoder().DecodeSpan([]byte(prefix+tc.nums), &s); err != nil {
			t.Errorf("%s: %v", tc.nums, err)
			continue
		}
		if s.StartMillis != tc.start || s.DurationMillis != tc.dur {
			t.Errorf("%s: start %d dur %d, want %d %d", tc.nums, s.StartMillis, s.DurationMillis, tc.start, tc.dur)
		}
	}
}

// TestSpanZipkinExample decodes the forwarded span of proxy.md §5.6 and
// checks that re-encoding reproduces it.
func TestSpanZipkinExample(t *testing.T) {
	line := `"ratings.default.svc.cluster.local:9080/-" source="zipkin" spanId="00000000-0000-0000-00f0-67aa0ba902b7" traceId="4bf92f35-77b3-4da6-a3ce-929d0e0e4736" "zipkinSpanId"="00f067aa0ba902b7" "zipkinTraceId"="4bf92f3577b34da6a3ce929d0e0e4736" "parent"="00000000-0000-0000-b7ad-6b7169203331" "span.kind"="server" "service"="ratings.default" "component"="proxy" "error"="true" "guid-x-request-id"="5c1e" "http.method"="GET" "http.status_code"="503" "response_flags"="UF" "application"="Zipkin" "cluster"="none" "shard"="none" "ipv4"="10.1.2.3" 1712000000123 2` + "\n"
	var s Span
	if err := newTestDecoder().DecodeSpan([]byte(line), &s); err != nil {
		t.Fatal(err)
	}
	if got := string(AppendSpan(nil, &s)); got != line {
		t.Errorf("\n got %s\nwant %s", got, line)
	}
}

func TestSpanAnnotations(t *testing.T) {
	line := `op host=h1 traceId=` + tid + ` spanId=` + sid + ` parent=p1 parent=p2 followsFrom=f1 source=s2 k=v 1712000000500 1712000000750`
	var s Span
	if err := newTestDecoder().DecodeSpan([]byte(line), &s); err != nil {
		t.Fatal(err)
	}
	want := `"op" source="s2" spanId="` + sid + `" traceId="` + tid + `" "parent"="p1" "parent"="p2" "followsFrom"="f1" "k"="v" 1712000000500 250` + "\n"
	if got := string(AppendSpan(nil, &s)); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	if err := newTestDecoder().DecodeSpan([]byte(`op traceId=t spanId=s 1712000000 3`), &s); err != nil || string(s.Source) != "app-7" {
		t.Errorf("default source: %v %q", err, s.Source)
	}
}

func TestSpanErrors(t *testing.T) {
	ids := ` traceId=` + tid + ` spanId=` + sid
	long := strings.Repeat("x", 129)
	for line, want := range map[string]string{
		``:                                                                 "WF-300: Span name is missing",
		`op source=s traceId=t 1 2`:                                        "WF-300: spanId can't be null",
		`op source=s spanId=t 1 2`:                                         "WF-300: traceId can't be null",
		`op source=s` + ids:                                                "WF-300: Span start timestamp is missing",
		`op source=s` + ids + ` 1712000000`:                                "WF-300: Span end timestamp or duration is missing",
		`op source=s` + ids + ` 1712000000 k=v`:                            `WF-300: Invalid span end timestamp or duration: "k"`,
		`op source=s` + ids + ` 1712000000 -1`:                             `WF-300: Invalid span end timestamp or duration: "-1"`,
		`op source=s` + ids + ` 1712000000 1 2`:                            `WF-300: Unexpected extra input: "2"`,
		`op source=s` + ids + ` 99999999999999999999 1`:                    "WF-300: Invalid span start timestamp",
		`op source=s` + ids + ` k 1 2`:                                     "WF-300: Tag keys and values must be separated by '='",
		`op source=s` + ids + ` k= 1 2`:                                    "",
		`op source=s` + ids + ` k=`:                                        `WF-300: Value missing for "k"`,
		`op source=s` + ids + ` 1812000000 1`:                              "WF-402: Span outside of reasonable timeframe",
		`op source=" "` + ids + ` 1712000000 1`:                            "WF-426",
		`op source=` + strings.Repeat("s", 1024) + ids + ` 1712000000 1`:   "WF-427",
		long + ` source=s` + ids + ` 1712000000 1`:                         "WF-428",
		`op source=s` + ids + strings.Repeat(" k=v", 21) + ` 1712000000 1`: "WF-430",
		`op source=s` + ids + ` ` + long + `=v 1712000000 1`:               "WF-432",
		`op source=s` + ids + ` a:b=v 1712000000 1`:                        "WF-416",
		`op source=s` + ids + ` k="" 1712000000 1`:                         "WF-434",
	} {
		var s Span
		err := newTestDecoder().DecodeSpan([]byte(line), &s)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%.70s: err %v, want %s", line, err, want)
		}
	}
	var s Span
	d := newTestDecoder()
	lim := DefaultLimits()
	lim.SpanDropDelay = 60_000_000_000 // 1 minute
	d.Limits = &lim
	err := d.DecodeSpan([]byte(`op source=s`+ids+` 1712000000 1`), &s)
	if err == nil || err.Error() != "WF-402: span is older than acceptable delay of 1 minutes" {
		t.Errorf("drop delay: %v", err)
	}
}

func TestSpanSanitizeAndTruncate(t *testing.T) {
	full := strings.Repeat("é", 127) + "😀z"
	line := `"GET /a/*/b" source=s traceId=t spanId=i _spanSecondaryId=server big="` + full + `" ok=1 1712000000500 3`
	d := newTestDecoder()
	var s Span
	if err := d.DecodeSpan([]byte(line), &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Name) != "GET /a/-/b" {
		t.Errorf("name %q", s.Name)
	}
	if got := tagsString(s.Tags); got != `"_spanLogs"="true" "_spanSecondaryId"="server" "big"="`+strings.Repeat("é", 127)+`" "ok"="1"` {
		t.Errorf("tags %s", got)
	}
	tr := d.TruncatedAnnotations()
	if len(tr) != 1 || string(tr[0].Value) != full {
		t.Fatalf("truncated %q", tr)
	}
	sl := TruncationSpanLogs(&s, tr)
	b, err := AppendSpanLogs(nil, sl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"traceId":"t","spanId":"i","spanSecondaryId":"server","logs":[{"timestamp":-1,"fields":{"big":"` + full + `"}}]}` + "\n"
	if string(b) != want {
		t.Errorf("\n got %s\nwant %s", b, want)
	}
	// _spanLogs already present is set, not duplicated; the input line is untouched.
	line2 := []byte(`op source=s traceId=t spanId=i _spanLogs=false big="` + full + `" 1712000000500 3`)
	orig := string(line2)
	if err := d.DecodeSpan(line2, &s); err != nil {
		t.Fatal(err)
	}
	if got := tagsString(s.Tags); !strings.HasPrefix(got, `"_spanLogs"="true" "big"=`) || strings.Count(got, "_spanLogs") != 1 {
		t.Errorf("tags %s", got)
	}
	if string(line2) != orig {
		t.Error("DecodeSpan modified its input")
	}
	if got := truncateUTF16([]byte("ab😀"), 3); string(got) != "ab" {
		t.Errorf("truncateUTF16 split a surrogate pair: %q", got)
	}
}

// hasNameSpecial finds exactly the bytes a span name cannot take
// verbatim, whatever the other bytes of the word.
func TestHasNameSpecial(t *testing.T) {
	for _, fill := range []byte{'a', '"', '*', 0x80, 0, '+', ')'} {
		for b := range 256 {
			for at := range 8 {
				x := uint64(fill) * 0x0101010101010101
				x = x&^(0xff<<(8*at)) | uint64(b)<<(8*at)
				want := b >= 0x80 || b == '"' || b == '\\' || b == '\n' || b == '*' ||
					fill >= 0x80 || fill == '"' || fill == '*'
				if got := hasNameSpecial(x); got != want {
					t.Fatalf("hasNameSpecial(%#016x) = %v, want %v", x, got, want)
				}
			}
		}
	}
}
