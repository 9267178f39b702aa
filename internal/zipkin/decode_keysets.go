package zipkin

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Envoy writes a span's tags in a fresh order every time (they come from a
// protobuf map), so the tag-order cache, keyed by arrival order, misses on
// real traffic. The key-set cache remembers the sorted keys of recent spans
// instead, each with its rank, so tags in any order of a known set are
// placed by rank without sorting, and every order of a set gets the set's
// Span.keySeq, which the Converter's plans are cached by.

// keySet is a sorted set of unique tag keys of up to maxRankedKey bytes.
type keySet struct {
	n    int
	hash uint64 // the sum of the keys' mix, which no order changes
	seq  uint64 // the Span.keySeq of these keys; its low four bits are the slot
	keys [maxInsertionSort]keyWords
	// ranks holds rank+1 of each key at slot mix>>58, or the next free
	// slot after it (linear probing); 0 is free. At most half is used.
	ranks [64]uint8
}

// keyWords is a key of up to maxRankedKey bytes as its length and three
// words that together hold all of it: equal keyWords are equal keys.
type keyWords struct {
	w0, w1, w2 uint64
	n          int
}

const maxRankedKey = 24

// plainKeyWords returns the keyWords of b[k0:k1]. A key of 8 to 24 bytes
// is read as its first eight bytes, the eight from min(8, n-8) and its last
// eight, which overlap rather than read past it; a shorter one as a word
// from the body when the body is long enough, with the bytes past the key
// cleared.
func plainKeyWords(b []byte, k0, k1 int) (keyWords, bool) {
	n := k1 - k0
	switch {
	case n >= 8 && n <= maxRankedKey:
		k := b[k0:k1]
		return keyWords{binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[min(8, n-8):]), binary.LittleEndian.Uint64(k[n-8:]), n}, true
	case n < 8 && k0 >= 0 && k0+8 <= len(b):
		return keyWords{w0: binary.LittleEndian.Uint64(b[k0:]) & (1<<(8*n) - 1), n: n}, true
	}
	return keysWordsOf(b[k0:k1])
}

// keysWordsOf is plainKeyWords for a key with nothing readable past it.
func keysWordsOf(k []byte) (keyWords, bool) {
	n := len(k)
	switch {
	case n >= 8 && n <= maxRankedKey:
		return keyWords{binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[min(8, n-8):]), binary.LittleEndian.Uint64(k[n-8:]), n}, true
	case n < 8:
		var w uint64
		for i, c := range k {
			w |= uint64(c) << (8 * i)
		}
		return keyWords{w0: w, n: n}, true
	}
	return keyWords{}, false
}

// mix hashes k; its top six bits are k's slot in keySet.ranks.
func (k keyWords) mix() uint64 {
	return (k.w0 ^ bits.RotateLeft64(k.w1, 21) ^ bits.RotateLeft64(k.w2, 42) ^ uint64(k.n)) * 0x9E3779B97F4A7C15
}

// setSlots are the two slots in tagOrderCache.sets that may hold n keys
// whose mixes sum to hash: two, so that a few sets that share one slot
// do not keep evicting each other.
func setSlots(n int, hash uint64) (uint64, uint64) {
	h := (hash + uint64(n)) * 0x9E3779B97F4A7C15
	a, b := h>>60, h>>56&15
	if a == b {
		b ^= 1
	}
	return a, b
}

// placeRanked places the current span's plain tags in, of body b, through
// the key-set cache, and reports whether it could. It tries the set that
// the last span with as many tags hit first, as a tracer's spans of one
// kind follow each other, and otherwise the sets that the sum of the
// keys' mixes selects.
func (d *Decoder) placeRanked(in []plainTag, b []byte) (uint64, bool) {
	c := &d.tagOrders
	n := len(in)
	if c.sets == nil || n > maxInsertionSort {
		return 0, false
	}
	if s := &c.sets[c.lastSet[n]]; s.n == n {
		if seq, ok := d.placeInSet(s, in, b); ok {
			return seq, true
		}
	}
	var hash uint64
	for _, p := range in {
		k, ok := plainKeyWords(b, p.k0, p.k1)
		if !ok {
			return 0, false
		}
		hash += k.mix()
	}
	a, a2 := setSlots(n, hash)
	for _, slot := range [2]uint64{a, a2} {
		if s := &c.sets[slot]; s.n == n && s.hash == hash && slot != uint64(c.lastSet[n]) {
			if seq, ok := d.placeInSet(s, in, b); ok {
				c.lastSet[n] = uint8(slot)
				return seq, true
			}
		}
	}
	return 0, false
}

