package wavefront

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzzers check that decoders never panic and that whatever they accept
// survives encode → decode unchanged (modulo the encoder's trimming of
// values), so the canonical form is a fixed point.

func fuzzDecoder() *Decoder {
	d := newTestDecoder()
	d.LenientNonFinite = true // AppendValue writes +Inf
	return d
}

func trimmedTags(tags []Tag) []Tag {
	out := make([]Tag, len(tags))
	for i, t := range tags {
		out[i] = Tag{t.Key, trimSpace(t.Value)}
	}
	return out
}

func FuzzDecodePoint(f *testing.F) {
	for _, s := range []string{
		`cpu.load 0.75 1712000000 host=web-1 env=prod`,
		`"disk.used" 12 source="db 1" "mount"="/var/lib"`,
		`q 1 source=a k="it\"s" j='x\'y'`,
		`∆~jobs.done 3 1712000000123456 source=w1 tag=x host=h`,
		`m 0x1.8p1 1712000000.25 fqdn=f "k"="a\\" n="a\nb"`,
	} {
		f.Add([]byte(s))
	}
	d, d2 := fuzzDecoder(), fuzzDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		var p1, p2 Point
		if d.DecodePoint(line, &p1) != nil {
			return
		}
		enc := AppendPoint(nil, &p1)
		// Re-decode without the window: truncating to seconds may cross it.
		if err := d2.ParsePoint(enc, &p2); err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		if err := d2.limits().ValidatePoint(&p2); err != nil {
			t.Fatalf("re-validate of %q: %v", enc, err)
		}
		p1.Source, p1.Tags = trimSpace(p1.Source), trimmedTags(p1.Tags)
		if a, b := pointString(&p2), pointString(&p1); a != b {
			t.Fatalf("unstable:\n got %s\nwant %s\n via %q", a, b, enc)
		}
		if enc2 := AppendPoint(nil, &p2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs:\n%q\n%q", enc, enc2)
		}
	})
}

func FuzzDecodeDistribution(f *testing.F) {
	for _, s := range []string{
		`!M 1712000059 #2 1.5 #1 4 lat.ms source=a`,
		`!H #1 1 #0 2 "a b" host=h tag=t k="\"q\""`,
		`!D 1712000000123 #2147483647 -Infinity ~m fqdn=f`,
	} {
		f.Add([]byte(s))
	}
	d, d2 := fuzzDecoder(), fuzzDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		var h1, h2 Distribution
		if d.DecodeDistribution(line, &h1) != nil {
			return
		}
		enc := AppendDistribution(nil, &h1)
		if err := d2.DecodeDistribution(enc, &h2); err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		if tagsString(h2.Tags) != tagsString(trimmedTags(h1.Tags)) || !bytes.Equal(h2.Source, trimSpace(h1.Source)) ||
			!bytes.Equal(h2.Name, h1.Name) || h2.Timestamp != h1.Timestamp || h2.Granularity != h1.Granularity ||
			len(h2.Centroids) != len(h1.Centroids) {
			t.Fatalf("unstable via %q", enc)
		}
		if enc2 := AppendDistribution(nil, &h2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs:\n%q\n%q", enc, enc2)
		}
	})
}

func FuzzDecodeSpan(f *testing.F) {
	for _, s := range []string{
		`op source=s traceId=4bf92f35-77b3-4da6-a3ce-929d0e0e4736 spanId=00000000-0000-0000-00f0-67aa0ba902b7 parent=p 1712000000500 1712000000750`,
		`"GET /*" host=h spanId=i traceId=t "k"="v\"" 1712000000 3`,
		`op traceId=t spanId=i followsFrom=a followsFrom=b 1712000000500000 250000`,
	} {
		f.Add([]byte(s))
	}
	d, d2 := fuzzDecoder(), fuzzDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		var s1, s2 Span
		if d.DecodeSpan(line, &s1) != nil {
			return
		}
		// Milliseconds are only unambiguous from 1e12 on, and a duration
		// not below the start reads back as an end time (see AppendSpan).
		// Truncation adds _spanLogs, which may exceed the annotation limit.
		if s1.StartMillis < 1e12 || s1.DurationMillis >= s1.StartMillis || len(d.TruncatedAnnotations()) > 0 {
			return
		}
		enc := AppendSpan(nil, &s1)
		if err := d2.DecodeSpan(enc, &s2); err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		want := Span{trimSpace(s1.Name), trimSpace(s1.Source), trimSpace(s1.SpanID), trimSpace(s1.TraceID),
			s1.StartMillis, s1.DurationMillis, trimmedTags(s1.Tags)}
		if !reflect.DeepEqual(normSpan(&s2), normSpan(&want)) {
			t.Fatalf("unstable via %q:\n got %+v\nwant %+v", enc, s2, want)
		}
		if enc2 := AppendSpan(nil, &s2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs:\n%q\n%q", enc, enc2)
		}
	})
}

// normSpan maps nil and empty slices together for comparison.
func normSpan(s *Span) []string {
	out := []string{string(s.Name), string(s.Source), string(s.SpanID), string(s.TraceID),
		string(AppendValue(nil, float64(s.StartMillis))), string(AppendValue(nil, float64(s.DurationMillis)))}
	for _, t := range s.Tags {
		out = append(out, string(t.Key), string(t.Value))
	}
	return out
}

func FuzzSpanLogs(f *testing.F) {
	for _, s := range []string{
		`{"traceId":"t","spanId":"s","spanSecondaryId":"server","logs":[{"timestamp":1712000000123456,"fields":{"event":"retry","attempt":"2"}}],"span":"op source=a traceId=t spanId=s 1 2"}`,
		`{"customer":"c","traceId":"t","spanId":"s","_spanSecondaryId":null,"logs":[{"timestamp":-1,"fields":{"n":1.5,"b":false,"z":null}}]}`,
		`{"traceId":"t","spanId":"s","logs":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var a, b SpanLogs
		if DecodeSpanLogs(line, &a) != nil {
			return
		}
		enc, err := AppendSpanLogs(nil, &a)
		if err != nil {
			t.Fatalf("encode %+v: %v", a, err)
		}
		if err := DecodeSpanLogs(enc, &b); err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("unstable via %s:\n%+v\n%+v", enc, a, b)
		}
	})
}
