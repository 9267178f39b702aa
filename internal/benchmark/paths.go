package benchmark

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/convert"
	"github.com/meshwave/meshwave/internal/demo"
	"github.com/meshwave/meshwave/internal/promtext"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// seedConfig is the demo's collector configuration — the Istio
// integration's source filter — pointed at federateURL.
func seedConfig(federateURL string) (*config.Config, error) {
	cfg, _, err := config.Parse(demo.CollectorConfig(federateURL), "collector.yaml")
	if err != nil {
		return nil, fmt.Errorf("seed configuration: %w", err)
	}
	if len(cfg.Sources.PrometheusSources) != 1 || len(cfg.Sinks) != 1 {
		return nil, errors.New("seed configuration: want one prometheus source and one sink")
	}
	return cfg, nil
}

// meshwavePath is the collector's per-scrape work without the network:
// parse, convert with the seed's source filter, encode. Parser, converter
// and buffer are reused across runs, as a source reuses them across scrapes.
type meshwavePath struct {
	rd     bytes.Reader
	parser *promtext.Parser
	conv   *convert.Converter
	enc    encoder
}

func newMeshwavePath() (runner, error) {
	cfg, err := seedConfig("http://127.0.0.1/federate")
	if err != nil {
		return nil, err
	}
	src := &cfg.Sources.PrometheusSources[0]
	m := &meshwavePath{
		parser: promtext.NewParser(strings.NewReader(""), promtext.Options{}),
		// "prom_source" is what the collector falls back to without a
		// source or POD_NODE_NAME.
		conv: convert.New(convert.Options{Prefix: src.Prefix, Source: "prom_source", Tags: src.Tags, Filter: src.Filter}),
	}
	m.enc.buf = make([]byte, 0, encodeBatchBytes+4096)
	return m, nil
}

// run processes body and returns the number of samples read.
func (m *meshwavePath) run(body []byte) (int, error) {
	m.rd.Reset(body)
	m.parser.Reset(&m.rd, promtext.Options{})
	ts := time.Now().Unix()
	n := 0
	for {
		switch m.parser.Next() {
		case promtext.EntrySample:
			n++
			m.conv.Convert(m.parser.Sample(), ts, &m.enc)
		case promtext.EntryError:
			// The collector skips bad lines; a generated payload has none,
			// so one here means the comparison would be skewed.
			le := *m.parser.LineError()
			return n, &le
		case promtext.EntryEOF:
			m.conv.Flush(&m.enc)
			m.enc.flush()
			return n, m.parser.Err()
		}
	}
}

// encodeBatchBytes matches the collector's batch size: the buffer is handed
// to the sink (here: dropped) whenever it grows past it.
const encodeBatchBytes = 64 << 10

// encoder is a convert.PointWriter that encodes every point as the sinks'
// batches do, into one reused buffer.
type encoder struct {
	buf     []byte
	encoded int64 // bytes of Wavefront lines produced, for the tests
}

func (e *encoder) WritePoint(p *wavefront.Point) {
	e.buf = wavefront.AppendPoint(e.buf, p)
	if len(e.buf) >= encodeBatchBytes {
		e.flush()
	}
}

func (e *encoder) WriteDistribution(d *wavefront.Distribution) {
	e.buf = wavefront.AppendDistribution(e.buf, d)
	if len(e.buf) >= encodeBatchBytes {
		e.flush()
	}
}

func (e *encoder) flush() {
	e.encoded += int64(len(e.buf))
	e.buf = e.buf[:0]
}

// textparsePath is Prometheus' scrape parser doing the least a scraper
// must: find every series and build its labels. The symbol table is reused,
// as a scrape loop reuses it.
type textparsePath struct {
	st   *labels.SymbolTable
	lset labels.Labels
}

func newTextparsePath() (runner, error) { return &textparsePath{st: labels.NewSymbolTable()}, nil }

func (t *textparsePath) run(body []byte) (int, error) {
	p := textparse.NewPromParser(body, t.st, false)
	n := 0
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if e == textparse.EntrySeries {
			n++
			p.Labels(&t.lset)
		}
	}
}

