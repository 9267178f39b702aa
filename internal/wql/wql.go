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
	Tags         map[string]string
	Points       []Point
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
	// sample slices; Name, Source and Tags must stay valid, as results keep
	// them. Eval never modifies any of it.
	// An error from fn stops the selection and is returned.
	Select(ctx context.Context, metricGlob string, m Matcher, start, end int64, fn func(*Series) error) error
}

// Matcher is built from a ts() filter expression.
type Matcher interface {
	Match(source string, tags map[string]string) bool
}

// Options give the chart window and bucket: Start and End in ms, Step the
// chart's bucket in ms (g=m → 60000).
type Options struct{ Start, End, Step int64 }
