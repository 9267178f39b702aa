package convert

import (
	"bytes"
	"math"
	"slices"
	"strconv"

	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/promtext"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// PointWriter consumes converted points. The point and its slices are valid
// only during the call.
type PointWriter interface {
	WritePoint(p *wavefront.Point)
	WriteDistribution(d *wavefront.Distribution)
}

// Options describe one source's conversion.
type Options struct {
	Prefix            string            // prepended verbatim to every name
	Source            string            // the points' source
	Tags              map[string]string // source tags; labels override them
	OmitBucketSuffix  bool              // histogram buckets named x instead of x.bucket
	ConvertHistograms bool              // histograms become distributions
	Filter            *filter.Filter    // the source filter; nil keeps everything
}

// Stats counts what one Converter did.
type Stats struct {
	Collected uint64 // points (and distributions) kept
	Filtered  uint64 // points dropped by the filter
	NaN       uint64 // samples dropped because the reference drops their NaN
}

// Converter converts the samples of one source. It is not safe for
// concurrent use: each scrape loop owns one.
type Converter struct {
	opts       Options
	source     []byte
	sourceTags []wavefront.Tag
	names      map[string]*nameEntry
	point      wavefront.Point
	bound      []byte // formatted le/quantile
	hist       *histogramStage
	Stats      Stats
}

// nameEntry caches a sample name's Wavefront name: names repeat on every
// line, and building them is most of the conversion work.
type nameEntry struct {
	typ  promtext.Type
	kind promtext.Kind
	name []byte
}

// maxCachedNames bounds the name cache against endpoints whose metric names
// churn; past it the cache starts over.
const maxCachedNames = 1 << 16

// New returns a Converter for one source.
func New(opts Options) *Converter {
	c := &Converter{opts: opts, source: []byte(opts.Source), names: make(map[string]*nameEntry)}
	for k, v := range opts.Tags {
		if k != "" && v != "" {
			c.sourceTags = append(c.sourceTags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
		}
	}
	slices.SortFunc(c.sourceTags, func(a, b wavefront.Tag) int { return bytes.Compare(a.Key, b.Key) })
	if opts.ConvertHistograms {
		c.hist = newHistogramStage()
	}
	return c
}

// Convert converts one sample stamped with ts (Unix seconds) and writes the
// resulting point to out unless it is dropped. It reports whether a point
// was written.
func (c *Converter) Convert(s *promtext.Sample, ts int64, out PointWriter) bool {
	if c.hist != nil && s.Type == promtext.Histogram {
		return c.convertHistogram(s, ts, out)
	}
	if math.IsNaN(s.Value) && (s.Kind == promtext.Plain || s.Kind == promtext.Quantile) {
		c.Stats.NaN++
		return false
	}
	p := &c.point
	p.Name = c.name(s)
	p.Value = s.Value
	p.Timestamp = ts
	p.Source = c.source
	p.Tags = c.tags(s, p.Tags[:0])
	if !c.opts.Filter.Keep(p.Name, p.Tags) {
		c.Stats.Filtered++
		return false
	}
	p.Tags = c.opts.Filter.FilterTags(p.Tags)
	c.Stats.Collected++
	out.WritePoint(p)
	return true
}

// Flush writes anything the converter still holds (a histogram series being
// assembled into a distribution). Call it at the end of every scrape.
func (c *Converter) Flush(out PointWriter) {
	if c.hist != nil {
		c.flushHistogram(out)
		c.hist.endScrape()
	}
}

func (c *Converter) name(s *promtext.Sample) []byte {
	if e, ok := c.names[string(s.Name)]; ok && e.typ == s.Type && e.kind == s.Kind {
		return e.name
	}
	if len(c.names) >= maxCachedNames {
		clear(c.names)
	}
	e := &nameEntry{typ: s.Type, kind: s.Kind, name: c.buildName(s.Family, s.Type, s.Kind)}
	c.names[string(s.Name)] = e
	return e.name
}

// buildName applies collector.md §3.1–3.2: prefix + family with '_' → '.' +
// the suffix of the family type and sample kind.
func (c *Converter) buildName(family []byte, t promtext.Type, k promtext.Kind) []byte {
	n := make([]byte, 0, len(c.opts.Prefix)+len(family)+8)
	n = append(n, c.opts.Prefix...)
	for _, b := range family {
		if b == '_' {
			b = '.'
		}
		n = append(n, b)
	}
	switch k {
	case promtext.Bucket:
		if !c.opts.OmitBucketSuffix {
			n = append(n, ".bucket"...)
		}
	case promtext.Sum:
		n = append(n, ".sum"...)
	case promtext.Count:
		n = append(n, ".count"...)
	case promtext.Quantile:
	default:
		switch t {
		case promtext.Gauge:
			n = append(n, ".gauge"...)
		case promtext.Counter:
			n = append(n, ".counter"...)
		default:
			n = append(n, ".value"...)
		}
	}
	return n
}

// tags builds the point tags (collector.md §3.6): labels with a non-empty
// name and value, then source tags no label overrides. A typed bucket's le
// or a quantile's quantile is re-formatted like Go's %v.
func (c *Converter) tags(s *promtext.Sample, dst []wavefront.Tag) []wavefront.Tag {
	bound := ""
	switch s.Kind {
	case promtext.Bucket:
		bound = "le"
	case promtext.Quantile:
		bound = "quantile"
	}
	for _, l := range s.Labels {
		if len(l.Name) == 0 || len(l.Value) == 0 {
			continue
		}
		v := l.Value
		if bound != "" && string(l.Name) == bound {
			c.bound = formatBound(c.bound[:0], s.Bound())
			v = c.bound
		}
		dst = append(dst, wavefront.Tag{Key: l.Name, Value: v})
	}
	for _, st := range c.sourceTags {
		if !hasKey(dst, st.Key) {
			dst = append(dst, st)
		}
	}
	return dst
}

// formatBound formats like fmt's %v for a float64, as the reference does:
// the shortest 'g' form, with an exponent when it is < -4 or >= 6.
func formatBound(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func hasKey(tags []wavefront.Tag, key []byte) bool {
	for _, t := range tags {
		if bytes.Equal(t.Key, key) {
			return true
		}
	}
	return false
}
