// Package sink owns the transports that deliver already-encoded Wavefront
// lines to a destination: a Wavefront proxy over one persistent TCP
// connection (proxyAddress mode), the direct-ingestion HTTP API
// (server + token), or a file / stdout.
//
// Data comes from the collector pipeline, which encodes points into byte
// chunks of complete '\n'-terminated lines and hands them to Writer.Write.
// Each Writer copies them into a bounded in-memory queue and a single
// goroutine delivers the queue in order, retrying with exponential backoff.
// When the queue is full the oldest lines are dropped, counted and logged.
//
// The package must not parse, filter or rewrite points (it only counts
// '\n'), must not block its callers on network I/O, and keeps no
// package-level mutable state: every Writer owns its queue, goroutine,
// connection and log rate limiter, and reports through the Metrics it is
// given.
//
// Delivery is at-least-once: a chunk that fails mid-write is re-sent whole,
// and over TCP the bytes written shortly before a connection died are
// replayed on the next one (the proxy protocol has no acknowledgements).
// Duplicated points with a timestamp are harmless because Wavefront keeps
// one value per (metric, source, tags, timestamp).
package sink
