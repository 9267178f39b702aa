package zipkin

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"unsafe"
)

// Envoy writes a span's tags in a fresh order every time (they come from a
// protobuf map), so a cache keyed by arrival order misses on real traffic.
// The decoder therefore interns tag keys: each key gets a small id the
// first time it is seen (keyTable), a tag is stored in its key's slot (as
// the JSON v2 readers read it, or once a JSON v1 or proto3 span is read),
// and the span's keys are a bit set of ids. The sorted order of a bit
// set's keys is cached (idSet), so the tags are written once, in key
// order, in any arrival order, and every order of a set gets the set's
// Span.keySeq, which the Converter's plans are cached by. A repeated key
// keeps its last value, as sorting would.

// maxKeyIDs bounds the keys a keyTable holds; when it is full, it is
// cleared at the next span (a tracer's keys are few, so only keys that
// keep changing fill it).
const maxKeyIDs = 128

// keyTable interns tag keys and caches the sorted order of key sets.
type keyTable struct {
	n     int // keys interned, ids 0 to n-1
	full  bool
	words [maxKeyIDs]keyWords
	keys  [maxKeyIDs][]byte // copies, for sorting and for long keys
	// index holds indexUsed|id of each key at slot mix>>56, or of the
	// next free slot after it (linear probing); 0 is free. At most half
	// is used.
	index [2 * maxKeyIDs]uint8
	sets  [16]idSet
	// slots holds the current span's tag of each key id in its bit set
	// (Decoder.tagBits): a plain tag's offsets into the body, or, when k0
	// is negative, -1-k0 is the tag's index in Decoder.tagIn.
	slots [maxKeyIDs]plainTag
}

// idSet is a set of key ids with its keys' sorted order.
type idSet struct {
	bits  [2]uint64
	seq   uint64 // the Span.keySeq of these keys; its low four bits are the slot
	n     int
	order [maxKeyIDs]uint8 // ids by key
}

// keyWords is a key as its length and three words that hold its first
// eight bytes, the eight from min(8, n-8) and its last eight (the bytes of
// a shorter key, zero-padded, in w0): equal keyWords of keys of up to
// maxWordKey bytes are equal keys.
type keyWords struct {
	w0, w1, w2 uint64
	n          int
}

const maxWordKey = 24

// indexUsed marks a used keyTable.index entry, the key's id in the bits
// below it: the tag loop's assembly takes the id by clearing the bit it
// tests. This fails to compile if ids do not fit below it.
const indexUsed = 0x80

var _ [indexUsed - maxKeyIDs]struct{}

// keysWordsOf returns k's keyWords.
func keysWordsOf(k []byte) keyWords {
	n := len(k)
	if n >= 8 {
		return keyWords{binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[min(8, n-8):]), binary.LittleEndian.Uint64(k[n-8:]), n}
	}
	var w uint64
	for i, c := range k {
		w |= uint64(c) << (8 * i)
	}
	return keyWords{w0: w, n: n}
}

// mix hashes k; its top eight bits are k's slot in keyTable.index. It is
// computed for every tag, so it is short: one multiply, of the first and
// last words (w1 adds to w2 only for keys of 17 to 24 bytes, and a
// collision costs only a probe) and the length.
func (k keyWords) mix() uint64 {
	return (k.w0 + k.w2 ^ uint64(k.n)) * 0x9E3779B97F4A7C15
}

// find returns the index entry for w: indexUsed|id if the table holds
// w's key (for a key longer than maxWordKey, one with the same words),
// else 0.
func (t *keyTable) find(w keyWords) uint8 {
	h := w.mix() >> 56
	for {
		x := t.index[h]
		if x == 0 || t.words[x&(maxKeyIDs-1)] == w {
			return x
		}
		h = (h + 1) & (2*maxKeyIDs - 1)
	}
}

// idOf returns key's id, interning it if it is new, or false if the table
// is full.
func (t *keyTable) idOf(key []byte) (int, bool) {
	w := keysWordsOf(key)
	h := w.mix() >> 56
	for {
		x := int(t.index[h])
		if x == 0 {
			break
		}
		if id := x & (maxKeyIDs - 1); t.words[id] == w && (w.n <= maxWordKey || bytes.Equal(t.keys[id], key)) {
			return id, true
		}
		h = (h + 1) & (2*maxKeyIDs - 1)
	}
	if t.n == maxKeyIDs {
		t.full = true
		return 0, false
	}
	id := t.n
	t.n++
	t.words[id] = w
	t.keys[id] = append(t.keys[id][:0], key...)
	t.index[h] = indexUsed | uint8(id)
	return id, true
}

// reset forgets every key and set.
func (t *keyTable) reset() {
	t.n, t.full = 0, false
	t.index = [2 * maxKeyIDs]uint8{}
	t.sets = [16]idSet{}
}

// setSlots are the two slots in keyTable.sets that may hold the set of
// ids b: two, so that a few sets that share one slot do not keep
// evicting each other.
func setSlots(b [2]uint64) (uint64, uint64) {
	h := (b[0]*0x9E3779B97F4A7C15 ^ b[1]) * 0xD6E8FEB86659FD93
	x, y := h>>60, h>>56&15
	if x == y {
		y ^= 1
	}
	return x, y
}

