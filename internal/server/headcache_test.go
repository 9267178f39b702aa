package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/meshwave/meshwave/internal/wql"
)

// TestHeadCacheMatchesSamples: charts that read the head's closed windows
// from the head cache answer exactly as the samples do: on the read that
// fills it, on later reads, after more in-order samples (which extend
// it), with out-of-order samples inside cached windows, and after the
// head (and those late samples) went into blocks.
func TestHeadCacheMatchesSamples(t *testing.T) {
	const minute, hour = 60_000, 3600_000
	s, t0, end := rollupFixture(t)
	hc := s.rollups.head

	if used := compareHead(t, s, t0, end); used == 0 {
		t.Fatal("filling: no head window read")
	}
	if hc.len() == 0 {
		t.Fatal("nothing cached")
	}
	if used := compareHead(t, s, t0, end); used == 0 {
		t.Fatal("cached: no head window read")
	}

	end = appendInOrder(t, s, end, 25*minute)
	if used := compareHead(t, s, t0, end); used == 0 {
		t.Fatal("extended: no head window read")
	}

	// Late samples for cached windows: the out-of-order head has them, so
	// those ranges are read through a querier.
	app := s.metrics.db.Appender(context.Background())
	for i := range 48 {
		lset := fixtureLabels(i)
		for k := range 5 {
			ts := end - 70*minute + int64(k*11)*minute + 30_001
			if _, err := app.Append(0, lset, ts, float64(7e6+k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	compareHead(t, s, t0, end)

	// The head's time goes into a block (the late samples into blocks of
	// their own), and the head keeps only what came after.
	lastBlockEnd := func() int64 {
		bs := s.metrics.db.Blocks()
		return bs[len(bs)-1].Meta().MaxTime
	}
	before := lastBlockEnd()
	end = appendInOrder(t, s, end, 3*hour)
	compareHead(t, s, t0, end)
	if err := s.metrics.db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lastBlockEnd() <= before {
		t.Fatal("the head was not compacted")
	}
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if used := compareHead(t, s, t0, end); used == 0 {
		t.Fatal("compacted: no head window read")
	}
}

// TestHeadCacheConcurrentIngest: windows cached while samples arrive (and
// queries run in parallel) are those the samples give once they are all
// in. Run with -race.
func TestHeadCacheConcurrentIngest(t *testing.T) {
	const minute = 60_000
	s, t0, end := rollupFixture(t)
	exprs := []wql.Expr{}
	for _, q := range []string{"sum(rate(ts(roll.counter)))", "ts(roll.gauge)", "rate(ts(roll.counter, app=a1))"} {
		e, err := wql.Parse(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		exprs = append(exprs, e)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	newEnd := end + 40*minute
	wg.Go(func() {
		defer done.Store(true)
		for ts := end; ts < newEnd; ts += minute {
			app := s.metrics.db.Appender(context.Background())
			for i := range 48 {
				if _, err := app.Append(0, fixtureLabels(i), ts+int64(i)*300, float64(ts/minute)); err != nil {
					t.Error(err)
					return
				}
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for g := range 2 {
		wg.Go(func() {
			for n := 0; !done.Load() || n < 3; n++ {
				e := exprs[(n+g)%len(exprs)]
				o := wql.Options{Start: end - 3*60*minute, End: end + 60*minute, Step: 5 * minute}
				if _, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}, o); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if used := compareHead(t, s, t0, newEnd); used == 0 {
		t.Fatal("no head window read")
	}
}

// fixtureLabels are the labels of rollupFixture's series i.
func fixtureLabels(i int) labels.Labels {
	name := "roll.counter"
	if i%3 == 2 {
		name = "roll.gauge"
	}
	return labels.FromStrings(labelName, name, labelSource, fmt.Sprintf("pod-%d", i), "app", fmt.Sprintf("a%d", i%4))
}

// appendInOrder appends a sample a minute for every fixture series over
// d after end (counters rising again from a reset, faster and faster)
// and returns the new end.
func appendInOrder(t *testing.T, s *testServer, end, d int64) int64 {
	t.Helper()
	const minute = 60_000
	for ts := end; ts < end+d; ts += minute {
		app := s.metrics.db.Appender(context.Background())
		for i := range 48 {
			m := (ts - end) / minute
			v := float64(m*m*int64(1+i%5) + m*7919%13) // rates that vary, now and then a reset
			if i%3 == 2 {
				v = float64(i*i%17) - float64(ts/minute%13)
			}
			if i%8 == 7 && (ts-end)/minute%9 == 4 {
				continue // a missed scrape
			}
			if _, err := app.Append(0, fixtureLabels(i), ts+int64(i*997%20_000), v); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return end + d
}

// compareHead is compareRollups over ranges that reach into the head,
// start or end inside it, aligned to windows or not; it returns how many
// windows came from the head cache's range (after the last block).
func compareHead(t *testing.T, s *testServer, t0, end int64) int {
	t.Helper()
	const minute, hour = 60_000, 3600_000
	queries := []string{
		"ts(roll.gauge)",
		"ts(roll.counter, app=a1)",
		"rate(ts(roll.counter))",
		"sum(rate(ts(roll.counter)))",
		"avg(ts(roll.gauge), app)",
		"100 * sum(rate(ts(roll.counter, app=a2))) / sum(rate(ts(roll.counter)))",
		"last(10m, ts(roll.gauge))",
	}
	blocks := s.metrics.db.Blocks()
	headFrom := blocks[len(blocks)-1].Meta().MaxTime
	ranges := [][2]int64{
		{t0, end},
		{end - 2*hour, end},
		{end - 3*hour, end + hour},
		{end - 100*minute, end - 37*minute},    // ends inside closed windows
		{end - 100*minute + 17_123, end},       // unaligned start
		{headFrom, end},                        // from the last block's end
		{headFrom + 5*minute, end - minute},    // inside the head alone
		{end - 10*minute, end},                 // a table's range
		{headFrom - hour, headFrom + 2*minute}, // across the last block's end
	}
	steps := []int64{5 * minute, 15 * minute, hour, minute}
	return compareGrids(t, s, queries, ranges, steps, func(rg [2]int64, step int64) bool {
		return rg[0]/step*step >= headFrom // no block in the grid
	}, func(rg [2]int64) string {
		return fmt.Sprintf("[end%+dm, end%+dm]", (rg[0]-end)/minute, (rg[1]-end)/minute)
	})
}

// TestRollupKeptLabels: rollup files keep the label sets queries built,
// within the budget, and give the bytes back when they close.
func TestRollupKeptLabels(t *testing.T) {
	s, t0, end := rollupFixture(t)
	e, err := wql.Parse("sum(rate(ts(roll.counter)), app)", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := wql.Options{Start: t0, End: end, Step: 5 * 60_000}
	eval := func() *wql.Grid {
		t.Helper()
		g, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}, o)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	first := eval()
	kept := s.rollups.keptLabels.Load()
	if kept == 0 {
		t.Fatal("no label set kept")
	}
	if err := sameGrid(eval(), first); err != nil {
		t.Fatalf("with kept labels: %v", err)
	}
	if s.rollups.keptLabels.Load() != kept {
		t.Fatalf("kept %d bytes, then %d for the same series", kept, s.rollups.keptLabels.Load())
	}
	s.rollups.sync(context.Background(), nil)
	if n := s.rollups.keptLabels.Load(); n != 0 {
		t.Fatalf("%d bytes kept after the files closed", n)
	}
	// A spent budget keeps nothing more; answers stay the same.
	s.rollups.keptLabels.Store(maxKeptLabels)
	s.rollups.sync(context.Background(), s.metrics.db.Blocks())
	if err := sameGrid(eval(), first); err != nil {
		t.Fatalf("over budget: %v", err)
	}
	if n := s.rollups.keptLabels.Load(); n != maxKeptLabels {
		t.Fatalf("over budget: %d bytes kept, want %d", n, maxKeptLabels)
	}
}
