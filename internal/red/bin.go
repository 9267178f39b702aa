package red

import (
	"math/rand/v2"

	"github.com/caio/go-tdigest/v4"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// pendingValues is how many distinct values a bin collects before feeding
// its digest.
const pendingValues = 8

// bin is one histogram series (plain or error) for one minute.
//
// The t-digest's Add costs time linear in its centroids, and far more when
// many of them share a mean, which repeated values cause (millisecond
// durations in custom tracing mode, steady services): a constant duration
// costs ~2 µs per span. So a bin first counts exact repeats in a few
// pending slots and feeds the digest one weighted value per distinct value
// when the slots run out, or at flush.
type bin struct {
	start   int64 // Unix seconds
	isError bool
	digest  *tdigest.TDigest // from Deriver.digests on first spill; nil before
	n       int              // used pending slots
	pending [pendingValues]struct {
		value float64
		count uint64
	}
}

// binFor returns the (start, isError) bin, creating it. The caller holds the
// shard's mutex; the pointer is valid until e.bins next changes.
func (e *entry) binFor(start int64, isError bool) *bin {
	for i := len(e.bins) - 1; i >= 0; i-- { // the current minute is last
		if b := &e.bins[i]; b.start == start && b.isError == isError {
			return b
		}
	}
	e.bins = append(e.bins, bin{start: start, isError: isError})
	return &e.bins[len(e.bins)-1]
}

func (b *bin) add(v float64, d *Deriver) {
	for i := range b.pending[:b.n] {
		if b.pending[i].value == v {
			b.pending[i].count++
			return
		}
	}
	if b.n == pendingValues {
		b.spill(d)
	}
	b.pending[b.n].value, b.pending[b.n].count = v, 1
	b.n++
}

// spill feeds the pending values to the digest.
func (b *bin) spill(d *Deriver) {
	if b.digest == nil {
		b.digest = d.digests.Get().(*tdigest.TDigest)
	}
	for _, p := range b.pending[:b.n] {
		_ = b.digest.AddWeighted(p.value, p.count) // fails only for NaN or a zero count, never the case
	}
	b.n = 0
}

// appendCentroids appends the bin's centroids, compressed, merging
// neighbours with equal means (the digest keeps repeats apart at its
// edges). All counts are integers, so they add up to the number of samples.
func (b *bin) appendCentroids(dst []wavefront.Centroid, d *Deriver) []wavefront.Centroid {
	b.spill(d)
	_ = b.digest.Compress() // fails only on NaN means, which integer durations never produce
	b.digest.ForEachCentroid(func(mean float64, count uint64) bool {
		if n := len(dst); n > 0 && dst[n-1].Mean == mean {
			dst[n-1].Count += int(count)
		} else {
			dst = append(dst, wavefront.Centroid{Count: int(count), Mean: mean})
		}
		return true
	})
	return dst
}

// globalRNG feeds t-digest compression from math/rand/v2's goroutine-safe
// generator, sparing each digest the 5 KB source the library's default
// seeds.
type globalRNG struct{}

func (globalRNG) Float32() float32 { return rand.Float32() }
func (globalRNG) Intn(n int) int   { return rand.IntN(n) }

func newDigest() *tdigest.TDigest {
	td, err := tdigest.New(tdigest.Compression(compression), tdigest.RandomNumberGenerator(globalRNG{}))
	if err != nil {
		panic("red: t-digest options rejected: " + err.Error()) // constant options: a programming error
	}
	return td
}
