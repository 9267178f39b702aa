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
