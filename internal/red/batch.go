package red

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Batch collects the spans of one request and observes them together:
// spans of the same series are counted into one slot, so each series takes
// its shard's lock once per batch instead of once per span, and the clock
// is read once. Envoy sends a service's spans in bodies of tens to
// hundreds, most of them of a few series. Spans are observed only at
// Commit (or when the batch fills up); a Batch is not safe for concurrent
// use, and its Deriver's methods may be called meanwhile.
type Batch struct {
	d       *Deriver
	keys    []byte // the series' encoded keys, back to back
	series  []batchSeries
	table   []int32 // series by key hash, open addressing: index+1, 0 is empty
	samples []batchSample
}

type batchSeries struct {
	h                uint64
	start, end, hbAt int   // key is keys[start:end]; keys[start:hbAt] is the heartbeat key
	slot             int32 // its place in table
	first, last      int32 // the series' samples in arrival order, linked by next
}

type batchSample struct {
	sample  float64
	millis  int64
	isError bool
	next    int32
}

// batchLimit bounds a batch's spans, so a huge body costs bounded memory;
// Add commits when it is reached.
const batchLimit = 4096

// minBatchTable is the table's first size: a body's spans are of a few
// series.
const minBatchTable = 16

// NewBatch returns an empty Batch feeding d.
func (d *Deriver) NewBatch() *Batch { return &Batch{d: d, table: make([]int32, minBatchTable)} }

// Add records s for the next Commit. Like Observe it copies what it keeps:
// s may be reused as soon as Add returns.
func (b *Batch) Add(s *Span) {
	start := len(b.keys)
	var hbAt int
	b.keys, hbAt = appendKey(b.keys, s)
	key := b.keys[start:]
	h := maphash.Bytes(b.d.seed, key)
	// A table of its own rather than a map: a probe or two and no
	// hashing of the hash.
	mask := uint64(len(b.table) - 1)
	j := h & mask
	var i int32
	for {
		x := b.table[j]
		if x == 0 {
			i = b.newSeries(h, start, hbAt, j)
			break
		}
		if bs := &b.series[x-1]; bs.h == h && string(b.keys[bs.start:bs.end]) == string(key) {
			i = x - 1
			b.keys = b.keys[:start] // a known series: its key is already kept
			break
		}
		j = (j + 1) & mask
	}
	sample, millis := b.d.measure(s)
	n := int32(len(b.samples))
	b.samples = append(b.samples, batchSample{sample: sample, millis: millis, isError: s.IsError, next: -1})
	if bs := &b.series[i]; bs.first < 0 {
		bs.first, bs.last = n, n
	} else {
		b.samples[bs.last].next = n
		bs.last = n
	}
	if len(b.samples) >= batchLimit {
		b.Commit()
	}
}

// newSeries adds the series whose key was just appended at start, placed
// at the empty slot j of the table, which doubles once half full.
func (b *Batch) newSeries(h uint64, start, hbAt int, j uint64) int32 {
	i := int32(len(b.series))
	b.series = append(b.series, batchSeries{h: h, start: start, end: len(b.keys), hbAt: hbAt, slot: int32(j), first: -1})
	b.table[j] = i + 1
	if 2*len(b.series) > len(b.table) {
		b.table = make([]int32, 2*len(b.table))
		mask := uint64(len(b.table) - 1)
		for k := range b.series {
			bs := &b.series[k]
			j := bs.h & mask
			for b.table[j] != 0 {
				j = (j + 1) & mask
			}
			b.table[j], bs.slot = int32(k)+1, int32(j)
		}
	}
	return i
}

// Commit observes the spans added since the last Commit, stamped with the
// current time, and empties the batch.
func (b *Batch) Commit() {
	d := b.d
	now := d.now().Unix()
	start := now - mod(now, binSeconds)
	for i := range b.series {
		bs := &b.series[i]
		key := b.keys[bs.start:bs.end]
		sh := &d.shards[bs.h&(numShards-1)]
		sh.mu.Lock()
		e := sh.find(bs.h, key)
		if e == nil {
			s := decodeKey(key, bs.hbAt-bs.start)
			e = d.admit(sh, bs.h, key, bs.hbAt-bs.start, &s)
		}
		dropped := uint64(0)
		for j := bs.first; j >= 0; j = b.samples[j].next {
			if p := &b.samples[j]; e != nil {
				d.count(e, p.isError, p.millis, p.sample, start)
			} else {
				dropped++
			}
		}
		sh.mu.Unlock()
		if dropped > 0 {
			d.dropped.Add(dropped)
		}
		b.table[bs.slot] = 0
	}
	b.keys, b.series, b.samples = b.keys[:0], b.series[:0], b.samples[:0]
}

// decodeKey rebuilds the fields of a span from its key (see appendKey),
// enough to create its series; the values alias key.
func decodeKey(key []byte, hbLen int) Span {
	next := func() []byte {
		n, w := binary.Uvarint(key)
		v := key[w : w+int(n)]
		key = key[w+int(n):]
		hbLen -= w + int(n)
		return v
	}
	var s Span
	for _, f := range []*[]byte{&s.Application, &s.Service, &s.Cluster, &s.Shard, &s.Component, &s.SpanKind, &s.Source, &s.HTTPStatusCode} {
		*f = next()
	}
	for hbLen > 0 {
		k := next()
		s.CustomTags = append(s.CustomTags, wavefront.Tag{Key: k, Value: next()})
	}
	s.Operation = next()
	return s
}
