package simulate

import (
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// fedFamily is one `# TYPE <name> untyped` family of /federate: recorded
// series (job="federate"), per-target raw series and synthetic scrape series
// that share the name.
type fedFamily struct {
	name       string
	agg        *aggSpec
	side       *family // from every sidecar/gateway pod
	sidePart   part
	istiod     *family
	istiodPart part
	synth      synthKind
	present    bool
}

// aggSpec names a recording rule's output (istio.md §2.2).
type aggSpec struct {
	kind famKind
	sub  int
	pt   part
	q    float64 // histogram_quantile φ for the _bucket_pNN series
}

type synthKind uint8

const (
	synthNone synthKind = iota
	synthUp
	synthDuration
	synthPostRelabel
	synthScraped
	synthAdded
)

// federateSelf is the federate job's own target (istio.md §2.1).
const (
	federateSelf     = "prometheus:9090"
	federateOffsetMs = 7000
)

func (m *Mesh) buildFederateFamilies() {
	by := map[string]*fedFamily{}
	get := func(name string) *fedFamily {
		if by[name] == nil {
			by[name] = &fedFamily{name: name}
		}
		return by[name]
	}
	for _, f := range m.sideFams {
		for _, pt := range f.parts() {
			ff := get(f.partName(pt))
			ff.side, ff.sidePart = f, pt
		}
	}
	for _, f := range m.istiodFams {
		for _, pt := range f.parts() {
			ff := get(f.partName(pt))
			ff.istiod, ff.istiodPart = f, pt
		}
	}
	get("istio_requests_total").agg = &aggSpec{kind: fkRequests}
	quantiles := []struct {
		suffix string
		q      float64
	}{{"p50", 0.5}, {"p75", 0.75}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}}
	for sub, base := range []string{"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"} {
		get(base + "_bucket").agg = &aggSpec{kind: fkHist, sub: sub, pt: partBucket}
		get(base + "_sum").agg = &aggSpec{kind: fkHist, sub: sub, pt: partSum}
		get(base + "_count").agg = &aggSpec{kind: fkHist, sub: sub, pt: partCount}
		for _, q := range quantiles {
			get(base + "_bucket_" + q.suffix).agg = &aggSpec{kind: fkHist, sub: sub, pt: partBucket, q: q.q}
		}
	}
	for sub, name := range []string{"istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
		"istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total"} {
		get(name).agg = &aggSpec{kind: fkTCP, sub: sub}
	}
	get("up").synth = synthUp
	get("scrape_duration_seconds").synth = synthDuration
	get("scrape_samples_post_metric_relabeling").synth = synthPostRelabel
	get("scrape_samples_scraped").synth = synthScraped
	get("scrape_series_added").synth = synthAdded

	m.fedFams = m.fedFams[:0]
	for _, ff := range by {
		ff.present = ff.synth != synthNone || ff.istiod != nil
		if ff.side != nil {
			for _, p := range m.pods {
				ff.present = ff.present || m.hasSeries(p, ff.side)
			}
		}
		if ff.agg != nil {
			f := family{kind: ff.agg.kind}
			for _, g := range m.groups {
				ff.present = ff.present || f.accepts(g.e.proto)
			}
		}
		m.fedFams = append(m.fedFams, ff)
	}
	slices.SortFunc(m.fedFams, func(a, b *fedFamily) int { return strings.Compare(a.name, b.name) })
}

// WriteFederate writes what the integration's Prometheus answers to
// GET /federate?match[]={job=~"federate|kubernetes-pods"} at now: recorded
// series (job="federate", instance="" last), every target's raw series with
// pod labels, kubernetes_namespace, kubernetes_pod_name, job and instance,
// and the targets' up/scrape_* series. Families are sorted by name and all
// `untyped`; each sample carries its scrape's (or rule evaluation's)
// millisecond timestamp.
func WriteFederate(w io.Writer, m *Mesh, now time.Time) error {
	_, err := m.writeFederate(w, now)
	return err
}

// writeFederate returns the number of series written.
func (m *Mesh) writeFederate(w io.Writer, now time.Time) (int, error) {
	e := newEnc(m, w, true)
	nowMs := now.UnixMilli()
	// The recorded series reach /federate through the federate job's own
	// scrape, which sees the last 10 s rule evaluation.
	tf := nowMs - mod(nowMs-federateOffsetMs, scrapeIntervalMs)
	tr := tf - mod(tf, ruleIntervalMs)
	for _, ff := range m.fedFams {
		if !ff.present {
			continue
		}
		e.header(ff.name, "", "")
		if ff.agg != nil {
			m.writeAgg(e, ff, tr)
		}
		if ff.side != nil {
			for i, p := range m.pods {
				if i%256 == 0 {
					if err := e.failed(); err != nil {
						return e.n, err
					}
				}
				e.target(p, nowMs)
				m.writeFamily(e, p, ff.side, ff.sidePart)
			}
		}
		if ff.istiod != nil {
			e.target(m.istiod, nowMs)
			m.writeFamily(e, m.istiod, ff.istiod, ff.istiodPart)
		}
		if ff.synth != synthNone {
			m.writeSynth(e, ff, nowMs, tf)
		}
	}
	return e.n, e.bw.Flush()
}

