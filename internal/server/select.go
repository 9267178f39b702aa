package server

import (
	"cmp"
	"context"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/meshwave/meshwave/internal/wql"
)

// globRegexp turns a Wavefront glob (only '*' is special and matches any
// run of characters, dots included) into an anchored regular expression
// for a label matcher.
func globRegexp(glob string) string {
	parts := strings.Split(glob, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, ".*")
}

// nameMatcher selects metric names by glob, exactly when there is no '*'.
func nameMatcher(glob string) (*labels.Matcher, error) {
	if !strings.Contains(glob, "*") {
		return labels.NewMatcher(labels.MatchEqual, labelName, glob)
	}
	return labels.NewMatcher(labels.MatchRegexp, labelName, globRegexp(glob))
}

// Select returns the series whose name matches metricGlob and whose source
// and tags satisfy mt (nil: all), with their points in [start, end] (Unix
// ms), each with its own Points.
func (m *metricStore) Select(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64) ([]wql.Series, error) {
	var out []wql.Series
	err := m.each(ctx, metricGlob, mt, start, end, nil, 0, nil, func(s *wql.Series) error {
		c := *s
		c.Tags = slices.Clone(s.Tags)
		c.Points = slices.Clone(s.Points)
		out = append(out, c)
		return nil
	})
	return out, err
}

// queryStore is what the query endpoint evaluates against: metrics from
// the tsdb (wql.Storage) and histograms from bbolt (wql.DistStorage), and
// the tsdb blocks' rollups (wql.RollupStorage) when ru is set.
type queryStore struct {
	m  *metricStore
	kv *kvStore
	ru *rollupSet
	// mem, when set, holds the selected series' tag lists until the
	// request releases it; without it they are garbage-collected.
	mem *queryMemory
}

// Select implements wql.Storage, streaming series with a reused Points
// buffer.
func (q queryStore) Select(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, fn func(*wql.Series) error) error {
	return q.selectKind(ctx, metricGlob, mt, start, end, 0, fn)
}

// RollupWidth implements wql.RollupStorage.
func (q queryStore) RollupWidth() int64 {
	if q.ru == nil {
		return 0
	}
	return rollupWidth
}

// SelectRollup implements wql.RollupStorage.
func (q queryStore) SelectRollup(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, kind wql.RollupKind, fn func(*wql.Series) error) error {
	return q.selectKind(ctx, metricGlob, mt, start, end, kind, fn)
}

// selectKind wraps store failures in storageError so the query endpoint
// can tell them from query errors.
func (q queryStore) selectKind(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, kind wql.RollupKind, fn func(*wql.Series) error) error {
	var fnErr error
	err := q.m.each(ctx, metricGlob, mt, start, end, q.ru, kind, q.mem, func(s *wql.Series) error {
		fnErr = fn(s)
		return fnErr
	})
	if err != nil && err != fnErr && ctx.Err() == nil {
		return storageError{err}
	}
	return err
}

// storageError marks a failure of the store, as opposed to the query.
type storageError struct{ err error }

