//go:build unix

package pageend

import (
	"os"
	"syscall"
	"testing"
)

// New maps room for inputs of up to maxLen bytes, followed by an
// unreadable page; tb's cleanup unmaps it.
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