func (m *Mesh) writeAgg(e *enc, ff *fedFamily, tr int64) {
	a := ff.agg
	e.envoy = false
	e.at(tr)
	e.vals[sJob] = "federate"
	f := family{kind: a.kind}
	for _, g := range m.groups {
		if !f.accepts(g.e.proto) {
			continue
		}
		rep := g.reporting()
		v := &e.vals
		v[sApp] = rep.app
		v[sReporter] = "source"
		if g.dest {
			v[sReporter] = "destination"
		}
		v[sResponseCode] = g.o.code
		v[sResponseFlags] = g.o.flags
		v[sSourceWorkload] = g.src.name
		v[sSourceWorkloadNamespace] = g.src.ns
		v[sDestinationWorkload] = g.dst.name
		v[sDestinationWorkloadNamespace] = g.dst.ns
		switch a.kind {
		case fkRequests:
			e.line(ff.name, "", m.agg[0], m.aggCount(g, tr))
		case fkTCP:
			e.line(ff.name, "", m.agg[1], m.aggTCP(g, a.sub, tr))
		case fkHist:
			d := g.e.dist(a.sub, g.dest)
			switch {
			case a.q > 0:
				cum := m.aggBuckets(g, d, tr, e.cum[:len(d.cdf)+1])
				e.line(ff.name, "", m.agg[0], histogramQuantile(a.q, m.envoyB.bounds, cum))
			case a.pt == partBucket:
				for i, r := range m.aggBuckets(g, d, tr, e.cum[:len(d.cdf)+1]) {
					e.le(m.envoyB, i)
					e.line(ff.name, "", m.aggLe, r)
				}
			case a.pt == partSum:
				e.line(ff.name, "", m.agg[0], m.aggCount(g, tr)*d.mean)
			default:
				e.line(ff.name, "", m.agg[0], m.aggCount(g, tr))
			}
		}
	}
}

// aggCount is sum by (A) of the raw counters, each as last scraped by tr.
func (m *Mesh) aggCount(g *group, tr int64) float64 {
	sum := 0.0
	for _, p := range g.reporting().pods {
		el := m.elapsed(p.lastScrape(tr))
		for _, r := range g.rates {
			sum += math.Floor(r * el)
		}
	}
	return sum
}

func (m *Mesh) aggTCP(g *group, sub int, tr int64) float64 {
	sum := 0.0
	for _, p := range g.reporting().pods {
		el := m.elapsed(p.lastScrape(tr))
		for _, r := range g.rates {
			sum += tcpValue(g.e, sub, g.dest, r, el)
		}
	}
	return sum
}

// aggBuckets is sum by (A, le) of irate(bucket[1m]): per pod, the increase
// between its last two scrapes over the scrape interval. cum must hold one
// slot per bound plus +Inf.
func (m *Mesh) aggBuckets(g *group, d *dist, tr int64, cum []float64) []float64 {
	clear(cum)
	for _, p := range g.reporting().pods {
		t2 := p.lastScrape(tr)
		el2, el1 := m.elapsed(t2), m.elapsed(t2-scrapeIntervalMs)
		for _, r := range g.rates {
			n2, n1 := math.Floor(r*el2), math.Floor(r*el1)
			for i, c := range d.cdf {
				cum[i] += math.Floor(n2*c) - math.Floor(n1*c)
			}
			cum[len(d.cdf)] += n2 - n1
		}
	}
	for i := range cum {
		cum[i] /= scrapeIntervalMs / 1000
	}
	return cum
}

// histogramQuantile is PromQL's classic histogram_quantile over cumulative
// counts cum (one per bound, then +Inf): NaN without observations, linear
// interpolation inside the bucket, the highest finite bound for +Inf.
func histogramQuantile(q float64, bounds, cum []float64) float64 {
	total := cum[len(cum)-1]
	if total == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(len(cum)-1, func(i int) bool { return cum[i] >= rank })
	if b == len(cum)-1 {
		return bounds[len(bounds)-1]
	}
	if b == 0 && bounds[0] <= 0 {
		return bounds[0]
	}
	start, end, count := 0.0, bounds[b], cum[b]
	if b > 0 {
		start = bounds[b-1]
		count -= cum[b-1]
		rank -= cum[b-1]
	}
	return start + (end-start)*(rank/count)
}

// writeSynth writes the scrape bookkeeping series Prometheus adds per target.
func (m *Mesh) writeSynth(e *enc, ff *fedFamily, nowMs, tf int64) {
	e.envoy = false
	for _, p := range m.pods {
		e.target(p, nowMs)
		e.line(ff.name, "", m.lsets[lsNone].fed[p.kind], synthValue(ff.synth, p.samples, p.factor))
	}
	e.target(m.istiod, nowMs)
	e.line(ff.name, "", m.lsets[lsNone].fed[tkIstiod], synthValue(ff.synth, m.istiod.samples, 1))
	e.at(tf)
	e.vals[sJob] = "federate"
	e.vals[sInstance] = federateSelf
	e.line(ff.name, "", m.self, synthValue(ff.synth, m.rawSamples, 1))
}

func synthValue(k synthKind, samples int, factor float64) float64 {
	switch k {
	case synthUp:
		return 1
	case synthDuration:
		return math.Round((0.002+float64(samples)*2e-6)*factor*1e6) / 1e6
	case synthScraped, synthPostRelabel:
		return float64(samples)
	}
	return 0 // scrape_series_added: the series set is steady
}
