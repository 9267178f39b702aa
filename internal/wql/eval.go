package wql

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/caio/go-tdigest/v4"
)

// maxBuckets bounds the evaluation grid (chart window plus look-back) so a
// hostile window or range cannot allocate without limit.
const maxBuckets = 1 << 20

// vec is a series flowing between evaluation nodes. It carries either raw
// samples (vals == nil) or one value per grid bucket (NaN = no value).
//
// Ownership: a node that emits a vec must not rely on it, or on its vals,
// after emit returns, and the receiver may modify vals in place during the
// call; this lets every node reuse one buffer for all the series it streams.
// raw slices belong to the store and are never modified.
type vec struct {
	name, source string
	tags         Tags
	raw          []Point
	wins         []Window // summarized raw input, with raw (RollupStorage)
	vals         []float64
}

type emitFn func(*vec) error

type evaluator struct {
	ctx    context.Context
	st     Storage
	step   int64
	g0     int64 // start of bucket 0 (ms)
	n      int   // buckets in the grid
	from   int   // first bucket inside [Start, End]; earlier ones are look-back
	end    int64
	span   int64
	keyBuf []byte
	counts []float64 // per-bucket sample counts for aligned
	// rollups is st when it is a RollupStorage whose windows fit the grid.
	rollups RollupStorage
}

// Eval evaluates e over [o.Start, o.End] on a grid of o.Step buckets; each
// result point is stamped with its bucket's start time. Raw points are
// averaged per bucket unless a function says otherwise. Results are sorted by
// name, source and tags; series without points in the window are omitted.
func Eval(ctx context.Context, e Expr, st Storage, o Options) ([]Series, error) {
	g, err := EvalGrid(ctx, e, st, o)
	if err != nil {
		return nil, err
	}
	res := make([]Series, len(g.Series))
	for i, gs := range g.Series {
		s := Series{Name: gs.Name, Source: gs.Source, Tags: gs.Tags}
		for j, x := range gs.Vals {
			if !math.IsNaN(x) {
				s.Points = append(s.Points, Point{T: g.Start + int64(j)*g.Step, V: x})
			}
		}
		res[i] = s
	}
	g.Release() // the points are copies
	return res, nil
}

// Grid is Eval's result on its grid: Vals[i] of every series is the bucket
// starting at Start + i*Step ms, NaN where the series has no point.
type Grid struct {
	Start, Step int64
	Series      []GridSeries
	scratch     *gridScratch // nil once released
}

// Release hands the grid's memory (its Series and their Vals) over to
// later evaluations; neither may be used afterwards. A chart request
// releases its grid once the answer is written, so a dashboard's loads
// reuse the same ~100 MB instead of making the collector sweep a fresh
// 100 MB each time. A grid never released is simply collected.
func (g *Grid) Release() {
	sc := g.scratch
	if sc == nil {
		return
	}
	g.scratch, g.Series = nil, nil
	sc.arena.release()
	clear(sc.out) // drop the tags' strings: a pooled list must not keep the store's labels alive
	sc.out = sc.out[:0]
	sc.sorted = sc.sorted[:0]
	sc.keys, sc.keyEnds, sc.order = sc.keys[:0], sc.keyEnds[:0], sc.order[:0]
	gridScratches.Put(sc)
}

// gridScratch is EvalGrid's reusable memory.
type gridScratch struct {
	arena   floatArena
	out     []GridSeries // in order of arrival
	sorted  []GridSeries // out in key order, when arrival was not
	keys    []byte       // the series' sort keys, back to back
	keyEnds []int        // where each key ends in keys
	order   []int32
}

var gridScratches = sync.Pool{New: func() any { return new(gridScratch) }}

// GridSeries is one result series of a Grid.
type GridSeries struct {
	Name, Source string
	Tags         Tags
	Vals         []float64
}