// set returns the cached set of ids b, after sorting its keys if it is
// not cached.
func (t *keyTable) set(b [2]uint64) *idSet {
	x, y := setSlots(b)
	if s := &t.sets[x]; s.bits == b {
		return s
	}
	if s := &t.sets[y]; s.bits == b {
		return s
	}
	// Replace the set cached earlier of the two.
	slot := x
	if t.sets[y].seq < t.sets[x].seq {
		slot = y
	}
	s := &t.sets[slot]
	s.bits, s.n = b, 0
	for w, word := range b {
		for ; word != 0; word &= word - 1 {
			s.order[s.n] = uint8(w*64 + bits.TrailingZeros64(word))
			s.n++
		}
	}
	slices.SortFunc(s.order[:s.n], func(i, j uint8) int { return bytes.Compare(t.keys[i], t.keys[j]) })
	s.seq = keySeqs.Add(1)<<4 | slot
	return s
}

// tagInByID puts the current span's tags, all in tagIn, in the slots of
// their keys' ids, as beginIDTags and addTag would have, and reports
// whether it could: false if they have more different keys than the
// table holds. No span is placing tags by id meanwhile, so a full table
// is cleared first.
func (d *Decoder) tagInByID() bool {
	d.beginIDTags()
	for i, t := range d.tagIn {
		id, ok := d.ids.idOf(t.Key)
		if !ok {
			d.byID = false
			return false
		}
		d.addIDTag(id, plainTag{k0: -1 - i})
	}
	return true
}

// beginIDTags starts placing the current span's tags by key id.
func (d *Decoder) beginIDTags() {
	if d.ids == nil {
		d.ids = new(keyTable)
	} else if d.ids.full {
		d.ids.reset()
	}
	d.tagBits = [2]uint64{}
	d.byID = true
}

// readIDTags is readPlainTags for the forms tracers write, without
// whitespace but a space after a member's comma ({"k":"v", "k":"v"} or
// {"k":"v","k":"v"}), while the span's tags are placed by id: each tag
// goes straight to its key's slot. It stops before anything else, which
// readPlainTags and objectNext then read.
func (d *Decoder) readIDTags(l *lexer, first bool) bool {
	start := l.i
	for {
		i, k0, k1, missed := d.ids.readKnownTags(&d.tagBits, l.b, l.stops, l.i, first)
		l.i, first = i, false
		if !missed {
			break
		}
		// A new or longer key, or one at the body's end.
		if p := (plainTag{k0, k1, k1 + 3, i - 1}); !d.addTagByID(l.b, p) {
			d.plainIn = append(d.plainIn, p)
			break
		}
	}
	return l.i != start
}

// readKnownTagsGo is readIDTags' loop, from i, without calls: it places
// the tags whose keys t holds and returns the index after the last tag
// read, which is the plain tag p, left unplaced, if missed. It is
// readKnownTags where there is no assembly, and the definition the
// assembly must agree with (FuzzReadKnownTags).
//
// It reads the body through load64 and friends, without bounds checks:
// every read is of bytes at or after i that a check before it has found
// in the body.
func (t *keyTable) readKnownTagsGo(tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next int, p plainTag, missed bool) {
	n, ptr := len(b), unsafe.Pointer(unsafe.SliceData(b))
	for ; ; first = false {
		j := i
		if !first {
			if j+2 > n {
				break
			}
			switch load16(ptr, j) {
			case ',' | ' '<<8:
				j += 2
			case ',' | '"'<<8:
				j++
			default:
				j = n
			}
		}
		if j >= n || load8(ptr, j) != '"' {
			break
		}
		k0 := j + 1
		k := nextStopIn(stops, k0, n)
		// `":"` and at least the value's closing quote.
		if k+4 > n || load32(ptr, k)&0xffffff != '"'|':'<<8|'"'<<16 {
			break
		}
		e := nextStopIn(stops, k+3, n)
		if e >= n || load8(ptr, e) != '"' {
			break
		}
		i = e + 1
		var x uint8
		switch kn := k - k0; { // wordsAt, inlined
		case kn >= 8 && kn <= maxWordKey:
			x = t.find(keyWords{load64(ptr, k0), load64(ptr, k0+min(8, kn-8)), load64(ptr, k-8), kn})
		case kn < 8 && k0+8 <= n:
			x = t.find(keyWords{w0: load64(ptr, k0) & (1<<(8*kn) - 1), n: kn})
		}
		if x == 0 {
			return i, plainTag{k0, k, k + 3, e}, true
		}
		id := int(x) & (maxKeyIDs - 1)
		tagBits[id>>6] |= 1 << (id & 63)
		s := &t.slots[id]
		s.k0, s.k1, s.v0, s.v1 = k0, k, k+3, e
	}
	return i, plainTag{}, false
}

