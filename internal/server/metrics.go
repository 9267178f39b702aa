package server

import (
	"bytes"
	"errors"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Label names the metric store uses besides the escaped point tags.
const (
	labelName   = model.MetricNameLabel // the Wavefront metric name, as-is
	labelSource = "source"
	// reservedPrefix starts every Prometheus-reserved label name. A point
	// tag key that starts with it is stored with escapePrefix in front, so
	// "__name__" as a Wavefront tag cannot clash with the metric name.
	reservedPrefix = "__"
	escapePrefix   = "__wf"
)

// tagLabel maps a Wavefront point tag key to its label name; labelTag is
// its inverse. The tsdb does not restrict label-name characters (UTF-8
// names are valid since Prometheus 3), so only the reserved "__" prefix
// needs escaping, and the mapping is a bijection on valid tag keys.
func tagLabel(k string) string {
	if strings.HasPrefix(k, reservedPrefix) {
		return escapePrefix + k
	}
	return k
}

func labelTag(l string) (string, bool) {
	if strings.HasPrefix(l, escapePrefix) {
		return l[len(escapePrefix):], true
	}
	if strings.HasPrefix(l, reservedPrefix) || l == labelSource {
		return "", false
	}
	return l, true
}

// metricStore holds Wavefront points in a Prometheus tsdb.
type metricStore struct {
	db  *tsdb.DB
	dir string
	// refs caches series references by the series text of canonical point
	// lines (quoted name, source and tags) so the hot path neither
	// decodes lines nor builds or hashes label sets. Only the applier
	// goroutine touches it.
	refs refCache
}

// refCache maps series texts to tsdb series references. The texts live
// in one arena and the entries in one slice, found through a map keyed
// by a hash of the text, so a lookup converts no string and the map holds
// small fixed-size values (a map[string] of ~170-byte keys spent a tenth
// of the server's time). Senders repeat their series in the same order
// body after body, as scrapes do, so each entry also remembers the entry
// looked up after it: when that guess holds, a lookup is one comparison,
// with no hashing (see nextGuessed). The label set is kept for the tsdb, which needs it
// when a cached reference has gone stale (the series was dropped from the
// head after a compaction).
type refCache struct {
	seed    maphash.Seed
	index   map[uint64]int32 // hash of a series text → its newest entry
	entries []cachedRef
	arena   []byte // the series texts, back to back
	last    int32  // the entry found or added last, or -1
	// The cache is emptied when an add would pass either bound; clears
	// counts the times, for references to its entries (applier.byKnown).
	clears                   int
	maxEntries, maxTextBytes int
}

type cachedRef struct {
	ref  storage.SeriesRef
	lset labels.Labels
	// The series text is arena[off:end], its quoted name arena[off:split].
	off, split, end int
	sameHash        int32 // an older entry with the same hash, or -1
	next            int32 // the entry looked up after this one last time, or -1
}

// Bounds of the reference cache; it is simply emptied when full, since
// rebuilding an entry costs one label-set hash.
const (
	maxCachedRefs      = 1 << 20
	maxCachedTextBytes = 256 << 20
)

func newRefCache() refCache {
	return refCache{seed: maphash.MakeSeed(), index: make(map[uint64]int32), last: -1,
		maxEntries: maxCachedRefs, maxTextBytes: maxCachedTextBytes}
}

func (c *refCache) text(i int32) []byte { return c.arena[c.entries[i].off:c.entries[i].end] }

// guess returns the entry looked up after the last one the previous time,
// with its series text split into the quoted name and the rest.
func (c *refCache) guess() (i int32, name, rest []byte, ok bool) {
	if c.last < 0 {
		return 0, nil, nil, false
	}
	if i = c.entries[c.last].next; i < 0 {
		return 0, nil, nil, false
	}
	e := &c.entries[i]
	return i, c.arena[e.off:e.split], c.arena[e.split:e.end], true
}

// take returns entry i, a guess that held, as the one found last.
func (c *refCache) take(i int32) *cachedRef {
	c.last = i
	return &c.entries[i]
}

// find returns the entry of series text key, or nil and the hash of key
// for add. The entry is valid until the next add.
func (c *refCache) find(key []byte) (*cachedRef, uint64) {
	if c.last >= 0 {
		if i := c.entries[c.last].next; i >= 0 && bytes.Equal(c.text(i), key) {
			c.last = i
			return &c.entries[i], 0
		}
	}
	h := maphash.Bytes(c.seed, key)
	return c.lookup(key, h), h
}

// lookup finds series text key, whose hash is h, through the index.
func (c *refCache) lookup(key []byte, h uint64) *cachedRef {
	for i, ok := c.index[h]; ok && i >= 0; i = c.entries[i].sameHash {
		if bytes.Equal(c.text(i), key) {
			c.follow(i)
			return &c.entries[i]
		}
	}
	return nil
}

// follow records that entry i was looked up after the last one.
func (c *refCache) follow(i int32) {
	if c.last >= 0 {
		c.entries[c.last].next = i
	}
	c.last = i
}

// add caches a new series text, whose quoted name is key[:split] and
// whose hash find returned.
func (c *refCache) add(key []byte, split int, h uint64, ref storage.SeriesRef, lset labels.Labels) {
	if len(c.entries) >= c.maxEntries || len(c.arena)+len(key) > c.maxTextBytes {
		clear(c.index)
		c.entries, c.arena, c.last = c.entries[:0], c.arena[:0], -1
		c.clears++
	}
	prev, ok := c.index[h]
	if !ok {
		prev = -1
	}
	i := int32(len(c.entries))
	c.index[h] = i
	c.entries = append(c.entries, cachedRef{ref: ref, lset: lset, off: len(c.arena), split: len(c.arena) + split, end: len(c.arena) + len(key), sameHash: prev, next: -1})
	c.arena = append(c.arena, key...)
	c.follow(i)
}

func openMetricStore(dir string, retentionMs, oooWindowMs int64, log *slog.Logger, reg prometheus.Registerer) (*metricStore, error) {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = retentionMs
	opts.OutOfOrderTimeWindow = oooWindowMs
	// Isolation hides a commit from readers until it is complete, at a
	// cost in every commit (~1.5 % of ingestion). Our readers have no use
	// for it: a commit is whatever WAL records the applier read at once,
	// from several unrelated requests that were answered 202 before it,
	// so no client can tell a half-visible commit from one a moment
	// earlier or later. Each sample is still read whole (the series lock).
	opts.IsolationDisabled = true
	db, err := tsdb.Open(dir, log.With("component", "tsdb"), reg, opts, nil)
	if err != nil {
		return nil, err
	}
	return &metricStore{db: db, dir: dir, refs: newRefCache()}, nil
}

// sampleDrop classifies why the tsdb refused a sample.
func sampleDrop(err error) (string, bool) {
	switch {
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample), errors.Is(err, storage.ErrOutOfOrderSample):
		return "too_old", true
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return "duplicate_timestamp", true
	case errors.Is(err, tsdb.ErrInvalidSample):
		return "invalid", true
	}
	return "", false
}

