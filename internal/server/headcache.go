package server

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/meshwave/meshwave/internal/wql"
)

// The head cache: what rollups are to blocks, for the tsdb head. A chart
// over a day reads the blocks from their rollups, but the last two or
// three hours are in the head, and reading them sample by sample was
// most of what such a chart cost. The cache keeps, per head series, the
// same 5-minute windows a rollup holds for the windows that are closed:
// those that end at or before the series' newest sample. The tsdb takes
// a series' in-order samples only after its newest one, so a closed
// window never changes; a sample older than that goes to the
// out-of-order head, and ranges where it has samples (or, once it is
// compacted, where a block has them) are read through a querier, as
// rolledUp does for blocks. A query then reads the closed windows from
// the cache and, from the head's chunks, only the samples after them,
// and each read extends the series' entry to the windows that closed
// since.
//
// Memory: an entry holds one 48-byte headWindow per window from the
// head's first one on, and only series that rollup-able queries (ts()
// bucketed or rate(ts()) at steps of 5-minute multiples) read get one:
// at most the head's series × (head span / 5 min + 1) windows, about
// 37 × 48 B = 1.8 KB per series for the tsdb's usual 3-hour head, 180 MB
// for 100 k series all charted. Windows before the head are dropped when
// the entry is next extended, and entries of series the head no longer
// has at the first query after the head is truncated. The cache lives in
// memory only: after a restart the first queries fill it.

// headWindow summarizes a series' samples in one window: as a rollup
// window does (rollupWindow), and its first sample, which a rate() over a
// range starting at the window pairs with a sample before the head.
type headWindow struct {
	sum     float64
	rateSum float64 // rates of the pairs inside the window
	entry   float64 // rate of the pair entering it from an earlier window
	firstV  float64
	firstDT int32 // first sample's time after the window's start
	n       uint32
	rateN   uint32
	// hasEntry: the pair entering the window is there and rate() keeps it.
	hasEntry bool
}

// headEntry is one series' closed windows: wins[i] is [start+i·width,
// start+(i+1)·width), up to end. An entry never changes once published;
// extending makes a new one, so readers need no lock.
type headEntry struct {
	// lset is the series' labels, kept so that reading the series builds
	// them no more.
	lset       labels.Labels
	start, end int64
	// before: the series has samples before start, which the entry
	// leaves out (they are older than the head).
	before bool
	first  wql.Point // first sample in [start, end)
	last   wql.Point // last sample in [start, end)
	wins   []headWindow
}

// headCache maps head series references, which the tsdb never reuses
// while it runs, to their entries.
type headCache struct {
	shards [headShards]struct {
		mu sync.Mutex
		m  map[storage.SeriesRef]*headEntry
	}
	// sweptMin is the head's MinTime at the last sweep.
	sweptMin atomic.Int64

	orderMu sync.Mutex
	orders  map[string]headOrder // by matchers (orderKey)
	ordered int                  // references the orders hold
}

// headOrder is the label order of the head series a set of matchers
// selected: sorting them (by labels, which means reading every series')
// was a tenth of a dashboard's cost, and the same charts select the same
// series load after load. A series' labels never change, so the order
// holds for as long as the selection is the same set.
type headOrder struct {
	set    []storage.SeriesRef // ascending, as the index lists them
	sorted []storage.SeriesRef
}

// maxOrdered bounds the references headOrders keep (16 MB).
const maxOrdered = 1 << 20

const headShards = 16

func newHeadCache() *headCache {
	c := &headCache{}
	for i := range c.shards {
		c.shards[i].m = map[storage.SeriesRef]*headEntry{}
	}
	c.sweptMin.Store(math.MinInt64)
	c.orders = map[string]headOrder{}
	return c
}