// refPoint is the reference collector's in-memory point.
type refPoint struct {
	Metric    string
	Value     float64
	Timestamp int64
	Source    string
	Tags      map[string]string
}

// expfmtPath emulates the reference collector's scrape: the body is cut into
// chunks (comment lines, then the samples up to the next comment line), each
// chunk is parsed by a fresh expfmt TextParser, and every sample becomes a
// refPoint with its own tag map. It leaves out the reference's filter, string
// interning and per-chunk copy of the body, so it flatters the reference.
type expfmtPath struct {
	source string
	points []refPoint
}

func newExpfmtPath() (runner, error) { return &expfmtPath{source: "prom_source"}, nil }

// run returns the number of samples the parsed families hold.
func (x *expfmtPath) run(body []byte) (int, error) {
	x.points = x.points[:0]
	now := time.Now().Unix()
	n := 0
	for rest := body; len(rest) > 0; {
		var chunk []byte
		chunk, rest = nextChunk(rest)
		p := expfmt.NewTextParser(pmodel.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(chunk))
		if err != nil {
			return n, err
		}
		for name, mf := range fams {
			n += x.build(name, mf, now)
		}
	}
	return n, nil
}

// nextChunk splits off what the reference's MetricReader returns: leading
// comment and blank lines, then every line up to the next '#' line.
func nextChunk(b []byte) (chunk, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == '#' || isBlankLine(b[i:])) {
		i = lineEnd(b, i)
	}
	for i < len(b) && b[i] != '#' {
		i = lineEnd(b, i)
	}
	return b[:i], b[i:]
}

// lineEnd returns the index just past the line starting at i.
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}

func isBlankLine(b []byte) bool {
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	return len(bytes.TrimSpace(b)) == 0
}

// build converts one family as the reference's pointBuilder does and
// returns the number of samples it held.
func (x *expfmtPath) build(name string, mf *dto.MetricFamily, now int64) int {
	n := 0
	for _, m := range mf.Metric {
		tags := refTags(m)
		switch {
		case m.Summary != nil:
			s := m.Summary
			for _, q := range s.Quantile {
				n++
				if !math.IsNaN(q.GetValue()) {
					x.point(name, q.GetValue(), now, withTag(tags, "quantile", fmt.Sprintf("%v", q.GetQuantile())))
				}
			}
			x.point(name+".count", float64(s.GetSampleCount()), now, tags)
			x.point(name+".sum", s.GetSampleSum(), now, tags)
			n += 2
		case m.Histogram != nil:
			h := m.Histogram
			for _, b := range h.Bucket {
				n++
				x.point(name+".bucket", float64(b.GetCumulativeCount()), now, withTag(tags, "le", fmt.Sprintf("%v", b.GetUpperBound())))
			}
			x.point(name+".count", float64(h.GetSampleCount()), now, tags)
			x.point(name+".sum", h.GetSampleSum(), now, tags)
			n += 2
		default:
			n++
			suffix, v := ".value", m.GetUntyped().GetValue()
			if m.Gauge != nil {
				suffix, v = ".gauge", m.GetGauge().GetValue()
			} else if m.Counter != nil {
				suffix, v = ".counter", m.GetCounter().GetValue()
			}
			if !math.IsNaN(v) {
				x.point(name+suffix, v, now, tags)
			}
		}
	}
	return n
}

func (x *expfmtPath) point(name string, v float64, now int64, tags map[string]string) {
	x.points = append(x.points, refPoint{
		Metric: strings.ReplaceAll(name, "_", "."), Value: v, Timestamp: now, Source: x.source, Tags: tags,
	})
}

// refTags is the reference's buildTags without source tags (the seed
// configures none): every label with a non-empty name and value.
func refTags(m *dto.Metric) map[string]string {
	tags := make(map[string]string, len(m.Label))
	for _, l := range m.Label {
		if l.GetName() != "" && l.GetValue() != "" {
			tags[l.GetName()] = l.GetValue()
		}
	}
	return tags
}

// withTag is the reference's combineTags: a copy of tags plus one more.
func withTag(tags map[string]string, k, v string) map[string]string {
	t := make(map[string]string, len(tags)+1)
	for tk, tv := range tags {
		t[tk] = tv
	}
	t[k] = v
	return t
}
