package convert

import (
	"bytes"
	"math"
	"slices"
	"sort"

	"github.com/meshwave/meshwave/internal/promtext"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// histogramStage assembles the buckets of one histogram series into a
// cumulative distribution and turns consecutive scrapes of it into per-minute
// frequency distributions (collector.md §3.9). Exposition formats write a
// series' buckets together, so one series is assembled at a time.
type histogramStage struct {
	cur struct {
		key    []byte
		family []byte
		labels []promtext.Label
		arena  []byte
		bounds []float64
		counts []float64
		ts     int64
	}
	keyBuf     []byte
	series     map[string]*histState
	generation uint64
	Duplicates uint64
}

// histState is the previous scrape of one series, for the rate.
type histState struct {
	bounds, counts []float64
	ts             int64
	seen           uint64 // generation of the last scrape that had it
}

// staleGenerations is how many scrapes a series may be missing before its
// state is forgotten; the reference never forgets (its defect §9.13).
const staleGenerations = 10

func newHistogramStage() *histogramStage {
	return &histogramStage{series: make(map[string]*histState)}
}

func (c *Converter) convertHistogram(s *promtext.Sample, ts int64, out PointWriter) bool {
	if s.Kind != promtext.Bucket {
		return false // _sum and _count are not sent with distributions
	}
	h := c.hist
	h.keyBuf = seriesKey(h.keyBuf[:0], s)
	if !bytes.Equal(h.keyBuf, h.cur.key) {
		c.flushHistogram(out)
		h.cur.key = append(h.cur.key[:0], h.keyBuf...)
		h.keep(s)
		h.cur.ts = ts
	}
	h.cur.bounds = append(h.cur.bounds, s.Bound())
	h.cur.counts = append(h.cur.counts, s.Value)
	return true
}

// keep copies the series' family and labels (without le): the sample's
// slices die with the next line.
func (h *histogramStage) keep(s *promtext.Sample) {
	a := append(h.cur.arena[:0], s.Family...)
	for _, l := range s.Labels {
		if string(l.Name) != "le" {
			a = append(append(a, l.Name...), l.Value...)
		}
	}
	h.cur.arena = a
	h.cur.family = a[:len(s.Family)]
	h.cur.labels = h.cur.labels[:0]
	off := len(s.Family)
	for _, l := range s.Labels {
		if string(l.Name) == "le" {
			continue
		}
		n, v := off+len(l.Name), off+len(l.Name)+len(l.Value)
		h.cur.labels = append(h.cur.labels, promtext.Label{Name: a[off:n], Value: a[n:v]})
		off = v
	}
}

func seriesKey(dst []byte, s *promtext.Sample) []byte {
	dst = append(dst, s.Family...)
	for _, l := range s.Labels {
		if string(l.Name) == "le" {
			continue
		}
		dst = append(dst, 0xff)
		dst = append(dst, l.Name...)
		dst = append(dst, 0xfe)
		dst = append(dst, l.Value...)
	}
	return dst
}

// flushHistogram finishes the series being assembled: filter, rate against
// the previous scrape, convert to frequencies, write.
func (c *Converter) flushHistogram(out PointWriter) {
	h := c.hist
	if len(h.cur.key) == 0 {
		return
	}
	defer func() {
		h.cur.key = h.cur.key[:0]
		h.cur.bounds = h.cur.bounds[:0]
		h.cur.counts = h.cur.counts[:0]
	}()
	name := c.buildName(h.cur.family, promtext.Histogram, promtext.Plain)
	name = name[:len(name)-len(".value")] // distributions carry no suffix
	sample := promtext.Sample{Labels: h.cur.labels}
	p := &c.point
	p.Tags = c.tags(&sample, p.Tags[:0])
	if !c.opts.Filter.Keep(name, p.Tags) {
		c.Stats.Filtered++
		return
	}
	p.Tags = c.opts.Filter.FilterTags(p.Tags)

	id := identity(name, c.source, p.Tags)
	st, ok := h.series[string(id)]
	if ok && st.seen == h.generation {
		h.Duplicates++
		return
	}
	if !ok {
		st = &histState{}
		h.series[string(id)] = st
	}
	centroids := rateToCentroids(st, h.cur.bounds, h.cur.counts, h.cur.ts)
	st.bounds = append(st.bounds[:0], h.cur.bounds...)
	st.counts = append(st.counts[:0], h.cur.counts...)
	st.ts, st.seen = h.cur.ts, h.generation
	if len(centroids) == 0 {
		return
	}
	c.Stats.Collected++
	out.WriteDistribution(&wavefront.Distribution{
		Granularity: wavefront.Minute,
		Timestamp:   h.cur.ts,
		Centroids:   centroids,
		Name:        name,
		Source:      c.source,
		Tags:        p.Tags,
	})
}

// endScrape forgets series not seen for staleGenerations scrapes.
func (h *histogramStage) endScrape() {
	h.generation++
	for k, st := range h.series {
		if h.generation-st.seen > staleGenerations {
			delete(h.series, k)
		}
	}
}

func identity(name, source []byte, tags []wavefront.Tag) []byte {
	sorted := slices.Clone(tags)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].Key, sorted[j].Key) < 0 })
	id := append([]byte(nil), name...)
	id = append(id, 0xff)
	id = append(id, source...)
	for _, t := range sorted {
		id = append(id, 0xff)
		id = append(id, t.Key...)
		id = append(id, 0xfe)
		id = append(id, t.Value...)
	}
	return id
}

