package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshwave/meshwave/internal/benchmark"
)

// runBench compares meshwave's scrape path with textparse and the reference
// collector's expfmt path on a generated Istio /federate payload, and
// measures the collector's peak heap on a larger endpoint.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	series := fs.Int("series", benchmark.DefaultSeries, "series in the payload the three paths process")
	peakSeries := fs.Int("peak-series", 1_000_000, "series of the endpoint the peak-heap run scrapes (0: skip)")
	count := fs.Int("count", 5, "runs of each path; the table shows the median")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if *series <= 0 || *count <= 0 || *peakSeries < 0 {
		return fmt.Errorf("bench: --series and --count must be positive, --peak-series non-negative")
	}

	// Peak heap first, before the payload exists, so the baseline heap is
	// only the process's own.
	var peak benchmark.Result
	if *peakSeries > 0 {
		slog.Info("bench: measuring peak heap", "series", *peakSeries)
		var err error
		if peak, err = benchmark.PeakHeap(ctx, *peakSeries); err != nil {
			return fmt.Errorf("bench: peak heap: %w", err)
		}
		runtime.GC()
	}

	slog.Info("bench: generating payload", "series", *series)
	p, err := benchmark.NewPayload(*series)
	if err != nil {
		return err
	}
	if err := benchmark.Check(p); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// Runs are interleaved across paths so that a noisy neighbour slows
	// every path alike rather than one.
	runs := make([][]testing.BenchmarkResult, len(benchmark.Paths))
	for i := range *count {
		for j, path := range benchmark.Paths {
			if err := ctx.Err(); err != nil {
				return err
			}
			slog.Info("bench: running", "path", path.Name, "run", i+1, "of", *count)
			r := testing.Benchmark(benchmark.Benchmark(path, p))
			if r.N == 0 {
				return fmt.Errorf("bench: %s failed", path.Name)
			}
			runs[j] = append(runs[j], r)
		}
	}
	med := make([]testing.BenchmarkResult, len(runs))
	for j, rs := range runs {
		slices.SortFunc(rs, func(a, b testing.BenchmarkResult) int {
			return cmp.Compare(a.Extra["ns/sample"], b.Extra["ns/sample"])
		})
		med[j] = rs[len(rs)/2]
	}

	fmt.Fprintf(stdout, "payload: %d series, %.1f MB (%d B/line); median of %d runs; GOMAXPROCS=%d\n\n",
		p.Series, float64(len(p.Body))/1e6, len(p.Body)/p.Series, *count, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tns/sample\tallocs/sample\tMB/s\tvs textparse\tvs expfmt\t")
	tp, ef := med[1].Extra["ns/sample"], med[2].Extra["ns/sample"]
	for j, r := range med {
		ns := r.Extra["ns/sample"]
		mbs := float64(r.Bytes) * float64(r.N) / 1e6 / r.T.Seconds()
		fmt.Fprintf(tw, "%s\t%.0f\t%.4f\t%.1f\t%.2f×\t%.1f×\t\n",
			benchmark.Paths[j].Name, ns, r.Extra["allocs/sample"], mbs, tp/ns, ef/ns)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nvs X: X's ns/sample ÷ this path's, i.e. how many times faster than X (>1 is faster).")
	if *peakSeries > 0 {
		const mib = 1 << 20
		fmt.Fprintf(stdout, "\npeak heap: %.1f MiB (baseline %.1f MiB) collecting %d series → %d points in %v (%d readings every 10 ms)\n",
			float64(peak.PeakHeap)/mib, float64(peak.BaselineHeap)/mib, peak.Series, peak.Points,
			peak.Duration.Round(10*time.Millisecond), peak.Readings)
	}
	return nil
}