func (e storageError) Error() string { return "storage: " + e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

// each calls fn for every matching series; s.Points and s.Windows are
// reused between calls. The filter's top-level conjunction goes to the
// tsdb's index as label matchers; the rest is checked here on the decoded
// tags. With ru and a kind, ranges that one rolled-up block holds alone
// are read from its rollup (see wql.RollupStorage for what that returns),
// and the head's closed windows from ru's head cache; with ru, a range
// that only the head holds is read from the head's own index and chunks.
// With mem, the series' tag lists come from it (see queryMemory).
func (m *metricStore) each(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, ru *rollupSet, kind wql.RollupKind, mem *queryMemory, fn func(*wql.Series) error) error {
	nm, err := nameMatcher(metricGlob)
	if err != nil {
		return err
	}
	ms := []*labels.Matcher{nm}
	if f, ok := mt.(wql.Filter); ok {
		if ms, err = pushDown(ms, f); err != nil {
			return err
		}
	}
	if ru != nil {
		ru.mu.RLock()
		defer ru.mu.RUnlock()
	}
	parts := m.partitions(start, end)
	srcs := make([]seriesSource, len(parts))
	has := make([]bool, len(parts))
	for i, p := range parts {
		src, err := m.source(ctx, ru, kind, p, ms, len(parts) > 1)
		if err != nil {
			return err
		}
		defer src.close()
		srcs[i] = src
		has[i] = src.next()
	}
	rd := seriesReader{kind: kind}
	tags := tagArena{mem: mem}
	// One Series for all: fn gets a pointer, which a Series per loop
	// would make a heap allocation per series.
	var ser wql.Series
	for n := 0; ; n++ {
		if n&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// Merge-join the label-sorted sources: the series with the
		// smallest labels takes its data from every range that has it, in
		// time order.
		// Most series are in every range: equality (a string compare)
		// spares most label-by-label comparisons.
		var cur labels.Labels
		found := false
		for i, src := range srcs {
			if has[i] {
				if l := src.labels(); !found || !labels.Equal(l, cur) && labels.Compare(l, cur) < 0 {
					cur, found = l, true
				}
			}
		}
		if !found {
			break
		}
		ser = seriesOf(cur, &tags)
		keep := mt == nil || mt.Match(ser.Source, ser.Tags)
		rd.reset()
		for i, src := range srcs {
			if !has[i] || !labels.Equal(src.labels(), cur) {
				continue
			}
			if keep {
				if err := src.read(&rd); err != nil {
					return err
				}
			}
			has[i] = src.next()
		}
		if len(rd.pts) > 0 || len(rd.wins) > 0 {
			ser.Points = rd.pts
			if len(rd.wins) > 0 {
				ser.Windows = rd.wins
			}
			tags.keep(len(ser.Tags))
			if err := fn(&ser); err != nil {
				return err
			}
		}
	}
	for _, src := range srcs {
		if err := src.err(); err != nil {
			return err
		}
	}
	return nil
}

// seriesReader collects one series' data from the ranges that hold it.
// For wql.RollupRate it turns samples into rate()'s values as they come,
// pairing each with the one before it, which may be in an earlier range.
type seriesReader struct {
	kind    wql.RollupKind
	pts     []wql.Point
	wins    []wql.Window
	prev    wql.Point
	hasPrev bool
}

func (r *seriesReader) reset() {
	r.pts, r.wins, r.hasPrev = r.pts[:0], r.wins[:0], false
}

func (r *seriesReader) sample(t int64, v float64) {
	p := wql.Point{T: t, V: v}
	if r.kind != wql.RollupRate {
		r.pts = append(r.pts, p)
		return
	}
	r.pair(p)
}

// pair adds rate()'s value from the previous sample to p, if any, and
// makes p the previous sample.
func (r *seriesReader) pair(p wql.Point) {
	if r.hasPrev {
		if x, ok := wql.RatePair(r.prev, p); ok {
			r.pts = append(r.pts, wql.Point{T: p.T, V: x})
		}
	}
	r.prev, r.hasPrev = p, true
}

// seriesSource is one time range's label-sorted series.
type seriesSource interface {
	next() bool
	labels() labels.Labels
	read(r *seriesReader) error
	err() error
	close()
}

// source opens range p: with a kind, from the rollup of the one block
// that holds it, when there is one and nothing else (another block, the
// head, the out-of-order head) has samples there; from the head alone
// when only its in-order chunks have samples there (with a kind, through
// the head cache); otherwise from a tsdb querier.
func (m *metricStore) source(ctx context.Context, ru *rollupSet, kind wql.RollupKind, p [2]int64, ms []*labels.Matcher, sorted bool) (seriesSource, error) {
	if ru != nil && kind != 0 {
		if b, rf := m.rolledUp(ctx, ru, p[0], p[1], ms); rf != nil {
			if src, err := newBlockSource(ctx, b, rf, p[0], ms); err == nil {
				return src, nil
			}
			// The block is going away (compaction, retention): read it
			// through the querier, which knows what replaced it.
		}
	}
	if ru != nil {
		switch src, err := m.newHeadSource(ctx, ru.head, kind, p[0], p[1], ms, sorted); {
		case err != nil:
			return nil, err
		case src != nil:
			return src, nil
		}
	}
	q, err := m.db.Querier(p[0], p[1])
	if err != nil {
		return nil, err
	}
	set := q.Select(ctx, sorted, &storage.SelectHints{Start: p[0], End: p[1]}, ms...)
	return &querierSource{q: q, set: set}, nil
}

// rolledUp returns the block that alone holds the samples of the series
// ms select in [lo, hi] and ends with it, and its rollup, or nil.
func (m *metricStore) rolledUp(ctx context.Context, ru *rollupSet, lo, hi int64, ms []*labels.Matcher) (*tsdb.Block, *rollupFile) {
	var only *tsdb.Block
	for _, b := range m.db.Blocks() {
		meta := b.Meta()
		if meta.MinTime > hi || meta.MaxTime <= lo {
			continue
		}
		if only != nil {
			return nil, nil
		}
		only = b
	}
	if only == nil || only.Meta().MaxTime-1 != hi {
		return nil, nil
	}
	if lo > only.Meta().MinTime && mod(lo, rollupWidth) != 0 {
		return nil, nil
	}
	h := m.db.Head()
	if h.NumSeries() > 0 && h.MinTime() <= hi && h.MaxTime() >= lo {
		return nil, nil
	}
	if h.MinOOOTime() <= hi && h.MaxOOOTime() >= lo && lateSamples(ctx, h, lo, hi, ms) {
		return nil, nil
	}
	rf := ru.get(only.Meta().ULID.String())
	if rf == nil {
		return nil, nil
	}
	return only, rf
}

// lateSamples tells whether the out-of-order head holds samples in
// [lo, hi] of a series ms select (or cannot tell). Its own time bounds
// are no guide: after a compaction the head keeps the whole out-of-order
// window as its lower bound, though the samples went to blocks.
func lateSamples(ctx context.Context, h *tsdb.Head, lo, hi int64, ms []*labels.Matcher) bool {
	ir := tsdb.NewHeadAndOOOIndexReader(h, math.MaxInt64, lo, hi, 0)
	defer ir.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ir, ms...)
	if err != nil {
		return true
	}
	var sb labels.ScratchBuilder
	var chks []chunks.Meta
	for p.Next() {
		if err := ir.Series(p.At(), &sb, &chks); err == nil && len(chks) > 0 {
			return true
		}
	}
	return p.Err() != nil
}

