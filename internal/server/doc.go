// Package server is the meshwave backend: it speaks the Wavefront
// direct-ingestion API, stores metrics, distributions, spans and span logs
// in embedded engines, and answers the query API.
//
// # Endpoints
//
//   - POST /report?f=wavefront|histogram|trace|spanLogs (also format=):
//     newline-separated lines, plain, gzip, deflate, zstd or s2 (every
//     answer offers them in Accept-Encoding, RFC 7694, which is how the
//     proxy learns it may post its queue's S2 records as they are; another
//     coding gets 415). Lines are decoded and
//     validated as the proxy does (internal/wavefront); rejected lines are
//     counted per WF code while the rest of the body is processed, and the
//     answer is 202 with {"accepted", "rejected": {code: n}, "errors"}.
//     A metric line of a series the decoder has accepted as written
//     before (canonical, as the proxy's forwarder sends it), with a
//     canonical value and a timestamp in the window, is taken as it is
//     without the decoder, and the applier gets its series, value and
//     timestamp with the record (ingest.go: knownSeries, pointHint).
//     Bodies over Config.MaxBodyBytes, before or after decompression, get
//     413; a missing or wrong token gets 401 before the body is read.
//   - GET /api/v2/chart/api?q=&s=&e=&g=s|m|h|d&p=: a WQL query (internal/wql;
//     hs() reads the stored histograms), p optionally capping the points per
//     series by widening the bucket (Wavefront's "approximate max points"),
//     answered as {"timeseries": [{"label", "host", "tags", "data":
//     [[epochSeconds, value]...]}]}. Query errors are 400 with the error
//     and, for parse errors, its byte position; only store failures are
//     5xx. Dashboard variables come as var.<name>=<value>. At steps of
//     5-minute multiples, bucket means and rate() read persisted blocks
//     from their 5-minute rollups (rollup.go) and the tsdb head's closed
//     windows (those before a series' newest sample) from an in-memory
//     head cache (headcache.go), so only each series' last minutes are
//     read as samples; time that only the head holds is read from its
//     own index and chunks, anything else through a tsdb querier.
//   - GET /api/v2/traces/{traceId}: the spans of a trace, by start time,
//     with their span logs.
//   - GET /api/v2/traces?service=&operation=&minDuration=&maxDuration=
//     &error=&start=&end=&limit=: newest traces with a matching span.
//   - GET /api/v2/metrics?match=glob: metric and histogram names with
//     their sources and tag values, for a metrics browser.
//   - GET /metrics (self-metrics, tsdb and WAL queue; query API answers
//     by endpoint and status), GET /healthz.
//
// Tokens may be given as "Authorization: Bearer <t>", "X-AUTH-TOKEN" or a
// t, token or api_key query parameter; with tokens configured, the query
// endpoints need one too.
//
// # Storage layout (under the data directory)
//
//   - wal/: the server's write-ahead log (wal.go): numbered segment files
//     of checksummed frames, and "applied", the position before which
//     the stores hold everything. Each record is a format byte, the
//     receive time (ms) and canonical lines with millisecond timestamps.
//     A wal/ of the previous layout (an internal/queue FIFO) is applied
//     and removed on Open.
//
//   - tsdb/: Prometheus' tsdb for metric points. Labels: __name__ = the
//     Wavefront metric name as-is, source, and one label per point tag. The
//     tsdb accepts any label-name characters (UTF-8 names are valid since
//     Prometheus 3), so tag keys are stored verbatim except that a key
//     starting with "__" (reserved) gets a "__wf" prefix, removed again on
//     read. Delta counters (∆ names) are series of their own: one value per
//     series and millisecond, summed per interval at query time. Samples
//     further behind the newest one than Config.OutOfOrderWindow, or with a
//     second value at an existing timestamp, are dropped and counted in
//     meshwave_server_samples_dropped_total{reason}.
//
//   - spans.db: a bbolt file with buckets
//     spans    traceId 0 spanId → canonical span line
//     spantime start(8, BE) traceId 0 spanId → duration, error, service, operation
//     spansvc  service 0 start(8) traceId 0 spanId → same
//     logs     traceId 0 spanId 0 hash(8) → span-logs JSON
//     logtime  received(8) logs-key → nil
//     dists    name 0 binStart(8) hash(8) → granularity, source, tags, centroids
//     distnames name → nil
//     Span lines and span-logs JSON are stored packed: 0x01, then an S2
//     block against a built-in dictionary of Envoy span text (spanvalue.go;
//     ~5× and ~2.4× smaller); values of stores written before are read as
//     they are. The time indexes split their pages at 90 %, not bbolt's
//     50 %, since they grow at their end. An Envoy span with its span logs
//     takes ~1.9 KB of the file instead of ~3.4 KB (BenchmarkSpanStore).
//     A trace is one prefix scan; a search walks a time-ordered index
//     backwards and filters on the index values. Distributions keep their
//     centroids (percentiles are a query-time concern, as in Wavefront's
//     hs()); histograms for the same series and bin are kept side by side
//     and merged when read (SelectDistributions).
//
//   - export/remote_write, export/otlp: with Config.RemoteWrite or
//     Config.OTLP set, the durable queue of each exit (internal/export).
//     The applier hands every batch to the exits after the stores commit,
//     so an exit sees exactly what was stored, and a slow or down remote
//     never holds up ingestion.
//
// Retention (Config.Retention) is enforced by the tsdb on blocks and by a
// sweep of the time-ordered buckets every Config.CleanupInterval.
//
// # Durability
//
// A 202 means durable: the handler appends the accepted lines to the WAL,
// which returns only after fsync (concurrent requests share fsyncs). The
// records just made durable go to a single applier goroutine in memory
// (while it holds under 64 MiB of them; past that, and after a restart,
// it reads them from the WAL files), which writes them to the tsdb (one
// commit) and bbolt (one fsync'd transaction). Only after fsyncing the
// tsdb's own WAL segments, which the tsdb writes on every commit but
// fsyncs only when a segment is full, does it move the WAL's applied
// position past them (fsync'd) and delete segments wholly before it. So
// at any crash, power loss included, every acknowledged request is either
// still in our WAL after the applied position or durable in the stores. Replays after a crash are harmless: the
// tsdb ignores a sample equal to the latest of its series and the query
// path merges equal timestamps from its out-of-order head, spans
// overwrite by (traceId, spanId) and replace their index entries, and span
// logs and distributions are keyed by a hash of their canonical line.
//
// The package keeps no package-level mutable state.
package server
