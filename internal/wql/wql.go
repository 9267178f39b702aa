package wql

import "context"

// Point is one sample: T in epoch milliseconds.
type Point struct {
	T int64
	V float64
}

// Series is one time series: identity is (Name, Source, Tags). Points are in
// ascending time order.
type Series struct {
	Name, Source string
	Tags         Tags // in key order (TagsOf sorts a map)
	Points       []Point
	// Windows, set only by RollupStorage.SelectRollup, stand for the raw
	// samples of the time the store has rolled up; Points then hold the
	// rest.
	Windows []Window
}

// Window summarizes one series over [T, T+width) of a RollupStorage: the
// sum and the number of the values that fell in it.
type Window struct {
	T      int64
	Sum, N float64
}

// RollupKind says what the values summed in a Window are.
type RollupKind uint8

const (
	// RollupMean windows sum the raw samples: the mean of a bucket is
	// the same as from the samples.
	RollupMean RollupKind = iota + 1
	// RollupRate windows sum rate()'s per-second values, one per pair of
	// consecutive samples (see RatePair), each in the window of its later
	// sample.
	RollupRate
)

// RollupStorage is a Storage that can answer from windows summarized in
// advance, for consumers that only need per-bucket means: ts() read for
// bucketing, and rate(ts()). Eval uses it when the grid's step is a
// multiple of RollupWidth, so that every window falls in one bucket.
type RollupStorage interface {
	Storage
	// RollupWidth is the windows' width in ms, a divisor of every step
	// Eval may ask SelectRollup for.
	RollupWidth() int64
	// SelectRollup is Select whose series may carry Windows, aligned to
	// the width, in place of raw samples. For RollupRate, Points are
	// rate()'s values (RatePair at the later sample's time), not samples,
	// and Points and Windows together cover each pair whose samples both
	// lie in [start, end] exactly once, as rate() over Select's raw points
	// would.
	SelectRollup(ctx context.Context, metricGlob string, m Matcher, start, end int64, kind RollupKind, fn func(*Series) error) error
}

// RatePair is rate()'s value for consecutive samples a and b: the
// per-second change, or false for a pair rate() drops (a decrease, which
// is a counter reset, or time not advancing).
func RatePair(a, b Point) (float64, bool) {
	dv := b.V - a.V
	if b.T <= a.T || dv < 0 {
		return 0, false
	}
	return dv * 1000 / float64(b.T-a.T), true
}

// Storage is what Eval reads from. The server's store implements it, and so
// does MemStorage for tests. Eval may call Select concurrently (the two
// sides of an operation between series sets are read at once).
type Storage interface {
	// Select calls fn for every raw series whose metric name matches the
	// glob (Wavefront wildcards: * matches any run of chars incl. dots) and
	// whose source/tags satisfy m, with its points in [start, end] ms,
	// ascending. The filter may be pushed down or ignored: Eval re-checks
	// it. Points are fn's only during the call: a store may reuse them for
	// the next series, so streaming a 100 k-series selection allocates no
	// sample slices; Name, Source and Tags must stay valid, as
	// results keep them. Eval never modifies any of it.
	// An error from fn stops the selection and is returned.
	Select(ctx context.Context, metricGlob string, m Matcher, start, end int64, fn func(*Series) error) error
}

// Matcher is built from a ts() filter expression.
type Matcher interface {
	Match(source string, tags Tags) bool
}

// Options give the chart window and bucket: Start and End in ms, Step the
// chart's bucket in ms (g=m → 60000).
type Options struct{ Start, End, Step int64 }

// Centroid is one t-digest centroid of a histogram.
type Centroid struct{ Mean, Count float64 }

// Dist is one histogram bin: T is the bin start in epoch ms.
type Dist struct {
	T         int64
	Centroids []Centroid
}

// DistSeries is one histogram series; Points are in ascending time order.
type DistSeries struct {
	Name, Source string
	Tags         Tags
	Points       []Dist
}

// DistStorage is implemented by a Storage that also holds Wavefront
// histograms, the input of hs().
type DistStorage interface {
	// SelectDists calls fn for every histogram series of granularity gran
	// ('m', 'h' or 'd') whose name matches the glob and whose source/tags
	// satisfy m, with its bins starting in [start, end] ms. The rules of
	// Storage.Select apply: the filter may be ignored, Points may be reused
	// after fn returns, calls may be concurrent.
	SelectDists(ctx context.Context, nameGlob string, gran byte, m Matcher, start, end int64, fn func(*DistSeries) error) error
}
