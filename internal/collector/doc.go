// Package collector is the collector role: it scrapes every configured
// Prometheus source on its own schedule, streams each response through
// promtext → convert (with the source filter) → one exporter per sink
// (cluster tag, sink tags and filter, prefix, tag cleaning, encoding) →
// sink.Writer, and reports its own metrics both through the sinks (as the
// reference's internal_stats_source does) and on a Prometheus /metrics
// endpoint. Configuration comes from internal/config; it does no parsing of
// YAML itself.
package collector
