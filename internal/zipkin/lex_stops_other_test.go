//go:build !amd64

package zipkin

// markStopsVariants: markStops is markStopsGeneric here.
var markStopsVariants = map[string]func([]uint64, []byte){}

// readKnownTagsVariants: readKnownTags is readKnownTagsGo here.
var readKnownTagsVariants = map[string]func(*keyTable, *[2]uint64, []byte, []uint64, int, bool) (next, k0, k1 int, missed bool){}
