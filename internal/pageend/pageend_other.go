//go:build !unix

package pageend

import "testing"

// Mem is plain memory where there is no mmap: inputs are placed at its
// end, but a load past them is not caught.
type Mem struct{ buf []byte }

// New makes room for inputs of up to maxLen bytes.
func New(_ testing.TB, maxLen int) *Mem { return &Mem{make([]byte, maxLen)} }

// At copies b to the end of m and returns the copy, its capacity its
// length. It overwrites the previous At's copy.
func (m *Mem) At(b []byte) []byte {
	end := len(m.buf)
	dst := m.buf[end-len(b) : end : end]
	copy(dst, b)
	return dst
}