// querierSource reads a range through a tsdb querier, which merges
// whatever the range holds: blocks, the head, out-of-order samples.
type querierSource struct {
	q   storage.Querier
	set storage.SeriesSet
	// cur is set.At(), taken once per series: each At allocates.
	cur  storage.Series
	lset labels.Labels
	it   chunkenc.Iterator
}

func (s *querierSource) next() bool {
	if !s.set.Next() {
		return false
	}
	s.cur = s.set.At()
	s.lset = s.cur.Labels()
	return true
}

func (s *querierSource) labels() labels.Labels { return s.lset }
func (s *querierSource) err() error            { return s.set.Err() }
func (s *querierSource) close()                { s.q.Close() }

func (s *querierSource) read(r *seriesReader) error {
	s.it = s.cur.Iterator(s.it)
	for s.it.Next() == chunkenc.ValFloat {
		r.sample(s.it.At())
	}
	return s.it.Err()
}

// blockSource reads a range [lo, block end] of one block from its rollup:
// labels, windows, first and last samples. Only for a series the rollup
// lacks, or a range that begins after another block's samples, does it
// read the block's index entry and chunks.
type blockSource struct {
	ir      tsdb.IndexReader
	cr      tsdb.ChunkReader
	rf      *rollupFile
	p       index.Postings
	lo      int64
	ref     storage.SeriesRef
	pos     int // where the last lookup left off in the rollup's table
	rec     rollupRecord
	inRec   bool // the current series has a rollup record
	sb      labels.ScratchBuilder
	lset    labels.Labels
	chks    []chunks.Meta
	hasChks bool
	it      chunkenc.Iterator
	readErr error
}