// placeInSet places in's tags, of body b, at their keys' ranks in s, and
// reports whether s holds each of the keys once: as s has as many keys,
// each of its ranks then gets one tag.
func (d *Decoder) placeInSet(s *keySet, in []plainTag, b []byte) (uint64, bool) {
	lo := len(d.tags)
	d.tags = slices.Grow(d.tags, len(in))[:lo+len(in)]
	out := d.tags[lo:]
	var placed uint32
	for _, p := range in {
		var k keyWords
		key := b[p.k0:p.k1] // capacity to the body's end, for copies by whole words
		if m := len(key); m >= 8 && m <= maxRankedKey {
			k = keyWords{binary.LittleEndian.Uint64(key), binary.LittleEndian.Uint64(key[min(8, m-8):]), binary.LittleEndian.Uint64(key[m-8:]), m}
		} else {
			var ok bool
			if k, ok = plainKeyWords(b, p.k0, p.k1); !ok {
				d.tags = d.tags[:lo]
				return 0, false
			}
		}
		r := s.rankOf(k)
		bit := uint32(1) << (r & (maxInsertionSort - 1))
		if r < 0 || placed&bit != 0 { // not in the set, or a duplicate key
			d.tags = d.tags[:lo]
			return 0, false
		}
		placed |= bit
		t := &out[r]
		t.Key, t.Value, t.plainValue = key, b[p.v0:p.v1], true
	}
	return s.seq, true
}

// rankOf returns k's rank in s, or -1 if s does not hold k.
func (s *keySet) rankOf(k keyWords) int {
	for j := k.mix() >> 58; ; j = (j + 1) & 63 {
		r := int(s.ranks[j]) - 1
		if r < 0 || s.keys[r&(maxInsertionSort-1)] == k { // ranks are below maxInsertionSort: no bounds check
			return r
		}
	}
}

// setSeq returns the key sequence number of keys[perm[0]], keys[perm[1]],
// …, which are sorted and unique: the cached set's if it holds them, else
// a new one, which the set then holds if all its keys are short enough.
// arrivalSlot is the tag-order cache's slot of the keys, the low bits of a
// number no set holds.
func (c *tagOrderCache) setSeq(keys [][]byte, perm []uint8, arrivalSlot uint64) uint64 {
	var ks [maxInsertionSort]keyWords
	var hash uint64
	for j, i := range perm {
		k, ok := keysWordsOf(keys[i])
		if !ok {
			return keySeqs.Add(1)<<4 | arrivalSlot
		}
		ks[j] = k
		hash += k.mix()
	}
	if c.sets == nil {
		c.sets = new([16]keySet)
	}
	a, b := setSlots(len(perm), hash)
	for _, slot := range [2]uint64{a, b} {
		if s := &c.sets[slot]; s.n == len(perm) && s.hash == hash && s.keys == ks {
			c.lastSet[len(perm)] = uint8(slot)
			return s.seq
		}
	}
	// Replace the set cached earlier of the two.
	slot := a
	if c.sets[b].seq < c.sets[a].seq {
		slot = b
	}
	s := &c.sets[slot]
	s.n, s.hash, s.keys = len(perm), hash, ks
	s.ranks = [64]uint8{}
	for r, k := range ks[:len(perm)] {
		j := k.mix() >> 58
		for s.ranks[j] != 0 {
			j = (j + 1) & 63
		}
		s.ranks[j] = uint8(r + 1)
	}
	s.seq = keySeqs.Add(1)<<4 | slot
	c.lastSet[len(perm)] = uint8(slot)
	return s.seq
}
