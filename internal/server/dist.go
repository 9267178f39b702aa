package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"go.etcd.io/bbolt"

	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/meshwave/meshwave/internal/wql"
)

// Centroid is one histogram bin.
type Centroid struct {
	Mean  float64 `json:"mean"`
	Count int     `json:"count"`
}

// DistPoint is the distribution of one series in one bin: every histogram
// received for that series and bin, centroids concatenated (merging them
// is the query's job, as percentiles are computed at query time).
type DistPoint struct {
	T         int64      `json:"t"` // bin start, Unix ms
	Centroids []Centroid `json:"centroids"`
}

// DistSeries is one distribution series returned by SelectDistributions.
type DistSeries struct {
	Name, Source string
	Tags         map[string]string
	Granularity  string // "!M", "!H" or "!D"
	Points       []DistPoint
}

// distRecOf encodes a decoded histogram. The key ends in a hash of the
// whole canonical line, so a replayed or resent histogram overwrites
// itself while different histograms for the same series and bin are kept
// side by side (Wavefront merges them).
func distRecOf(h *wavefront.Distribution, binStart int64, line []byte) distRec {
	key := append(slices.Clone(h.Name), 0)
	key = be64(key, binStart)
	key = binary.BigEndian.AppendUint64(key, xxhash.Sum64(line))
	v := []byte{byte(h.Granularity)}
	v = appendBytes(v, h.Source)
	v = binary.AppendUvarint(v, uint64(len(h.Tags)))
	for _, t := range h.Tags {
		v = appendBytes(appendBytes(v, t.Key), t.Value)
	}
	v = binary.AppendUvarint(v, uint64(len(h.Centroids)))
	for _, c := range h.Centroids {
		v = binary.AppendUvarint(v, uint64(c.Count))
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(c.Mean))
	}
	return distRec{key: key, name: slices.Clone(h.Name), value: v}
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

var errBadDist = errors.New("damaged distribution record")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadDist, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err, r.b = errBadDist, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

func decodeDist(v []byte) (gran wavefront.Granularity, source string, tags map[string]string, cs []Centroid, err error) {
	if len(v) == 0 {
		return 0, "", nil, nil, errBadDist
	}
	r := reader{b: v[1:]}
	gran = wavefront.Granularity(v[0])
	source = r.str()
	n := r.uvarint()
	tags = make(map[string]string, min(n, 128))
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.str()
		tags[k] = r.str()
	}
	n = r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		c := int(r.uvarint())
		m := math.Float64frombits(binary.BigEndian.Uint64(r.bytes(8)))
		if r.err == nil {
			cs = append(cs, Centroid{m, c})
		}
	}
	return gran, source, tags, cs, r.err
}

// SelectDistributions returns the distribution series whose name matches
// metricGlob and whose source and tags satisfy m, with the bins starting
// in [start, end] (Unix ms): the input of Wavefront's hs() functions.
func (s *kvStore) SelectDistributions(ctx context.Context, metricGlob string, m wql.Matcher, start, end int64) ([]DistSeries, error) {
	re, err := regexp.Compile("^(?:" + globRegexp(metricGlob) + ")$")
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	var out []DistSeries
	err = s.db.View(func(tx *bbolt.Tx) error {
		dists := tx.Bucket(bDists)
		nc := tx.Bucket(bDistNames).Cursor()
		for name, _ := nc.First(); name != nil; name, _ = nc.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !re.Match(name) {
				continue
			}
			prefix := append(slices.Clone(name), 0)
			hi := be64(slices.Clone(prefix), end+1)
			c := dists.Cursor()
			for k, v := c.Seek(be64(slices.Clone(prefix), start)); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
				gran, source, tags, cs, err := decodeDist(v)
				if err != nil {
					return err
				}
				// The filter is decided once per series; -1 marks one it rejects.
				sk := seriesKey(string(name), gran.String(), source, tags)
				i, ok := index[sk]
				if !ok {
					i = len(out)
					if m != nil && !m.Match(source, wql.TagsOf(tags)) {
						i = -1
					}
					index[sk] = i
					if i >= 0 {
						out = append(out, DistSeries{Name: string(name), Source: source, Tags: tags, Granularity: gran.String()})
					}
				}
				if i < 0 {
					continue
				}
				t := int64(binary.BigEndian.Uint64(k[len(prefix):]))
				ds := &out[i]
				if n := len(ds.Points); n > 0 && ds.Points[n-1].T == t {
					ds.Points[n-1].Centroids = append(ds.Points[n-1].Centroids, cs...)
				} else {
					ds.Points = append(ds.Points, DistPoint{T: t, Centroids: cs})
				}
			}
		}
		return nil
	})
	return out, err
}

// SelectDists implements wql.DistStorage over SelectDistributions.
func (q queryStore) SelectDists(ctx context.Context, nameGlob string, gran byte, m wql.Matcher, start, end int64, fn func(*wql.DistSeries) error) error {
	want := "!" + strings.ToUpper(string(gran))
	series, err := q.kv.SelectDistributions(ctx, nameGlob, m, start, end)
	if err != nil {
		if ctx.Err() == nil {
			err = storageError{err}
		}
		return err
	}
	var ws wql.DistSeries
	for _, ds := range series {
		if ds.Granularity != want {
			continue
		}
		ws = wql.DistSeries{Name: ds.Name, Source: ds.Source, Tags: wql.TagsOf(ds.Tags), Points: ws.Points[:0]}
		for _, p := range ds.Points {
			cs := make([]wql.Centroid, len(p.Centroids))
			for i, c := range p.Centroids {
				cs[i] = wql.Centroid{Mean: c.Mean, Count: float64(c.Count)}
			}
			ws.Points = append(ws.Points, wql.Dist{T: p.T, Centroids: cs})
		}
		if err := fn(&ws); err != nil {
			return err
		}
	}
	return nil
}

// seriesKey identifies a series independently of tag order.
func seriesKey(name, gran, source string, tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name + "\x00" + gran + "\x00" + source)
	for _, k := range keys {
		b.WriteString("\x00" + k + "\x00" + tags[k])
	}
	return b.String()
}

// browseDists lists the distribution names matching glob for the metrics
// browser, with their sources and tags in [start, end].
func (s *kvStore) browseDists(ctx context.Context, glob string, start, end int64, limit int) ([]MetricInfo, error) {
	series, err := s.SelectDistributions(ctx, glob, nil, start, end)
	if err != nil {
		return nil, err
	}
	byName := map[string]*MetricInfo{}
	var names []string
	for _, ds := range series {
		mi := byName[ds.Name]
		if mi == nil {
			if len(names) >= limit {
				continue
			}
			mi = &MetricInfo{Name: ds.Name, Kind: "histogram", Tags: map[string][]string{}}
			byName[ds.Name] = mi
			names = append(names, ds.Name)
		}
		if !slices.Contains(mi.Sources, ds.Source) {
			mi.Sources = append(mi.Sources, ds.Source)
		}
		for k, v := range ds.Tags {
			if !slices.Contains(mi.Tags[k], v) {
				mi.Tags[k] = append(mi.Tags[k], v)
			}
		}
	}
	out := make([]MetricInfo, 0, len(names))
	for _, n := range names {
		mi := byName[n]
		slices.Sort(mi.Sources)
		for _, v := range mi.Tags {
			slices.Sort(v)
		}
		out = append(out, *mi)
	}
	return out, nil
}
