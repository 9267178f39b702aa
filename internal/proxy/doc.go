// Package proxy is the proxy role, compatible with the Wavefront proxy for
// what the Istio integration uses: the push port (Wavefront lines over TCP or
// HTTP on one port), the Zipkin port, RED metrics derived from spans,
// preprocessor rules, and forwarding to a backend's direct-ingestion API.
//
// Everything a listener accepts is validated, encoded in canonical form and
// appended to the queue (internal/queue) before it is acknowledged or
// counted, a batch per record, S2-compressed unless --bufferCompression
// is false (fewer bytes copied into the page cache and written back, and
// more backlog per byte of --bufferMaxBytes); the forwarder alone reads
// the queue and posts to the backend, a batch's records of one format and
// port together: their S2 blocks joined as they are to a backend that
// offers s2 in Accept-Encoding (meshwave's server), else their lines zstd-
// or gzip-compressed. Order is therefore FIFO per format and port.
// HTTP requests are answered only after their lines are fsync'd. Plain TCP
// lines, which the sender never sees acknowledged, are counted once
// written to the segment file, which a process crash does not lose; the
// queue fsyncs them within Options.WrittenSync (100 ms). Delivery is
// at-least-once: a crash between a post and its acknowledgement re-sends
// that batch.
package proxy
