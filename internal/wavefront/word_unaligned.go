//go:build amd64 || arm64

package wavefront

import "unsafe"

// On these little-endian machines an unaligned load or store of a word is
// one instruction.

func wordAt(p unsafe.Pointer, off int) uint64 { return *(*uint64)(unsafe.Add(p, off)) }

func putWordAt(p unsafe.Pointer, off int, x uint64) { *(*uint64)(unsafe.Add(p, off)) = x }
