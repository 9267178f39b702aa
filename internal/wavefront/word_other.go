//go:build !(amd64 || arm64)

package wavefront

import (
	"encoding/binary"
	"unsafe"
)

// Elsewhere words are read and written byte by byte: the machine may be
// big-endian or fault on unaligned words.

func wordAt(p unsafe.Pointer, off int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(p, off)), 8))
}

func putWordAt(p unsafe.Pointer, off int, x uint64) {
	binary.LittleEndian.PutUint64(unsafe.Slice((*byte)(unsafe.Add(p, off)), 8), x)
}