func newBlockSource(ctx context.Context, b *tsdb.Block, rf *rollupFile, lo int64, ms []*labels.Matcher) (*blockSource, error) {
	ir, err := b.Index()
	if err != nil {
		return nil, err
	}
	cr, err := b.Chunks()
	if err != nil {
		ir.Close()
		return nil, err
	}
	p, err := tsdb.PostingsForMatchers(ctx, ir, ms...)
	if err != nil {
		ir.Close()
		cr.Close()
		return nil, err
	}
	return &blockSource{ir: ir, cr: cr, rf: rf, p: p, lo: lo}, nil
}

func (s *blockSource) next() bool {
	if s.readErr != nil || !s.p.Next() {
		return false
	}
	s.ref, s.hasChks = s.p.At(), false
	s.rec, s.inRec, s.readErr = s.rf.lookupFrom(s.ref, &s.pos)
	switch {
	case s.readErr != nil:
		return false
	case s.inRec:
		s.lset, s.readErr = s.rf.appendLabels(&s.rec, &s.sb)
	default:
		s.readErr = s.loadSeries()
		s.lset = s.sb.Labels()
	}
	return s.readErr == nil
}

// loadSeries reads the current series' index entry: labels into sb and
// chunk references.
func (s *blockSource) loadSeries() error {
	if err := s.ir.Series(s.ref, &s.sb, &s.chks); err != nil {
		return err
	}
	s.hasChks = true
	return nil
}

func (s *blockSource) labels() labels.Labels { return s.lset }
func (s *blockSource) err() error            { return cmp.Or(s.readErr, s.p.Err()) }
func (s *blockSource) close()                { s.ir.Close(); s.cr.Close() }

func (s *blockSource) read(r *seriesReader) error {
	rec := &s.rec
	if !s.inRec {
		return s.samples(r, s.lo, math.MaxInt64)
	}
	from := int64(math.MinInt64) // every window: all samples are in range
	if s.lo > rec.first.T {
		from = s.lo // aligned (rolledUp)
	}
	var err error
	switch r.kind {
	case wql.RollupMean:
		r.wins, err = rec.meanWindows(r.wins, from)
		return err
	case wql.RollupRate:
		skip := int64(math.MinInt64)
		switch {
		case s.lo <= rec.first.T:
			r.pair(rec.first) // from the range before, if any
		case r.hasPrev:
			// The sample before lo is another block's, which the rollup
			// does not know.
			return s.samples(r, s.lo, math.MaxInt64)
		default:
			// The pair entering the first window from lo starts before lo.
			t, ok, err := rec.firstWindowFrom(s.lo)
			if err != nil || !ok {
				return err
			}
			skip = t
		}
		if r.wins, err = rec.rateWindows(r.wins, from, skip); err != nil {
			return err
		}
		if rec.last.T >= s.lo {
			r.prev, r.hasPrev = rec.last, true
		}
		return nil
	}
	return s.samples(r, s.lo, math.MaxInt64)
}

// samples feeds the block's samples of the current series in [a, b].
func (s *blockSource) samples(r *seriesReader, a, b int64) error {
	if !s.hasChks {
		if err := s.loadSeries(); err != nil {
			return err
		}
	}
	for _, m := range s.chks {
		if m.MaxTime < a || m.MinTime > b {
			continue
		}
		var err error
		if s.it, err = chunkIterator(s.cr, m, s.it); err != nil {
			return err
		}
		for s.it.Next() == chunkenc.ValFloat {
			if t, v := s.it.At(); t >= a && t <= b {
				r.sample(t, v)
			}
		}
		if err := s.it.Err(); err != nil {
			return err
		}
	}
	return nil
}

