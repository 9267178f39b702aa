// Package red derives RED metrics (rate, errors, duration) and heartbeats
// from spans, as the reference proxy does on its Zipkin port and custom
// tracing port (proxy.md §6). The caller decides which spans feed it (§6:
// on the Zipkin port every span that passes the preprocessor filters,
// sampled or not) and fills a Span from the converted span (§5.3).
//
// Per series, i.e. per distinct (application, service, operation, RED
// tags, span source), a Deriver keeps
//
//	∆tracing.derived.<S>.invocation.count         +1 per span
//	∆tracing.derived.<S>.error.count              +1 per error span
//	∆tracing.derived.<S>.total_time.millis.count  + integer-ms duration
//	tracing.derived.<S>.duration.micros           minute histogram (t-digest, compression 32)
//
// where S is application.service.operation sanitised as in §6.1. Error
// spans feed a second histogram series tagged error=true; the counters
// carry the same tags with or without errors. Flush sends the non-zero
// deltas stamped with the flush time and the histograms of completed
// minutes stamped with the minute's start; Run flushes once a minute and,
// at shutdown, also the current minute.
//
// # Source: one, not two (proxy.md §10 item 8)
//
// The reference sends RED metrics with source="zipkin" (the reporter's
// source) plus a "source" tag holding the span's source, so a point carries
// two sources and, by the line parser's rules, the tag silently wins. Here
// the line source is the span's source (else unknown_source) and there is no
// source tag; every other tag name and value is as in §6.2. Only the
// reporter's own ~sdk.java.internal_reporter.* counters (the numbers of
// counter and histogram points reported per flush) use the reporter source,
// zipkin or custom_tracing. The reporter's version gauge is not sent: this
// reporter has no SDK version to report.
//
// # Heartbeats
//
// A heartbeat key is the RED tags minus operationName, plus the span source,
// so one service answering 200 and 503 has two keys. In ZipkinMode, Flush
// sends ~component.heartbeat=1 for each key seen since the previous flush,
// then a copy with component=zipkin. In CustomTracingMode heartbeats are per
// span and immediate: the custom tracing handler calls ObserveAndHeartbeat,
// which writes both copies (the second with component=wavefront-generated)
// before returning; Observe alone sends none, and Flush never does.
//
// # Memory and concurrency
//
// Series live in 64 mutex-striped shards chosen by a hash of the series key,
// which is encoded into a stack buffer: observing an already-seen series
// takes one short critical section and allocates nothing. A Batch goes
// further for a request's many spans: it counts them per series first, so
// each series takes its critical section once per batch. Histogram bins
// count repeated values exactly before feeding a t-digest (taken from a
// pool), whose insertion cost grows with its centroids. A series idle
// for a whole flush window, with no histogram left to send, is released at
// that flush. At most MaxSeries series are held at once; spans of a new
// series beyond that are counted by Dropped and otherwise ignored (in
// CustomTracingMode their heartbeats are still sent).
package red
