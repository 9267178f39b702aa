package proxy

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Metrics are the proxy's self-metrics. On /metrics they carry entity and
// port labels; upstream they are sent as the reference's ~proxy.<entity>.<port>.<name>.
type Metrics struct {
	reg            *prometheus.Registry
	received       *prometheus.CounterVec // {entity, port}: accepted and durable
	rejected       *prometheus.CounterVec // {entity, port, code}
	blocked        *prometheus.CounterVec // {entity, port}: filtered by a preprocessor rule
	discarded      *prometheus.CounterVec // {entity, port}: delta ≤ 0, unsupported kinds, non-finite values
	delivered      *prometheus.CounterVec // {entity, port}
	dropped        *prometheus.CounterVec // {entity}: given up by the forwarder (4xx) or the full queue
	batchFailed    *prometheus.CounterVec // {port}: Zipkin bodies that failed to decode
	httpStatus     *prometheus.CounterVec // {port, code}
	connections    *prometheus.GaugeVec   // {port}
	refused        *prometheus.CounterVec // {port}: connections over maxConnections
	internalErrors *prometheus.CounterVec // {port}: connections and requests a recovered panic ended
	retries        prometheus.Counter
	forwardLag     prometheus.Gauge // seconds the oldest undelivered batch has waited
}

// entities are the kinds of data the proxy carries, named as the reference does.
const (
	entityPoints     = "points"
	entityHistograms = "histograms"
	entitySpans      = "spans"
	entitySpanLogs   = "spanLogs"
)

func newMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proxy", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		reg:            reg,
		received:       cv("received", "Items accepted and durably queued.", "entity", "port"),
		rejected:       cv("rejected", "Items refused by parsing or validation, per error code.", "entity", "port", "code"),
		blocked:        cv("blocked", "Items filtered by preprocessor rules.", "entity", "port"),
		discarded:      cv("discarded", "Items dropped by rule: non-positive deltas, non-finite values, unsupported kinds.", "entity", "port"),
		delivered:      cv("delivered", "Items the backend acknowledged.", "entity", "port"),
		dropped:        cv("dropped", "Items given up after a permanent backend error (a full queue counts in meshwave_queue_dropped_records_total).", "entity"),
		batchFailed:    cv("batches_failed", "Zipkin request bodies that could not be decoded.", "port"),
		httpStatus:     cv("http_requests", "HTTP responses, per port and status code.", "port", "code"),
		refused:        cv("connections_refused", "Connections refused over --maxConnections.", "port"),
		internalErrors: cv("internal_errors", "Connections and requests ended by a proxy bug (a recovered panic, logged with its stack).", "port"),
		connections:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "proxy", Name: "connections", Help: "Open TCP connections."}, []string{"port"}),
		retries:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: "proxy", Name: "forward_retries", Help: "Backend posts retried."}),
		forwardLag:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "proxy", Name: "buffer_oldest_age_seconds", Help: "Age of the oldest undelivered batch."}),
	}
	reg.MustRegister(m.connections, m.retries, m.forwardLag)
	return m
}

// Registry returns the registry served on /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// upstreamPoints renders every self-metric as a ~proxy point, the way the
// reference shows its check-in metrics: ~proxy.<entity>.<port>.<name>,
// source = the proxy's hostname, tags processId and hostname.
func (m *Metrics) upstreamPoints(hostname string, now time.Time, emit func(*wavefront.Point)) {
	families, err := m.reg.Gather()
	if err != nil {
		return
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, f := range families {
		name := strings.TrimPrefix(f.GetName(), "proxy_")
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = metric.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = metric.GetGauge().GetValue()
			default:
				continue
			}
			parts := []string{"~proxy"}
			if e := labels["entity"]; e != "" {
				parts = append(parts, e)
			}
			if p := labels["port"]; p != "" {
				parts = append(parts, p)
			}
			parts = append(parts, strings.ReplaceAll(name, "_", "."))
			tags := []wavefront.Tag{{Key: []byte("processId"), Value: pid}, {Key: []byte("hostname"), Value: []byte(hostname)}}
			for _, k := range []string{"code"} {
				if v := labels[k]; v != "" {
					tags = append(tags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
				}
			}
			emit(&wavefront.Point{Name: []byte(strings.Join(parts, ".")), Value: v, Timestamp: now.Unix(), Source: []byte(hostname), Tags: tags})
		}
	}
}
