package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/wql"
)

// BenchmarkRollupDecode reads every window of every record of an 18-hour
// block's rollup, as a day-long chart does, per window kind and for two
// kinds of data: "integral", the query benchmark's (integral counters and
// gauges scraped every minute at a fixed offset), and "float", jittered
// scrapes of float counters and gauges, missed scrapes and resets.
// Reported per window: wall and CPU (getrusage, steadier on a shared
// machine) nanoseconds, and bytes of file.
func BenchmarkRollupDecode(b *testing.B) {
	for _, data := range []string{"integral", "float"} {
		rf, size := benchRollup(b, data)
		var recs []rollupRecord
		for i := 0; i < len(rf.table)/16; i++ {
			rec, ok, err := rf.lookup(storage.SeriesRef(binary.LittleEndian.Uint64(rf.table[i*16:])))
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			recs = append(recs, rec)
		}
		runtime.GC() // the build's garbage, so no collection runs while timed
		for _, kind := range []string{"mean", "rate"} {
			b.Run(data+"/"+kind, func(b *testing.B) {
				var (
					dst  []wql.Window
					err  error
					wins int
				)
				cpu0 := cpuclock.Self()
				for b.Loop() {
					wins = 0
					for i := range recs {
						if kind == "mean" {
							dst, err = recs[i].meanWindows(dst[:0], math.MinInt64)
						} else {
							dst, err = recs[i].rateWindows(dst[:0], math.MinInt64, math.MinInt64)
						}
						if err != nil {
							b.Fatal(err)
						}
						wins += len(dst)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(wins), "ns/window")
				b.ReportMetric(float64((cpuclock.Self()-cpu0).Nanoseconds())/float64(b.N)/float64(wins), "cpu-ns/window")
				b.ReportMetric(float64(size)/float64(wins), "file-B/window")
			})
		}
	}
}

// benchRollup builds and opens the rollup of an
// 18-hour block of 1 000 series.
func benchRollup(b *testing.B, data string) (*rollupFile, int64) {
	dir := b.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, benchBlock)
	if err != nil {
		b.Fatal(err)
	}
	app := w.Appender(context.Background())
	r := rand.New(rand.NewPCG(1, 2))
	const series, samples = 1000, 18 * 60
	for k := range series {
		lset := labels.FromStrings(labelName, "m", labelSource, fmt.Sprint("h", k))
		counter := k%4 != 0
		v := 0.0
		for i := range samples {
			t := int64(i)*benchMinute + int64(k%50)*1000
			if data == "integral" {
				_, v = benchSample(k, i, counter)
			} else {
				if r.IntN(30) == 0 {
					continue // missed scrape
				}
				t += int64(r.IntN(2000))
				switch {
				case !counter:
					v = r.NormFloat64() * 100
				case r.IntN(500) == 0:
					v = 0 // reset
				default:
					v += r.Float64() * 40
				}
			}
			if _, err := app.Append(0, lset, t, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	id, err := w.Flush(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	w.Close()
	blk, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), filepath.Join(dir, id.String()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer blk.Close()
	path := filepath.Join(dir, "r"+rollupExt)
	if err := buildRollup(context.Background(), blk, path); err != nil {
		b.Fatal(err)
	}
	rf, err := openRollup(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rf.close() })
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return rf, fi.Size()
}
