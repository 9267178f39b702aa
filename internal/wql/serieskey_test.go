package wql

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestCompareSeriesKeysAgreesWithBytes: result series are ordered by the
// bytes name 0 source 0 k=v 0..., compared piece by piece instead of
// built; the order must be the built keys' order, also where a name,
// source or tag holds a 0, '=' or is a prefix of another.
func TestCompareSeriesKeysAgreesWithBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		const alphabet = "ab=\x00"
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	series := func() GridSeries {
		s := GridSeries{Name: word(), Source: word()}
		for range r.IntN(3) {
			s.Tags = append(s.Tags, Tag{Key: word(), Value: word()})
		}
		return s
	}
	key := func(s *GridSeries) []byte {
		b := append([]byte(s.Name), 0)
		b = append(append(b, s.Source...), 0)
		return s.Tags.appendKey(b, "")
	}
	for range 200_000 {
		a, b := series(), series()
		if r.IntN(4) == 0 {
			b = a
			b.Tags = append(Tags(nil), a.Tags...)
			if len(b.Tags) > 0 {
				b.Tags[len(b.Tags)-1].Value += word()
			}
		}
		want := bytes.Compare(key(&a), key(&b))
		if got := compareSeriesKeys(&a, &b); got != want {
			t.Fatalf("%q vs %q: %d, want %d", key(&a), key(&b), got, want)
		}
	}
}
