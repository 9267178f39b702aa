package wavefront

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"unsafe"
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
// sequence and set only the values.
//
// The line grows once to what all entries need, the limits are read once,
// and keys and values are copied by word loads and stores through unsafe
// pointers instead of by calls to memmove, which would make the loop spill
// and reload its state twice per annotation: a KeyText up to
// SpanTagSpare bytes long with that much spare capacity as four words (give
// key texts that), a Value of 8 bytes or more as words the last of which
// overlaps the one before.
func (l *SpanLine) Tags(tags []SpanTag) bool {
	size, n := SpanTagSpare, 0
	for i := range tags {
		if len(tags[i].Value) > 0 {
			size += len(tags[i].KeyText) + len(tags[i].Value) + len(`""`)
			n++
		}
	}
	lim := l.lim
	if l.tags += n; l.tags > lim.MaxSpanAnnotations {
		return false
	}
	maxKey, maxValue := uint(lim.MaxSpanKeyLength), uint(lim.MaxSpanValueLength)
	at := len(l.dst)
	buf := slices.Grow(l.dst, size)[:at+size]
	// Stores stay below at+size: each entry's end plus SpanTagSpare.
	base := unsafe.Pointer(unsafe.SliceData(buf))
	p := at
	for i := range tags {
		t := &tags[i]
		v := t.Value
		m := len(v)
		if m == 0 {
			continue
		}
		k := t.KeyText
		// Values come trimmed, so a first and last byte above ' ' is the
		// common case, decided by one comparison each.
		if uint(len(k)-len(` ""=`)-1) >= maxKey || uint(m) > maxValue ||
			v[0] <= ' ' && isSpace(v[0]) || v[m-1] <= ' ' && isSpace(v[m-1]) {
			return false
		}
		if len(k) <= SpanTagSpare && cap(k) >= SpanTagSpare {
			kp := unsafe.Pointer(unsafe.SliceData(k))
			putWordAt(base, p, wordAt(kp, 0))
			putWordAt(base, p+8, wordAt(kp, 8))
			putWordAt(base, p+16, wordAt(kp, 16))
			putWordAt(base, p+24, wordAt(kp, 24))
		} else {
			copy(buf[p:], k)
		}
		p += len(k)
		*(*byte)(unsafe.Add(base, p)) = '"'
		p++
		switch {
		case !t.Plain:
			if !copyPlain(buf[p:], v) {
				return false
			}
		case m >= 8:
			vp := unsafe.Pointer(unsafe.SliceData(v))
			for j := 0; j < m-8; j += 8 {
				putWordAt(base, p+j, wordAt(vp, j))
			}
			putWordAt(base, p+m-8, wordAt(vp, m-8))
		case m >= 4:
			le := binary.LittleEndian
			out := buf[p : p+m]
			le.PutUint32(out, le.Uint32(v))
			le.PutUint32(out[m-4:], le.Uint32(v[m-4:]))
		default:
			buf[p], buf[p+m/2], buf[p+m-1] = v[0], v[m/2], v[m-1]
		}
		p += m
		*(*byte)(unsafe.Add(base, p)) = '"'
		p++
	}
	l.dst = buf[:p]
	return true
}

// SpanTagSpare is the longest KeyText that SpanLine.Tags copies as whole
// words, and the capacity from its start that it needs for that.
const SpanTagSpare = 32

// AppendInt is strconv.AppendInt(dst, v, 10), cheaper for what span lines
// and span logs carry (millisecond and microsecond timestamps, durations):
// below 10¹⁶ it converts each half of eight digits in one word (digits8)
// and stores the digits as two words, shifted past the leading zeros,
// instead of dividing by 100 for each pair of digits.
func AppendInt(dst []byte, v int64) []byte {
	if uint64(v) < 10 { // a short span's duration in milliseconds
		return append(dst, byte('0'+v))
	}
	if v < 0 || v >= 1e16 {
		return strconv.AppendInt(dst, v, 10)
	}
	u := uint64(v)
	n := decimalLen(u)
	at := len(dst)
	dst = slices.Grow(dst, 16)
	out := dst[at : at+16]
	le := binary.LittleEndian
	lo := digits8(uint32(u % 1e8))
	if n <= 8 {
		le.PutUint64(out[0:], lo>>(8*(8-n)))
	} else {
		le.PutUint64(out[0:], digits8(uint32(u/1e8))>>(8*(16-n)))
		le.PutUint64(out[n-8:], lo)
	}
	return dst[:at+n]
}

// digits8 returns x < 10⁸ as eight ASCII digits, the first in the lowest
// byte: the two halves of four digits, then the four pairs, then the eight
// digits are split side by side in lanes of one word, dividing by
// multiplying with a reciprocal that is exact for these ranges
// (⌊n·10486/2²⁰⌋ = ⌊n/100⌋ for n < 10⁴, ⌊n·103/2¹⁰⌋ = ⌊n/10⌋ for n < 100).
func digits8(x uint32) uint64 {
	merged := uint64(x/10000) | uint64(x%10000)<<32
	top := (merged * 10486 >> 20) & (0x7f | 0x7f<<32)
	pairs := (merged-100*top)<<16 | top
	tens := (pairs * 103 >> 10) & (0xf | 0xf<<16 | 0xf<<32 | 0xf<<48)
	return (tens | (pairs-10*tens)<<8) + 0x3030303030303030
}

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
