package server

import (
	"bytes"
	"math"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

func TestSplitCanonicalPoint(t *testing.T) {
	for _, c := range []struct {
		line, key string
		v         float64
		ms        int64
		ok        bool
	}{
		{`"cpu.load" 0.75 1712000000123 source="web-1" "env"="prod"`, `"cpu.load" source="web-1" "env"="prod"`, 0.75, 1712000000123, true},
		{`"∆~jobs" -3 1712000000000 source="a b" "k"="x\"y z"`, `"∆~jobs" source="a b" "k"="x\"y z"`, -3, 1712000000000, true},
		{`"m" NaN 1712000000000 source="s"`, `"m" source="s"`, math.NaN(), 1712000000000, true},
		{`"m" +Inf 1712000000000 source="s"`, `"m" source="s"`, math.Inf(1), 1712000000000, true},
		{`"m" 1 source="s"`, "", 0, 0, false},             // no timestamp
		{`m 1 1712000000000 source="s"`, "", 0, 0, false}, // unquoted name
		{`"m" 1 17x2000000000 source="s"`, "", 0, 0, false},
		{`"m" x 1712000000000 source="s"`, "", 0, 0, false},
		{`"m" 1 1712000000000 "source"="s"`, "", 0, 0, false},
		{`"m 1 1712000000000 source="s"`, "", 0, 0, false},
		{`"m"`, "", 0, 0, false},
		{``, "", 0, 0, false},
	} {
		key, v, ms, ok := splitCanonicalPoint(nil, []byte(c.line))
		if ok != c.ok || (ok && (string(key) != c.key || !sameFloat(v, c.v) || ms != c.ms)) {
			t.Errorf("%s: got %q %v %d %t; want %q %v %d %t", c.line, key, v, ms, ok, c.key, c.v, c.ms, c.ok)
		}
	}
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// FuzzSplitCanonicalPoint checks that every point the handler accepts and
// writes to the WAL splits back into its value and millisecond timestamp,
// and that its series text does not depend on value or timestamp, so the
// reference cache finds the series again. Any input must not panic.
func FuzzSplitCanonicalPoint(f *testing.F) {
	f.Add([]byte(`cpu.load 0.75 1712000000 host=web-1 env=prod`))
	dec := wavefront.Decoder{LenientNonFinite: true}
	f.Fuzz(func(t *testing.T, line []byte) {
		splitCanonicalPoint(nil, line)
		var p wavefront.Point
		if dec.DecodePoint(line, &p) != nil {
			return
		}
		p.Timestamp = dec.TimestampMillis() // as handleReport writes it
		enc := wavefront.AppendPoint(nil, &p)
		key, v, ms, ok := splitCanonicalPoint(nil, bytes.TrimSuffix(enc, []byte("\n")))
		if !ok || !sameFloat(v, p.Value) || ms != p.Timestamp {
			t.Fatalf("%q: got %v %d %t; want %v %d", enc, v, ms, ok, p.Value, p.Timestamp)
		}
		p.Value, p.Timestamp = 42, 1700000000000
		enc2 := wavefront.AppendPoint(nil, &p)
		if key2, _, _, _ := splitCanonicalPoint(nil, bytes.TrimSuffix(enc2, []byte("\n"))); !bytes.Equal(key, key2) {
			t.Fatalf("series text depends on value or time: %q vs %q", key, key2)
		}
	})
}
