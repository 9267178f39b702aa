// Package zipkin ingests Zipkin span lists (JSON v2, JSON v1, proto3) the
// way the reference proxy's Zipkin port does (proxy.md §5) and converts
// them to Wavefront spans and span logs.
//
// Decoding is split from conversion:
//
//   - Detect picks the encoding from the body's first bytes (§5.1).
//   - Decoder.Decode decodes and normalises a whole body (§5.2) before it
//     hands the first span to the caller, so one malformed span fails the
//     batch and nothing from it is forwarded. Every error it returns is a
//     client error whose text is meant as the 400 reason.
//   - Converter.Convert turns one normalised Span into a wavefront.Span and
//     the RED inputs of §6 (§5.3–§5.4); Converter.AppendLogs writes its
//     span-logs line (§5.5) directly, without a wavefront.SpanLogs.
//   - Converter.AppendCanonicalSpan is Convert plus validation and encoding
//     of the span line in one pass, for the common span; it declines
//     anything else, which then takes Convert and the general path.
//
// Both Decoder and Converter reuse their buffers across calls and are
// therefore not safe for concurrent use; keep one per goroutine. Decoded
// and converted byte slices alias the request body or those buffers and are
// valid only until the next call.
//
// The JSON v2 path, which carries all Istio/Envoy traffic, is a hand-written
// tokenizer that allocates nothing per span once the Decoder is warm. It
// first indexes the body (a bit per byte at which a plain string must
// stop, AVX2 or SSE2 on amd64), so that a string's end is found by a bit
// search. The common shapes, a plain key after "," or ", ", a plain
// string or a 16-digit timestamp right after the colon, are read by fast
// paths that accept only what the general reader would read the same way
// and otherwise leave it to that reader, which reports every error.
// Envoy writes every object's members in a fresh order, so tags are not
// kept in arrival order: each tag key gets a small id the first time it
// is seen (decode_keysets.go), a tag goes to its key's slot as it is
// read, and the span's keys are a bit set of ids whose sorted order is
// cached, so the tags are written once, in key order, and every order of
// a set of keys gets the set's key-sequence number, which keeps the
// Converter's per-sequence plans hitting. JSON v1 and proto3 tags go to
// their slots once the span is read; only a span with more different keys
// than the id table holds is sorted.
// On amd64 the tag loop is assembly (readKnownTagsAMD64), with
// readKnownTagsGo as the definition FuzzReadKnownTags compares it with;
// endpoints and annotation lists in their usual shape have fast readers
// of their own, fuzzed against the general ones. The word loads and the
// assembly read only bytes their checks found in the body: the tests and
// fuzzers place bodies right before an unreadable page (package pageend).
// An endpoint's address is parsed once per text (ipCache): a sidecar's
// spans name its pod's address again and again.
// Thrift is rejected (ErrThrift): no maintained Go library decodes Zipkin's
// Thrift cheaply, and Envoy/Istio never send it.
package zipkin
