// Package wavefront owns the Wavefront data model and line protocol shared by
// every meshwave role: points, distributions, spans and span logs; encoding
// to the canonical line format and decoding/validating with the reference
// proxy's rules. It does no I/O.
package wavefront
