package benchmark

import (
	"fmt"
	"runtime"
	"testing"
)

// A Path is one way of processing a payload.
type Path struct {
	Name      string
	newRunner func() (runner, error)
}

// runner processes a whole body and returns the number of samples it read.
// It keeps its buffers between runs, as a scrape loop does between scrapes.
type runner interface {
	run(body []byte) (int, error)
}

// Paths are the three paths compared, meshwave first.
var Paths = []Path{
	{"meshwave", newMeshwavePath},
	{"textparse", newTextparsePath},
	{"expfmt", newExpfmtPath},
}

// Check runs every path once over p and reports an error unless each read
// exactly p.Series samples, so that per-sample numbers compare like with
// like.
func Check(p *Payload) error {
	for _, path := range Paths {
		r, err := path.newRunner()
		if err != nil {
			return fmt.Errorf("%s: %w", path.Name, err)
		}
		n, err := r.run(p.Body)
		if err != nil {
			return fmt.Errorf("%s: %w", path.Name, err)
		}
		if n != p.Series {
			return fmt.Errorf("%s read %d samples, want %d", path.Name, n, p.Series)
		}
	}
	return nil
}

// Benchmark returns a benchmark of path over p. Each op processes the
// whole payload; besides the usual metrics it reports ns/sample and
// allocs/sample.
func Benchmark(path Path, p *Payload) func(*testing.B) {
	return func(b *testing.B) {
		r, err := path.newRunner()
		if err != nil {
			b.Fatal(err)
		}
		// One untimed op first: caches and buffers reach the size a
		// long-running collector keeps them at.
		if _, err := r.run(p.Body); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(p.Body)))
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			if _, err := r.run(p.Body); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		samples := float64(b.N) * float64(p.Series)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/samples, "allocs/sample")
	}
}
