package zipkin

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzStopIndex checks the structural index against its byte-at-a-time
// definition: bit i is set exactly where b[i] is not plain, nothing past
// the end is marked, a zero word follows the index, and the assembly
// agrees with markStopsGeneric on the whole 64-byte blocks, in each
// version it has (SSE2 and AVX2 on amd64).
// Seeds: the Envoy fixtures and the corpus.
func FuzzStopIndex(f *testing.F) {
	f.Add([]byte(`{"a":"b\\"c","d":"\u00e9\n"}`))
	f.Add([]byte("\x80\x7f\"\\\n\x00 !#"))
	fixtures, _ := filepath.Glob("../../testdata/fixtures/zipkin/*.json")
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Stale bits must not survive, in the index or its spare word.
		dirty := make([]uint64, len(b)/64+2)
		for i := range dirty {
			dirty[i] = ^uint64(0)
		}
		stops := buildStops(dirty[:1], b)
		if want := len(b)/64 + 1; len(stops) != want {
			t.Fatalf("%d index words for %d bytes, want %d", len(stops), len(b), want)
		}
		if cap(stops) == len(stops) || stops[:len(stops)+1][len(stops)] != 0 {
			t.Fatalf("no zero word after the index")
		}
		for i := range len(stops) * 64 {
			got := stops[i/64]>>(i%64)&1 == 1
			want := i < len(b) && !plain[b[i]]
			if got != want {
				t.Fatalf("bit %d = %v, want %v (byte %q)", i, got, want, b[min(i, len(b)-1)])
			}
		}
		whole := len(b) &^ 63
		generic := make([]uint64, whole/64)
		markStopsGeneric(generic, b[:whole])
		for k, w := range generic {
			if stops[k] != w {
				t.Fatalf("block %d: markStops %#x, markStopsGeneric %#x", k, stops[k], w)
			}
		}
		for name, mark := range markStopsVariants {
			got := make([]uint64, whole/64)
			mark(got, b[:whole])
			for k, w := range generic {
				if got[k] != w {
					t.Fatalf("block %d: %s %#x, markStopsGeneric %#x", k, name, got[k], w)
				}
			}
		}
	})
}

// TestDecodeEveryPrefix decodes every prefix of a body, as it is and
// after leading spaces that make it end on the last byte of an index
// word, so that a string, a key or the input ends at every offset: the
// lexer must reject each with an error, never read past the index.
func TestDecodeEveryPrefix(t *testing.T) {
	body := []byte(istioBody)
	var d Decoder
	for n := 1; n < len(body); n++ {
		padded := append(bytes.Repeat([]byte{' '}, (63-n%64)%64), body[:n]...)
		for _, b := range [][]byte{body[:n], padded} {
			for _, enc := range []Encoding{JSONV2, JSONV1} {
				if err := d.Decode(b, enc, func(*Span) error { return nil }); err == nil {
					t.Fatalf("%v: %q decoded without error", enc, b)
				}
			}
		}
	}
}
