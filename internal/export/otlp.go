package export

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"iter"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// OTLP names and defaults.
const (
	OTLPName         = "otlp"
	OTLPTracesPath   = "/v1/traces"
	defaultMaxSpans  = 1000
	scopeName        = "meshwave"
	unknownService   = "unknown_service"
	defaultEventName = "log"
	defaultLinger    = time.Second
	maxInternedKeys  = 1 << 12
)

// Wavefront span tags with a meaning of their own in OTLP.
const (
	tagService     = "service"
	tagApplication = "application"
	tagCluster     = "cluster"
	tagShard       = "shard"
	tagParent      = "parent"
	tagFollowsFrom = "followsFrom"
	tagKind        = "span.kind"
	tagError       = "error"
	tagSpanLogs    = "_spanLogs"
	tagSecondaryID = "_spanSecondaryId"
	logFieldEvent  = "event"
)

// OpenOTLP starts the exporter of spans (with their span logs as span
// events) to the OTLP/HTTP endpoint cfg.URL (POST cfg.URL/v1/traces),
// queueing under dir.
func OpenOTLP(dir string, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Exporter, error) {
	m := newMetrics(reg, OTLPName)
	if cfg.Linger <= 0 {
		cfg.Linger = defaultLinger
	}
	endpoint := strings.TrimSuffix(cfg.URL, "/") + OTLPTracesPath
	return open(OTLPName, filepath.Clean(dir), endpoint, cfg, newOTLPConverter(cfg.MaxItemsPerRequest, m), m, reg, log)
}

// newOTLPConverter makes a converter of at most maxSpans per request
// (default 1000).
func newOTLPConverter(maxSpans int, m *metrics) *otlpConverter {
	c := &otlpConverter{max: maxSpans, m: m}
	if c.max <= 0 {
		c.max = defaultMaxSpans
	}
	c.lim = decodeLimits()
	c.dec.Limits = &c.lim
	c.keys = make(map[string]string)
	c.gz, _ = gzip.NewWriterLevel(&c.body, gzip.BestSpeed) // the level is valid
	return c
}

// otlpConverter turns spans and span logs into gzip'd OTLP trace export
// requests. Only the sender goroutine uses it.
type otlpConverter struct {
	max  int
	m    *metrics
	dec  wavefront.Decoder
	lim  wavefront.Limits
	span wavefront.Span
	gz   *gzip.Writer
	body bytes.Buffer

	seen []string          // a span's attribute keys so far
	keys map[string]string // interned attribute keys
	// Slabs for the messages of the requests being built.
	spanSlab   slab[tracepb.Span]
	statusSlab slab[tracepb.Status]
	kvSlab     slab[commonpb.KeyValue]
	anySlab    slab[commonpb.AnyValue]
	strSlab    slab[commonpb.AnyValue_StringValue]
	ids        []byte

	// The request being built: resources in order of first appearance.
	resources []*tracepb.ResourceSpans
	byRes     map[resourceKey]*tracepb.ResourceSpans
	spans     int
}

// resourceKey identifies the process a span came from.
type resourceKey struct{ service, application, cluster, shard, source string }

// spanKey matches span logs to their span. The secondary ID tells apart
// the client and server halves of a span that shares one ID (Zipkin).
type spanKey struct{ trace, span, secondary string }

func (c *otlpConverter) accepts(k Kind) bool { return k == Spans || k == SpanLogs }

func (c *otlpConverter) setHeaders(h http.Header) {
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("Content-Encoding", "gzip")
}

// rejected reads an ExportTraceServiceResponse: partial_success (1) holds
// rejected_spans (1) and error_message (2). Anything unreadable (a JSON
// answer, a proxy's HTML) counts as full success, as the 2xx says.
func (c *otlpConverter) rejected(answer []byte) (int, string) {
	ps := protoField(answer, 1, protowire.BytesType)
	if ps == nil {
		return 0, ""
	}
	var n uint64
	if v := protoField(ps, 1, protowire.VarintType); v != nil {
		n, _ = protowire.ConsumeVarint(v)
	}
	return int(min(n, math.MaxInt32)), string(protoField(ps, 2, protowire.BytesType))
}

// protoField returns the value of the last field num of type typ in the
// message b (a varint's bytes, or a length-delimited field's contents), or
// nil if there is none or b is malformed.
func protoField(b []byte, num protowire.Number, typ protowire.Type) []byte {
	var out []byte
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, t, b)
		if vl < 0 {
			return nil
		}
		if n == num && t == typ {
			out = b[:vl]
			if t == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b)
				out = v
			}
		}
		b = b[vl:]
	}
	return out
}

