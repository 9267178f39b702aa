package wavefront

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unsafe"
)

// parseJavaDouble parses b with java.lang.Double.parseDouble's grammar,
// which is what the reference proxy accepts: optional sign; decimal digits
// with an optional '.' and exponent; or a hex float that must have a 'p'
// exponent; an optional trailing d/D/f/F; or the exact words NaN and
// Infinity. Leading and trailing bytes ≤ ' ' are ignored, as Java trims.
// Go's ParseFloat is stricter in some places (suffixes) and looser in others
// (underscores, "inf"), so the syntax is checked here and ParseFloat only
// does the conversion.
func parseJavaDouble(b []byte) (float64, bool) {
	for len(b) > 0 && b[0] <= ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] <= ' ' {
		b = b[:len(b)-1]
	}
	neg := false
	s := b
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	switch string(s) {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if len(s) > 0 {
		switch s[len(s)-1] {
		case 'd', 'D', 'f', 'F':
			s = s[:len(s)-1]
			b = b[:len(b)-1]
		}
	}
	var ok bool
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		ok = validHexFloat(s[2:])
	} else {
		ok = validDecimal(s)
	}
	if !ok {
		return 0, false
	}
	// The syntax is already validated, so ParseFloat can only fail with
	// ErrRange, whose value (±Inf or 0) is what Java returns as well.
	v, _ := strconv.ParseFloat(unsafeString(b), 64)
	return v, true
}

// validDecimal: digits [. digits] [e|E [sign] digits], at least one mantissa digit.
func validDecimal(s []byte) bool {
	i, n := 0, 0
	for i < len(s) && isDigit(s[i]) {
		i++
		n++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			n++
		}
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		return validExponent(s[i+1:])
	}
	return i == len(s)
}

// validHexFloat: hexdigits [. hexdigits] p|P [sign] digits, at least one
// mantissa digit; the binary exponent is mandatory in Java.
func validHexFloat(s []byte) bool {
	i, n := 0, 0
	for i < len(s) && isHex(s[i]) {
		i++
		n++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isHex(s[i]) {
			i++
			n++
		}
	}
	if n == 0 || i == len(s) || (s[i] != 'p' && s[i] != 'P') {
		return false
	}
	return validExponent(s[i+1:])
}

func validExponent(s []byte) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseLenientNonFinite accepts the spellings the reference collector and
// Prometheus emit but Java rejects (proxy.md §10 item 6): an optional sign
// followed by inf, infinity or nan in any case.
func parseLenientNonFinite(b []byte) (float64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	switch {
	case equalFold(b, "nan"):
		return math.NaN(), true
	case equalFold(b, "inf"), equalFold(b, "infinity"):
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	return 0, false
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// parseJavaInt parses like Integer.parseInt / Long.parseLong: optional sign,
// decimal digits only, range-checked to bits.
func parseJavaInt(b []byte, bits int) (int64, bool) {
	s := b
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(unsafeString(b), 10, bits)
	return v, err == nil
}

// timestampMillis normalises a timestamp token to Unix milliseconds by
// magnitude (§2.1), with Java's double arithmetic and saturating
// double→long truncation so edge cases match the reference.
func timestampMillis(ts float64) int64 {
	switch t := javaLong(ts); {
	case t < 1e12:
		return javaLong(ts * 1000)
	case t < 1e13:
		return t
	case t < 1e16:
		return javaLong(ts / 1e3)
	default:
		return javaLong(ts / 1e6)
	}
}

// javaLong converts like a Java (long) cast: NaN → 0, saturating at the
// int64 range, truncating toward zero.
func javaLong(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// unsafeString views b as a string without copying. Only used for calls to
// strconv parsers, which do not retain their argument (error values clone it).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
