//go:build !amd64

package zipkin

// markStops writes the index words of b, whose length is a multiple of
// 64, to dst[:len(b)/64].
func markStops(dst []uint64, b []byte) { markStopsGeneric(dst, b) }

// readKnownTags is readKnownTagsGo, returning a missed tag as its key's
// bounds, k0 and k1: its value is from k1+3 to next-1.
func (t *keyTable) readKnownTags(tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next, k0, k1 int, missed bool) {
	next, p, missed := t.readKnownTagsGo(tagBits, b, stops, i, first)
	return next, p.k0, p.k1, missed
}

// lowerHexZeros16or32 is lowerHexZerosGo for an ID of 16 or 32 bytes.
func lowerHexZeros16or32(id []byte) (zeros int, ok bool) { return lowerHexZerosGo(id) }

// stopsFrom returns the index's bits from position i on, bit 0 for i, to
// the end of i's word.
func stopsFrom(stops []uint64, i int) uint64 { return stops[i>>6] >> (i & 63) }
