//go:build unix

// Package pageend places test inputs right before memory the process
// cannot read, so a parser's load past the end of its input faults at
// once instead of quietly reading whatever follows the input in the heap.
// The decoders' word loads and assembly read several bytes at a time and
// must stay within what their checks found in their input; tests run
// them over every prefix of real bodies placed with At.
package pageend

import (
	"os"
	"syscall"
	"testing"
)

// Mem is a mapping whose last page is unreadable.
type Mem struct{ readable []byte }

// New maps room for inputs of up to maxLen bytes; tb's cleanup unmaps it.
func New(tb testing.TB, maxLen int) *Mem {
	ps := os.Getpagesize()
	n := (maxLen+ps-1)/ps*ps + ps
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Mprotect(mem[n-ps:], syscall.PROT_NONE); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Munmap(mem) })
	return &Mem{mem[:n-ps]}
}

// At copies b to end right before the unreadable page and returns the
// copy, its capacity its length. It overwrites the previous At's copy.
func (m *Mem) At(b []byte) []byte {
	end := len(m.readable)
	dst := m.readable[end-len(b) : end : end]
	copy(dst, b)
	return dst
}
