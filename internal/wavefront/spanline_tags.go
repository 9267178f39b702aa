package wavefront

import (
	"math/bits"
	"slices"
	"strconv"
)

// SpanTag is one annotation for SpanLine.Tags. KeyText is AppendSpanKey's
// text for a key of name bytes only ([,-./0-9A-Za-z_], as a sanitiser's
// output is), so that a producer that sees the same keys on every span
// checks and quotes each once. Plain says that Value is known to be ASCII
// without '"', '\\' or '\n' (its JSON decoder found none), so it is copied
// without being checked again; its length and ends still are.
type SpanTag struct {
	KeyText, Value []byte
	Plain          bool
}

// Tags appends the annotations with a non-empty Value as Tag would, in
// order, and reports false if any is outside AppendCanonicalSpan's subset;
// the line must then be discarded. An empty Value leaves its entry out, so
// a producer that drops blank annotations can keep one list per key
// sequence and set only the values. The line grows once and the limits are
// read once, which is most of what one call per annotation cost.
func (l *SpanLine) Tags(tags []SpanTag) bool {
	size := 0
	for i := range tags {
		size += len(tags[i].KeyText) + len(tags[i].Value) + len(`""`)
	}
	lim := l.lim
	maxKeyText, maxValue := lim.MaxSpanKeyLength+len(` ""=`), lim.MaxSpanValueLength
	p := len(l.dst)
	buf := slices.Grow(l.dst, size)
	buf = buf[:cap(buf)]
	n := 0
	for i := range tags {
		t := &tags[i]
		k, v := t.KeyText, t.Value
		m := len(v)
		if m == 0 {
			continue
		}
		// Values come trimmed, so a first and last byte above ' ' is the
		// common case, decided by one comparison each.
		if len(k) <= len(` ""=`) || len(k) > maxKeyText || m > maxValue ||
			v[0] <= ' ' && isSpace(v[0]) || v[m-1] <= ' ' && isSpace(v[m-1]) {
			return false
		}
		n++
		out := buf[p : p+len(k)+1+m+1]
		copy(out, k)
		out[len(k)] = '"'
		if t.Plain {
			copy(out[len(k)+1:], v)
		} else if !copyPlain(out[len(k)+1:], v) {
			return false
		}
		out[len(out)-1] = '"'
		p += len(out)
	}
	if l.tags += n; l.tags > lim.MaxSpanAnnotations {
		return false
	}
	l.dst = buf[:p]
	return true
}

// AppendInt is strconv.AppendInt(dst, v, 10), cheaper for what span lines
// and span logs carry (millisecond and microsecond timestamps, durations):
// below 10¹⁶ it writes two digits per table lookup from two 8-digit halves
// instead of dividing the whole number by 100 for each pair.
func AppendInt(dst []byte, v int64) []byte {
	if v < 0 || v >= 1e16 {
		return strconv.AppendInt(dst, v, 10)
	}
	u := uint64(v)
	var b [16]byte
	put8Digits(b[8:], uint32(u%1e8))
	if u >= 1e8 {
		put8Digits(b[:8], uint32(u/1e8))
	}
	return append(dst, b[16-decimalLen(u):]...)
}

// put8Digits writes x < 10⁸ as eight digits, zero-padded.
func put8Digits(b []byte, x uint32) {
	b = b[:8]
	hi, lo := x/10000, x%10000
	a, c := 2*(hi/100), 2*(hi%100)
	b[0], b[1], b[2], b[3] = digitPairs[a], digitPairs[a+1], digitPairs[c], digitPairs[c+1]
	a, c = 2*(lo/100), 2*(lo%100)
	b[4], b[5], b[6], b[7] = digitPairs[a], digitPairs[a+1], digitPairs[c], digitPairs[c+1]
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// decimalLen is the number of decimal digits of u (1 for 0), from its bit
// length: log10(2) ≈ 1233/4096.
func decimalLen(u uint64) int {
	n := bits.Len64(u) * 1233 >> 12
	if u >= pow10[n] {
		n++
	}
	return max(n, 1)
}

var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}