// partitions splits [start, end] at the boundaries of the persisted blocks
// into disjoint, ascending ranges. A tsdb querier over a range within one
// block reads that block alone, while one over several blocks merges every
// series through a heap, sample by sample: that merge was a third of the
// cost of reading a day. Each range's querier still merges whatever that
// range holds (overlapping blocks, the head, out-of-order samples), so the
// ranges together read exactly what one querier over [start, end] would.
func (m *metricStore) partitions(start, end int64) [][2]int64 {
	var parts [][2]int64
	lo := start
	for _, b := range m.db.Blocks() {
		// Block ranges are half-open: [MinTime, MaxTime).
		if cut := b.Meta().MaxTime; cut > lo && cut <= end {
			parts = append(parts, [2]int64{lo, cut - 1})
			lo = cut
		}
	}
	return append(parts, [2]int64{lo, end})
}

// pushDown appends label matchers for the terms of f's top-level
// conjunction that the index can evaluate with Wavefront's semantics: the
// tsdb then reads only (a superset of) the matching series' postings. A
// missing tag matches neither key=v nor key=glob, and Prometheus' = and =~
// do not match a missing label either (unless the pattern matches "", which
// only widens the superset); key!=v and "not key=v" match a missing tag,
// as != and !~ match a missing label. Skipped: key=* (its postings are
// nearly everything, so it only costs, and negated it would drop series
// without the tag), key="", and or / not over anything but a term.
func pushDown(ms []*labels.Matcher, f wql.Filter) ([]*labels.Matcher, error) {
	var term *wql.FilterTerm
	neg := false
	switch f := f.(type) {
	case *wql.FilterAnd:
		var err error
		if ms, err = pushDown(ms, f.L); err != nil {
			return nil, err
		}
		return pushDown(ms, f.R)
	case *wql.FilterNot:
		t, ok := f.X.(*wql.FilterTerm)
		if !ok {
			return ms, nil
		}
		term, neg = t, true
	case *wql.FilterTerm:
		term = f
	default:
		return ms, nil
	}
	neg = neg != term.Neg
	if strings.Trim(term.Value, "*") == "" {
		return ms, nil // "" or only stars
	}
	glob := strings.Contains(term.Value, "*")
	name := labelSource
	if term.Key != "source" {
		name = tagLabel(term.Key)
	}
	var mt *labels.Matcher
	var err error
	switch {
	case glob && neg:
		mt, err = labels.NewMatcher(labels.MatchNotRegexp, name, globRegexp(term.Value))
	case glob:
		mt, err = labels.NewMatcher(labels.MatchRegexp, name, globRegexp(term.Value))
	case neg:
		mt, err = labels.NewMatcher(labels.MatchNotEqual, name, term.Value)
	default:
		mt, err = labels.NewMatcher(labels.MatchEqual, name, term.Value)
	}
	if err != nil {
		return nil, err
	}
	return append(ms, mt), nil
}

// seriesOf splits ls into a series' name, source and tags, the tags in
// the free space of arena (see tagArena.keep). Label names ascend, and so
// do the tag keys made from them: an escaped key "__x" is stored as
// "__wf__x", which sorts among the keys not starting with "__" where "__x"
// does.
func seriesOf(ls labels.Labels, arena *tagArena) wql.Series {
	var s wql.Series
	tags := arena.reserve(ls.Len())
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case labelName:
			s.Name = l.Value
		case labelSource:
			s.Source = l.Value
		default:
			if k, ok := labelTag(l.Name); ok {
				tags = append(tags, wql.Tag{Key: k, Value: l.Value})
			}
		}
	})
	if !tags.IsSorted() {
		tags.Sort()
	}
	s.Tags = slices.Clip(tags) // an append by a consumer must not reach the next series' tags
	return s
}

// tagArena carves series' tag lists from shared chunks, so that a
// selection of 23 000 series makes a few dozen allocations for their tags
// instead of a map each. Results keep the lists, and with them their
// chunks, as long as they need them.
type tagArena struct {
	free wql.Tags
	next int          // size of the next chunk
	mem  *queryMemory // where chunks come from, if set
}

