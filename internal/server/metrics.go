package server

import (
	"errors"
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
	// decodes lines nor builds or hashes label sets. The label set is kept
	// for the tsdb, which needs it when a cached reference has gone stale
	// (the series was dropped from the head after a compaction). Only the
	// applier goroutine touches it.
	refs map[string]cachedRef
}

type cachedRef struct {
	ref  storage.SeriesRef
	lset labels.Labels
}

// maxCachedRefs bounds the reference cache; it is simply emptied when
// full, since rebuilding an entry costs one label-set hash.
const maxCachedRefs = 1 << 20

func openMetricStore(dir string, retentionMs, oooWindowMs int64, log *slog.Logger, reg prometheus.Registerer) (*metricStore, error) {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = retentionMs
	opts.OutOfOrderTimeWindow = oooWindowMs
	db, err := tsdb.Open(dir, log.With("component", "tsdb"), reg, opts, nil)
	if err != nil {
		return nil, err
	}
	return &metricStore{db: db, dir: dir, refs: make(map[string]cachedRef)}, nil
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

// append adds one sample to app. key identifies the series for the
// reference cache; mk builds its labels on a miss.
func (m *metricStore) append(app storage.Appender, key []byte, mk func() (labels.Labels, error), t int64, v float64) error {
	c, ok := m.refs[string(key)]
	if !ok {
		var err error
		if c.lset, err = mk(); err != nil {
			return err
		}
	}
	ref, err := app.Append(c.ref, c.lset, t, v)
	if err != nil {
		return err
	}
	if !ok || ref != c.ref {
		if len(m.refs) >= maxCachedRefs {
			clear(m.refs)
		}
		c.ref = ref
		m.refs[string(key)] = c
	}
	return nil
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
