package zipkin

// markStops writes the index words of b, whose length is a multiple of
// 64, to dst[:len(b)/64], 16 bytes per SSE2 compare (SSE2 is part of
// amd64's baseline).
//
//go:noescape
func markStops(dst []uint64, b []byte)
