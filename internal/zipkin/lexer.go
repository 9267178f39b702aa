package zipkin

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// lexer is a pull tokenizer over one JSON document. Strings without escapes,
// non-ASCII bytes or raw newlines are returned as sub-slices of the input
// (and so are plain span values, see Tag); the others are rebuilt in the
// Decoder's arena. Invalid UTF-8 and lone surrogates
// become U+FFFD, as the reference's UTF-8 reader and encoding/json do.
type lexer struct {
	b     []byte
	i     int
	d     *Decoder
	depth int
	stops []uint64 // b's structural index (see buildStops)
}

// newLexer returns a lexer over b whose index lives in d's buffer.
func newLexer(b []byte, d *Decoder) lexer {
	d.stops = buildStops(d.stops, b)
	return lexer{b: b, d: d, stops: d.stops}
}

// load64, load32, load16 and load8 read the little-endian word at p+i,
// which the caller has checked is in its slice (0 ≤ i and i+size ≤ its
// length): one instruction each on amd64, where slicing and bounds checks
// cost more than the load. The hot loops use them after one explicit
// check for several loads.
func load64(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

func load32(p unsafe.Pointer, i int) uint32 {
	return binary.LittleEndian.Uint32((*[4]byte)(unsafe.Add(p, i))[:])
}

func load16(p unsafe.Pointer, i int) uint16 {
	return binary.LittleEndian.Uint16((*[2]byte)(unsafe.Add(p, i))[:])
}

func load8(p unsafe.Pointer, i int) byte { return *(*byte)(unsafe.Add(p, i)) }

// bodySlice is b[lo:hi] of the slice b of length n at p, with the
// capacity to b's end, for 0 ≤ lo ≤ hi ≤ n, which the caller has checked:
// the slice header is written without checking them again (unsafe.Slice
// and a reslice check them twice more: +440 instructions per Envoy span).
func bodySlice(p unsafe.Pointer, n, lo, hi int) (s []byte) {
	*(*sliceHeader)(unsafe.Pointer(&s)) = sliceHeader{unsafe.Add(p, lo), hi - lo, n - lo}
	return s
}

// sliceHeader is the layout of a []byte.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// maxDepth bounds nesting inside skipped values so hostile input cannot
// exhaust the stack.
const maxDepth = 1000

type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "malformed JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

func (l *lexer) errorf(msg string) error { return &syntaxError{l.i, msg} }

func (l *lexer) expected(what string) error {
	if l.i >= len(l.b) {
		return l.errorf("unexpected end of input, expected " + what)
	}
	return l.errorf("expected " + what + ", found " + strconv.QuoteRune(rune(l.b[l.i])))
}

func (l *lexer) ws() { l.i = skipWS(l.b, l.i) }

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace. It works on a local index, which the compiler keeps in
// a register, rather than on l.i.
func skipWS(b []byte, i int) int {
	// One comparison for the usual case, a token right here.
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (l *lexer) peek() byte {
	l.ws()
	if l.i < len(l.b) {
		return l.b[l.i]
	}
	return 0
}

func (l *lexer) expect(c byte) error {
	if l.take(c) { // no whitespace first
		return nil
	}
	return l.expectSlow(c)
}

// take consumes c if it is right at l.i. Unlike expect, which is just
// over the inlining budget, it inlines, so the hot callers write
// "if !l.take(c)" before expectSlow and pay no call for the usual case.
func (l *lexer) take(c byte) bool {
	if i := l.i; i < len(l.b) && l.b[i] == c {
		l.i = i + 1
		return true
	}
	return false
}

func (l *lexer) expectSlow(c byte) error {
	if l.peek() != c {
		return l.expected(strconv.QuoteRune(rune(c)))
	}
	l.i++
	return nil
}

// end checks that only whitespace follows the document.
func (l *lexer) end() error {
	if l.peek() != 0 || l.i < len(l.b) {
		return l.errorf("unexpected data after the span list")
	}
	return nil
}

// objectNext advances to the next member of an object whose '{' has been
// consumed and returns its key, positioned at the value; ok is false after
// the closing '}'. A plain key after the usual "," or ", " (or first,
// after whitespace), right before its ':', and a '}' right at l.i are read
// here, through the index and word loads after explicit checks; anything
// else and every error are left to objectNextSlow.
func (l *lexer) objectNext(first bool) (key []byte, ok bool, err error) {
	b, i := l.b, l.i
	n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
	j := i
	if first {
		j = skipWS(b, i)
	} else if i+2 <= n {
		switch load16(p, i) {
		case ',' | ' '<<8:
			j = i + 2
		case ',' | '"'<<8:
			j = i + 1
		}
	}
	if i < n && load8(p, i) == '}' { // the object's end, after a value or '{'
		l.i = i + 1
		return nil, false, nil
	}
	if j != i || first {
		if j < n && load8(p, j) == '"' {
			if k := l.nextStop(j + 1); k+2 <= n && load16(p, k) == '"'|':'<<8 {
				v := k + 2
				if v < n && load8(p, v) <= ' ' {
					v = skipWS(b, v)
				}
				l.i = v
				return bodySlice(p, n, j+1, k), true, nil
			}
		}
	}
	return l.objectNextSlow(first)
}

// objectNextSlow is objectNext for any input.
func (l *lexer) objectNextSlow(first bool) (key []byte, ok bool, err error) {
	b := l.b
	i := skipWS(b, l.i)
	if i < len(b) && b[i] == '}' {
		l.i = i + 1
		return nil, false, nil
	}
	if !first {
		if i >= len(b) || b[i] != ',' {
			l.i = i
			return nil, false, l.expected("',' or '}'")
		}
		i = skipWS(b, i+1)
	}
	plain := false
	if i < len(b) && b[i] == '"' { // plainString without its call
		if k := l.nextStop(i + 1); k < len(b) && b[k] == '"' {
			key, i, plain = b[i+1:k], k+1, true
		}
	}
	if !plain {
		l.i = i
		if key, err = l.str(); err != nil {
			return nil, false, err
		}
		i = l.i
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		l.i = i
		return nil, false, l.expected("':'")
	}
	l.i = skipWS(b, i+1)
	return key, true, nil
}

// arrayNext is objectNext for arrays: ok reports whether an element
// follows. The usual cases, a ']' or, first, an element right at l.i, or
// else ", " before an element, are read here.
func (l *lexer) arrayNext(first bool) (ok bool, err error) {
	b, i := l.b, l.i
	if i+2 < len(b) {
		switch c := b[i]; {
		case c == ']':
			l.i = i + 1
			return false, nil
		case first:
			if c > ' ' {
				return true, nil
			}
		case c == ',' && b[i+1] == ' ' && b[i+2] > ' ':
			l.i = i + 2
			return true, nil
		}
	}
	return l.arrayNextSlow(first)
}

// arrayNextSlow is arrayNext for any input.
func (l *lexer) arrayNextSlow(first bool) (ok bool, err error) {
	b := l.b
	i := skipWS(b, l.i)
	if i < len(b) && b[i] == ']' {
		l.i = i + 1
		return false, nil
	}
	if !first {
		if i >= len(b) || b[i] != ',' {
			l.i = i
			return false, l.expected("',' or ']'")
		}
		i = skipWS(b, i+1)
	}
	l.i = i
	return true, nil
}

// isNull consumes a null literal if one is next. A value right at l.i
// that does not start with 'n' is told apart without a call.
func (l *lexer) isNull() bool {
	return !l.nonNullAt() && l.isNullSlow()
}

// nonNullAt reports whether a value other than null starts right at l.i;
// callers that read many values check it themselves before isNullSlow, as
// isNull, with its call, is too large to inline.
func (l *lexer) nonNullAt() bool {
	b, i := l.b, l.i
	return i < len(b) && notNull[b[i]]
}

// notNull marks the bytes that start a value other than null: neither
// 'n' nor whitespace (one load instead of two comparisons).
var notNull = func() (t [256]bool) {
	for c := range t {
		t[c] = c > ' ' && c != 'n'
	}
	return t
}()

func (l *lexer) isNullSlow() bool {
	if l.peek() == 'n' && l.literal("null") {
		return true
	}
	return false
}

func (l *lexer) literal(lit string) bool {
	if len(l.b)-l.i >= len(lit) && string(l.b[l.i:l.i+len(lit)]) == lit {
		l.i += len(lit)
		return true
	}
	return false
}

func (l *lexer) boolean() (bool, error) {
	switch l.peek() {
	case 't':
		if l.literal("true") {
			return true, nil
		}
	case 'f':
		if l.literal("false") {
			return false, nil
		}
	}
	return false, l.expected("true or false")
}

// plain marks the bytes a string's fast path copies as they are.
var plain = func() (t [256]bool) {
	for c := range utf8.RuneSelf {
		t[c] = c != '"' && c != '\\' && c != '\n'
	}
	return t
}()

// str reads a JSON string.
func (l *lexer) str() ([]byte, error) {
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		return nil, l.expected("a string")
	}
	if s, next := l.plainString(l.i); next > 0 {
		l.i = next
		return s, nil
	}
	l.i++
	return l.strSlow(l.i)
}

// plainString is the fast path of str: the string at l.b[i:] and the
// index after it, or 0 when there is none or it has escapes, non-ASCII
// bytes or raw newlines (which JSON does not allow but the reference
// accepts). Its end is the first byte the index marks after the opening
// quote, so the string's bytes are not read.
func (l *lexer) plainString(i int) ([]byte, int) {
	b := l.b
	if i < len(b) && b[i] == '"' {
		if j := l.nextStop(i + 1); j < len(b) && b[j] == '"' {
			return b[i+1 : j], j + 1
		}
	}
	return nil, 0
}

// strSlow reads the rest of a string that has escapes or non-ASCII bytes,
// from start, just after its opening quote.
func (l *lexer) strSlow(start int) ([]byte, error) {
	b := l.b
	out := l.d.scratch[:0]
	defer func() { l.d.scratch = out[:0] }()
	for l.i < len(b) {
		c := b[l.i]
		switch {
		case c == '"':
			l.i++
			s := l.d.alloc(len(out))
			copy(s, out)
			return s, nil
		case c == '\\':
			if l.i+1 >= len(b) {
				l.i = len(b)
				return nil, l.expected("an escape")
			}
			l.i += 2
			switch e := b[l.i-1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := l.hex4()
				if !ok {
					return nil, l.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if save := l.i; len(b)-l.i >= 2 && b[l.i] == '\\' && b[l.i+1] == 'u' {
						l.i += 2
						var ok2 bool
						if r2, ok2 = l.hex4(); !ok2 {
							return nil, l.errorf("invalid \\u escape")
						}
						l.i = save
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						l.i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				l.i--
				return nil, l.errorf("invalid escape \\" + string(rune(e)))
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			l.i++
		default:
			r, n := utf8.DecodeRune(b[l.i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			l.i += n
		}
	}
	return nil, l.expected("'\"'")
}

func (l *lexer) hex4() (rune, bool) {
	if len(l.b)-l.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range l.b[l.i : l.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	l.i += 4
	return r, true
}

// num reads a JSON number and returns its text; integer reports whether it
// has neither fraction nor exponent.
func (l *lexer) num() (text []byte, integer bool, err error) {
	b, start := l.b, l.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		l.i = i
		return nil, false, l.expected("a number")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			l.i = i
			return nil, false, l.expected("a digit")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			l.i = i
			return nil, false, l.expected("a digit")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	l.i = i
	return b[start:i], integer, nil
}

// stringOrNumber reads a value the way the reference's nextString does: a
// string, or a number as its literal text. A plain string right at l.i is
// read here, its end found through the index.
func (l *lexer) stringOrNumber() ([]byte, error) {
	b, i := l.b, l.i
	n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
	if i < n && load8(p, i) == '"' {
		if j := l.nextStop(i + 1); j < n && load8(p, j) == '"' {
			l.i = j + 1
			return bodySlice(p, n, i+1, j), nil
		}
	}
	return l.stringOrNumberSlow()
}

func (l *lexer) stringOrNumberSlow() ([]byte, error) {
	switch c := l.peek(); {
	case c == '"':
		if s, next := l.plainString(l.i); next > 0 {
			l.i = next // str's fast path without its call
			return s, nil
		}
		return l.str()
	case c == '-' || '0' <= c && c <= '9':
		t, _, err := l.num()
		return t, err
	}
	return nil, l.expected("a string or number")
}

// int64 reads an integer the way the reference's nextLong does: a number
// or a quoted number, whose value must be integral and fit in 64 bits.
func (l *lexer) int64() (int64, error) {
	// The usual case, a bare non-negative integer of up to 18 digits (µs
	// timestamps have 16), is read in one pass; anything else, including
	// a leading zero or a digit after the 18th, takes num and parseInt.
	// (digitsAt without its call: TestDigitsAt checks they agree.)
	b := l.b
	i := skipWS(b, l.i)
	n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
	// A µs timestamp: 16 digits, checked and summed eight at a time.
	if i+16 < n && load8(p, i) != '0' && !numberByte[load8(p, i+16)] {
		hi, lo := load64(p, i), load64(p, i+8)
		if allDigits(hi) && allDigits(lo) {
			l.i = i + 16
			return int64(eightDigits(hi)*100000000 + eightDigits(lo)), nil
		}
	}
	// Anything shorter (durations, ports) digit by digit, up to the 18th.
	var v int64
	j := i
	for ; j < n && j-i < 18 && load8(p, j)-'0' <= 9; j++ {
		v = v*10 + int64(load8(p, j)-'0')
	}
	if j > i && (load8(p, i) != '0' || j == i+1) && (j == n || !numberByte[load8(p, j)]) {
		l.i = j
		return v, nil
	}
	return l.int64General()
}

// digitsAt is int64's usual case, read from i of the n bytes at p: the
// value of the bare non-negative integer of up to 18 digits there and
// the index after it, or false for anything else.
func digitsAt(p unsafe.Pointer, n, i int) (v int64, end int, ok bool) {
	// A µs timestamp: 16 digits, checked and summed eight at a time.
	if i+16 < n && load8(p, i) != '0' && !numberByte[load8(p, i+16)] {
		hi, lo := load64(p, i), load64(p, i+8)
		if allDigits(hi) && allDigits(lo) {
			return int64(eightDigits(hi)*100000000 + eightDigits(lo)), i + 16, true
		}
	}
	// Anything shorter (durations, ports) digit by digit, up to the 18th.
	j := i
	for ; j < n && j-i < 18 && load8(p, j)-'0' <= 9; j++ {
		v = v*10 + int64(load8(p, j)-'0')
	}
	if j > i && (load8(p, i) != '0' || j == i+1) && (j == n || !numberByte[load8(p, j)]) {
		return v, j, true
	}
	return 0, 0, false
}

// allDigits reports whether all eight bytes of x are ASCII digits: their
// high nibbles are all 3, and so they stay after adding 6 to each byte.
func allDigits(x uint64) bool {
	return x&0xf0f0f0f0f0f0f0f0 == 0x3030303030303030 && (x+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 == 0x3030303030303030
}

// eightDigits is the value of the eight ASCII digits of x, the first in
// the low byte, summed in pairs, fours and eights.
func eightDigits(x uint64) uint64 {
	x -= lowBits * '0'
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	return (x*10000 + x>>32) & 0xffffffff
}

// int64General is int64 for any number or quoted number.
func (l *lexer) int64General() (int64, error) {
	start := l.i
	var t []byte
	var integer bool
	var err error
	if l.peek() == '"' {
		t, err = l.str()
		integer = true
	} else {
		t, integer, err = l.num()
	}
	if err != nil {
		return 0, err
	}
	if v, ok := parseInt(t); ok && integer {
		return v, nil
	}
	if f, perr := strconv.ParseFloat(string(t), 64); perr == nil && f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), nil
	}
	l.i = start
	return 0, l.errorf("expected a 64-bit integer, found " + strconv.Quote(string(t)))
}

// numberByte marks the bytes that can continue a JSON number.
var numberByte = func() (t [256]bool) {
	for c := range t {
		t[c] = '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'
	}
	return t
}()

// parseInt parses an optionally negative decimal integer without overflow.
func parseInt(t []byte) (int64, bool) {
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 || len(t) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v-1) - 1, true
	case !neg && v < 1<<63:
		return int64(v), true
	}
	return 0, false
}

// skip skips one value of any type, checking its syntax.
func (l *lexer) skip() error {
	switch c := l.peek(); c {
	case '"':
		return l.skipStr()
	case '{', '[':
		if l.depth++; l.depth > maxDepth {
			return l.errorf("nesting too deep")
		}
		defer func() { l.depth-- }()
		l.i++
		if c == '{' {
			for first := true; ; first = false {
				_, ok, err := l.objectNext(first)
				if err != nil || !ok {
					return err
				}
				if err := l.skip(); err != nil {
					return err
				}
			}
		}
		for first := true; ; first = false {
			ok, err := l.arrayNext(first)
			if err != nil || !ok {
				return err
			}
			if err := l.skip(); err != nil {
				return err
			}
		}
	case 't':
		if l.literal("true") {
			return nil
		}
	case 'f':
		if l.literal("false") {
			return nil
		}
	case 'n':
		if l.literal("null") {
			return nil
		}
	default:
		_, _, err := l.num()
		return err
	}
	return l.expected("a value")
}

// skipStr checks a string's escapes without building it.
func (l *lexer) skipStr() error {
	b := l.b
	for l.i++; l.i < len(b); l.i++ {
		switch b[l.i] {
		case '"':
			l.i++
			return nil
		case '\\':
			if l.i+1 >= len(b) {
				return l.expected("an escape")
			}
			l.i++
			switch b[l.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				l.i++
				if _, ok := l.hex4(); !ok {
					return l.errorf("invalid \\u escape")
				}
				l.i--
			default:
				return l.errorf("invalid escape")
			}
		}
	}
	return l.expected("'\"'")
}

// parseIP parses a textual address like the reference's Endpoint.parseIp:
// the result is invalid (and ignored by the caller) for anything else.
// Dotted quads, which is what Envoy sends, are parsed here without
// allocating, part by part; anything else that is not one (more digits, a
// leading zero, a fifth part) takes netip.ParseAddr.
func parseIP(b []byte) netip.Addr {
	var q [4]byte
	i := 0
	for part := range 4 {
		if i >= len(b) || b[i]-'0' > 9 {
			return parseIPSlow(b)
		}
		v := int(b[i] - '0')
		i++
		if v != 0 { // a part with a leading zero is "0"
			for n := 1; n < 3 && i < len(b) && b[i]-'0' <= 9; n++ {
				v = v*10 + int(b[i]-'0')
				i++
			}
		}
		if v > 255 {
			return parseIPSlow(b)
		}
		q[part] = byte(v)
		if part < 3 {
			if i >= len(b) || b[i] != '.' {
				return parseIPSlow(b)
			}
			i++
		}
	}
	if i != len(b) {
		return parseIPSlow(b)
	}
	return netip.AddrFrom4(q)
}

func parseIPSlow(b []byte) netip.Addr {
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}
	}
	return a
}
