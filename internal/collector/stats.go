package collector

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// statsSource sends the collector's own metrics through the sinks, as the
// reference's internal_stats_source does (collector.md §7), and each sink's
// heartbeat (§6.5).
type statsSource struct {
	m           *Metrics
	out         fanout
	prefix      string // "kubernetes." by default
	source      []byte
	tags        []wavefront.Tag
	filter      *filter.Filter
	eventsValue float64
	point       wavefront.Point
	name        []byte
	ptags       []wavefront.Tag
	leading     func() bool // the leading tag's value (collector.md §7)
}

// zeroSuppressed lists the name endings whose zero values the reference does
// not send.
var zeroSuppressed = []string{"filtered.count", "errors.count", "targets.registered", "collect.errors", "points.filtered", "points.collected"}

func newStatsSource(cfg *config.Config, m *Metrics, out fanout) *statsSource {
	s := &statsSource{m: m, out: out, prefix: "kubernetes."}
	src := os.Getenv("POD_NODE_NAME")
	if src == "" {
		src = "wavefront-collector-for-kubernetes"
	}
	s.source = []byte(src)
	installation := os.Getenv("INSTALLATION_METHOD")
	if installation == "" {
		installation = "unknown"
	}
	if is := cfg.Sources.InternalStatsSource; is != nil {
		if is.Prefix != "" {
			s.prefix = is.Prefix
		}
		s.filter = is.Filter
		for k, v := range is.Tags {
			if v != "" && k != "leading" && k != "installation_method" {
				s.tags = append(s.tags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
			}
		}
	}
	s.tags = append(s.tags,
		wavefront.Tag{Key: []byte("leading"), Value: []byte("false")},
		wavefront.Tag{Key: []byte("installation_method"), Value: []byte(installation)})
	if cfg.EnableEvents {
		s.eventsValue = 1
	}
	return s
}

func (s *statsSource) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.send()
		}
	}
}

// send writes one round of self-metrics and heartbeats.
func (s *statsSource) send() {
	if s.leading != nil {
		s.tags[len(s.tags)-2].Value = []byte(strconv.FormatBool(s.leading()))
	}
	families, err := s.m.reg.Gather()
	if err != nil {
		return // Gather only fails on inconsistent registrations, a bug caught by tests
	}
	now := time.Now().Unix()
	for _, f := range families {
		base := s.prefix + strings.ReplaceAll(strings.TrimPrefix(f.GetName(), "kubernetes_"), "_", ".")
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.emit(base, m.GetCounter().GetValue(), now, m)
			case dto.MetricType_GAUGE:
				s.emit(base, m.GetGauge().GetValue(), now, m)
			case dto.MetricType_SUMMARY:
				s.emitSummary(base, m, now)
			}
		}
	}
	for _, b := range s.out {
		s.heartbeat(b)
	}
	s.out.flush()
}

// emitSummary expands a latency summary as the reference expands its
// histograms: .duration.{median,p75,p95,p99,p999,mean}.
func (s *statsSource) emitSummary(base string, m *dto.Metric, now int64) {
	sum := m.GetSummary()
	if sum.GetSampleCount() == 0 {
		return
	}
	names := map[float64]string{0.5: "median", 0.75: "p75", 0.95: "p95", 0.99: "p99", 0.999: "p999"}
	base = strings.TrimSuffix(base, ".latency") + ".latency.duration."
	for _, q := range sum.GetQuantile() {
		if n, ok := names[q.GetQuantile()]; ok {
			s.emit(base+n, q.GetValue(), now, m)
		}
	}
	s.emit(base+"mean", sum.GetSampleSum()/float64(sum.GetSampleCount()), now, m)
}

func (s *statsSource) emit(name string, v float64, now int64, m *dto.Metric) {
	if v == 0 {
		for _, suffix := range zeroSuppressed {
			if strings.HasSuffix(name, suffix) {
				return
			}
		}
	}
	s.name = append(s.name[:0], name...)
	t := s.ptags[:0]
	for _, l := range m.GetLabel() {
		if l.GetValue() != "" {
			t = append(t, wavefront.Tag{Key: []byte(l.GetName()), Value: []byte(l.GetValue())})
		}
	}
	for _, st := range s.tags {
		if tagIndex(t, string(st.Key)) < 0 {
			t = append(t, st)
		}
	}
	s.ptags = t
	if !s.filter.Keep(s.name, t) {
		s.m.pointsFiltered.WithLabelValues("internal").Inc()
		return
	}
	s.point = wavefront.Point{Name: s.name, Value: v, Timestamp: now, Source: s.source, Tags: s.filter.FilterTags(t)}
	s.m.pointsCollected.WithLabelValues("internal").Inc()
	s.out.WritePoint(&s.point)
}

// heartbeat writes the reference's two heartbeat points, which bypass the
// sink pipeline and carry no timestamp. stats_prefix is the internal-stats
// prefix, not the sink's (defect §9.14).
func (s *statsSource) heartbeat(b *batch) {
	tags := []wavefront.Tag{
		{Key: []byte("cluster"), Value: b.e.cluster},
		{Key: []byte("stats_prefix"), Value: []byte(s.prefix)},
	}
	for _, t := range s.tags {
		if string(t.Key) == "installation_method" {
			tags = append(tags, t)
		}
	}
	b.writeRaw(&wavefront.Point{Name: []byte("~wavefront.kubernetes.collector.version"), Value: s.m.versionValue(), Source: s.source, Tags: tags})
	b.writeRaw(&wavefront.Point{Name: []byte("~wavefront.kubernetes.collector.config.events.enabled"), Value: s.eventsValue, Source: s.source, Tags: tags})
}
