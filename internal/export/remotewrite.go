package export

import (
	"bytes"
	"cmp"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Remote-write names and defaults.
const (
	RemoteWriteName       = "remote_write"
	defaultMaxSamples     = 2000
	deltaSuffix           = "_delta"
	reservedLabelPrefix   = "__"
	escapedLabelPrefix    = "tag"
	labelMetricName       = "__name__"
	labelSource           = "source"
	labelGranularity      = "granularity"
	labelQuantile         = "quantile"
	histogramCountSuffix  = "_count"
	histogramSumSuffix    = "_sum"
	remoteWriteProtoVer   = "0.1.0"
	remoteWriteMediaType  = "application/x-protobuf"
	remoteWriteCompressed = "snappy"
	// histogramSeries is how many series one histogram line becomes.
	histogramSeries = 2 + len(quantiles)
	// maxCachedSeries bounds the converter's cache of label sets.
	maxCachedSeries = 1 << 15
	// canonicalKey starts the cache key of a canonical line's series text.
	canonicalKey = 0
)

// quantiles are exported for each histogram, with their label values.
var quantiles = [...]struct {
	q     float64
	label string
}{{0.5, "0.5"}, {0.75, "0.75"}, {0.9, "0.9"}, {0.95, "0.95"}, {0.99, "0.99"}}

// OpenRemoteWrite starts the exporter of metric points and histograms to
// the Prometheus remote-write 1.0 endpoint cfg.URL, queueing under dir.
func OpenRemoteWrite(dir string, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Exporter, error) {
	m := newMetrics(reg, RemoteWriteName)
	cfg.Linger = 0 // samples need no company
	return open(RemoteWriteName, filepath.Clean(dir), cfg.URL, cfg, newRWConverter(cfg.MaxItemsPerRequest, m), m, reg, log)
}

// rwConverter turns points and histograms into snappy-compressed
// prompb.WriteRequests of at most max samples. Only the sender goroutine
// uses it.
type rwConverter struct {
	max   int
	m     *metrics
	dec   wavefront.Decoder
	lim   wavefront.Limits
	point wavefront.Point
	dist  wavefront.Distribution
	req   prompb.WriteRequest
	key   []byte
	flat  []flatSample       // the request being gathered, in order
	cache map[string]*series // by seriesKey
	inReq map[*series]int    // index in req.Timeseries
	names map[string]string
	raw   []byte
	body  []byte
}

// newRWConverter makes a converter of at most maxSamples per request
// (default 2000).
func newRWConverter(maxSamples int, m *metrics) *rwConverter {
	c := &rwConverter{max: maxSamples, m: m}
	if c.max <= 0 {
		c.max = defaultMaxSamples
	}
	c.lim = decodeLimits()
	c.dec.Limits = &c.lim
	// Canonical lines write +Inf/-Inf, which only the lenient decoder reads.
	c.dec.LenientNonFinite = true
	c.names = make(map[string]string)
	c.cache = make(map[string]*series)
	c.inReq = make(map[*series]int)
	return c
}

func (c *rwConverter) accepts(k Kind) bool { return k == Points || k == Histograms }

func (c *rwConverter) setHeaders(h http.Header) {
	h.Set("Content-Type", remoteWriteMediaType)
	h.Set("Content-Encoding", remoteWriteCompressed)
	h.Set("X-Prometheus-Remote-Write-Version", remoteWriteProtoVer)
}

// rejected: remote-write 1.0 answers all or nothing.
func (c *rwConverter) rejected([]byte) (int, string) { return 0, "" }

func (c *rwConverter) convert(recs [][]byte, send func(request) error) error {
	c.reset()
	for _, rec := range recs {
		if len(rec) == 0 {
			continue
		}
		kind := Kind(rec[0])
		for line := range lines(rec[1:]) {
			need := 1
			if kind == Histograms {
				need = histogramSeries
			}
			// A line's samples stay in one request.
			if n := len(c.flat); n > 0 && n+need > c.max {
				if err := c.flush(send); err != nil {
					return err
				}
			}
			switch kind {
			case Points:
				c.addPoint(line)
			case Histograms:
				c.addHistogram(line)
			}
		}
	}
	return c.flush(send)
}

func (c *rwConverter) reset() {
	clear(c.flat) // drop references to evicted series
	c.flat = c.flat[:0]
}

func (c *rwConverter) flush(send func(request) error) error {
	if len(c.flat) == 0 {
		return nil
	}
	err := send(c)
	c.reset()
	return err
}

// items, encode and splittable make the samples gathered since the last
// flush a request.
func (c *rwConverter) items() int       { return len(c.flat) }
func (c *rwConverter) splittable() bool { return true }

// encode builds the snappy'd WriteRequest of samples [lo, hi). Samples of
// one series share its time series entry, so its labels are encoded once;
// they keep their arrival order, since judging order is the receiver's job.
func (c *rwConverter) encode(lo, hi int) ([]byte, error) {
	clear(c.req.Timeseries)
	c.req.Timeseries = c.req.Timeseries[:0]
	clear(c.inReq)
	for _, f := range c.flat[lo:hi] {
		if i, ok := c.inReq[f.s]; ok {
			c.req.Timeseries[i].Samples = append(c.req.Timeseries[i].Samples, f.smp)
			continue
		}
		c.inReq[f.s] = len(c.req.Timeseries)
		c.req.Timeseries = append(c.req.Timeseries, prompb.TimeSeries{Labels: f.s.labels, Samples: []prompb.Sample{f.smp}})
	}
	size := c.req.Size()
	if cap(c.raw) < size {
		c.raw = make([]byte, size)
	}
	n, err := c.req.MarshalToSizedBuffer(c.raw[:size])
	if err != nil {
		return nil, err
	}
	// Default speed: remote-write bodies are small and CPU is the budget.
	c.body = s2.EncodeSnappy(c.body[:cap(c.body)], c.raw[size-n:size])
	return c.body, nil
}

func (c *rwConverter) addPoint(line []byte) {
	// The server's WAL holds canonical lines, whose series text (all but
	// value and timestamp) identifies the series: a cache hit needs no
	// decoding at all.
	name, rest, v, ms, canonical := splitCanonicalPoint(line)
	if canonical {
		c.key = append(append(append(c.key[:0], canonicalKey), name...), rest...)
		if s, ok := c.cache[string(c.key)]; ok {
			c.countCollisions(s)
			c.addSample(s, v, ms)
			return
		}
	}
	p := &c.point
	if err := c.dec.ParsePoint(line, p); err != nil {
		c.m.dropped.WithLabelValues("unparsable").Inc()
		return
	}
	if !canonical {
		c.key = seriesKey(append(c.key[:0], byte(Points)), p.Name, p.Source, p.Tags)
	}
	s := c.seriesFor(c.key, func() *series {
		return c.build(c.metricName(p.Name), p.Tags, "", prompb.Label{Name: labelSource, Value: utf8String(p.Source)})
	})
	c.countCollisions(s)
	c.addSample(s, p.Value, c.dec.TimestampMillis())
}

// splitCanonicalPoint splits a point line of the shape the server writes,
//
//	"<name>" <value> <ms> source="<source>" "<k>"="<v>"...
//
// into the quoted name, the rest from " source=", the value and the
// timestamp. ok is false for any other shape, which is then decoded in
// full. A canonical name is sanitised, so it holds no '"'.
func splitCanonicalPoint(line []byte) (name, rest []byte, v float64, ms int64, ok bool) {
	if len(line) < 2 || line[0] != '"' {
		return nil, nil, 0, 0, false
	}
	end := bytes.IndexByte(line[1:], '"') + 2 // after the closing quote
	if end < 2 || end >= len(line) || line[end] != ' ' {
		return nil, nil, 0, 0, false
	}
	name, line = line[:end], line[end+1:]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, nil, 0, 0, false
	}
	val := line[:sp]
	switch string(val) {
	case "+Inf":
		v = math.Inf(1)
	case "-Inf":
		v = math.Inf(-1)
	default:
		// Only what AppendValue writes for finite values ('f' format), so
		// that this never accepts a value the decoder would read otherwise.
		for _, d := range val {
			if !isDigit(d) && d != '.' && d != '-' {
				return nil, nil, 0, 0, false
			}
		}
		var err error
		if v, err = strconv.ParseFloat(unsafeString(val), 64); err != nil {
			return nil, nil, 0, 0, false
		}
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	// 13 digits: the decoder reads [1e12, 1e13) as milliseconds as they
	// are; other magnitudes it scales, so they take the decoder's path.
	if sp != 13 || line[0] == '0' || !bytes.HasPrefix(line[sp:], []byte(" source=\"")) {
		return nil, nil, 0, 0, false
	}
	for _, d := range line[:sp] {
		if !isDigit(d) {
			return nil, nil, 0, 0, false
		}
		ms = ms*10 + int64(d-'0')
	}
	return name, line[sp:], v, ms, true
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (c *rwConverter) addHistogram(line []byte) {
	h := &c.dist
	if err := c.dec.DecodeDistribution(line, h); err != nil {
		c.m.dropped.WithLabelValues("unparsable").Inc()
		return
	}
	ts := h.Timestamp * 1000
	var count, sum float64
	for _, ct := range h.Centroids {
		count += float64(ct.Count)
		sum += float64(ct.Count) * ct.Mean
	}
	slices.SortFunc(h.Centroids, func(a, b wavefront.Centroid) int { return cmp.Compare(a.Mean, b.Mean) })
	c.key = seriesKey(append(c.key[:0], byte(Histograms), byte(h.Granularity)), h.Name, h.Source, h.Tags)
	n := len(c.key)
	for i := range histogramSeries {
		c.key = append(c.key[:n], byte(i))
		s := c.seriesFor(c.key, func() *series {
			base := c.metricName(h.Name)
			fixed := []prompb.Label{{Name: labelSource, Value: utf8String(h.Source)}, {Name: labelGranularity, Value: granularityName(h.Granularity)}}
			// quantile is reserved on every series of the histogram, so
			// that count, sum and quantiles keep the same tag labels.
			switch i {
			case 0:
				return c.build(base+histogramCountSuffix, h.Tags, labelQuantile, fixed...)
			case 1:
				return c.build(base+histogramSumSuffix, h.Tags, labelQuantile, fixed...)
			}
			return c.build(base, h.Tags, "", append(fixed, prompb.Label{Name: labelQuantile, Value: quantiles[i-2].label})...)
		})
		switch i {
		case 0:
			c.countCollisions(s) // once per line: every series lost the same tags
			c.addSample(s, count, ts)
		case 1:
			c.addSample(s, sum, ts)
		default:
			c.addSample(s, centroidQuantile(h.Centroids, count, quantiles[i-2].q), ts)
		}
	}
}

// series is the label set of one exported series, built once and shared
// by its samples (encoding only reads it), with the number of the line's
// tags it dropped as collisions.
type series struct {
	labels     []prompb.Label
	collisions int
}

type flatSample struct {
	s   *series
	smp prompb.Sample
}

// seriesKey appends the identity of a series as a line names it.
func seriesKey(key, name, source []byte, tags []wavefront.Tag) []byte {
	key = append(append(append(append(key, name...), 0), source...), 0)
	for _, t := range tags {
		key = append(append(append(append(key, t.Key...), 0), t.Value...), 0)
	}
	return key
}

// seriesFor returns the series of key, building it on a cache miss. The
// cache is cleared when full, which bounds its memory whatever the
// cardinality.
func (c *rwConverter) seriesFor(key []byte, build func() *series) *series {
	if s, ok := c.cache[string(key)]; ok {
		return s
	}
	if len(c.cache) >= maxCachedSeries {
		clear(c.cache)
	}
	s := build()
	c.cache[string(key)] = s
	return s
}

// build makes the series name{fixed..., tags...} with its labels sorted,
// as receivers expect. A tag whose sanitized name repeats __name__, a
// fixed label, reserved or an earlier tag is dropped and counted.
func (c *rwConverter) build(name string, tags []wavefront.Tag, reserved string, fixed ...prompb.Label) *series {
	s := &series{labels: make([]prompb.Label, 0, 1+len(fixed)+len(tags))}
	s.labels = append(append(s.labels, prompb.Label{Name: labelMetricName, Value: name}), fixed...)
	for _, t := range tags {
		ln := c.labelName(t.Key)
		if ln == reserved || slices.ContainsFunc(s.labels, func(l prompb.Label) bool { return l.Name == ln }) {
			s.collisions++
			continue
		}
		s.labels = append(s.labels, prompb.Label{Name: ln, Value: utf8String(t.Value)})
	}
	slices.SortFunc(s.labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func (c *rwConverter) countCollisions(s *series) {
	if s.collisions > 0 {
		c.m.collisions.Add(float64(s.collisions))
	}
}

// addSample adds a sample of s to the request being gathered.
func (c *rwConverter) addSample(s *series, v float64, ts int64) {
	c.flat = append(c.flat, flatSample{s, prompb.Sample{Value: v, Timestamp: ts}})
}

// metricName maps a Wavefront metric name to a Prometheus one, cached
// because a batch repeats few names many times.
func (c *rwConverter) metricName(b []byte) string {
	if n, ok := c.names[string(b)]; ok {
		return n
	}
	n := MetricName(string(b))
	if len(c.names) >= 1<<16 {
		clear(c.names) // bounds memory against unbounded name churn
	}
	c.names[string(b)] = n
	return n
}

func (c *rwConverter) labelName(b []byte) string {
	if n, ok := c.names["\x00"+string(b)]; ok {
		return n
	}
	n := LabelName(string(b))
	c.names["\x00"+string(b)] = n
	return n
}

// MetricName maps a Wavefront metric name to a valid Prometheus metric
// name: every character outside [a-zA-Z0-9_:] becomes '_', a leading digit
// gets a '_' in front, and a delta counter (∆ or Δ prefix) loses the
// prefix and gets the suffix "_delta", so it cannot merge with the
// cumulative series of the same name.
func MetricName(name string) string {
	delta := false
	for _, p := range []string{wavefront.DeltaIncrement, wavefront.DeltaGreek} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			name, delta = rest, true
			break
		}
	}
	s := sanitize(name, true)
	if delta {
		s += deltaSuffix
	}
	return s
}

// LabelName maps a Wavefront tag key to a valid Prometheus label name:
// characters outside [a-zA-Z0-9_] become '_', a leading digit gets a '_' in
// front, and a name starting with "__" (reserved) gets "tag" in front.
func LabelName(key string) string {
	s := sanitize(key, false)
	if strings.HasPrefix(s, reservedLabelPrefix) {
		s = escapedLabelPrefix + s
	}
	return s
}

func sanitize(s string, colon bool) string {
	valid := func(r rune) bool {
		return r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || colon && r == ':')
	}
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !valid(r) }) && !isDigit(s[0]) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s == "" || isDigit(s[0]) {
		b.WriteByte('_')
	}
	for _, r := range s {
		if valid(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func granularityName(g wavefront.Granularity) string {
	switch g {
	case wavefront.Hour:
		return "hour"
	case wavefront.Day:
		return "day"
	}
	return "minute"
}

// centroidQuantile estimates quantile q of centroids sorted by mean, with
// total count n, as a t-digest does: each centroid's mean sits at the
// middle of its share of the ranks, and ranks between two centroids
// interpolate linearly between their means.
func centroidQuantile(cs []wavefront.Centroid, n, q float64) float64 {
	if len(cs) == 0 || n <= 0 {
		return math.NaN()
	}
	rank := q * n
	var below float64 // count of centroids before cs[i]
	prevMid, prevMean := 0.0, cs[0].Mean
	for i, c := range cs {
		mid := below + float64(c.Count)/2
		if rank <= mid {
			if i == 0 || mid == prevMid {
				return c.Mean
			}
			return prevMean + (c.Mean-prevMean)*(rank-prevMid)/(mid-prevMid)
		}
		below += float64(c.Count)
		prevMid, prevMean = mid, c.Mean
	}
	return cs[len(cs)-1].Mean
}

// decodeLimits are the decoder's limits for lines the server has already
// validated: no time window (a backlog may be old) and no size limits the
// server may have been configured above.
func decodeLimits() wavefront.Limits {
	l := wavefront.DefaultLimits()
	l.Backfill, l.Prefill, l.SpanDropDelay = 0, 0, 0
	const huge = math.MaxInt32
	l.MaxSourceLength, l.MaxNameLength, l.MaxTags, l.MaxTagLength = huge, huge, huge, huge
	l.MaxTagKeyLength, l.MaxTagValueLength = huge, huge
	l.MaxSpanNameLength, l.MaxSpanAnnotations, l.MaxSpanKeyLength, l.MaxSpanValueLength = huge, huge, huge, huge
	return l
}
