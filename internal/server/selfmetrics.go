package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// selfMetrics are the server's own metrics, served at /metrics next to the
// tsdb's and the WAL queue's.
type selfMetrics struct {
	received, rejected, stored *prometheus.CounterVec
	dropped, requests          *prometheus.CounterVec
	queries                    *prometheus.CounterVec
	applyLag                   prometheus.Gauge
	cleaned                    prometheus.Counter
}

func newSelfMetrics(reg prometheus.Registerer) *selfMetrics {
	m := &selfMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_lines_received_total", Help: "Lines received on /report, by format."}, []string{"format"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_lines_rejected_total", Help: "Lines rejected on /report, by format and WF code."}, []string{"format", "code"}),
		stored:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_lines_stored_total", Help: "Lines written to the stores (WAL replays count again), by format."}, []string{"format"}),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_samples_dropped_total", Help: "Accepted lines the stores refused, by reason (too_old: outside the tsdb's out-of-order window; duplicate_timestamp: another value at the same ms)."}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_report_requests_total", Help: "/report requests by HTTP status."}, []string{"code"}),
		queries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshwave_server_query_requests_total", Help: "Query API requests by endpoint and HTTP status (400: a bad query)."}, []string{"endpoint", "code"}),
		applyLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshwave_server_apply_lag_seconds", Help: "Age of the newest WAL record when the applier stored it."}),
		cleaned:  prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_server_retention_deleted_total", Help: "Spans, span logs and distributions deleted by retention."}),
	}
	reg.MustRegister(m.received, m.rejected, m.stored, m.dropped, m.requests, m.queries, m.applyLag, m.cleaned)
	return m
}

// countQuery counts h's answers in meshwave_server_query_requests_total, so
// bad queries and store failures show in the self-metrics.
func (s *Server) countQuery(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		s.m.queries.WithLabelValues(endpoint, strconv.Itoa(sw.code)).Inc()
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
