package collector

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/sink"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// exporter is one sink's half of the pipeline (collector.md §6.1–6.3): the
// cluster tag, sink tags, sink filter, nodename→source, prefix, tag cleaning
// and the Wavefront limits, then encoding. It is immutable; each scrape
// writes through its own batch.
type exporter struct {
	name           string
	cluster        []byte
	tags           []wavefront.Tag
	filter         *filter.Filter
	guaranteed     map[string]bool
	prefix         []byte // "k8s." for a configured ".k8s."; empty for none
	allowNonFinite bool
	w              sink.Writer // points
	hw             sink.Writer // distributions; direct ingestion posts them with f=histogram
	m              *Metrics
}

// batchBytes is how much a batch encodes before handing lines to the sink:
// big enough to amortise the hand-off, small enough to stream.
const batchBytes = 64 << 10

func newExporter(name, cluster, prefix string, tags map[string]string, f *filter.Filter, guarantee []string, w, hw sink.Writer, m *Metrics) *exporter {
	e := &exporter{name: name, cluster: []byte(cluster), filter: f, w: w, hw: hw, m: m, guaranteed: map[string]bool{}}
	if p := strings.Trim(prefix, "."); p != "" {
		e.prefix = []byte(p + ".")
	}
	for k, v := range tags {
		e.tags = append(e.tags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
	}
	slices.SortFunc(e.tags, func(a, b wavefront.Tag) int { return bytes.Compare(a.Key, b.Key) })
	for _, k := range guarantee {
		e.guaranteed[k] = true
	}
	return e
}

func (e *exporter) isGuaranteed(key []byte) bool { return e.guaranteed[string(key)] }

// batch encodes one scrape's points for one exporter. Not safe for
// concurrent use.
type batch struct {
	e      *exporter
	buf    []byte // encoded points
	hbuf   []byte // encoded distributions
	tags   []wavefront.Tag
	name   []byte
	values []byte // truncated tag values
	point  wavefront.Point
	dist   wavefront.Distribution
}

func (e *exporter) newBatch() *batch { return &batch{e: e, buf: make([]byte, 0, batchBytes+4096)} }

// transform runs steps 1–6 of §6.1 on name, source and tags. It returns false
// when the sink filter drops the point.
func (b *batch) transform(name, source []byte, tags []wavefront.Tag) (outName, outSource []byte, outTags []wavefront.Tag, ok bool) {
	e := b.e
	t := append(b.tags[:0], tags...)
	if len(e.cluster) > 0 {
		if i := tagIndex(t, "cluster"); i >= 0 {
			t[i].Value = e.cluster
		} else {
			t = append(t, wavefront.Tag{Key: []byte("cluster"), Value: e.cluster})
		}
	}
	for _, st := range e.tags {
		if tagIndex(t, string(st.Key)) < 0 {
			t = append(t, st)
		}
	}
	b.tags = t
	if !e.filter.Keep(name, t) {
		e.m.sinkFiltered.Inc()
		return nil, nil, nil, false
	}
	t = e.filter.FilterTags(t)
	if i := tagIndex(t, "nodename"); i >= 0 {
		source = t[i].Value
	}
	if len(e.prefix) > 0 {
		b.name = append(append(b.name[:0], e.prefix...), name...)
		name = b.name
	}
	t = cleanTags(t, e.isGuaranteed)
	return name, source, b.enforceLimits(t), true
}

// enforceLimits keeps tags within the Wavefront limits (proxy.md §2.5) so a
// downstream proxy does not reject the whole line: a value making key+value
// longer than 254 UTF-16 units is truncated, counted (defect §9.18).
func (b *batch) enforceLimits(tags []wavefront.Tag) []wavefront.Tag {
	const maxKeyValue = 254
	b.values = b.values[:0]
	for i := range tags {
		k, v := tags[i].Key, tags[i].Value
		if len(k)+len(v) <= maxKeyValue { // bytes ≥ UTF-16 units
			continue
		}
		room := maxKeyValue - utf16Len(k)
		if room <= 0 {
			continue // an over-long key cannot be fixed by truncation
		}
		if utf16Len(v) <= room {
			continue
		}
		b.e.m.tagsTruncated.Inc()
		tags[i].Value = truncateUTF16(v, room)
	}
	return tags
}

func utf16Len(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		n += utf16.RuneLen(r)
		if r == utf8.RuneError && size == 1 {
			n++
		}
		b = b[size:]
	}
	return n
}

func truncateUTF16(b []byte, units int) []byte {
	n := 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		w := max(utf16.RuneLen(r), 1)
		if n+w > units {
			return b[:i]
		}
		n += w
		i += size
	}
	return b
}

func tagIndex(tags []wavefront.Tag, key string) int {
	for i, t := range tags {
		if string(t.Key) == key {
			return i
		}
	}
	return -1
}

// WritePoint implements convert.PointWriter.
func (b *batch) WritePoint(p *wavefront.Point) {
	if !b.e.allowNonFinite && (math.IsNaN(p.Value) || math.IsInf(p.Value, 0)) {
		// The reference sends +Inf/NaN, which Java-style parsers reject
		// downstream (defect §9.19); count and drop instead.
		b.e.m.nonFinite.Inc()
		return
	}
	name, source, tags, ok := b.transform(p.Name, p.Source, p.Tags)
	if !ok {
		return
	}
	b.point = wavefront.Point{Name: name, Value: p.Value, Timestamp: p.Timestamp, Source: source, Tags: tags}
	b.buf = wavefront.AppendPoint(b.buf, &b.point)
	if len(b.buf) >= batchBytes {
		b.flush()
	}
}

// WriteDistribution implements convert.PointWriter.
func (b *batch) WriteDistribution(d *wavefront.Distribution) {
	name, source, tags, ok := b.transform(d.Name, d.Source, d.Tags)
	if !ok {
		return
	}
	b.dist = *d
	b.dist.Name, b.dist.Source, b.dist.Tags = name, source, tags
	b.hbuf = wavefront.AppendDistribution(b.hbuf, &b.dist)
	if len(b.hbuf) >= batchBytes {
		b.flush()
	}
}

// writeRaw appends a point that bypasses the sink pipeline, as the
// reference's heartbeat does (collector.md §6.5).
func (b *batch) writeRaw(p *wavefront.Point) {
	b.buf = wavefront.AppendPoint(b.buf, p)
}

// flush hands the encoded lines to the sink, which copies them.
func (b *batch) flush() {
	if len(b.buf) > 0 {
		b.e.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
	if len(b.hbuf) > 0 {
		b.e.hw.Write(b.hbuf)
		b.hbuf = b.hbuf[:0]
	}
}

// fanout writes every point to one batch per sink.
type fanout []*batch

func (f fanout) WritePoint(p *wavefront.Point) {
	for _, b := range f {
		b.WritePoint(p)
	}
}

func (f fanout) WriteDistribution(d *wavefront.Distribution) {
	for _, b := range f {
		b.WriteDistribution(d)
	}
}

func (f fanout) flush() {
	for _, b := range f {
		b.flush()
	}
}
