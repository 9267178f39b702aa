package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/meshwave/meshwave/internal/wql"
)

// rollupFixture is a server whose tsdb holds 11 hours of 48 series with
// the irregularities real data has: jittered and skipped samples, gaps,
// counter resets, series that start late or stop early, a value repeated
// at the same time. Compaction has turned most of it into blocks, which
// have their rollups; the last hours are in the head.
func rollupFixture(t *testing.T) (*testServer, int64, int64) {
	t.Helper()
	s := start(t, Config{RollupInterval: 1 << 62}) // syncs are the test's
	const hour = 3600_000
	t0 := int64(1_700_000_000_000) // not aligned to blocks or windows
	end := t0 + 11*hour
	r := rand.New(rand.NewPCG(7, 8))
	type series struct {
		lset     labels.Labels
		gauge    bool
		from, to int64
		v        float64
	}
	var all []*series
	for i := range 48 {
		sr := &series{gauge: i%3 == 2, from: t0, to: end, v: float64(r.IntN(100))}
		name := "roll.counter"
		if sr.gauge {
			name = "roll.gauge"
		}
		sr.lset = labels.FromStrings(labelName, name, labelSource, fmt.Sprintf("pod-%d", i), "app", fmt.Sprintf("a%d", i%4))
		switch i % 8 {
		case 5:
			sr.from = t0 + 5*hour + 7*60_000
		case 6:
			sr.to = t0 + 3*hour + 13*60_000
		}
		all = append(all, sr)
	}
	// Time-major, as scrapes arrive: the head takes every sample in order.
	app := s.metrics.db.Appender(context.Background())
	for ts := t0; ts < end; ts += 60_000 {
		for i, sr := range all {
			outage := i%8 == 7 && ts > t0+4*hour && ts < t0+5*hour
			if ts < sr.from || ts >= sr.to || outage || r.IntN(20) == 0 {
				continue // not there yet or any more, down, a missed scrape
			}
			switch {
			case sr.gauge:
				sr.v = r.NormFloat64() * 100
			case r.IntN(90) == 0:
				sr.v = float64(r.IntN(5)) // reset
			default:
				sr.v += float64(r.IntN(50)) + r.Float64()
			}
			if _, err := app.Append(0, sr.lset, ts+int64(r.IntN(20_000)), sr.v); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		app = s.metrics.db.Appender(context.Background())
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.metrics.db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.metrics.db.Blocks()) < 2 {
		t.Fatalf("%d blocks after compaction, want several", len(s.metrics.db.Blocks()))
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if got, want := len(s.rollups.files), len(s.metrics.db.Blocks()); got != want {
		t.Fatalf("%d rollups for %d blocks", got, want)
	}
	return s, t0, end
}

// TestRollupQueriesMatchSamples: every query answered with rollups equals
// the answer from the raw samples, for windows that start and end inside
// blocks, on block edges and in the head, at steps rollups serve and
// steps they do not.
func TestRollupQueriesMatchSamples(t *testing.T) {
	s, t0, end := rollupFixture(t)
	if used := compareRollups(t, s, t0, end); used == 0 {
		t.Fatal("no query read a rollup window")
	} else {
		t.Logf("%d windows read in place of samples", used)
	}
}

// TestRollupLateSamples: samples that arrive late for rolled-up time live
// in the out-of-order head and then in overlapping blocks; queries must
// see them, whatever the rollups say.
func TestRollupLateSamples(t *testing.T) {
	s, t0, end := rollupFixture(t)
	appendLateSamples(t, s, t0)
	compareRollups(t, s, t0, end)
	if err := s.metrics.db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if used := compareRollups(t, s, t0, end); used == 0 {
		t.Fatal("no query read a rollup window after compaction")
	}
}

func appendLateSamples(t *testing.T, s *testServer, t0 int64) {
	const minute = 60_000
	app := s.metrics.db.Appender(context.Background())
	for i := range 6 {
		lset := labels.FromStrings(labelName, "roll.counter", labelSource, fmt.Sprintf("pod-%d", i*8), "app", fmt.Sprintf("a%d", i*8%4))
		late := labels.FromStrings(labelName, "roll.counter", labelSource, fmt.Sprintf("late-%d", i), "app", "a1")
		for k := range 40 {
			ts := t0 + int64(90+i*60+k*7)*minute + 30_001 // between the samples there
			if _, err := app.Append(0, lset, ts, float64(1e6+k)); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Append(0, late, ts, float64(k*k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// compareRollups evaluates queries over several windows and steps with
// and without rollups; it returns how many windows were read.
func compareRollups(t *testing.T, s *testServer, t0, end int64) int {
	t.Helper()
	const minute, hour = 60_000, 3600_000
	queries := []string{
		"ts(roll.gauge)",
		"ts(roll.counter, app=a1)",
		"rate(ts(roll.counter))",
		"sum(rate(ts(roll.counter)))",
		"sum(rate(ts(roll.counter)), app)",
		"avg(ts(roll.gauge), app)",
		"deriv(ts(roll.counter))",
		"mavg(15m, rate(ts(roll.counter)))",
		"rate(ts(roll.counter, app=a1)) / rate(ts(roll.counter, app=a1))",
		"100 * sum(rate(ts(roll.counter, app=a2))) / sum(rate(ts(roll.counter)))",
		"max(ts(roll.*))",
		"last(10m, ts(roll.gauge))",
	}
	blocks := s.metrics.db.Blocks()
	edge := blocks[1].Meta().MinTime
	ranges := [][2]int64{
		{t0, end},                       // everything
		{t0 + 90*minute, end - 1},       // from inside the first block
		{edge, end},                     // from a block edge
		{edge + 17*minute, edge + hour}, // ends inside a block: samples
		{t0 - hour, t0 + 2*hour},        // starts before any data
		{end - 2*hour, end},             // the head
		{t0 + 5*hour, blocks[len(blocks)-1].Meta().MaxTime - 1},
	}
	steps := []int64{5 * minute, 10 * minute, 15 * minute, hour, minute, 7 * minute}
	return compareGrids(t, s, queries, ranges, steps, func([2]int64, int64) bool { return true }, func(rg [2]int64) string {
		return fmt.Sprintf("[%d, %d]", rg[0]-t0, rg[1]-t0)
	})
}

// compareGrids evaluates every query over every range and step with and
// without rollups and reports where the answers differ; it returns how
// many windows the evaluations read where count says so. where names a
// range in the messages.
func compareGrids(t *testing.T, s *testServer, queries []string, ranges [][2]int64, steps []int64, count func(rg [2]int64, step int64) bool, where func(rg [2]int64) string) int {
	t.Helper()
	const minute = 60_000
	used := 0
	for _, q := range queries {
		e, err := wql.Parse(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, rg := range ranges {
			for _, step := range steps {
				o := wql.Options{Start: rg[0], End: rg[1], Step: step}
				counted := &countingStore{queryStore: queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}}
				got, err := wql.EvalGrid(context.Background(), e, counted, o)
				if err != nil {
					t.Fatalf("%s %v: %v", q, o, err)
				}
				want, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv}, o)
				if err != nil {
					t.Fatal(err)
				}
				if count(rg, step) {
					used += int(counted.windows.Load())
				}
				if err := sameGrid(got, want); err != nil {
					t.Errorf("%s over %s step %dm: %v", q, where(rg), step/minute, err)
				}
			}
		}
	}
	return used
}

// countingStore counts the windows SelectRollup returns.
type countingStore struct {
	queryStore
	windows atomic.Int64 // Eval reads the sides of a / b at once
}

func (c *countingStore) SelectRollup(ctx context.Context, glob string, m wql.Matcher, start, end int64, kind wql.RollupKind, fn func(*wql.Series) error) error {
	return c.queryStore.SelectRollup(ctx, glob, m, start, end, kind, func(s *wql.Series) error {
		c.windows.Add(int64(len(s.Windows)))
		return fn(s)
	})
}

// sameGrid compares two results; sums of the same values in another order
// may differ in the last bits.
func sameGrid(got, want *wql.Grid) error {
	if got.Start != want.Start || got.Step != want.Step || len(got.Series) != len(want.Series) {
		return fmt.Errorf("grid %d/%d with %d series, want %d/%d with %d", got.Start, got.Step, len(got.Series), want.Start, want.Step, len(want.Series))
	}
	for i, g := range got.Series {
		w := want.Series[i]
		if g.Name != w.Name || g.Source != w.Source || fmt.Sprint(g.Tags) != fmt.Sprint(w.Tags) || len(g.Vals) != len(w.Vals) {
			return fmt.Errorf("series %d: %s %s %v (%d values), want %s %s %v (%d)", i, g.Name, g.Source, g.Tags, len(g.Vals), w.Name, w.Source, w.Tags, len(w.Vals))
		}
		for j, x := range g.Vals {
			y := w.Vals[j]
			if math.IsNaN(x) != math.IsNaN(y) || (!math.IsNaN(x) && math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(y))) {
				return fmt.Errorf("series %s %v bucket %d: %v, want %v", g.Source, g.Tags, j, x, y)
			}
		}
	}
	return nil
}

// TestRollupLifecycle: a rollup is rebuilt when it is unreadable, goes
// with its block, and queries fall back to samples without it.
func TestRollupLifecycle(t *testing.T) {
	s, t0, end := rollupFixture(t)
	b := s.metrics.db.Blocks()[0]
	path := filepath.Join(s.rollups.dir, b.Meta().ULID.String()+rollupExt)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A flipped byte fails the checksum: the next sync rebuilds it.
	s.rollups.close()
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openRollup(path); err == nil {
		t.Fatal("a corrupt rollup opened")
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if _, err := openRollup(path); err != nil {
		t.Fatalf("not rebuilt: %v", err)
	}

	// A file of the previous format version (checksum intact) is rebuilt.
	s.rollups.close()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(old[4:], rollupVersion-1)
	binary.LittleEndian.PutUint32(old[len(old)-4:], crc32.Checksum(old[:len(old)-4], castagnoli))
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openRollup(path); !errors.Is(err, errRollupVersion) {
		t.Fatalf("a version %d rollup opened with %v", rollupVersion-1, err)
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if _, err := openRollup(path); err != nil {
		t.Fatalf("old format not rebuilt: %v", err)
	}

	// Orphans and leftovers of a crash go.
	stray := filepath.Join(s.rollups.dir, "01ARZ3NDEKTSV4RRFFQ69G5FAV"+rollupExt)
	for _, p := range []string{stray, path + ".tmp"} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	for _, p := range []string{stray, path + ".tmp"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", filepath.Base(p), err)
		}
	}

	// Without rollups, the same answers.
	e, _ := wql.Parse("sum(rate(ts(roll.counter)), app)", nil)
	o := wql.Options{Start: t0, End: end, Step: 5 * 60_000}
	with, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}, o)
	if err != nil {
		t.Fatal(err)
	}
	s.rollups.sync(context.Background(), nil) // as if every block were gone
	if n := len(s.rollups.files); n != 0 {
		t.Fatalf("%d rollups left without blocks", n)
	}
	if ents, _ := os.ReadDir(s.rollups.dir); len(ents) != 0 {
		t.Fatalf("%d files left without blocks", len(ents))
	}
	without, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameGrid(with, without); err != nil {
		t.Fatal(err)
	}
}

// FuzzRollupFile: a damaged rollup is refused or read without a crash,
// whatever the damage. The checksum is recomputed so that damage reaches
// the parsing behind it.
func FuzzRollupFile(f *testing.F) {
	f.Add(smallRollup(f))
	f.Add([]byte("MWRU"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 4 {
			b = binary.LittleEndian.AppendUint32(b[:len(b)-4:len(b)-4], crc32.Checksum(b[:len(b)-4], castagnoli))
		}
		r, err := parseRollup(b)
		if err != nil {
			return
		}
		var sb labels.ScratchBuilder
		for i := 0; i < len(r.table)/16; i++ {
			rec, ok, err := r.lookup(storage.SeriesRef(binary.LittleEndian.Uint64(r.table[i*16:])))
			if err != nil || !ok {
				continue
			}
			r.appendLabels(&rec, &sb)
			rec.meanWindows(nil, math.MinInt64)
			rec.rateWindows(nil, 0, 0)
			rec.firstWindowFrom(0)
		}
	})
}

// smallRollup is the rollup of a block of a few series of each kind the
// columns encode differently (see TestRollupWindowCodec).
func smallRollup(tb testing.TB) []byte {
	dir := tb.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*3600_000)
	if err != nil {
		tb.Fatal(err)
	}
	app := w.Appender(context.Background())
	for i, pts := range codecSeries(rand.New(rand.NewPCG(5, 6)), 40) {
		lset := labels.FromStrings(labelName, "m", labelSource, fmt.Sprint("h", i), "k", "v")
		for _, p := range pts {
			if _, err := app.Append(0, lset, p.T, p.V); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		tb.Fatal(err)
	}
	id, err := w.Flush(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	w.Close()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), filepath.Join(dir, id.String()), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(dir, "r"+rollupExt)
	if err := buildRollup(context.Background(), b, path); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// codecSeries returns series of about n samples (1-minute scrapes unless
// said otherwise) that take every encoding of the rollup columns.
func codecSeries(r *rand.Rand, n int) [][]wql.Point {
	const minute = 60_000
	var out [][]wql.Point
	series := func(f func(i int) (int64, float64, bool)) {
		var pts []wql.Point
		for i := range n {
			if t, v, ok := f(i); ok {
				pts = append(pts, wql.Point{T: t, V: v})
			}
		}
		out = append(out, pts)
	}
	counter := 0.0
	series(func(i int) (int64, float64, bool) { // integral counter, resets
		counter += float64(1 + r.IntN(8))
		if r.IntN(50) == 0 {
			counter = 0
		}
		return int64(i)*minute + 7_000, counter, true
	})
	fc := 0.0
	series(func(i int) (int64, float64, bool) { // float counter, jitter, missed scrapes
		fc += r.Float64() * 40
		return int64(i)*minute + int64(r.IntN(2000)), fc, r.IntN(10) != 0
	})
	series(func(i int) (int64, float64, bool) { // gauge: rate pairs come and go
		return int64(i) * minute, r.NormFloat64() * 100, true
	})
	series(func(i int) (int64, float64, bool) { // integral gauge
		return int64(i) * minute, float64(i * i % 17), true
	})
	series(func(i int) (int64, float64, bool) { // mostly repeated values
		return int64(i) * minute, 0.25 * float64(i/10), true
	})
	levels := []float64{0.1, 0.2, 0.3, 0.7, 1.1}
	series(func(i int) (int64, float64, bool) { // a few levels, once a window
		return int64(i) * 5 * minute, levels[r.IntN(len(levels))], true
	})
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 1e300, 1 << 60, -(1 << 53), 1<<53 + 2, 3.5}
	series(func(i int) (int64, float64, bool) { // values integral columns must refuse
		return int64(i) * minute, specials[i%len(specials)], true
	})
	series(func(i int) (int64, float64, bool) { // near 2^53: integral, huge deltas
		return int64(i) * minute, float64(int64(1)<<53 - int64(r.IntN(1<<40))), true
	})
	series(func(i int) (int64, float64, bool) { // every second: 300 samples a window
		return int64(i) * 1000, float64(i * 3), true
	})
	series(func(i int) (int64, float64, bool) { // sparse: gaps of hours, lone samples
		return int64(i) * 97 * minute, float64(i), i%3 != 1
	})
	out = append(out, []wql.Point{{T: -3 * minute, V: 1}}) // one sample, before 0
	return out
}

// TestRollupWindowCodec: the windows read back from a record are, bit for
// bit, those computed from the samples here, for every encoding of the
// columns and every from and skip.
func TestRollupWindowCodec(t *testing.T) {
	const w = rollupWidth
	encodings := map[string]bool{}
	for i, pts := range codecSeries(rand.New(rand.NewPCG(9, 10)), 2000) {
		var acc windowAcc
		acc.reset()
		for _, p := range pts {
			if err := acc.add(p.T, p.V); err != nil {
				t.Fatal(err)
			}
		}
		var rec rollupRecord
		if err := rec.parseWindows(acc.appendWindows(nil)); err != nil {
			t.Fatal(err)
		}
		for c, col := range rec.cols[colN:] {
			if len(col) > 0 {
				encodings[fmt.Sprint(c+colN >= colSum, col[0])] = true
			}
		}

		// The windows, from the samples.
		type window struct {
			t                    int64
			sum, n, rateSum      float64
			rateN                float64
			entry                float64
			hasEntry, hasSamples bool
		}
		var wins []window
		for k, p := range pts {
			wt := p.T - mod(p.T, w)
			if len(wins) == 0 || wins[len(wins)-1].t != wt {
				wins = append(wins, window{t: wt, hasSamples: true})
			}
			cur := &wins[len(wins)-1]
			cur.sum += p.V
			cur.n++
			if k == 0 {
				continue
			}
			if r, ok := wql.RatePair(pts[k-1], p); !ok {
				continue
			} else if pts[k-1].T-mod(pts[k-1].T, w) == wt {
				cur.rateSum += r
				cur.rateN++
			} else {
				cur.entry, cur.hasEntry = r, true
			}
		}

		mid := wins[len(wins)/2].t
		froms := []int64{math.MinInt64, wins[0].t, mid, mid + w, wins[len(wins)-1].t, wins[len(wins)-1].t + w}
		skips := []int64{math.MinInt64, mid}
		for _, from := range froms {
			var want []wql.Window
			for _, x := range wins {
				if x.t >= from {
					want = append(want, wql.Window{T: x.t, Sum: x.sum, N: x.n})
				}
			}
			got, err := rec.meanWindows([]wql.Window{{T: -1}}, from)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameWindows(got, want); err != nil {
				t.Errorf("series %d mean windows from %d: %v", i, from, err)
			}

			for _, skip := range skips {
				want = want[:0]
				for _, x := range wins {
					sum, n := x.rateSum, x.rateN
					if x.hasEntry && x.t != skip {
						sum, n = x.entry+sum, n+1
					}
					if x.t >= from && n > 0 {
						want = append(want, wql.Window{T: x.t, Sum: sum, N: n})
					}
				}
				got, err := rec.rateWindows([]wql.Window{{T: -1}}, from, skip)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameWindows(got, want); err != nil {
					t.Errorf("series %d rate windows from %d skipping %d: %v", i, from, skip, err)
				}
			}

			wantT, wantOK := int64(0), false
			for _, x := range wins {
				if x.t >= from {
					wantT, wantOK = x.t, true
					break
				}
			}
			if gotT, ok, err := rec.firstWindowFrom(from); err != nil || gotT != wantT || ok != wantOK {
				t.Errorf("series %d first window from %d: %d %v %v, want %d %v", i, from, gotT, ok, err, wantT, wantOK)
			}
		}
	}
	for _, enc := range []string{
		fmt.Sprint(false, intsRuns), fmt.Sprint(false, intsBytes),
		fmt.Sprint(true, floatsRaw), fmt.Sprint(true, floatsXOR), fmt.Sprint(true, floatsDelta), fmt.Sprint(true, floatsDeltaOfDelta), fmt.Sprint(true, floatsDict),
	} {
		if !encodings[enc] {
			t.Errorf("no column encoded as (values, encoding) %s", enc)
		}
	}
}

// sameWindows compares got, after a sentinel window, with want, floats
// bit for bit.
func sameWindows(got, want []wql.Window) error {
	if len(got) == 0 || got[0].T != -1 {
		return errors.New("the window before them was overwritten")
	}
	got = got[1:]
	if len(got) != len(want) {
		return fmt.Errorf("%d windows, want %d", len(got), len(want))
	}
	for i, g := range got {
		x := want[i]
		if g.T != x.T || math.Float64bits(g.Sum) != math.Float64bits(x.Sum) || g.N != x.N {
			return fmt.Errorf("window %d: %+v, want %+v", i, g, x)
		}
	}
	return nil
}
