package zipkin

// markStopsVariants are the assembly versions of markStops this CPU can
// run, which FuzzStopIndex compares with markStopsGeneric: the one
// markStops picks is not the only one that ships.
var markStopsVariants = func() map[string]func([]uint64, []byte) {
	m := map[string]func([]uint64, []byte){"sse2": markStopsSSE2}
	if useAVX2 {
		m["avx2"] = markStopsAVX2
	}
	return m
}()

// readKnownTagsVariants are the versions of readKnownTags other than
// readKnownTagsGo, which FuzzReadKnownTags compares with it.
var readKnownTagsVariants = map[string]func(*keyTable, *[2]uint64, []byte, []uint64, int, bool) (next, k0, k1 int, missed bool){
	"amd64": (*keyTable).readKnownTags,
}