// sortedPostings returns p in label order, from the order kept for ms
// when it selected the same series then.
func (c *headCache) sortedPostings(ir tsdb.IndexReader, p index.Postings, ms []*labels.Matcher) (index.Postings, error) {
	set, err := index.ExpandPostings(p)
	if err != nil {
		return nil, err
	}
	key := orderKey(ms)
	c.orderMu.Lock()
	o, ok := c.orders[key]
	c.orderMu.Unlock()
	if ok && slices.Equal(o.set, set) {
		return index.NewListPostings(o.sorted), nil
	}
	sorted, err := index.ExpandPostings(ir.SortedPostings(index.NewListPostings(set)))
	if err != nil {
		return nil, err
	}
	c.orderMu.Lock()
	if old, ok := c.orders[key]; ok {
		c.ordered -= len(old.set) + len(old.sorted)
	}
	if c.ordered+len(set)+len(sorted) > maxOrdered {
		clear(c.orders)
		c.ordered = 0
	}
	c.orders[key] = headOrder{set: set, sorted: sorted}
	c.ordered += len(set) + len(sorted)
	c.orderMu.Unlock()
	return index.NewListPostings(sorted), nil
}

func orderKey(ms []*labels.Matcher) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String())
		b.WriteByte(0xff)
	}
	return b.String()
}

func (c *headCache) get(ref storage.SeriesRef) *headEntry {
	sh := &c.shards[ref%headShards]
	sh.mu.Lock()
	e := sh.m[ref]
	sh.mu.Unlock()
	return e
}

// put publishes e unless another read has published a longer entry.
func (c *headCache) put(ref storage.SeriesRef, e *headEntry) {
	sh := &c.shards[ref%headShards]
	sh.mu.Lock()
	if old := sh.m[ref]; old == nil || old.end < e.end {
		sh.m[ref] = e
	}
	sh.mu.Unlock()
}

// sweep drops the entries with no window in the head, once per head
// truncation: those of series the head has dropped since.
func (c *headCache) sweep(headMin int64) {
	swept := c.sweptMin.Load()
	if headMin <= swept || !c.sweptMin.CompareAndSwap(swept, headMin) {
		return
	}
	floor := headMin - mod(headMin, rollupWidth)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for ref, e := range sh.m {
			if e.end <= floor {
				delete(sh.m, ref)
			}
		}
		sh.mu.Unlock()
	}
}

