package sink

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/metricsreg"
)

// Metrics are the writers' self-metrics, labelled sink=<Options.Name>. With
// '_' turned into '.', the names match the reference collector's
// kubernetes.collector.wavefront.points.* counters (collector.md §7).
type Metrics struct {
	sent, errors, dropped, retries *prometheus.CounterVec
	queueBytes                     *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg, if reg is not
// nil. Metrics already registered by an earlier call (e.g. before a config
// reload) are reused, so counters keep counting.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return metricsreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"sink"}))
	}
	return &Metrics{
		sent:    counter("kubernetes_collector_wavefront_points_sent_count", "Lines delivered to the destination."),
		errors:  counter("kubernetes_collector_wavefront_points_errors_count", "Lines that could not be delivered: rejected by the destination or still queued at shutdown."),
		dropped: counter("kubernetes_collector_wavefront_points_dropped_count", "Lines dropped, oldest first, because the queue was full."),
		retries: counter("kubernetes_collector_sink_retries_count", "Failed delivery attempts that will be retried."),
		queueBytes: metricsreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubernetes_collector_sink_queue_bytes",
			Help: "Bytes queued or in flight, not yet delivered.",
		}, []string{"sink"})),
	}
}

// sinkMetrics are the metrics curried for one writer, so the hot path does
// no label lookups.
type sinkMetrics struct {
	sent, errors, dropped, retries prometheus.Counter
	queueBytes                     prometheus.Gauge
}

func (m *Metrics) forSink(name string) sinkMetrics {
	return sinkMetrics{
		sent:       m.sent.WithLabelValues(name),
		errors:     m.errors.WithLabelValues(name),
		dropped:    m.dropped.WithLabelValues(name),
		retries:    m.retries.WithLabelValues(name),
		queueBytes: m.queueBytes.WithLabelValues(name),
	}
}

// logLimiter logs at most one record per reason per interval, so a
// destination that is down for hours does not flood the log; the next
// record says how many were suppressed.
type logLimiter struct {
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

func newLogLimiter(log *slog.Logger, every time.Duration) *logLimiter {
	return &logLimiter{log: log, every: every, last: map[string]time.Time{}, skipped: map[string]int{}}
}

func (l *logLimiter) log1(level slog.Level, reason, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.last[reason]; ok && now.Sub(t) < l.every {
		l.skipped[reason]++
		l.mu.Unlock()
		return
	}
	n := l.skipped[reason]
	l.last[reason] = now
	l.skipped[reason] = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

func (l *logLimiter) warn(reason, msg string, args ...any) {
	l.log1(slog.LevelWarn, reason, msg, args...)
}

func (l *logLimiter) error(reason, msg string, args ...any) {
	l.log1(slog.LevelError, reason, msg, args...)
}
