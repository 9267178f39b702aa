package red

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Span is what the RED stage needs from one span, filled by the Zipkin
// converter or the custom-tracing handler. Empty values mean "absent".
// Values may alias the caller's buffers, so a converted span feeds the
// Deriver without a copy: it copies only what it keeps, when a series is
// created.
type Span struct {
	Application, Service, Operation, Cluster, Shard, Component, SpanKind, Source []byte
	HTTPStatusCode                                                               []byte
	// CustomTags are the --traceDerivedCustomTagKeys present on the span,
	// already resolved last-wins.
	CustomTags     []wavefront.Tag
	IsError        bool
	DurationMicros int64
	DurationMillis int64 // integer milliseconds
}

// Mode selects the port-specific behaviour (proxy.md §6.1, §6.3).
type Mode int

const (
	// ZipkinMode samples the histogram with DurationMicros and batches
	// heartbeats per flush, the second copy tagged component=zipkin.
	ZipkinMode Mode = iota
	// CustomTracingMode samples the histogram with DurationMillis*1000 and
	// sends heartbeats per span through ObserveAndHeartbeat, the second copy
	// tagged component=wavefront-generated.
	CustomTracingMode
)

// Options configures a Deriver.
type Options struct {
	Mode Mode
	// ReporterSource is the source of the reporter's own ~sdk health metrics;
	// empty means "zipkin" or "custom_tracing" according to Mode.
	ReporterSource string
	// Now stamps each span with its processing time, which picks its
	// histogram bin; nil means time.Now.
	Now func() time.Time
	// MaxSeries bounds the distinct series held at once; spans of further
	// new series are counted by Dropped and otherwise ignored. <= 0 means
	// 100000.
	MaxSeries int
}

// Emitter receives the derived data: the port's point and histogram
// handlers. The values are owned by the Deriver and valid only during the
// call; an Emitter must neither keep nor modify them.
type Emitter interface {
	WritePoint(p *wavefront.Point)
	WriteDistribution(d *wavefront.Distribution)
}

const (
	numShards         = 64 // power of two; spreads lock contention across series
	compression       = 32 // the reference reporter's t-digest compression
	defaultMaxSeries  = 100000
	heartbeatName     = "~component.heartbeat"
	reporterPrefix    = "\u2206~sdk.java.internal_reporter."
	binSeconds        = 60
	zipkinComponent   = "zipkin"
	customComponent   = "wavefront-generated"
	zipkinReporter    = "zipkin"
	customReporter    = "custom_tracing"
	keyBufferCapacity = 256 // encoded series keys up to this size stay on the stack
)

// Deriver accumulates RED metrics and heartbeat keys. All methods are safe
// for concurrent use.
type Deriver struct {
	mode          Mode
	component     []byte // value of the heartbeat's second copy
	heartbeatName []byte
	reporter      []byte
	now           func() time.Time
	maxSeries     int64
	seed          maphash.Seed

	series  atomic.Int64 // entries held, bounded by maxSeries
	dropped atomic.Uint64

	shards [numShards]shard

	// hbMu guards heartbeats and heartbeat.refs. It is taken only when a
	// series is created or released and at flush, never per span.
	hbMu       sync.Mutex
	heartbeats map[uint64]*heartbeat

	digests sync.Pool // reset *tdigest.TDigest, reused across minutes
	points  sync.Pool // *wavefront.Point for per-span heartbeats
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]*entry // by maphash of the key; collisions chain through next
	_  [48]byte          // keep hot shards on separate cache lines
}

// entry is one RED series: the counters and the histogram bins of one
// (application, service, operation, tags, source) combination.
type entry struct {
	key  string // encoded span key; disambiguates hash collisions
	next *entry
	hb   *heartbeat

	// Immutable after creation, so Flush reads them without the lock.
	invocationName, errorName, totalTimeName, durationName []byte
	source                                                 []byte
	tags, errorTags                                        []wavefront.Tag

	// Guarded by the shard's mutex.
	invocations, errors, totalMillis int64
	touched                          bool // observed since the last flush
	bins                             []bin
}

// heartbeat is one heartbeat key, shared by the series that differ only in
// operation name.
type heartbeat struct {
	key    string
	next   *heartbeat
	source []byte
	tags   []wavefront.Tag // the first copy
	second []wavefront.Tag // component replaced by the mode's value
	refs   int             // entries pointing here; guarded by Deriver.hbMu
	seen   atomic.Bool     // observed since the last flush (ZipkinMode)
}