// EvalGrid is Eval without converting to points: half the memory per
// bucket (8 bytes instead of a 16-byte Point), and a chart encoder knows
// every timestamp from the index.
func EvalGrid(ctx context.Context, e Expr, st Storage, o Options) (*Grid, error) {
	if e == nil || st == nil {
		return nil, errors.New("wql: nil expression or storage")
	}
	if o.Step <= 0 {
		return nil, errors.New("wql: step must be positive")
	}
	if o.End < o.Start {
		return nil, errors.New("wql: end before start")
	}
	ev := &evaluator{ctx: ctx, st: st, step: o.Step, end: o.End, span: o.End - o.Start}
	if ev.span < 0 {
		return nil, errors.New("wql: time range too large")
	}
	lb, err := ev.lookback(e)
	if err != nil {
		return nil, err
	}
	first := floorDiv(o.Start, o.Step) * o.Step
	if lb/o.Step > maxBuckets || first-lb > first {
		return nil, errors.New("wql: look-back window too large")
	}
	ev.g0 = floorDiv(first-lb, o.Step) * o.Step
	width := o.End - ev.g0
	if width < 0 || width/o.Step >= maxBuckets {
		return nil, fmt.Errorf("wql: more than %d buckets; use a larger step", maxBuckets)
	}
	ev.n = int(width/o.Step) + 1
	ev.from = int((first - ev.g0) / o.Step)
	if rs, ok := st.(RollupStorage); ok {
		if w := rs.RollupWidth(); w > 0 && o.Step%w == 0 && ev.g0%w == 0 {
			ev.rollups = rs
		}
	}

	sc := gridScratches.Get().(*gridScratch)
	var buf []float64
	err = ev.stream(e, func(v *vec) error {
		vals := ev.aligned(v, &buf)[ev.from:]
		empty := true
		for _, x := range vals {
			if !math.IsNaN(x) {
				empty = false
				break
			}
		}
		if empty {
			return nil
		}
		sc.out = append(sc.out, GridSeries{Name: v.name, Source: v.source, Tags: v.tags, Vals: sc.arena.clone(vals)})
		sc.keys = appendSeriesKey(sc.keys, v)
		sc.keyEnds = append(sc.keyEnds, len(sc.keys))
		return nil
	})
	g := &Grid{Start: first, Step: o.Step, Series: sc.out, scratch: sc}
	if err != nil {
		g.Release()
		return nil, err
	}
	key := func(i int32) []byte {
		lo := 0
		if i > 0 {
			lo = sc.keyEnds[i-1]
		}
		return sc.keys[lo:sc.keyEnds[i]]
	}
	sorted := true
	for i := 1; i < len(sc.keyEnds) && sorted; i++ {
		sorted = bytes.Compare(key(int32(i-1)), key(int32(i))) <= 0
	}
	if sorted {
		return g, nil
	}
	// Ties (equal identities, which a store should not have) keep their
	// order of arrival.
	for i := range sc.out {
		sc.order = append(sc.order, int32(i))
	}
	slices.SortFunc(sc.order, func(a, b int32) int { return cmp.Or(bytes.Compare(key(a), key(b)), cmp.Compare(a, b)) })
	for _, j := range sc.order {
		sc.sorted = append(sc.sorted, sc.out[j])
	}
	// The pooled lists swap roles, so that Release clears the one the grid
	// hands out and both keep their capacity.
	sc.out, sc.sorted = sc.sorted, sc.out
	clear(sc.sorted)
	g.Series = sc.out
	return g, nil
}

// appendSeriesKey appends the sort key of a result series: name, source
// and tags.
func appendSeriesKey(b []byte, v *vec) []byte {
	b = append(b, v.name...)
	b = append(b, 0)
	b = append(b, v.source...)
	b = append(b, 0)
	return v.tags.appendKey(b, "")
}

// arenaChunk is the size of a floatArena chunk: 512 KiB, a few hundred
// series of a day's 5-minute buckets.
const arenaChunk = 1 << 16

// floatChunks recycles floatArena chunks between evaluations.
var floatChunks = sync.Pool{New: func() any { c := make([]float64, arenaChunk); return &c }}

// floatArena hands out result slices carved from shared, pooled chunks: a
// 23 000-series answer then costs a few dozen chunks, not an allocation
// per series, and once released the chunks serve the next evaluation. A
// slice longer than a chunk gets memory of its own.
type floatArena struct {
	free   []float64
	chunks []*[]float64 // taken from floatChunks, for release
}

// clone returns a copy of src from the arena.
func (a *floatArena) clone(src []float64) []float64 {
	n := len(src)
	if n > arenaChunk {
		return slices.Clip(slices.Clone(src))
	}
	if len(a.free) < n {
		c := floatChunks.Get().(*[]float64)
		a.chunks = append(a.chunks, c)
		a.free = *c
	}
	dst := a.free[:n:n]
	a.free = a.free[n:]
	copy(dst, src)
	return dst
}

