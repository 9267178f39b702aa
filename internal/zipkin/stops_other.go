//go:build !amd64

package zipkin

// markStops writes the index words of b, whose length is a multiple of
// 64, to dst[:len(b)/64].
func markStops(dst []uint64, b []byte) { markStopsGeneric(dst, b) }

func (t *keyTable) readKnownTags(tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next int, p plainTag, missed bool) {
	return t.readKnownTagsGo(tagBits, b, stops, i, first)
}
