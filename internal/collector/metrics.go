package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/sink"
)

// Metrics are the collector's self-metrics. Their Prometheus names map onto
// the reference's Wavefront names by '_' → '.' (collector.md §7), e.g.
// kubernetes_collector_source_points_collected is
// kubernetes.collector.source.points.collected.
type Metrics struct {
	reg *prometheus.Registry

	pointsCollected *prometheus.CounterVec // {type}
	pointsFiltered  *prometheus.CounterVec // {type}
	collectErrors   *prometheus.CounterVec // {type}
	targetCollected *prometheus.CounterVec // {type, discovered, url}
	targetErrors    *prometheus.CounterVec // {type, discovered, url}
	parseErrors     *prometheus.CounterVec // {reason, url}
	providers       prometheus.Gauge
	scrapeErrors    prometheus.Counter
	scrapeTimeouts  prometheus.Counter
	scrapeLatency   prometheus.Summary // milliseconds
	sinkFiltered    prometheus.Counter
	nonFinite       prometheus.Counter
	tagsTruncated   prometheus.Counter
	version         prometheus.Gauge
	sink            *sink.Metrics
}

// NewMetrics registers the collector's metrics in a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubernetes_collector_" + name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Name: "kubernetes_collector_" + name, Help: help})
		reg.MustRegister(x)
		return x
	}
	g := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubernetes_collector_" + name, Help: help})
		reg.MustRegister(x)
		return x
	}
	target := []string{"type", "discovered", "url"}
	m := &Metrics{
		reg:             reg,
		pointsCollected: f("source_points_collected", "Points converted and kept, per source type.", "type"),
		pointsFiltered:  f("source_points_filtered", "Points dropped by source filters.", "type"),
		collectErrors:   f("source_collect_errors", "Failed scrapes, per source type.", "type"),
		targetCollected: f("target_points_collected", "Points kept, per scrape target.", target...),
		targetErrors:    f("target_collect_errors", "Failed scrapes, per scrape target.", target...),
		parseErrors:     f("source_parse_errors", "Exposition lines skipped, per reason and target.", "reason", "url"),
		providers:       g("source_manager_providers", "Prometheus sources configured."),
		scrapeErrors:    c("source_manager_scrape_errors", "Failed scrapes of static sources."),
		scrapeTimeouts:  c("source_manager_scrape_timeouts", "Scrapes that hit collection.timeout."),
		scrapeLatency: prometheus.NewSummary(prometheus.SummaryOpts{
			Name:       "kubernetes_collector_source_manager_scrape_latency",
			Help:       "Duration of successful scrapes in milliseconds.",
			Objectives: map[float64]float64{0.5: 0.05, 0.75: 0.02, 0.95: 0.01, 0.99: 0.001, 0.999: 0.0001},
		}),
		sinkFiltered:  c("wavefront_points_filtered_count", "Points dropped by sink filters."),
		nonFinite:     c("wavefront_points_nonfinite_count", "Points with NaN or ±Inf values dropped at the sink."),
		tagsTruncated: c("wavefront_tags_truncated_count", "Tag values truncated to the Wavefront key+value limit."),
		version:       g("version", "Collector version as X.YZ."),
	}
	reg.MustRegister(m.scrapeLatency)
	m.sink = sink.NewMetrics(reg)
	return m
}

func (m *Metrics) versionValue() float64 { return versionValue(Version) }

// Registry returns the registry to serve on /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