// release returns the arena's chunks to the pool: nothing cloned from it
// may be used afterwards.
func (a *floatArena) release() {
	for i, c := range a.chunks {
		floatChunks.Put(c)
		a.chunks[i] = nil
	}
	a.chunks, a.free = a.chunks[:0], nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// lookback is how far before Start data must be read so that the first
// in-window bucket is complete: rate needs the previous sample, windows need
// their full width.
func (ev *evaluator) lookback(e Expr) (int64, error) {
	add := func(x Expr, d int64) (int64, error) {
		l, err := ev.lookback(x)
		if err != nil {
			return 0, err
		}
		if l > math.MaxInt64-d {
			return 0, errors.New("wql: look-back window too large")
		}
		return l + d, nil
	}
	switch e := e.(type) {
	case *NumberLit, *TimeExpr, *TSExpr:
		return 0, nil
	case *UnaryExpr:
		return ev.lookback(e.X)
	case *BinaryExpr:
		return ev.lookback2(e.L, e.R)
	case *OrElseExpr:
		return ev.lookback2(e.X, e.Else)
	case *AggExpr:
		return ev.lookback(e.X)
	case *PercentileExpr:
		return ev.lookback(e.X)
	case *HistExpr:
		return 0, nil
	case *FuncExpr:
		return add(e.X, ev.step)
	case *WindowExpr:
		w := e.Window.Ms
		if w == 0 {
			// last() without a window fills from the latest value seen up to
			// one chart width earlier.
			w = ev.span
		}
		return add(e.X, w)
	case *DefaultExpr:
		return add(e.X, e.Window.Ms)
	case *AlignExpr:
		return add(e.X, e.Interval.Ms)
	}
	return 0, fmt.Errorf("wql: unsupported expression %T", e)
}

func (ev *evaluator) lookback2(a, b Expr) (int64, error) {
	la, err := ev.lookback(a)
	if err != nil {
		return 0, err
	}
	lb, err := ev.lookback(b)
	return max(la, lb), err
}

// buffer returns *buf resized to the grid.
func (ev *evaluator) buffer(buf *[]float64) []float64 {
	if cap(*buf) < ev.n {
		*buf = make([]float64, ev.n)
	}
	*buf = (*buf)[:ev.n]
	return *buf
}

// aligned returns v's bucket values, averaging raw samples per bucket into
// *buf when v is still raw.
func (ev *evaluator) aligned(v *vec, buf *[]float64) []float64 {
	if v.vals != nil {
		return v.vals
	}
	b := ev.buffer(buf)
	if v.wins != nil {
		return ev.alignedWindows(v, b)
	}
	for i := range b {
		b[i] = math.NaN()
	}
	// Samples are in time order, so the bucket index only needs a division
	// when a sample skips past the next bucket.
	cur, sum, cnt := -1, 0.0, 0.0
	var lo, hi int64 // current bucket is [lo, hi)
	span := int64(ev.n) * ev.step
	for _, p := range v.raw {
		if cur < 0 || p.T < lo || p.T >= hi {
			if cur >= 0 {
				b[cur] = sum / cnt
			}
			if cur >= 0 && p.T >= hi && p.T-hi < ev.step {
				cur++
				lo = hi
			} else {
				d := p.T - ev.g0
				if d < 0 || d >= span {
					cur = -1
					continue
				}
				cur = int(d / ev.step)
				lo = ev.g0 + int64(cur)*ev.step
			}
			hi = lo + ev.step
			if cur >= ev.n {
				cur = -1
				continue
			}
			sum, cnt = 0, 0
		}
		sum += p.V
		cnt++
	}
	if cur >= 0 {
		b[cur] = sum / cnt
	}
	v.vals, v.raw = b, nil
	return b
}

// alignedWindows is aligned for a vec read from rollups: each bucket's
// mean over its windows' sums and counts and its raw samples.
func (ev *evaluator) alignedWindows(v *vec, b []float64) []float64 {
	if cap(ev.counts) < ev.n {
		ev.counts = make([]float64, ev.n)
	}
	cnt := ev.counts[:ev.n]
	clear(b)
	clear(cnt)
	wc := bucketCursor{i: -1}
	for _, w := range v.wins {
		if i := wc.at(ev, w.T); i >= 0 {
			b[i] += w.Sum
			cnt[i] += w.N
		}
	}
	pc := bucketCursor{i: -1}
	for _, p := range v.raw {
		if i := pc.at(ev, p.T); i >= 0 {
			b[i] += p.V
			cnt[i]++
		}
	}
	for i, n := range cnt {
		if n == 0 {
			b[i] = math.NaN()
		} else {
			b[i] /= n
		}
	}
	v.vals, v.raw, v.wins = b, nil, nil
	return b
}

// bucketCursor finds the buckets of ascending times: a time in the
// current or the next bucket needs no division.
type bucketCursor struct {
	i      int   // current bucket, -1 before the first
	lo, hi int64 // its range [lo, hi)
}

// at returns t's bucket index, or -1 outside the grid.
func (c *bucketCursor) at(ev *evaluator, t int64) int {
	switch {
	case c.i >= 0 && t >= c.lo && t < c.hi:
		return c.i
	case c.i >= 0 && t >= c.hi && t-c.hi < ev.step && c.i+1 < ev.n:
		c.i++
		c.lo = c.hi
		c.hi += ev.step
		return c.i
	}
	d := t - ev.g0
	if d < 0 || d/ev.step >= int64(ev.n) {
		return -1
	}
	c.i = int(d / ev.step)
	c.lo = ev.g0 + int64(c.i)*ev.step
	c.hi = c.lo + ev.step
	return c.i
}

// constant folds e when it involves only numbers.
func constant(e Expr) (float64, bool) {
	switch e := e.(type) {
	case *NumberLit:
		return e.Val, true
	case *UnaryExpr:
		c, ok := constant(e.X)
		return -c, ok
	case *BinaryExpr:
		l, ok := constant(e.L)
		if !ok {
			return 0, false
		}
		r, ok := constant(e.R)
		return arith(e.Op, l, r), ok
	}
	return 0, false
}

// arith applies op; x/0 yields no point rather than ±Inf.
func arith(op byte, a, b float64) float64 {
	switch op {
	case '+':
		return a + b
	case '-':
		return a - b
	case '*':
		return a * b
	}
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func (ev *evaluator) stream(e Expr, emit emitFn) error {
	if c, ok := constant(e); ok {
		vals := make([]float64, ev.n)
		for i := range vals {
			vals[i] = c
		}
		return emit(&vec{vals: vals})
	}
	switch e := e.(type) {
	case *TSExpr:
		return ev.ts(e, RollupMean, emit)
	case *TimeExpr:
		vals := make([]float64, ev.n)
		for i := range vals {
			vals[i] = float64(ev.g0+int64(i)*ev.step) / 1000
		}
		return emit(&vec{vals: vals})
	case *UnaryExpr:
		var buf []float64
		return ev.stream(e.X, func(v *vec) error {
			vals := ev.aligned(v, &buf)
			for i, x := range vals {
				vals[i] = -x
			}
			return emit(v)
		})
	case *BinaryExpr:
		return ev.binary(e, emit)
	case *FuncExpr:
		return ev.rate(e, emit)
	case *AggExpr:
		return ev.aggregate(e, emit)
	case *PercentileExpr:
		return ev.percentile(e, emit)
	case *HistExpr:
		return ev.hist(e, emit)
	case *WindowExpr, *DefaultExpr, *AlignExpr:
		return ev.window(e, emit)
	case *OrElseExpr:
		found := false
		var buf []float64
		err := ev.stream(e.X, func(v *vec) error {
			for _, x := range ev.aligned(v, &buf)[ev.from:] {
				if !math.IsNaN(x) {
					found = true
					return emit(v)
				}
			}
			return nil
		})
		if err != nil || found {
			return err
		}
		return ev.stream(e.Else, emit)
	}
	return fmt.Errorf("wql: unsupported expression %T", e)
}

// ts streams the selected series; kind says which rollups the consumer
// can take in place of raw samples (0: none).
func (ev *evaluator) ts(e *TSExpr, kind RollupKind, emit emitFn) error {
	var m Matcher = matchAll{}
	if e.Filter != nil {
		m = e.Filter
	}
	var v vec
	fn := func(s *Series) error {
		// The store may have ignored the filter; re-check it.
		if !globMatch(e.Metric, s.Name) || !m.Match(s.Source, s.Tags) {
			return nil
		}
		v = vec{name: s.Name, source: s.Source, tags: s.Tags, raw: s.Points, wins: s.Windows}
		return emit(&v)
	}
	if kind != 0 && ev.rollups != nil {
		return ev.rollups.SelectRollup(ev.ctx, e.Metric, m, ev.g0, ev.end, kind, fn)
	}
	return ev.st.Select(ev.ctx, e.Metric, m, ev.g0, ev.end, fn)
}

// rate and deriv: per-second change between consecutive samples, stamped at
// the later one. rate drops a decrease (a counter reset, or a pod leaving
// an aggregated sum) instead of emitting a negative or a guessed value.
// Raw input is differentiated before bucketing, aligned input between
// consecutive non-empty buckets.
func (ev *evaluator) rate(e *FuncExpr, emit emitFn) error {
	isRate := e.Fn == "rate"
	src := func(f emitFn) error { return ev.stream(e.X, f) }
	if ts, ok := e.X.(*TSExpr); ok {
		if isRate && ev.rollups != nil {
			// The store applies rate() to what it has not rolled up.
			return ev.ts(ts, RollupRate, emit)
		}
		src = func(f emitFn) error { return ev.ts(ts, 0, f) }
	}
	var pts []Point
	return src(func(v *vec) error {
		if v.vals == nil {
			pts = pts[:0]
			for j := 1; j < len(v.raw); j++ {
				a, b := v.raw[j-1], v.raw[j]
				if isRate {
					if r, ok := RatePair(a, b); ok {
						pts = append(pts, Point{T: b.T, V: r})
					}
					continue
				}
				if b.T > a.T {
					pts = append(pts, Point{T: b.T, V: (b.V - a.V) * 1000 / float64(b.T-a.T)})
				}
			}
			v.raw = pts
			return emit(v)
		}
		prev, pv := -1, 0.0
		stepSec := float64(ev.step) / 1000
		for i, x := range v.vals {
			if math.IsNaN(x) {
				continue
			}
			out := math.NaN()
			if prev >= 0 && !(isRate && x < pv) {
				out = (x - pv) / (float64(i-prev) * stepSec)
			}
			v.vals[i], prev, pv = out, i, x
		}
		return emit(v)
	})
}

// binary evaluates L op R. A constant side applies to every series; two
// series sets pair up when one side has a single series (it applies to every
// series of the other) and otherwise by identical source and tags, dropping
// unmatched series. A bucket missing on either side has no result.
func (ev *evaluator) binary(e *BinaryExpr, emit emitFn) error {
	if c, ok := constant(e.R); ok {
		var buf []float64
		return ev.stream(e.L, func(v *vec) error {
			vals := ev.aligned(v, &buf)
			for i, x := range vals {
				vals[i] = arith(e.Op, x, c)
			}
			return emit(v)
		})
	}
	if c, ok := constant(e.L); ok {
		var buf []float64
		return ev.stream(e.R, func(v *vec) error {
			vals := ev.aligned(v, &buf)
			for i, x := range vals {
				vals[i] = arith(e.Op, c, x)
			}
			return emit(v)
		})
	}
	// The sides are independent selections: reading them concurrently
	// halves the latency of a ratio such as a success rate.
	var rs []*vec
	var rerr error
	var la, ra floatArena
	done := make(chan struct{})
	right := ev.fork()
	go func() {
		defer close(done)
		rs, rerr = right.collect(e.R, &ra)
	}()
	ls, err := ev.collect(e.L, &la)
	<-done
	// Results are emitted from obuf, and receivers keep no emitted values.
	defer la.release()
	defer ra.release()
	if err = cmp.Or(err, rerr); err != nil {
		return err
	}
	// Receivers do not keep an emitted vec's values, so one buffer serves
	// every result series.
	var obuf []float64
	combine := func(meta *vec, l, r []float64) error {
		out := ev.buffer(&obuf)
		for i := range out {
			out[i] = arith(e.Op, l[i], r[i])
		}
		return emit(&vec{name: meta.name, source: meta.source, tags: meta.tags, vals: out})
	}
	switch {
	case len(rs) == 1:
		for _, l := range ls {
			if err := combine(l, l.vals, rs[0].vals); err != nil {
				return err
			}
		}
	case len(ls) == 1:
		for _, r := range rs {
			if err := combine(r, ls[0].vals, r.vals); err != nil {
				return err
			}
		}
	default:
		byKey := make(map[string]*vec, len(rs))
		for _, r := range rs {
			k := r.source + "\x00" + ev.tagKey(r.tags, "")
			if _, dup := byKey[k]; !dup {
				byKey[k] = r
			}
		}
		for _, l := range ls {
			if r, ok := byKey[l.source+"\x00"+ev.tagKey(l.tags, "")]; ok {
				if err := combine(l, l.vals, r.vals); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fork returns a copy of ev for evaluating a sub-expression concurrently:
// same grid and store, its own scratch space.
func (ev *evaluator) fork() *evaluator {
	c := *ev
	c.keyBuf, c.counts = nil, nil
	return &c
}

// collect materialises e's series with private, aligned values.
// Their values live in arena until the caller releases it.
func (ev *evaluator) collect(e Expr, arena *floatArena) ([]*vec, error) {
	var out []*vec
	var buf []float64
	err := ev.stream(e, func(v *vec) error {
		vals := arena.clone(ev.aligned(v, &buf))
		out = append(out, &vec{name: v.name, source: v.source, tags: v.tags, vals: vals})
		return nil
	})
	return out, err
}

// tagKey is a canonical encoding of tags (without skip), for grouping and
// matching. It reuses the evaluator's scratch space.
func (ev *evaluator) tagKey(tags Tags, skip string) string {
	ev.keyBuf = tags.appendKey(ev.keyBuf[:0], skip)
	return string(ev.keyBuf)
}

// groupKey encodes v's values of the group-by tags into ev.keyBuf. The
// pseudo-tags sources, metrics and pointTags group by source, metric name and
// the whole tag set. A missing tag is its own group value.
func (ev *evaluator) groupKey(v *vec, group []string) []byte {
	b := ev.keyBuf[:0]
	for _, g := range group {
		switch g {
		case "sources":
			b = append(b, v.source...)
		case "metrics":
			b = append(b, v.name...)
		case "pointTags":
			b = v.tags.appendKey(b, "")
		default:
			if t, ok := v.tags.Get(g); ok {
				b = append(b, '=')
				b = append(b, t...)
			}
		}
		b = append(b, 0)
	}
	ev.keyBuf = b
	return b
}

// groupMeta builds the identity of an aggregated series from its first input.
func groupMeta(v *vec, group []string) *vec {
	g := &vec{name: v.name}
	for _, t := range group {
		switch t {
		case "sources":
			g.source = v.source
		case "metrics":
		case "pointTags":
			g.tags = append(g.tags, v.tags...)
		default:
			if x, ok := v.tags.Get(t); ok {
				g.tags = append(g.tags, Tag{t, x})
			}
		}
	}
	// Group tags may repeat or overlap pointTags; every copy of a key has
	// v's value.
	slices.SortStableFunc(g.tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	g.tags = slices.CompactFunc(g.tags, func(a, b Tag) bool { return a.Key == b.Key })
	return g
}

type aggGroup struct {
	meta  *vec
	mixed bool // inputs had different metric names: the result has none
	acc   []float64
	cnt   []float64
}

// aggregate implements sum/avg/min/max/count and raw*. Series are first
// aligned to the grid; the non-raw forms then carry each series' value one
// bucket forward into a single empty bucket, which stands in for
// Wavefront's interpolation: scrape jitter that moves a sample into the next
// bucket does not make the sum dip, while a series that stops reporting
// leaves the aggregate after one bucket.
func (ev *evaluator) aggregate(e *AggExpr, emit emitFn) error {
	fn := strings.TrimPrefix(e.Fn, "raw")
	interp := fn == e.Fn
	groups := map[string]*aggGroup{}
	var buf []float64
	err := ev.stream(e.X, func(v *vec) error {
		vals := ev.aligned(v, &buf)
		if interp {
			carryOne(vals)
		}
		k := ev.groupKey(v, e.Group)
		g := groups[string(k)]
		if g == nil {
			g = &aggGroup{meta: groupMeta(v, e.Group), acc: make([]float64, ev.n)}
			for i := range g.acc {
				g.acc[i] = math.NaN()
			}
			if fn == "avg" || fn == "count" {
				g.cnt = make([]float64, ev.n)
			}
			groups[string(k)] = g
		}
		if v.name != g.meta.name {
			g.mixed = true
		}
		accumulate(fn, g, vals)
		return nil
	})
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(groups))
	for _, k := range keys {
		g := groups[k]
		switch fn {
		case "avg":
			for i, c := range g.cnt {
				if c > 0 {
					g.acc[i] /= c
				}
			}
		case "count":
			for i, c := range g.cnt {
				g.acc[i] = math.NaN()
				if c > 0 {
					g.acc[i] = c
				}
			}
		}
		if g.mixed {
			g.meta.name = ""
		}
		g.meta.vals = g.acc
		if err := emit(g.meta); err != nil {
			return err
		}
	}
	return nil
}

// carryOne fills an empty bucket that directly follows a real value with
// that value.
func carryOne(vals []float64) {
	prevReal := false
	for i, x := range vals {
		if !math.IsNaN(x) {
			prevReal = true
			continue
		}
		if prevReal {
			vals[i] = vals[i-1]
		}
		prevReal = false
	}
}

func accumulate(fn string, g *aggGroup, vals []float64) {
	acc := g.acc
	switch fn {
	case "sum", "avg":
		for i, x := range vals {
			if math.IsNaN(x) {
				continue
			}
			if math.IsNaN(acc[i]) {
				acc[i] = x
			} else {
				acc[i] += x
			}
			if g.cnt != nil {
				g.cnt[i]++
			}
		}
	case "count":
		for i, x := range vals {
			if !math.IsNaN(x) {
				g.cnt[i]++
			}
		}
	case "min":
		for i, x := range vals {
			if !math.IsNaN(x) && (math.IsNaN(acc[i]) || x < acc[i]) {
				acc[i] = x
			}
		}
	case "max":
		for i, x := range vals {
			if !math.IsNaN(x) && (math.IsNaN(acc[i]) || x > acc[i]) {
				acc[i] = x
			}
		}
	}
}

// window implements mavg, last, default and align, all on aligned values.
func (ev *evaluator) window(e Expr, emit emitFn) error {
	var x Expr
	switch e := e.(type) {
	case *WindowExpr:
		x = e.X
	case *DefaultExpr:
		x = e.X
	case *AlignExpr:
		x = e.X
	}
	var buf, out []float64
	return ev.stream(x, func(v *vec) error {
		vals := ev.aligned(v, &buf)
		switch e := e.(type) {
		case *WindowExpr:
			if e.Fn == "mavg" {
				out = ev.buffer(&out)
				mavg(out, vals, max(1, int(e.Window.Ms/ev.step)))
				v.vals = out
			} else {
				fillGaps(vals, math.NaN(), ev.windowBuckets(e.Window.Ms))
			}
		case *DefaultExpr:
			fillGaps(vals, e.Value.Val, ev.windowBuckets(e.Window.Ms))
		case *AlignExpr:
			ev.align(vals, e.Interval.Ms, e.Summarizer)
		}
		return emit(v)
	})
}

// windowBuckets converts a fill window to buckets; 0 (no window) is
// unlimited.
func (ev *evaluator) windowBuckets(ms int64) int {
	if ms == 0 {
		return math.MaxInt
	}
	return int(min(ms/ev.step, maxBuckets))
}

// mavg writes the mean of the last w buckets (those with values) into out.
func mavg(out, in []float64, w int) {
	sum, cnt := 0.0, 0
	for i, x := range in {
		if !math.IsNaN(x) {
			sum += x
			cnt++
		}
		if j := i - w; j >= 0 && !math.IsNaN(in[j]) {
			sum -= in[j]
			cnt--
		}
		out[i] = math.NaN()
		if cnt > 0 {
			out[i] = sum / float64(cnt)
		}
	}
}

// fillGaps fills empty buckets at most w buckets after a real value with
// fill, or with that last value when fill is NaN (last()). default() without
// a window (w unlimited and fill set) also fills before the first value.
func fillGaps(vals []float64, fill float64, w int) {
	carry := math.IsNaN(fill)
	last, lastIdx := math.NaN(), -1
	for i, x := range vals {
		if !math.IsNaN(x) {
			last, lastIdx = x, i
			continue
		}
		switch {
		case lastIdx >= 0 && i-lastIdx <= w:
			if carry {
				vals[i] = last
			} else {
				vals[i] = fill
			}
		case !carry && w == math.MaxInt:
			vals[i] = fill
		}
	}
}

// align re-buckets vals into windows of interval ms aligned to the epoch,
// writing each window's summary at its first bucket. Summaries are over the
// per-step bucket values, so an interval at or below the step is a no-op.
func (ev *evaluator) align(vals []float64, interval int64, summarizer string) {
	if interval <= ev.step {
		return
	}
	for i := 0; i < len(vals); {
		w := floorDiv(ev.g0+int64(i)*ev.step, interval)
		j := i + 1
		for j < len(vals) && floorDiv(ev.g0+int64(j)*ev.step, interval) == w {
			j++
		}
		vals[i] = summarize(vals[i:j], summarizer)
		for k := i + 1; k < j; k++ {
			vals[k] = math.NaN()
		}
		i = j
	}
}

func summarize(xs []float64, how string) float64 {
	r, n := math.NaN(), 0
	for _, x := range xs {
		if math.IsNaN(x) {
			continue
		}
		n++
		switch {
		case n == 1 && how != "count":
			r = x
		case how == "sum" || how == "mean" || how == "":
			r += x
		case how == "min":
			r = min(r, x)
		case how == "max":
			r = max(r, x)
		case how == "last":
			r = x
		}
	}
	switch {
	case n == 0:
		return math.NaN()
	case how == "count":
		return float64(n)
	case how == "mean" || how == "":
		return r / float64(n)
	}
	return r
}

type hgroup struct {
	meta *vec
	les  []float64
	vals [][]float64 // per le: bucket values summed over the group's series
}

// percentile computes histogram_quantile, Prometheus' way, over series
// tagged le (upper bound, compared numerically so "1" and "1.0" merge).
// Bucket values are cumulative per le; they can be counts or per-second
// rates alike. Without group tags every distinct (metric, source, tags minus
// le) is one histogram; with them, buckets are summed per group and le.
func (ev *evaluator) percentile(e *PercentileExpr, emit emitFn) error {
	q := e.P.Val / 100
	groups := map[string]*hgroup{}
	var buf []float64
	err := ev.stream(e.X, func(v *vec) error {
		les, ok := v.tags.Get("le")
		if !ok {
			return nil
		}
		le, err := strconv.ParseFloat(les, 64)
		if err != nil || math.IsNaN(le) {
			return nil
		}
		vals := ev.aligned(v, &buf)
		var k string
		if e.Group != nil {
			k = string(ev.groupKey(v, e.Group))
		} else {
			k = v.name + "\x00" + v.source + "\x00" + ev.tagKey(v.tags, "le")
		}
		g := groups[k]
		if g == nil {
			g = &hgroup{}
			if e.Group != nil {
				g.meta = groupMeta(v, e.Group)
			} else {
				g.meta = &vec{name: v.name, source: v.source, tags: make(Tags, 0, len(v.tags))}
				for _, t := range v.tags {
					if t.Key != "le" {
						g.meta.tags = append(g.meta.tags, t)
					}
				}
			}
			groups[k] = g
		}
		for i, l := range g.les {
			if l == le {
				addInto(g.vals[i], vals)
				return nil
			}
		}
		g.les = append(g.les, le)
		g.vals = append(g.vals, append([]float64(nil), vals...))
		return nil
	})
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(groups))
	var bs []bucket
	for _, k := range keys {
		g := groups[k]
		sort.Sort(byLe{g})
		out := make([]float64, ev.n)
		for i := range out {
			bs = bs[:0]
			for j, le := range g.les {
				if x := g.vals[j][i]; !math.IsNaN(x) {
					bs = append(bs, bucket{le, x})
				}
			}
			out[i] = bucketQuantile(q, bs)
		}
		g.meta.vals = out
		if err := emit(g.meta); err != nil {
			return err
		}
	}
	return nil
}

// addInto adds src into dst where src has values (NaN = none).
func addInto(dst, src []float64) {
	for i, x := range src {
		switch {
		case math.IsNaN(x):
		case math.IsNaN(dst[i]):
			dst[i] = x
		default:
			dst[i] += x
		}
	}
}

type byLe struct{ g *hgroup }

func (s byLe) Len() int           { return len(s.g.les) }
func (s byLe) Less(i, j int) bool { return s.g.les[i] < s.g.les[j] }
func (s byLe) Swap(i, j int) {
	s.g.les[i], s.g.les[j] = s.g.les[j], s.g.les[i]
	s.g.vals[i], s.g.vals[j] = s.g.vals[j], s.g.vals[i]
}

type bucket struct{ le, count float64 }

// bucketQuantile is Prometheus' histogram_quantile for one histogram whose
// buckets are sorted by le: linear interpolation inside the bucket holding
// the rank (lower bound 0 for the first bucket), the upper bound of the
// highest finite bucket when the rank falls in +Inf, NaN without a +Inf
// bucket, with fewer than two buckets or without observations.
func bucketQuantile(q float64, bs []bucket) float64 {
	if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].le, 1) {
		return math.NaN()
	}
	// Rates of cumulative buckets can jitter out of order; Prometheus forces
	// monotonicity the same way.
	for i := 1; i < len(bs); i++ {
		bs[i].count = max(bs[i].count, bs[i-1].count)
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].le
	}
	if b == 0 && bs[0].le <= 0 {
		return bs[0].le
	}
	start, end, count := 0.0, bs[b].le, bs[b].count
	if b > 0 {
		start = bs[b-1].le
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count)
}

// histGroup accumulates the histograms of one result series per bucket.
type histGroup struct {
	meta *vec
	// percentile and median: every centroid that fell into the bucket.
	cents [][]Centroid
	// count, sum, avg, min, max.
	acc, cnt []float64
}

// hist implements percentile, median, count, sum, avg, min and max over
// hs(): the bins of a histogram series (or, with group tags, of all series
// in the group) that start in a bucket are merged, and the function is
// taken of the merged distribution.
func (ev *evaluator) hist(e *HistExpr, emit emitFn) error {
	ds, ok := ev.st.(DistStorage)
	if !ok {
		return &Error{Pos: e.X.Pos, Msg: "hs(): this store holds no histograms"}
	}
	glob, gran, ok := histogramGranularity(e.X.Metric)
	if !ok {
		return &Error{Pos: e.X.Pos, Msg: "hs() metric must end in .m, .h or .d"}
	}
	var m Matcher = matchAll{}
	if e.X.Filter != nil {
		m = e.X.Filter
	}
	quantiles := e.Fn == "percentile" || e.Fn == "median"
	groups := map[string]*histGroup{}
	err := ds.SelectDists(ev.ctx, glob, gran, m, ev.g0, ev.end, func(s *DistSeries) error {
		if !globMatch(glob, s.Name) || !m.Match(s.Source, s.Tags) {
			return nil
		}
		v := vec{name: s.Name, source: s.Source, tags: s.Tags}
		var k string
		if e.Group != nil {
			k = string(ev.groupKey(&v, e.Group))
		} else {
			k = v.name + "\x00" + v.source + "\x00" + ev.tagKey(v.tags, "")
		}
		g := groups[k]
		if g == nil {
			g = &histGroup{meta: &vec{name: v.name, source: v.source, tags: v.tags}}
			if e.Group != nil {
				g.meta = groupMeta(&v, e.Group)
			}
			if quantiles {
				g.cents = make([][]Centroid, ev.n)
			} else {
				g.acc, g.cnt = make([]float64, ev.n), make([]float64, ev.n)
				for i := range g.acc {
					g.acc[i] = math.NaN()
				}
			}
			groups[k] = g
		}
		if g.meta.name != v.name {
			g.meta.name = "" // mixed metrics, as in aggregate
		}
		for _, d := range s.Points {
			b := floorDiv(d.T-ev.g0, ev.step)
			if b < 0 || b >= int64(ev.n) {
				continue
			}
			if quantiles {
				g.cents[b] = append(g.cents[b], d.Centroids...)
			} else {
				accumulateDist(e.Fn, g, int(b), d.Centroids)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(groups))
	q := 0.5
	if e.P != nil {
		q = e.P.Val / 100
	}
	var td *tdigest.TDigest
	for _, k := range keys {
		g := groups[k]
		out := g.acc
		switch {
		case quantiles:
			out = make([]float64, ev.n)
			for i, cs := range g.cents {
				out[i] = math.NaN()
				if len(cs) > 0 {
					if td, err = digestOf(td, cs); err != nil {
						return err
					}
					out[i] = td.Quantile(q)
				}
			}
		case e.Fn == "count":
			for i, c := range g.cnt {
				if c > 0 {
					out[i] = c
				}
			}
		case e.Fn == "avg":
			for i, c := range g.cnt {
				if c > 0 {
					out[i] /= c
				}
			}
		}
		g.meta.vals = out
		if err := emit(g.meta); err != nil {
			return err
		}
	}
	return nil
}

// accumulateDist folds one bin's centroids into bucket b: acc holds the
// sum of values (count, sum, avg) or the extreme centroid mean (min, max),
// cnt the number of values.
func accumulateDist(fn string, g *histGroup, b int, cs []Centroid) {
	for _, c := range cs {
		if !(c.Count > 0) || math.IsNaN(c.Mean) {
			continue
		}
		a := g.acc[b]
		switch fn {
		case "min":
			if math.IsNaN(a) || c.Mean < a {
				g.acc[b] = c.Mean
			}
		case "max":
			if math.IsNaN(a) || c.Mean > a {
				g.acc[b] = c.Mean
			}
		default:
			if math.IsNaN(a) {
				a = 0
			}
			g.acc[b] = a + c.Mean*c.Count
		}
		g.cnt[b] += c.Count
	}
}

// digestCompression is the t-digest accuracy used to merge centroids: the
// Wavefront proxy sends digests of compression 32, so merging at 100 loses
// nothing they carry.
const digestCompression = 100

// digestOf merges cs, in a fixed order so that a query's answer does not
// depend on the order the store returned bins in, into td (reset, or
// created when nil).
func digestOf(td *tdigest.TDigest, cs []Centroid) (*tdigest.TDigest, error) {
	if td == nil {
		var err error
		td, err = tdigest.New(tdigest.Compression(digestCompression), tdigest.LocalRandomNumberGenerator(1))
		if err != nil {
			return nil, err
		}
	} else {
		td.Reset()
	}
	slices.SortFunc(cs, func(a, b Centroid) int {
		if c := cmp.Compare(a.Mean, b.Mean); c != 0 {
			return c
		}
		return cmp.Compare(a.Count, b.Count)
	})
	for _, c := range cs {
		if c.Count >= 1 && !math.IsNaN(c.Mean) && !math.IsInf(c.Mean, 0) {
			if err := td.AddWeighted(c.Mean, uint64(c.Count)); err != nil {
				return nil, err
			}
		}
	}
	return td, nil
}
