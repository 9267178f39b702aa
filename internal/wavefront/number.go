package wavefront

import (
	"math"
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