// len is the number of entries.
func (c *headCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// extend returns the entry for a series with labels lset whose chunks
// hold pts from old.end on (from its first sample without old), or old
// when no window closed since. Windows before headMin's are left out.
func (old *headEntry) extend(lset labels.Labels, pts []wql.Point, headMin int64) *headEntry {
	if len(pts) == 0 {
		return old
	}
	lastT := pts[len(pts)-1].T
	end := lastT - mod(lastT, rollupWidth) // windows before it are closed
	floor := headMin - mod(headMin, rollupWidth)
	e := &headEntry{}
	var prev wql.Point
	hasPrev := false
	if old != nil {
		if end <= old.end {
			return old
		}
		*e = *old
		prev, hasPrev = old.last, true
		kept := old.wins
		if drop := int((floor - old.start) / rollupWidth); drop > 0 {
			// Windows older than the head: no query reads them from here.
			drop = min(drop, len(kept))
			for _, w := range kept[:drop] {
				e.before = e.before || w.n > 0
			}
			e.start += int64(drop) * rollupWidth
			kept = kept[drop:]
		}
		e.wins = make([]headWindow, len(kept), len(kept)+int((end-old.end)/rollupWidth))
		copy(e.wins, kept)
	} else {
		e.lset = lset
		e.start = max(pts[0].T-mod(pts[0].T, rollupWidth), floor)
		e.end = e.start
		e.wins = make([]headWindow, 0, max(0, (end-e.start)/rollupWidth))
	}
	for _, p := range pts {
		if p.T >= end {
			break
		}
		if p.T < e.start {
			prev, hasPrev, e.before = p, true, true
			continue
		}
		i := int((p.T - e.start) / rollupWidth)
		for len(e.wins) <= i {
			e.wins = append(e.wins, headWindow{})
		}
		w := &e.wins[i]
		if w.n == 0 {
			w.firstDT, w.firstV = int32(p.T-e.start-int64(i)*rollupWidth), p.V
			if hasPrev {
				w.entry, w.hasEntry = wql.RatePair(prev, p)
			}
		} else if r, ok := wql.RatePair(prev, p); ok {
			w.rateSum += r
			w.rateN++
		}
		w.sum += p.V
		w.n++
		prev, hasPrev = p, true
		e.last = p
	}
	for len(e.wins) < int((end-e.start)/rollupWidth) {
		e.wins = append(e.wins, headWindow{})
	}
	e.end = end
	e.first = wql.Point{}
	found := false
	for i, w := range e.wins {
		if w.n > 0 {
			e.first, found = e.windowFirst(i), true
			break
		}
	}
	if !found {
		return nil // nothing closed yet
	}
	return e
}

func (e *headEntry) windowFirst(i int) wql.Point {
	return wql.Point{T: e.start + int64(i)*rollupWidth + int64(e.wins[i].firstDT), V: e.wins[i].firstV}
}

// feed gives r the entry's windows that stand for the samples in
// [lo, hi], and returns the time from which r still needs samples: lo
// when the windows cannot stand for any.
func (e *headEntry) feed(r *seriesReader, lo, hi int64) int64 {
	cut := min(e.end, hi+1-mod(hi+1, rollupWidth))
	all := lo <= e.first.T && !e.before // every sample the entry has is in range
	if !all && (mod(lo, rollupWidth) != 0 || lo < e.start) {
		return lo
	}
	from := int64(math.MinInt64)
	if !all {
		from = lo
	}
	i0 := 0
	if from > e.start {
		i0 = int((from - e.start) / rollupWidth)
	}
	i1 := int((cut - e.start) / rollupWidth)
	first := -1 // the first window with samples in range
	for i := i0; i < i1; i++ {
		if e.wins[i].n > 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return lo
	}
	switch r.kind {
	case wql.RollupMean:
		for i := first; i < i1; i++ {
			if w := &e.wins[i]; w.n > 0 {
				r.wins = append(r.wins, wql.Window{T: e.start + int64(i)*rollupWidth, Sum: w.sum, N: float64(w.n)})
			}
		}
		return cut
	case wql.RollupRate:
		if cut < e.end {
			return lo // rate() pairs the next sample with the last before cut, which the entry does not keep
		}
		// The pair entering the first window comes from before the range:
		// rate() pairs its first sample with the sample r has from an
		// earlier range, if any.
		r.pair(e.windowFirst(first))
		for i := first; i < i1; i++ {
			w := &e.wins[i]
			sum, n := w.rateSum, float64(w.rateN)
			if w.hasEntry && i != first {
				// Summed first, as rate() meets it first.
				sum, n = w.entry+sum, n+1
			}
			if n > 0 {
				r.wins = append(r.wins, wql.Window{T: e.start + int64(i)*rollupWidth, Sum: sum, N: n})
			}
		}
		r.prev, r.hasPrev = e.last, true
		return cut
	}
	return lo
}

// headOnly tells whether range [lo, hi] holds samples only in the head's
// in-order chunks: no block overlaps it, nor (with late), for the series
// ms select, does the out-of-order head. (Deletions, which a querier
// would apply, there are none: the server never deletes samples.)
func (m *metricStore) headOnly(ctx context.Context, lo, hi int64, ms []*labels.Matcher, late bool) bool {
	h := m.db.Head()
	if h.NumSeries() == 0 || h.MaxTime() < lo {
		return false
	}
	for _, b := range m.db.Blocks() {
		if meta := b.Meta(); meta.MinTime <= hi && meta.MaxTime > lo {
			return false
		}
	}
	return !(late && h.MinOOOTime() <= hi && h.MaxOOOTime() >= lo && lateSamples(ctx, h, lo, hi, ms))
}

// newHeadSource opens [lo, hi] of the head when it holds everything
// there (headOnly), or returns nil. With cache, rollup-able reads take the
// closed windows from it, and sorted postings come in the order it keeps.
func (m *metricStore) newHeadSource(ctx context.Context, cache *headCache, kind wql.RollupKind, lo, hi int64, ms []*labels.Matcher, sorted bool) (*headSource, error) {
	if !m.headOnly(ctx, lo, hi, ms, false) {
		return nil, nil
	}
	h := m.db.Head()
	// The chunk reader registers a read of the whole head, which the tsdb
	// waits for before it truncates the head; a truncation (and the block
	// that took the samples) that came before is seen by the check after,
	// and so is a late sample committed before.
	cr, err := h.Chunks()
	if err != nil {
		return nil, err
	}
	if !m.headOnly(ctx, lo, hi, ms, true) {
		cr.Close()
		return nil, nil
	}
	headMin := h.MinTime()
	if cache != nil {
		cache.sweep(headMin)
	}
	ir, err := h.Index()
	if err != nil {
		cr.Close()
		return nil, err
	}
	p, err := tsdb.PostingsForMatchers(ctx, ir, ms...)
	if err != nil {
		cr.Close()
		return nil, err
	}
	switch {
	case sorted && cache != nil:
		if p, err = cache.sortedPostings(ir, p, ms); err != nil {
			cr.Close()
			return nil, err
		}
	case sorted:
		p = ir.SortedPostings(p)
	}
	src := &headSource{ir: ir, cr: cr, p: p, lo: lo, hi: hi, headMin: headMin}
	if kind != 0 {
		src.cache = cache
	}
	return src, nil
}

// headSource reads a range of the head from its index and chunks, as a
// querier over the range would without its merging of blocks and
// out-of-order samples, which the range has none of (headOnly).
type headSource struct {
	ir      tsdb.IndexReader
	cr      tsdb.ChunkReader
	p       index.Postings
	lo, hi  int64
	headMin int64
	cache   *headCache // nil: samples only
	ref     storage.SeriesRef
	entry   *headEntry // the current series', if cached
	sb      labels.ScratchBuilder
	lset    labels.Labels
	chks    []chunks.Meta
	it      chunkenc.Iterator
	pts     []wql.Point // samples that extend the current series' entry
	readErr error
}

func (s *headSource) next() bool {
	for s.readErr == nil && s.p.Next() {
		s.ref = s.p.At()
		err := s.ir.Series(s.ref, &s.sb, &s.chks)
		if errors.Is(err, storage.ErrNotFound) {
			continue // dropped from the head since the postings were read
		}
		if err != nil {
			s.readErr = err
			return false
		}
		if s.cache != nil {
			s.entry = s.cache.get(s.ref)
		}
		if s.entry != nil {
			s.lset = s.entry.lset
		} else {
			s.lset = s.sb.Labels()
		}
		return true
	}
	return false
}

func (s *headSource) labels() labels.Labels { return s.lset }
func (s *headSource) err() error {
	if s.readErr != nil {
		return s.readErr
	}
	return s.p.Err()
}
func (s *headSource) close() { s.ir.Close(); s.cr.Close() }

// read feeds r the current series' samples in [lo, hi], the closed
// windows from the cache in place of theirs when r can take windows.
func (s *headSource) read(r *seriesReader) error {
	if s.cache == nil {
		return s.samples(r, s.lo, s.lo, nil)
	}
	e := s.entry
	from, grow := s.lo, int64(math.MinInt64)
	if e != nil {
		from = e.feed(r, s.lo, s.hi)
		grow = e.end
	}
	s.pts = s.pts[:0]
	if err := s.samples(r, from, grow, &s.pts); err != nil {
		return err
	}
	if ne := e.extend(s.lset, s.pts, s.headMin); ne != e && ne != nil {
		s.cache.put(s.ref, ne)
	}
	return nil
}

// samples feeds r the samples in [from, hi] and, with grow, appends to it
// every sample from growFrom on.
func (s *headSource) samples(r *seriesReader, from, growFrom int64, grow *[]wql.Point) error {
	lo := from
	if grow != nil {
		lo = min(from, growFrom)
	}
	for _, m := range s.chks {
		if m.MaxTime < lo || (grow == nil && m.MinTime > s.hi) {
			continue
		}
		var err error
		if s.it, err = chunkIterator(s.cr, m, s.it); err != nil {
			return err
		}
		for s.it.Next() == chunkenc.ValFloat {
			t, v := s.it.At()
			if t >= from && t <= s.hi {
				r.sample(t, v)
			}
			if grow != nil && t >= growFrom {
				*grow = append(*grow, wql.Point{T: t, V: v})
			}
		}
		if err := s.it.Err(); err != nil {
			return err
		}
	}
	return nil
}
