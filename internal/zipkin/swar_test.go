package zipkin

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// byteBetween must mark exactly the bytes in range, whatever its
// neighbours hold.
func TestByteBetween(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	ranges := [][2]byte{{'0' - 1, '9' + 1}, {'a' - 1, 'f' + 1}, {'A' - 1, 'Z' + 1}, {0, 128}, {127, 128}}
	for range 20000 {
		var w [8]byte
		for i := range w {
			w[i] = byte(r.Uint32())
			if r.IntN(2) == 0 {
				w[i] = "09afAZ@[`g/:\x00\x7f\x80\xff"[r.IntN(16)]
			}
		}
		x := binary.LittleEndian.Uint64(w[:])
		for _, rg := range ranges {
			got := byteBetween(x, rg[0], rg[1])
			for i, c := range w {
				want := rg[0] < c && c < rg[1]
				if (got>>(8*i+7))&1 == 1 != want {
					t.Fatalf("byteBetween(% x, %d, %d): byte %d (%#x) marked=%v", w, rg[0], rg[1], i, c, !want)
				}
			}
		}
	}
}

// lower and lowerHexZeros against byte-at-a-time definitions, at every
// length around the word size.
func TestLowerAndHexWords(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	alphabet := []byte("0123456789abcdefABCDEFxyzXYZ@[`{-_ \xc3\xa9\xff")
	var d Decoder
	for range 20000 {
		b := make([]byte, r.IntN(40))
		zeros := r.IntN(len(b) + 1)
		for i := range b {
			b[i] = '0'
			if i >= zeros {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		wantLower := bytes.ToLower(b)
		if len(b) == 0 {
			wantLower = nil
		}
		if got := d.lower(b); !bytes.Equal(got, wantLower) || (got == nil) != (wantLower == nil) {
			t.Fatalf("lower(%q) = %q, want %q", b, got, wantLower)
		}
		wantZeros := len(b) - len(bytes.TrimLeft(b, "0"))
		wantOK := len(bytes.Trim(b, "0123456789abcdef")) == 0
		if z, ok := lowerHexZeros(b); z != wantZeros || ok != wantOK {
			t.Fatalf("lowerHexZeros(%q) = %d, %v; want %d, %v", b, z, ok, wantZeros, wantOK)
		}
		d.reset()
	}
}

// plainString against the byte-at-a-time definition (the plain table):
// strings at every position of documents longer than one index word, so
// their ends fall in the assembly's 64-byte blocks, across block
// boundaries and in the tail word, with the bytes a string's fast path
// must stop at and the ones it must not (control characters, ' ', '!').
func TestPlainString(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte("ab#~ !\t\x01\x1f\"\\\n\x7f\x80\xc3\xa9")
	for range 3000 {
		b := make([]byte, 1+r.IntN(300))
		for i := range b {
			b[i] = 'a'
			if r.IntN(6) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		l := newLexer(b, &Decoder{})
		for i := range b {
			var want []byte
			wantNext := 0
			if b[i] == '"' {
				end := i + 1
				for end < len(b) && plain[b[end]] {
					end++
				}
				if end < len(b) && b[end] == '"' {
					want, wantNext = b[i+1:end], end+1
				}
			}
			if got, next := l.plainString(i); next != wantNext || !bytes.Equal(got, want) {
				t.Fatalf("plainString(%q, %d) = %q, %d; want %q, %d", b, i, got, next, want, wantNext)
			}
		}
	}
}

// int64's one-pass path against num and parseInt, which it short-cuts:
// the same value, error and position for number-like input.
func TestInt64FastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	alphabet := "0000123456789-+.eE ,}\""
	for range 100000 {
		b := make([]byte, 1+r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
			if r.IntN(3) > 0 {
				b[i] = '0' + byte(r.IntN(10))
			}
		}
		got := newLexer(b, &Decoder{})
		v, err := got.int64()
		want := newLexer(b, &Decoder{})
		wv, werr := want.int64General()
		if v != wv || (err == nil) != (werr == nil) || got.i != want.i {
			t.Fatalf("int64(%q) = %d, %v at %d; num and parseInt give %d, %v at %d", b, v, err, got.i, wv, werr, want.i)
		}
	}
}

// allDigits and eightDigits against the byte-wise definition, on words of
// digits mixed with the bytes around them and their high-bit twins.
func TestEightDigits(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	alphabet := []byte("0123456789/:.-e \xb0\xb9\x00\xff")
	for range 100000 {
		var w [8]byte
		for i := range w {
			w[i] = alphabet[r.IntN(len(alphabet))]
			if r.IntN(4) > 0 {
				w[i] = '0' + byte(r.IntN(10))
			}
		}
		want := true
		var wantV uint64
		for _, c := range w {
			want = want && '0' <= c && c <= '9'
			wantV = wantV*10 + uint64(c-'0')
		}
		x := binary.LittleEndian.Uint64(w[:])
		if got := allDigits(x); got != want {
			t.Fatalf("allDigits(%q) = %v", w, got)
		}
		if v := eightDigits(x); want && v != wantV {
			t.Fatalf("eightDigits(%q) = %d, want %d", w, v, wantV)
		}
	}
}

// objectNext's and arrayNext's fast paths against the general readers
// they short-cut (objectNextSlow and arrayNextSlow): the same key,
// result, error and position, on short random runs of separators,
// quotes, colons, whitespace and escapes, cut anywhere, so that every
// check before a word load is exercised at the body's end.
func TestMemberFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	pieces := []string{",", ", ", ",  ", ",\n", "\"", "k", "key", "\\\"", ":", " :", ": ", "}", " }", "]", " ", "\t", "{", "1", "\"v\""}
	for range 200000 {
		var sb strings.Builder
		for range 1 + r.IntN(8) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		b := []byte(sb.String())
		first := r.IntN(3) == 0
		got, want := newLexer(b, &Decoder{}), newLexer(b, &Decoder{})
		k, ok, err := got.objectNext(first)
		wk, wok, werr := want.objectNextSlow(first)
		if !bytes.Equal(k, wk) || ok != wok || (err == nil) != (werr == nil) || err == nil && got.i != want.i {
			t.Fatalf("objectNext(%q, %v) = %q, %v, %v at %d; objectNextSlow gives %q, %v, %v at %d", b, first, k, ok, err, got.i, wk, wok, werr, want.i)
		}
		got, want = newLexer(b, &Decoder{}), newLexer(b, &Decoder{})
		ok, err = got.arrayNext(first)
		wok, werr = want.arrayNextSlow(first)
		if ok != wok || (err == nil) != (werr == nil) || err == nil && got.i != want.i {
			t.Fatalf("arrayNext(%q, %v) = %v, %v at %d; want %v, %v at %d", b, first, ok, err, got.i, wok, werr, want.i)
		}
	}
}

// The byte tables against their definitions, for every byte.
func TestByteTables(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		if want := c-'0' <= 9 || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'; numberByte[c] != want {
			t.Errorf("numberByte[%q] = %v", c, numberByte[c])
		}
		if want := c > ' ' && c != 'n'; notNull[c] != want {
			t.Errorf("notNull[%q] = %v", c, notNull[c])
		}
	}
}

