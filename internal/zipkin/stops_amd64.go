package zipkin

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
