package wavefront

import (
	"encoding/binary"
	"slices"
	"unsafe"
)

// SpanTag is one annotation for SpanLine.Tags. KeyText is AppendSpanKey's
// text for a key of name bytes only ([,-./0-9A-Za-z_], as a sanitiser's
// output is), so that a producer that sees the same keys on every span
// checks and quotes each once. Plain says that Value is known to be ASCII
// without '"', '\\' or '\n' (its JSON decoder found none) and to start and
// end with a byte other than a blank (it was trimmed), so it is copied
// without being checked again; its length still is.
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
// The keys are the caller's to vouch for, as it makes them once for many
// spans: every KeyText with a Value is of a key 1 to longestKey bytes long
// and has the capacity for its length rounded up to a multiple of
// SpanTagSpare, as Tags reads it in runs of that many bytes (a buffer of
// key texts with SpanTagSpare spare bytes at its end gives each text in
// it that), so Tags only checks longestKey against the limit.
//
// room must be at least the sum of len(KeyText)+len(Value)+1 over the
// entries with a Value (a producer knows it as it sets the values, so
// Tags need not add it up in a pass of its own); with less, Tags reports
// false. The line grows once by room, the limits are read once, and keys
// and values are copied by moves of up to 16 bytes through unsafe
// pointers instead of by calls to memmove, which would make the loop
// spill and reload its state twice per annotation: a KeyText of up to
// SpanTagSpare bytes as two moves of 16, a longer one 16 bytes at a time,
// a Value of 16 bytes or more in moves of 16 the last of which overlaps
// the one before, shorter ones as two overlapping halves. A Value that is
// not Plain is checked by a call (spanValueOK) before it is copied, so
// that the usual, plain annotations take a loop without calls, whose
// state stays in registers.
func (l *SpanLine) Tags(tags []SpanTag, room, longestKey int) bool {
	lim := l.lim
	maxValue := uint(lim.MaxSpanValueLength)
	at := len(l.dst)
	if room < 0 || room > maxSpanTagsRoom || longestKey > lim.MaxSpanKeyLength {
		return false
	}
	buf := slices.Grow(l.dst, room+SpanTagSpare)[:at+room+SpanTagSpare]
	// Every store is below p+SpanTagSpare for a p ≤ end, or within the
	// entry, which ends at or before end.
	base := unsafe.Pointer(unsafe.SliceData(buf))
	p, end, n := at, at+room, 0
	for i := range tags {
		t := &tags[i]
		m := len(t.Value)
		if m == 0 {
			continue
		}
		nk := len(t.KeyText)
		// p+nk+m < end: room for the key, the value and the quote.
		if uint(m) > maxValue || p+nk+m >= end || !t.Plain && !spanValueOK(t.Value) {
			return false
		}
		// The key's last move ends below p+nk+SpanTagSpare, at most
		// end+SpanTagSpare-1 (m ≥ 1): what is past the key, the value
		// and what follows overwrite.
		kp := unsafe.Pointer(unsafe.SliceData(t.KeyText))
		if nk <= SpanTagSpare {
			*(*[16]byte)(unsafe.Add(base, p)) = *(*[16]byte)(kp)
			*(*[16]byte)(unsafe.Add(base, p+16)) = *(*[16]byte)(unsafe.Add(kp, 16))
		} else {
			for j := 0; j < nk; j += 16 {
				*(*[16]byte)(unsafe.Add(base, p+j)) = *(*[16]byte)(unsafe.Add(kp, j))
			}
		}
		p += nk
		vp := unsafe.Pointer(unsafe.SliceData(t.Value))
		switch {
		case m >= 16:
			for j := 0; j < m-16; j += 16 {
				*(*[16]byte)(unsafe.Add(base, p+j)) = *(*[16]byte)(unsafe.Add(vp, j))
			}
			*(*[16]byte)(unsafe.Add(base, p+m-16)) = *(*[16]byte)(unsafe.Add(vp, m-16))
		case m >= 8:
			*(*[8]byte)(unsafe.Add(base, p)) = *(*[8]byte)(vp)
			*(*[8]byte)(unsafe.Add(base, p+m-8)) = *(*[8]byte)(unsafe.Add(vp, m-8))
		case m >= 4:
			*(*[4]byte)(unsafe.Add(base, p)) = *(*[4]byte)(vp)
			*(*[4]byte)(unsafe.Add(base, p+m-4)) = *(*[4]byte)(unsafe.Add(vp, m-4))
		default: // 1 to 3 bytes: the first, the middle and the last
			*(*byte)(unsafe.Add(base, p)) = *(*byte)(vp)
			*(*byte)(unsafe.Add(base, p+m/2)) = *(*byte)(unsafe.Add(vp, m/2))
			*(*byte)(unsafe.Add(base, p+m-1)) = *(*byte)(unsafe.Add(vp, m-1))
		}
		p += m
		*(*byte)(unsafe.Add(base, p)) = '"'
		p++
		n++
	}
	if l.tags += n; l.tags > lim.MaxSpanAnnotations {
		return false
	}
	l.dst = buf[:p]
	return true
}

// spanValueOK reports whether v, non-empty, is a value Tags copies as it
// is: ASCII without '"', '\\' or '\n', and without a blank at either end
// (values come trimmed, so a first and last byte above ' ' is the common
// case, decided by one comparison each). Words are read within v, the
// last overlapping the one before.
func spanValueOK(v []byte) bool {
	m := len(v)
	if c := v[0]; c <= ' ' && isSpace(c) {
		return false
	}
	if c := v[m-1]; c <= ' ' && isSpace(c) {
		return false
	}
	vp := unsafe.Pointer(unsafe.SliceData(v))
	switch {
	case m >= 8:
		for j := 0; j < m-8; j += 8 {
			if hasSpanSpecial(wordAt(vp, j)) {
				return false
			}
		}
		return !hasSpanSpecial(wordAt(vp, m-8))
	case m >= 4:
		le := binary.LittleEndian
		return !hasSpanSpecial(uint64(le.Uint32(v)) | uint64(le.Uint32(v[m-4:]))<<32)
	default:
		return !hasSpanSpecial(uint64(v[0]) | uint64(v[m/2])<<8 | uint64(v[m-1])<<16 | 0x202020<<24)
	}
}

// Limits returns the limits the line is checked against.
func (l *SpanLine) Limits() *Limits { return l.lim }

// Annotations appends text, n whole annotations as Tags writes them
// (` "k"="v"` each), and reports false, having appended nothing, if they
// would break a limit. It checks nothing else: the caller vouches for
// the rest of AppendCanonicalSpan's subset (keys of name bytes; values
// ASCII without '"', '\\' or '\n', non-empty and without blanks at either
// end), as a converter can for the annotations it makes itself from
// constants and hex IDs. longestKey and longestValue are the lengths of
// text's longest key and value (ASCII, so also their UTF-16 lengths).
func (l *SpanLine) Annotations(text []byte, n, longestKey, longestValue int) bool {
	lim := l.lim
	if l.tags+n > lim.MaxSpanAnnotations || longestKey > lim.MaxSpanKeyLength || longestValue > lim.MaxSpanValueLength {
		return false
	}
	l.tags += n
	l.dst = append(l.dst, text...)
	return true
}

// SpanTagSpare is how many bytes of a KeyText SpanLine.Tags copies at a
// time, as four words.
const SpanTagSpare = 32

// maxSpanTagsRoom bounds SpanLine.Tags' room: far more than any span line
// takes, and small enough that positions within it cannot overflow.
const maxSpanTagsRoom = 1 << 30