// digitsAt against its definition (a bare non-negative integer of up to
// 18 digits, without a leading zero unless it is 0, not followed by a
// byte that continues a number), and lexer.int64, which has its code
// inlined, against digitsAt wherever digitsAt reads a number: strings of
// digits around 16 and 18, cut anywhere, with what may follow a number.
func TestDigitsAt(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	pieces := []string{"0", "1", "9", "12345678", "1234567890123456", "00", ",", "}", ".", "e", "-", " ", "\"", "x"}
	for range 200000 {
		var sb strings.Builder
		for range 1 + r.IntN(5) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		b := []byte(sb.String())
		digits := 0
		for digits < len(b) && '0' <= b[digits] && b[digits] <= '9' {
			digits++
		}
		want := digits > 0 && digits <= 18 && (b[0] != '0' || digits == 1) && (digits == len(b) || !strings.ContainsRune("0123456789.eE+-", rune(b[digits])))
		var wantV int64
		if want {
			wantV, _ = strconv.ParseInt(string(b[:digits]), 10, 64)
		}
		v, end, ok := digitsAt(unsafe.Pointer(unsafe.SliceData(b)), len(b), 0)
		if ok != want || ok && (v != wantV || end != digits) {
			t.Fatalf("digitsAt(%q) = %d, %d, %v; want %d, %d, %v", b, v, end, ok, wantV, digits, want)
		}
		if !ok {
			continue
		}
		l := newLexer(b, &Decoder{})
		if got, err := l.int64(); err != nil || got != v || l.i != end {
			t.Fatalf("int64(%q) = %d, %v to %d; digitsAt: %d to %d", b, got, err, l.i, v, end)
		}
	}
}

// lowerHexZeros for the usual ID lengths (lowerHexZeros16or32, SSE2 on
// amd64) against lowerHexZerosGo and the definition: IDs of hex digits
// with 0 to all leading '0's, with every byte value at every position.
func TestLowerHexZeros16or32(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	const hex = "0123456789abcdef"
	for _, n := range []int{16, 32} {
		for zeros := range n + 1 {
			id := make([]byte, n)
			for i := range id {
				id[i] = '0'
				if i >= zeros {
					id[i] = hex[1+r.IntN(len(hex)-1)]
				}
			}
			for i := range n {
				for c := range 256 {
					v := slices.Clone(id)
					v[i] = byte(c)
					wantZeros := len(v) - len(bytes.TrimLeft(v, "0"))
					wantOK := len(bytes.Trim(v, hex)) == 0
					z, ok := lowerHexZeros16or32(v)
					gz, gok := lowerHexZerosGo(v)
					if z != wantZeros || ok != wantOK || gz != wantZeros || gok != wantOK {
						t.Fatalf("%q: lowerHexZeros16or32 %d, %v; lowerHexZerosGo %d, %v; want %d, %v", v, z, ok, gz, gok, wantZeros, wantOK)
					}
				}
			}
		}
	}
}