func (c *otlpConverter) convert(recs [][]byte, send func(request) error) error {
	events := c.spanEvents(recs)
	c.reset()
	for _, rec := range recs {
		if len(rec) == 0 || Kind(rec[0]) != Spans {
			continue
		}
		for line := range lines(rec[1:]) {
			if err := c.dec.DecodeSpan(line, &c.span); err != nil {
				c.m.dropped.WithLabelValues("unparsable").Inc()
				continue
			}
			c.addSpan(&c.span, events)
			if c.spans >= c.max {
				if err := c.flush(send); err != nil {
					return err
				}
			}
		}
	}
	if n := len(events); n > 0 {
		// Their span was exported in an earlier request: OTLP has no
		// standalone span events.
		c.m.dropped.WithLabelValues("span_logs_without_span").Add(float64(n))
	}
	return c.flush(send)
}

// lines yields the lines of b without their '\n', skipping empty ones.
func lines(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for line := range wavefront.Lines(b) {
			if len(line) > 0 && !yield(line) {
				return
			}
		}
	}
}

// spanEvents decodes every span-logs object in recs into span events,
// keyed by their span.
func (c *otlpConverter) spanEvents(recs [][]byte) map[spanKey][]*tracepb.Span_Event {
	events := make(map[spanKey][]*tracepb.Span_Event)
	for _, rec := range recs {
		if len(rec) == 0 || Kind(rec[0]) != SpanLogs {
			continue
		}
		for line := range lines(rec[1:]) {
			var sl wavefront.SpanLogs
			if err := wavefront.DecodeSpanLogs(line, &sl); err != nil {
				c.m.dropped.WithLabelValues("unparsable").Inc()
				continue
			}
			k := spanKey{trace: sl.TraceID, span: sl.SpanID}
			if sl.SpanSecondaryID != nil {
				k.secondary = *sl.SpanSecondaryID
			}
			for _, l := range sl.Logs {
				events[k] = append(events[k], spanEvent(l))
			}
		}
	}
	return events
}

func spanEvent(l wavefront.SpanLog) *tracepb.Span_Event {
	ev := &tracepb.Span_Event{TimeUnixNano: uint64(max(l.Timestamp, 0)) * 1000, Name: defaultEventName}
	keys := make([]string, 0, len(l.Fields))
	for k := range l.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == logFieldEvent {
			ev.Name = l.Fields[k]
			continue
		}
		ev.Attributes = append(ev.Attributes, stringAttr(k, l.Fields[k]))
	}
	return ev
}

func (c *otlpConverter) reset() {
	c.resources = c.resources[:0]
	if c.byRes == nil {
		c.byRes = make(map[resourceKey]*tracepb.ResourceSpans)
	}
	clear(c.byRes)
	c.spans = 0
}

// addSpan appends s, with the events of its span logs (taken out of
// events), to the request being built.
func (c *otlpConverter) addSpan(s *wavefront.Span, events map[spanKey][]*tracepb.Span_Event) {
	out := c.spanSlab.alloc()
	status := c.statusSlab.alloc()
	traceID := c.id(s.TraceID, 16)
	out.TraceId, out.SpanId, out.Name, out.Status = traceID, c.id(s.SpanID, 8), utf8String(s.Name), status
	out.StartTimeUnixNano = uint64(max(s.StartMillis, 0)) * 1e6
	out.EndTimeUnixNano = uint64(max(s.StartMillis+s.DurationMillis, 0)) * 1e6
	rk := resourceKey{service: unknownService, source: utf8String(s.Source)}
	k := spanKey{trace: string(s.TraceID), span: string(s.SpanID)}
	c.seen = c.seen[:0]
	for _, t := range s.Tags {
		key := c.attrKey(t.Key)
		switch key {
		case tagParent, tagFollowsFrom:
			id := c.id(t.Value, 8)
			if key == tagParent && out.ParentSpanId == nil {
				out.ParentSpanId = id
			} else {
				out.Links = append(out.Links, &tracepb.Span_Link{TraceId: traceID, SpanId: id, Attributes: []*commonpb.KeyValue{c.attr("wavefront.ref", key)}})
			}
			continue
		}
		if slices.Contains(c.seen, key) {
			continue // OTLP attribute keys are unique; the first value wins
		}
		c.seen = append(c.seen, key)
		val := utf8String(t.Value)
		switch key {
		case tagService:
			rk.service = val
		case tagApplication:
			rk.application = val
		case tagCluster:
			rk.cluster = val
		case tagShard:
			rk.shard = val
		case tagKind:
			out.Kind = spanKind(val)
		case tagError:
			if strings.EqualFold(val, "true") {
				status.Code = tracepb.Status_STATUS_CODE_ERROR
			}
		case tagSpanLogs:
			// Wavefront's marker that span logs exist; events carry them here.
		case tagSecondaryID:
			k.secondary = string(t.Value)
			out.Attributes = append(out.Attributes, c.attr(key, val))
		default:
			out.Attributes = append(out.Attributes, c.attr(key, val))
		}
	}
	if evs, ok := events[k]; ok {
		out.Events = evs
		delete(events, k)
	}
	scope := c.resourceSpans(rk).ScopeSpans[0]
	scope.Spans = append(scope.Spans, out)
	c.spans++
}

