package queue

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/metricsreg"
)

// Metrics are one queue's self-metrics. Names are fixed
// (meshwave_queue_*) and every series carries the constant label
// queue=<name>, so several queues share one set of metric names.
type Metrics struct {
	bytes, records                           prometheus.Gauge
	appended, dropped, droppedBytes, tornRec prometheus.Counter
	syncs                                    prometheus.Counter
}

// NewMetrics creates the metrics of the queue called name and registers
// them with reg, if reg is not nil. Metrics already registered under the
// same name (e.g. before a config reload) are reused, so counters keep
// counting.
func NewMetrics(reg prometheus.Registerer, name string) *Metrics {
	labels := prometheus.Labels{"queue": name}
	gauge := func(n, help string) prometheus.Gauge {
		return metricsreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshwave_" + n, Help: help, ConstLabels: labels}))
	}
	counter := func(n, help string) prometheus.Counter {
		return metricsreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_" + n, Help: help, ConstLabels: labels}))
	}
	return &Metrics{
		bytes:        gauge("queue_bytes", "Bytes of unacknowledged records on disk, framing included."),
		records:      gauge("queue_records", "Unacknowledged records on disk."),
		appended:     counter("queue_appended_records_total", "Records appended (written; fsync'd before an Append that waits for durability returns)."),
		dropped:      counter("queue_dropped_records_total", "Unacknowledged records dropped, oldest first, to stay within MaxBytes."),
		droppedBytes: counter("queue_dropped_bytes_total", "Bytes of the records counted in queue_dropped_records_total."),
		tornRec:      counter("queue_torn_records_total", "Damaged records found on disk (torn tail after a crash, or a failed CRC); each cuts its segment there."),
		syncs:        counter("queue_fsyncs_total", "fsyncs of the segment being written: for appends that wait for durability, for records only written (at most WrittenSync after them) and at rotation."),
	}
}
