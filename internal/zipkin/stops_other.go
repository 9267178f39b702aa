//go:build !amd64

package zipkin

// markStops writes the index words of b, whose length is a multiple of
// 64, to dst[:len(b)/64].
func markStops(dst []uint64, b []byte) { markStopsGeneric(dst, b) }
