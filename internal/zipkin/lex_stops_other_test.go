//go:build !amd64

package zipkin

// markStopsVariants: markStops is markStopsGeneric here.
var markStopsVariants = map[string]func([]uint64, []byte){}
