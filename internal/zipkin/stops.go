package zipkin

import "math/bits"

// The lexer's structural index: one bit per byte of the document, set
// where a plain string's fast path must stop ('"', '\\', '\n' or a
// non-ASCII byte, the bytes the plain table refuses). Built in one pass
// over the body, 64 bytes at a time (SSE2 on amd64), it turns finding a
// string's end into a bit search instead of a scan of every string.

// buildStops returns the index of b in dst's storage: a word for every
// 64 bytes and one for the rest, even when that is empty, so that every
// position up to len(b) has a word, and past its end a zero word, so
// that the index can be read eight bytes at a time from the byte that
// holds any position's bit (readKnownTagsAMD64 does).
func buildStops(dst []uint64, b []byte) []uint64 {
	n := len(b)/64 + 1
	if cap(dst) < n+1 {
		dst = make([]uint64, n+1, n+1+n/4)
	}
	dst = dst[:n+1]
	dst[n] = 0
	dst = dst[:n]
	whole := len(b) &^ 63
	markStops(dst, b[:whole])
	dst[n-1] = stopWord(b[whole:])
	return dst
}

// stopWord is the index word of up to 64 bytes, byte by byte: the
// definition markStops must agree with.
func stopWord(b []byte) uint64 {
	var w uint64
	for j, c := range b {
		if !plain[c] {
			w |= 1 << j
		}
	}
	return w
}

// markStopsGeneric is markStops without assembly.
func markStopsGeneric(dst []uint64, b []byte) {
	for k := range len(b) / 64 {
		dst[k] = stopWord(b[k*64 : k*64+64])
	}
}

// nextStop returns the index of the first byte at or after i (at most
// len(l.b)) that the index marks, or len(l.b) if there is none. Most strings end in the word
// they start in; the rest take nextStopAfter.
func (l *lexer) nextStop(i int) int {
	if x := l.stops[i>>6] >> (i & 63); x != 0 {
		return i + bits.TrailingZeros64(x)
	}
	return l.nextStopAfter(i)
}

// nextStopAfter is nextStop past the word holding i.
func (l *lexer) nextStopAfter(i int) int {
	for w := i>>6 + 1; w < len(l.stops); w++ {
		if x := l.stops[w]; x != 0 {
			return w<<6 + bits.TrailingZeros64(x)
		}
	}
	return len(l.b)
}
