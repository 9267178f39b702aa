// Package export is the server's exit to distributed engines: it forwards
// what the server has stored to a Prometheus remote-write endpoint
// (VictoriaMetrics, Mimir, Thanos, Prometheus) and spans to an OTLP/HTTP
// endpoint, so a user can move to such an engine without touching
// collectors or proxies.
//
// Data comes from the server's applier, which calls Exporter.Add with the
// canonical Wavefront lines of each WAL batch once the stores have
// committed them. Add keeps the kinds its exporter sends and appends them
// to the exporter's own internal/queue (DATA/export/<name>), returning
// after fsync. One sender goroutine per exporter reads queue batches,
// decodes the lines, converts them, POSTs them, and acknowledges a batch
// only when every request built from it was accepted (2xx) or refused for
// good (4xx other than 408 and 429: dropped, logged and counted by
// status; spans an OTLP 2xx reports as rejected in its partial_success
// likewise). A remote-write request refused with 400 or 413 is first sent
// again in halves, recursively and within a small budget, because
// Prometheus refuses a whole request for one out-of-order sample: so one
// bad sample costs itself, not its request. Network errors, 408, 429 and
// 5xx are retried with exponential backoff and jitter (Retry-After
// honoured, capped at MaxBackoff), the same request again, so a retry
// never re-sends what was already accepted.
//
// Guarantees:
//   - A remote that is down or slow never stalls ingestion: the queue is
//     bounded by Config.MaxQueueBytes and drops its oldest data for room
//     (meshwave_queue_dropped_records_total{queue="export_<name>"}).
//   - At-least-once: a restart or crash loses nothing that was queued; a
//     crash between the stores' commit and Add makes the server re-apply
//     the WAL batch, so the remote may see a batch twice. Prometheus-style
//     receivers ignore a repeated sample with the same timestamp and value;
//     OTLP backends see a span twice.
//   - Order: requests are sent one at a time in queue order.
//
// Remote write (Prometheus remote-write 1.0: prompb.WriteRequest, snappy
// block compression) carries metric points and histograms; spans are not
// sent. Names: MetricName and LabelName. A point becomes one sample of the
// series {__name__, source, tags...}. A delta counter (∆ or Δ name) is
// exported as its increments, one sample each, under <name>_delta: the
// server stores deltas the same way and sums them per interval at query
// time, so sum_over_time(x_delta[1m]) gives what Wavefront shows, and no
// exporter state (running totals that a restart or a replay would
// corrupt) is needed. A histogram (one bin of centroids) becomes
// <name>_count and <name>_sum for the bin (per bin, not cumulative) and
// <name>{quantile="0.5"|"0.75"|"0.9"|"0.95"|"0.99"} estimated from the
// centroids as a t-digest does, all stamped with the bin start and
// labelled granularity="minute"|"hour"|"day". Labels are sorted; a tag
// whose sanitized name repeats an earlier label (source, granularity,
// quantile or another tag) is dropped and counted.
//
// OTLP (protobuf over HTTP, gzip) carries spans: resource service.name from
// the span's service tag (unknown_service without one), with application,
// cluster, shard and host.name (the span's source) as resource
// attributes; trace and span IDs from the Wavefront UUIDs (see otlpID);
// parent_span_id from the first parent tag, links from further parents
// and followsFrom; kind from span.kind; status ERROR from error=true; every
// other tag as a string attribute. Span logs become the events of their
// span when both are converted together: the sender lingers
// (Config.Linger, default 1 s) after the first record so that a span and
// its logs, posted separately, usually are. Span logs converted without
// their span are dropped and counted (span_logs_without_span), because
// OTLP has no standalone span events.
//
// The package keeps no package-level mutable state: each Exporter owns its
// queue, goroutine, HTTP client and buffers.
package export
