// Package pageend places test inputs right before memory the process
// cannot read, so a parser's load past the end of its input faults at
// once instead of quietly reading whatever follows the input in the heap.
// The decoders' word loads and assembly read several bytes at a time and
// must stay within what their checks found in their input; tests run
// them over every prefix of real bodies placed with At.
package pageend

// Mem is memory whose end is followed by a page the process cannot read
// (where there is mmap; elsewhere plain memory, and a load past an input
// is not caught).
type Mem struct{ readable []byte }

// At copies b to end right before the unreadable page and returns the
// copy, its capacity its length. It overwrites the previous At's copy.
func (m *Mem) At(b []byte) []byte {
	end := len(m.readable)
	dst := m.readable[end-len(b) : end : end]
	copy(dst, b)
	return dst
}