// nextStopIn is lexer.nextStop without a call: the first index at or
// after i (at most n, the body's length) that stops marks, or n.
func nextStopIn(stops []uint64, i, n int) int {
	w := i >> 6
	x := stops[w] >> (i & 63)
	if x != 0 {
		return i + bits.TrailingZeros64(x)
	}
	for w++; w < len(stops); w++ {
		if x = stops[w]; x != 0 {
			return w<<6 + bits.TrailingZeros64(x)
		}
	}
	return n
}

// addTagByID records the plain tag p of body b in its key's slot, and
// reports whether it could: false if the span's tags have left the slots
// (leaveIDTags) because the key table is full.
func (d *Decoder) addTagByID(b []byte, p plainTag) bool {
	if w, ok := wordsAt(unsafe.Pointer(unsafe.SliceData(b)), len(b), p.k0, p.k1); ok {
		if x := d.ids.find(w); x != 0 {
			d.addIDTag(int(x)&(maxKeyIDs-1), p)
			return true
		}
	}
	// New, longer or at the body's end.
	if id, ok := d.ids.idOf(b[p.k0:p.k1]); ok {
		d.addIDTag(id, p)
		return true
	}
	d.leaveIDTags()
	return false
}

// wordsAt returns the keyWords of the key at [k0, k1) of the n bytes at
// p, 0 ≤ k0 ≤ k1 ≤ n: read in the key if it has 8 to maxWordKey bytes,
// or for a shorter one as the word at k0 with the bytes past the key
// cleared. ok is false for a longer key, or a shorter one within eight
// bytes of the end.
func wordsAt(p unsafe.Pointer, n, k0, k1 int) (w keyWords, ok bool) {
	switch kn := k1 - k0; {
	case kn >= 8 && kn <= maxWordKey:
		return keyWords{load64(p, k0), load64(p, k0+min(8, kn-8)), load64(p, k1-8), kn}, true
	case kn < 8 && k0+8 <= n:
		return keyWords{w0: load64(p, k0) & (1<<(8*kn) - 1), n: kn}, true
	}
	return keyWords{}, false
}

// addIDTag records the current span's tag of key id: p, or tagIn[-1-p.k0].
func (d *Decoder) addIDTag(id int, p plainTag) {
	d.tagBits[id>>6&1] |= 1 << (id & 63)
	d.ids.slots[id&(maxKeyIDs-1)] = p
}

// slotTag returns the current span's tag in slot p (see keyTable.slots).
func (d *Decoder) slotTag(p plainTag) Tag {
	if p.k0 < 0 {
		return d.tagIn[-1-p.k0]
	}
	return Tag{Key: d.body[p.k0:p.k1], Value: d.body[p.v0:p.v1], plainValue: true}
}

// leaveIDTags moves the current span's tags placed by id to tagIn, for
// the general path, when a key cannot get an id.
func (d *Decoder) leaveIDTags() {
	d.byID = false
	lo := len(d.tagIn)
	for w, word := range d.tagBits {
		for ; word != 0; word &= word - 1 {
			d.tagIn = append(d.tagIn, d.slotTag(d.ids.slots[w*64+bits.TrailingZeros64(word)]))
		}
	}
	// Earlier tagIn entries are all in slots, or were replaced by a
	// later tag of their key.
	d.tagIn = append(d.tagIn[:0], d.tagIn[lo:]...)
}

// placeIDTags is placeTags for a span whose tags were placed by id.
func (d *Decoder) placeIDTags() uint64 {
	b, t, body := d.tagBits, d.ids, d.body
	n := bits.OnesCount64(b[0]) + bits.OnesCount64(b[1])
	if n == 0 {
		return 0
	}
	lo := len(d.tags)
	d.tags = slices.Grow(d.tags, n)[:lo+n]
	out := d.tags[lo:]
	if n == 1 {
		id := bits.TrailingZeros64(b[0])
		if b[0] == 0 {
			id = 64 + bits.TrailingZeros64(b[1])
		}
		out[0] = d.slotTag(t.slots[id&(maxKeyIDs-1)])
		return 0
	}
	s := t.set(b)
	bp, bn := unsafe.Pointer(unsafe.SliceData(body)), len(body)
	for j, id := range s.order[:len(out)] {
		p := &t.slots[id&(maxKeyIDs-1)]
		if p.k0 < 0 {
			out[j] = d.tagIn[-1-p.k0]
			continue
		}
		o := &out[j]
		// body[p.k0:p.k1] and body[p.v0:p.v1], which readKnownTags and
		// readPlainTags found in the body, without checking them again;
		// capacity to the body's end, for copies by whole words.
		// (bodySlice, written in place: the copy of its result costs more).
		*(*sliceHeader)(unsafe.Pointer(&o.Key)) = sliceHeader{unsafe.Add(bp, p.k0), p.k1 - p.k0, bn - p.k0}
		*(*sliceHeader)(unsafe.Pointer(&o.Value)) = sliceHeader{unsafe.Add(bp, p.v0), p.v1 - p.v0, bn - p.v0}
		o.plainValue = true
	}
	return s.seq
}
