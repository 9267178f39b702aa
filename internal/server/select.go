package server

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

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
	err := m.each(ctx, metricGlob, mt, start, end, func(s *wql.Series) error {
		c := *s
		c.Points = slices.Clone(s.Points)
		out = append(out, c)
		return nil
	})
	return out, err
}

// queryStore is what the query endpoint evaluates against: metrics from
// the tsdb (wql.Storage) and histograms from bbolt (wql.DistStorage).
type queryStore struct {
	m  *metricStore
	kv *kvStore
}

// Select implements wql.Storage, streaming series with a reused Points
// buffer. Store failures are wrapped in storageError so the query endpoint
// can tell them from query errors.
func (q queryStore) Select(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, fn func(*wql.Series) error) error {
	var fnErr error
	err := q.m.each(ctx, metricGlob, mt, start, end, func(s *wql.Series) error {
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

// each calls fn for every matching series; s.Points is reused between
// calls. The filter's top-level conjunction goes to the tsdb's index as
// label matchers; the rest is checked here on the decoded tags.
func (m *metricStore) each(ctx context.Context, metricGlob string, mt wql.Matcher, start, end int64, fn func(*wql.Series) error) error {
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
	parts := m.partitions(start, end)
	sets := make([]storage.SeriesSet, len(parts))
	has := make([]bool, len(parts))
	for i, p := range parts {
		q, err := m.db.Querier(p[0], p[1])
		if err != nil {
			return err
		}
		defer q.Close()
		sets[i] = q.Select(ctx, len(parts) > 1, &storage.SelectHints{Start: p[0], End: p[1]}, ms...)
		has[i] = sets[i].Next()
	}
	var it chunkenc.Iterator
	var pts []wql.Point
	for n := 0; ; n++ {
		if n&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// Merge-join the label-sorted sets: the series with the smallest
		// labels takes its samples from every partition that has it, in
		// time order.
		var cur labels.Labels
		found := false
		for i, set := range sets {
			if has[i] {
				if l := set.At().Labels(); !found || labels.Compare(l, cur) < 0 {
					cur, found = l, true
				}
			}
		}
		if !found {
			break
		}
		ser := seriesOf(cur)
		keep := mt == nil || mt.Match(ser.Source, ser.Tags)
		pts = pts[:0]
		for i, set := range sets {
			if !has[i] || !labels.Equal(set.At().Labels(), cur) {
				continue
			}
			if keep {
				it = set.At().Iterator(it)
				for it.Next() == chunkenc.ValFloat {
					t, v := it.At()
					pts = append(pts, wql.Point{T: t, V: v})
				}
				if err := it.Err(); err != nil {
					return err
				}
			}
			has[i] = set.Next()
		}
		if len(pts) > 0 {
			ser.Points = pts
			if err := fn(&ser); err != nil {
				return err
			}
		}
	}
	for _, set := range sets {
		if err := set.Err(); err != nil {
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
