package export

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/metricsreg"
)

// metrics are one exporter's self-metrics; every series carries the
// constant label exporter=<name>. Queue size and drops for room are the
// queue's own metrics (meshwave_queue_*{queue="export_<name>"}).
type metrics struct {
	sent       prometheus.Counter
	retries    prometheus.Counter
	collisions prometheus.Counter
	dropped    *prometheus.CounterVec
	requests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, name string) *metrics {
	cl := prometheus.Labels{"exporter": name}
	counter := func(n, help string) prometheus.Counter {
		return metricsreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_export_" + n, Help: help, ConstLabels: cl}))
	}
	vec := func(n, help, label string) *prometheus.CounterVec {
		return metricsreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_export_" + n, Help: help, ConstLabels: cl}, []string{label}))
	}
	return &metrics{
		sent:       counter("sent_total", "Items (samples or spans) the remote accepted."),
		retries:    counter("retries_total", "Requests retried after a network error, 408, 429 or 5xx."),
		collisions: counter("label_collisions_total", "Tags dropped because their sanitized label name repeated an earlier label's."),
		dropped:    vec("dropped_total", "Items not exported, by reason: http_<status> (the remote refused the request), partially_rejected (OTLP partial success), unparsable, line_too_large, queue_error, span_logs_without_span, marshal_error.", "reason"),
		requests:   vec("requests_total", "Requests sent, by HTTP status (error: no answer).", "code"),
	}
}