// reserve returns an empty list with room for n tags at the start of the
// free space.
func (a *tagArena) reserve(n int) wql.Tags {
	if cap(a.free) < n {
		if a.mem != nil && n <= tagChunk {
			a.free = a.mem.chunk()
		} else {
			a.next = min(max(2*a.next, 4*n), max(n, tagChunk))
			a.free = make(wql.Tags, 0, a.next)
		}
	}
	return a.free[:0:n]
}

// tagChunk is the size of a tagArena chunk (128 KiB).
const tagChunk = 4096

// tagChunks recycles tagArena chunks between chart requests.
var tagChunks = sync.Pool{New: func() any { c := make(wql.Tags, 0, tagChunk); return &c }}

// queryMemory lends tag chunks to one chart request's selections (which
// may run concurrently: the two sides of a ratio) and takes them back
// when the request has written its answer, so that a dashboard's loads
// reuse the same tens of megabytes instead of making the collector,
// which has the whole tsdb head to mark, run that much more often.
type queryMemory struct {
	mu     sync.Mutex
	chunks []*wql.Tags
}

// chunk lends an empty chunk.
func (m *queryMemory) chunk() wql.Tags {
	c := tagChunks.Get().(*wql.Tags)
	m.mu.Lock()
	m.chunks = append(m.chunks, c)
	m.mu.Unlock()
	return (*c)[:0]
}

// release takes every lent chunk back: no tag list from them may be used
// afterwards.
func (m *queryMemory) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range m.chunks {
		clear((*c)[:cap(*c)]) // a pooled chunk must not keep the store's labels alive
		tagChunks.Put(c)
		m.chunks[i] = nil
	}
	m.chunks = m.chunks[:0]
}

// keep hands the n tags last reserved to the caller for good; a list not
// kept (a series the filter drops) is overwritten by the next one.
func (a *tagArena) keep(n int) {
	a.free = a.free[n:n:cap(a.free)]
}

// MetricInfo describes one metric for a metrics browser.
type MetricInfo struct {
	Name    string              `json:"name"`
	Kind    string              `json:"kind"` // "metric" or "histogram"
	Sources []string            `json:"sources"`
	Tags    map[string][]string `json:"tags"`
}

// browse lists the metric names matching glob, up to limit, with their
// sources and tag values in [start, end].
func (m *metricStore) browse(ctx context.Context, glob string, start, end int64, limit int) ([]MetricInfo, error) {
	q, err := m.db.Querier(start, end)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	nm, err := nameMatcher(glob)
	if err != nil {
		return nil, err
	}
	names, _, err := q.LabelValues(ctx, labelName, nil, nm)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []MetricInfo
	for _, name := range names[:min(len(names), limit)] {
		eq := labels.MustNewMatcher(labels.MatchEqual, labelName, name)
		info := MetricInfo{Name: name, Kind: "metric", Tags: map[string][]string{}}
		lnames, _, err := q.LabelNames(ctx, nil, eq)
		if err != nil {
			return nil, err
		}
		for _, ln := range lnames {
			if ln == labelName {
				continue
			}
			vals, _, err := q.LabelValues(ctx, ln, nil, eq)
			if err != nil {
				return nil, err
			}
			if ln == labelSource {
				info.Sources = vals
			} else if k, ok := labelTag(ln); ok {
				info.Tags[k] = vals
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (m *metricStore) close() error { return m.db.Close() }

// chunkIterator opens chunk m of cr, reusing it.
func chunkIterator(cr tsdb.ChunkReader, m chunks.Meta, it chunkenc.Iterator) (chunkenc.Iterator, error) {
	c, iterable, err := cr.ChunkOrIterable(m)
	if err != nil {
		return it, err
	}
	if iterable != nil {
		return iterable.Iterator(it), nil
	}
	return c.Iterator(it), nil
}
