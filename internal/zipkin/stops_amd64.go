package zipkin

import "unsafe"

// markStops writes the index words of b, whose length is a multiple of
// 64, to dst[:len(b)/64]: 32 bytes per compare with AVX2, where the CPU
// and OS support it, else 16 with SSE2 (part of amd64's baseline).
func markStops(dst []uint64, b []byte) {
	if useAVX2 {
		markStopsAVX2(dst, b)
		return
	}
	markStopsSSE2(dst, b)
}

var useAVX2 = hasAVX2()

// hasAVX2 reports whether the CPU has AVX2 and the OS saves the YMM
// registers.
func hasAVX2() bool

//go:noescape
func markStopsSSE2(dst []uint64, b []byte)

//go:noescape
func markStopsAVX2(dst []uint64, b []byte)

// readKnownTagsAMD64 is keyTable.readKnownTagsGo in assembly
// (stops_amd64.s): the Go loop keeps half its values on the stack (6 906
// -> 6 286 instructions per Envoy span). It reads nothing if stops is
// shorter than buildStops makes it for b, or lacks its spare word.
//
//go:noescape
func readKnownTagsAMD64(t *keyTable, tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next, k0, k1 int, missed bool)

// readKnownTags is readKnownTagsGo in assembly, returning a missed tag
// as its key's bounds, k0 and k1: its value is from k1+3 to next-1.
func (t *keyTable) readKnownTags(tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next, k0, k1 int, missed bool) {
	return readKnownTagsAMD64(t, tagBits, b, stops, i, first)
}

// readKnownTagsAMD64 finds a key's words and slot with shifts: both are
// 32 bytes, and an index entry's id by clearing bit 7, indexUsed. These
// fail to compile otherwise.
var (
	_ [indexUsed - 1<<7]struct{}
	_ [1<<7 - indexUsed]struct{}
	_ [unsafe.Sizeof(keyWords{}) - 32]struct{}
	_ [32 - unsafe.Sizeof(keyWords{})]struct{}
	_ [unsafe.Sizeof(plainTag{}) - 32]struct{}
	_ [32 - unsafe.Sizeof(plainTag{})]struct{}
)

// lowerHexZerosSSE2 is lowerHexZerosGo for the n bytes at p, n 16 or 32,
// 16 bytes per step (stops_amd64.s).
//
//go:noescape
func lowerHexZerosSSE2(p *byte, n int) (zeros int, ok bool)

// lowerHexZeros16or32 is lowerHexZerosGo for an ID of 16 or 32 bytes.
func lowerHexZeros16or32(id []byte) (zeros int, ok bool) {
	return lowerHexZerosSSE2(unsafe.SliceData(id), len(id))
}

// stopsFrom returns the index's bits from position i on, bit 0 for i:
// 57 or more, read eight bytes at a time from the byte that holds i's bit
// (into the zero word buildStops leaves after the index, which stops, made
// by buildStops for a body of at least i bytes, must have), so that most
// strings end within them wherever they start.
func stopsFrom(stops []uint64, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(stops)), i>>3)) >> (i & 7)
}