// attrKey returns tag key b as a string, interned because a batch repeats
// few keys many times.
func (c *otlpConverter) attrKey(b []byte) string {
	if k, ok := c.keys[string(b)]; ok {
		return k
	}
	if len(c.keys) >= maxInternedKeys {
		clear(c.keys)
	}
	k := utf8String(b)
	c.keys[string(b)] = k
	return k
}

// attr makes a string attribute from slab memory: a span carries a dozen,
// and allocating each message on its own dominated conversion.
func (c *otlpConverter) attr(k, v string) *commonpb.KeyValue {
	sv := c.strSlab.alloc()
	sv.StringValue = v
	av := c.anySlab.alloc()
	av.Value = sv
	kv := c.kvSlab.alloc()
	kv.Key, kv.Value = k, av
	return kv
}

// id is otlpID into slab memory.
func (c *otlpConverter) id(b []byte, n int) []byte {
	if len(c.ids)+n > cap(c.ids) {
		c.ids = make([]byte, 0, slabSize*16)
	}
	c.ids = append(c.ids, make([]byte, n)...)
	out := c.ids[len(c.ids)-n : len(c.ids) : len(c.ids)]
	otlpIDInto(out, b)
	return out
}

// slab hands out zeroed T from chunks, so that many small messages cost
// one allocation per chunk. Chunks are never reused: messages handed out
// belong to the request and are garbage with it.
type slab[T any] struct{ buf []T }

const slabSize = 256

func (s *slab[T]) alloc() *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, slabSize)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

// utf8String is b as a string with invalid UTF-8 replaced by U+FFFD:
// protobuf refuses to encode invalid strings, and one would cost the
// whole request.
func utf8String(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

func (c *otlpConverter) resourceSpans(k resourceKey) *tracepb.ResourceSpans {
	if rs, ok := c.byRes[k]; ok {
		return rs
	}
	attrs := []*commonpb.KeyValue{stringAttr("service.name", k.service)}
	for _, a := range [...][2]string{{tagApplication, k.application}, {tagCluster, k.cluster}, {tagShard, k.shard}, {"host.name", k.source}} {
		if a[1] != "" {
			attrs = append(attrs, stringAttr(a[0], a[1]))
		}
	}
	rs := &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: attrs},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: scopeName}}},
	}
	c.byRes[k] = rs
	c.resources = append(c.resources, rs)
	return rs
}

func (c *otlpConverter) flush(send func(request) error) error {
	if c.spans == 0 {
		return nil
	}
	// TracesData has the wire format of ExportTraceServiceRequest (both are
	// "repeated ResourceSpans resource_spans = 1"), and its package does
	// not pull in the gRPC gateway that the collector package needs.
	raw, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: c.resources})
	n := c.spans
	c.reset()
	if err != nil {
		c.m.dropped.WithLabelValues("marshal_error").Add(float64(n))
		return nil
	}
	c.body.Reset()
	c.gz.Reset(&c.body)
	if _, err := c.gz.Write(raw); err != nil {
		return err
	}
	if err := c.gz.Close(); err != nil {
		return err
	}
	return send(encoded{c.body.Bytes(), n})
}

func spanKind(v string) tracepb.Span_SpanKind {
	switch strings.ToLower(v) {
	case "client":
		return tracepb.Span_SPAN_KIND_CLIENT
	case "server":
		return tracepb.Span_SPAN_KIND_SERVER
	case "producer":
		return tracepb.Span_SPAN_KIND_PRODUCER
	case "consumer":
		return tracepb.Span_SPAN_KIND_CONSUMER
	case "internal":
		return tracepb.Span_SPAN_KIND_INTERNAL
	}
	return tracepb.Span_SPAN_KIND_UNSPECIFIED
}

func stringAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// otlpID turns a Wavefront ID into an n-byte OTLP ID. Wavefront IDs are
// UUIDs whose hex digits, hyphens removed, are the ID right-aligned: a
// 64-bit Zipkin or Jaeger span ID is the last 16 digits. So the last 2n
// hex digits are taken, zero-padded on the left. An ID that is not hex,
// or is all zeros (invalid in OTLP), is hashed instead, so it still maps to
// the same OTLP ID wherever it appears (span, parent, span logs).
func otlpID(id []byte, n int) []byte {
	out := make([]byte, n)
	otlpIDInto(out, id)
	return out
}

func otlpIDInto(out, id []byte) {
	n := len(out)
	var digits [32]byte // the last 2n digits, right-aligned
	for i := range digits {
		digits[i] = '0'
	}
	got := 0
	for i := len(id) - 1; i >= 0 && got < 2*n; i-- {
		if id[i] != '-' {
			digits[len(digits)-1-got] = id[i]
			got++
		}
	}
	if _, err := hex.Decode(out, digits[len(digits)-2*n:]); err == nil && got > 0 && slices.ContainsFunc(out, func(b byte) bool { return b != 0 }) {
		return
	}
	binary.BigEndian.PutUint64(out[n-8:], xxhash.Sum64(id))
	if n > 8 {
		binary.BigEndian.PutUint64(out[:8], xxhash.Sum64(append([]byte{0}, id...)))
	}
}