// append adds one sample to app and returns the series' reference cache
// entry, or -1 if it has none. key is the series text for the cache,
// key[:split] its quoted name; mk builds its labels on a miss.
func (m *metricStore) append(app storage.Appender, key []byte, split int, mk func() (labels.Labels, error), t int64, v float64) (int32, error) {
	c, h := m.refs.find(key)
	if c != nil {
		return m.refs.last, appendCached(app, c, t, v)
	}
	lset, err := mk()
	if err != nil {
		return -1, err
	}
	ref, err := app.Append(0, lset, t, v)
	if err != nil {
		return -1, err
	}
	m.refs.add(key, split, h, ref, lset)
	return m.refs.last, nil
}

// appendCached adds one sample of a cached series to app.
func appendCached(app storage.Appender, c *cachedRef, t int64, v float64) error {
	ref, err := app.Append(c.ref, c.lset, t, v)
	if err == nil {
		c.ref = ref
	}
	return err
}

// syncWAL fsyncs the newest segments of the tsdb's write-ahead logs. The
// tsdb writes every commit to the OS but fsyncs only when a segment is
// full; the applier calls this before acknowledging the server's own WAL,
// so data leaves the fsync'd queue only once the tsdb copy is durable
// too. Older segments were fsync'd by the tsdb when it rotated them.
func (m *metricStore) syncWAL() error {
	for _, sub := range []string{"wal", "wbl"} {
		dir := filepath.Join(m.dir, sub)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		// Segment names are zero-padded numbers, so name order is age order.
		var segs []string
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				segs = append(segs, e.Name())
			}
		}
		sort.Strings(segs)
		for _, name := range segs[max(0, len(segs)-2):] {
			if err := fsyncFile(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed by a checkpoint meanwhile: its data is in a block
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
