package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/meshwave/meshwave/internal/wql"
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
	// refs caches series references by canonical series key (name, source
	// and tags as the line had them) so the hot path neither builds label
	// sets nor hashes them. Only the applier goroutine touches it.
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
func (m *metricStore) append(app storage.Appender, key []byte, mk func() labels.Labels, t int64, v float64) error {
	c, ok := m.refs[string(key)]
	if !ok {
		c.lset = mk()
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
// ms): wql.Storage. Store failures are wrapped in storageError so the
// query endpoint can tell them from query errors.
func (m *metricStore) Select(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64) ([]wql.Series, error) {
	out, err := m.selectSeries(ctx, metricGlob, mt, start, end)
	if err != nil && ctx.Err() == nil {
		return nil, storageError{err}
	}
	return out, err
}

// storageError marks a failure of the store, as opposed to the query.
type storageError struct{ err error }

func (e storageError) Error() string { return "storage: " + e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

func (m *metricStore) selectSeries(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64) ([]wql.Series, error) {
	nm, err := nameMatcher(metricGlob)
	if err != nil {
		return nil, err
	}
	q, err := m.db.Querier(start, end)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	set := q.Select(ctx, true, &storage.SelectHints{Start: start, End: end}, nm)
	var out []wql.Series
	var it chunkenc.Iterator
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := set.At()
		ser := seriesOf(s.Labels())
		if mt != nil && !mt.Match(ser.Source, ser.Tags) {
			continue
		}
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			ser.Points = append(ser.Points, wql.Point{T: t, V: v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if len(ser.Points) > 0 {
			out = append(out, ser)
		}
	}
	return out, set.Err()
}

func seriesOf(ls labels.Labels) wql.Series {
	s := wql.Series{Tags: make(map[string]string, ls.Len())}
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case labelName:
			s.Name = l.Value
		case labelSource:
			s.Source = l.Value
		default:
			if k, ok := labelTag(l.Name); ok {
				s.Tags[k] = l.Value
			}
		}
	})
	return s
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
