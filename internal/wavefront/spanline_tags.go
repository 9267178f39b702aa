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