// New returns a Deriver configured by opts.
func New(opts Options) *Deriver {
	d := &Deriver{
		mode:          opts.Mode,
		heartbeatName: []byte(heartbeatName),
		now:           opts.Now,
		maxSeries:     int64(opts.MaxSeries),
		seed:          maphash.MakeSeed(),
		heartbeats:    make(map[uint64]*heartbeat),
	}
	d.component, d.reporter = []byte(zipkinComponent), []byte(zipkinReporter)
	if opts.Mode == CustomTracingMode {
		d.component, d.reporter = []byte(customComponent), []byte(customReporter)
	}
	if opts.ReporterSource != "" {
		d.reporter = []byte(opts.ReporterSource)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.maxSeries <= 0 {
		d.maxSeries = defaultMaxSeries
	}
	for i := range d.shards {
		d.shards[i].m = make(map[uint64]*entry)
	}
	d.digests.New = func() any { return newDigest() }
	d.points.New = func() any { return new(wavefront.Point) }
	return d
}

// Dropped returns how many spans have been ignored since New because their
// series would have exceeded MaxSeries.
func (d *Deriver) Dropped() uint64 { return d.dropped.Load() }

// Observe counts s: invocation, error, total time, a histogram sample in
// the current minute and, in ZipkinMode, its heartbeat key. In
// CustomTracingMode it sends no heartbeat; use ObserveAndHeartbeat.
func (d *Deriver) Observe(s *Span) { d.observe(s, d.now().Unix()) }

// ObserveAndHeartbeat is Observe plus, in CustomTracingMode, the span's two
// heartbeats written to out at once (proxy.md §6.3). In ZipkinMode it is
// Observe: heartbeats wait for Flush.
func (d *Deriver) ObserveAndHeartbeat(s *Span, out Emitter) {
	now := d.now().Unix()
	e := d.observe(s, now)
	if d.mode != CustomTracingMode {
		return
	}
	p := d.points.Get().(*wavefront.Point)
	if e != nil {
		d.writeHeartbeats(out, p, e.hb, now)
	} else {
		// Over the series bound: still announce the service, at the cost of
		// building its tags.
		d.writeHeartbeats(out, p, d.newHeartbeat(s, ""), now)
	}
	*p = wavefront.Point{}
	d.points.Put(p)
}

// observe counts s at processing time now (Unix seconds) and returns its
// entry, or nil if the span was dropped.
func (d *Deriver) observe(s *Span, now int64) *entry {
	var buf [keyBufferCapacity]byte
	key, hbLen := appendKey(buf[:0], s)
	h := maphash.Bytes(d.seed, key)
	sh := &d.shards[h&(numShards-1)]

	sample, millis := d.measure(s)
	start := now - mod(now, binSeconds)

	sh.mu.Lock()
	e := sh.find(h, key)
	if e == nil {
		if e = d.admit(sh, h, key, hbLen, s); e == nil {
			sh.mu.Unlock()
			d.dropped.Add(1)
			return nil
		}
	}
	d.count(e, s.IsError, millis, sample, start)
	sh.mu.Unlock()
	return e
}

// measure returns s's histogram sample and total-time increment, which
// depend on the mode (proxy.md §6.1).
func (d *Deriver) measure(s *Span) (sample float64, millis int64) {
	if d.mode == CustomTracingMode {
		return float64(s.DurationMillis * 1000), s.DurationMillis
	}
	return float64(s.DurationMicros), s.DurationMicros / 1000
}

// find returns the entry for key, or nil. The caller holds sh.mu.
func (sh *shard) find(h uint64, key []byte) *entry {
	e := sh.m[h]
	for e != nil && e.key != string(key) {
		e = e.next
	}
	return e
}

// count adds one span to e: its counters, a histogram sample in the bin
// starting at start, and its heartbeat mark. The caller holds the shard's
// mutex.
func (d *Deriver) count(e *entry, isError bool, millis int64, sample float64, start int64) {
	e.invocations++
	if isError {
		e.errors++
	}
	e.totalMillis += millis
	e.touched = true
	e.binFor(start, isError).add(sample, d)
	// Marked under the lock, so a flush cannot release the heartbeat in
	// between. Read first: no shared cache-line write per span.
	if d.mode == ZipkinMode && !e.hb.seen.Load() {
		e.hb.seen.Store(true)
	}
}

// admit creates the entry for a new key under the shard's mutex, or returns
// nil when MaxSeries entries already exist.
func (d *Deriver) admit(sh *shard, h uint64, key []byte, hbLen int, s *Span) *entry {
	if d.series.Add(1) > d.maxSeries {
		d.series.Add(-1)
		return nil
	}
	e := newEntry(s)
	e.key = string(key)
	e.hb = d.acquireHeartbeat(key[:hbLen], s)
	e.next = sh.m[h]
	sh.m[h] = e
	return e
}

// acquireHeartbeat returns the shared heartbeat for hbKey, creating it, and
// takes a reference for a new entry.
func (d *Deriver) acquireHeartbeat(hbKey []byte, s *Span) *heartbeat {
	h := maphash.Bytes(d.seed, hbKey)
	d.hbMu.Lock()
	defer d.hbMu.Unlock()
	hb := d.heartbeats[h]
	for hb != nil && hb.key != string(hbKey) {
		hb = hb.next
	}
	if hb == nil {
		hb = d.newHeartbeat(s, string(hbKey))
		hb.next = d.heartbeats[h]
		d.heartbeats[h] = hb
	}
	hb.refs++
	return hb
}

// release drops a removed entry's reference to its heartbeat, deleting the
// heartbeat with its last reference.
func (d *Deriver) release(e *entry) {
	d.series.Add(-1)
	h := maphash.String(d.seed, e.hb.key)
	d.hbMu.Lock()
	defer d.hbMu.Unlock()
	if e.hb.refs--; e.hb.refs > 0 {
		return
	}
	var kept *heartbeat
	for hb := d.heartbeats[h]; hb != nil; {
		next := hb.next
		if hb != e.hb {
			hb.next, kept = kept, hb
		}
		hb = next
	}
	if kept == nil {
		delete(d.heartbeats, h)
	} else {
		d.heartbeats[h] = kept
	}
}

// mod is the non-negative remainder, so pre-1970 times still bin downwards.
func mod(a, b int64) int64 { return ((a % b) + b) % b }