// rateToCentroids implements the reference's rate processor and its
// cumulative-to-frequency conversion (collector.md §3.9 steps 2–3).
func rateToCentroids(prev *histState, bounds, counts []float64, ts int64) []wavefront.Centroid {
	if prev.ts == 0 || len(prev.counts) != len(counts) || !slices.Equal(prev.bounds, bounds) {
		return nil
	}
	minutes := float64(ts-prev.ts) / 60
	if minutes <= 0 {
		return nil
	}
	if len(bounds) == 1 && math.IsInf(bounds[0], 1) {
		return nil
	}
	deltas := make([]float64, len(counts))
	for i := range counts {
		if counts[i] < prev.counts[i] {
			return nil // a reset
		}
		rate := (counts[i] - prev.counts[i]) / minutes
		deltas[i] = rate
		if i > 0 {
			deltas[i] = rate - (counts[i-1]-prev.counts[i-1])/minutes
		}
	}
	smallest := math.Inf(1)
	for _, d := range deltas {
		if d > 0 && d < smallest {
			smallest = d
		}
	}
	amp := 1.0
	if !math.IsInf(smallest, 1) {
		amp = math.Max(1, 1/smallest)
	}
	var out []wavefront.Centroid
	add := func(count int, mean float64) {
		if count == 0 {
			return
		}
		for i := range out {
			if out[i].Mean == mean {
				out[i].Count += count
				return
			}
		}
		out = append(out, wavefront.Centroid{Count: count, Mean: mean})
	}
	prevBound := 0.0
	for i, d := range deltas {
		bound := bounds[i]
		if i > 0 {
			prevBound = bounds[i-1]
		}
		if math.IsInf(bound, 1) {
			bound = prevBound
		}
		if bound <= 0 || d == 0 {
			continue
		}
		n := math.Max(1, d*amp)
		quarter, half := math.Trunc(n/4), math.Trunc(n/2)
		add(int(quarter), prevBound)
		add(int(half), (prevBound+bound)/2)
		add(int(n-quarter-half), bound)
	}
	slices.SortFunc(out, func(a, b wavefront.Centroid) int {
		switch {
		case a.Mean < b.Mean:
			return -1
		case a.Mean > b.Mean:
			return 1
		}
		return 0
	})
	return out
}
