package red

import (
	"encoding/binary"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// appendKey encodes everything that tells s's series apart, each field
// length-prefixed so that distinct spans never share a key. The operation
// comes last: key[:hbLen] is the heartbeat key (§6.3: the RED tags minus
// operationName, plus the span source). IsError is not part of the key: it
// selects a bin, not a counter series.
func appendKey(b []byte, s *Span) (key []byte, hbLen int) {
	b = appendField(b, s.Application)
	b = appendField(b, s.Service)
	b = appendField(b, s.Cluster)
	b = appendField(b, s.Shard)
	b = appendField(b, s.Component)
	b = appendField(b, s.SpanKind)
	b = appendField(b, s.Source)
	b = appendField(b, s.HTTPStatusCode)
	for _, t := range s.CustomTags {
		b = appendField(b, t.Key)
		b = appendField(b, t.Value)
	}
	hbLen = len(b)
	return appendField(b, s.Operation), hbLen
}

func appendField(b []byte, v []byte) []byte {
	if len(v) < 0x80 { // one-byte uvarint, written inline: most fields are short
		return append(append(b, byte(len(v))), v...)
	}
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func newEntry(s *Span) *entry {
	base := metricBase(s.Application, s.Service, s.Operation)
	e := &entry{
		invocationName: deltaName(base, ".invocation.count"),
		errorName:      deltaName(base, ".error.count"),
		totalTimeName:  deltaName(base, ".total_time.millis.count"),
		durationName:   append(base, ".duration.micros"...),
		source:         []byte(orDefault(s.Source, "unknown_source")),
		tags:           redTags(s, true),
	}
	e.errorTags = setTag(append([]wavefront.Tag(nil), e.tags...), "error", "true")
	return e
}

// newHeartbeat builds the heartbeat for s; key is its heartbeat key.
func (d *Deriver) newHeartbeat(s *Span, key string) *heartbeat {
	hb := &heartbeat{
		key:    key,
		source: []byte(orDefault(s.Source, "unknown_source")),
		tags:   redTags(s, false),
	}
	hb.second = setTag(append([]wavefront.Tag(nil), hb.tags...), "component", string(d.component))
	return hb
}

// redTags returns the RED tags of proxy.md §6.2 in a fixed order, with
// operationName only if withOperation (heartbeats leave it out). There is
// deliberately no "source" tag: the span source is the line source (§10.8).
func redTags(s *Span, withOperation bool) []wavefront.Tag {
	tags := make([]wavefront.Tag, 0, 10+len(s.CustomTags))
	tags = setTag(tags, "application", orDefault(s.Application, "unknown_application"))
	tags = setTag(tags, "service", orDefault(s.Service, "unknown_service"))
	tags = setTag(tags, "cluster", orDefault(s.Cluster, "none"))
	tags = setTag(tags, "shard", orDefault(s.Shard, "none"))
	tags = setTag(tags, "component", orDefault(s.Component, "none"))
	if withOperation {
		tags = setTag(tags, "operationName", orDefault(s.Operation, "unknown_operation"))
	}
	tags = setTag(tags, "span.kind", orDefault(s.SpanKind, "none"))
	if len(s.HTTPStatusCode) > 0 {
		tags = setTag(tags, "http.status_code", string(s.HTTPStatusCode))
	}
	for _, t := range s.CustomTags {
		tags = setTag(tags, string(t.Key), string(t.Value))
	}
	return tags
}

// setTag replaces the value of key or appends it: the reference builds these
// tags in a map, so a custom tag key that repeats a fixed one overrides it.
func setTag(tags []wavefront.Tag, key, value string) []wavefront.Tag {
	for i := range tags {
		if string(tags[i].Key) == key {
			tags[i].Value = []byte(value)
			return tags
		}
	}
	return append(tags, wavefront.Tag{Key: []byte(key), Value: []byte(value)})
}

// orDefault copies v, or returns def when v is empty.
func orDefault(v []byte, def string) string {
	if len(v) == 0 {
		return def
	}
	return string(v)
}

// metricBase returns "tracing.derived." + S where S is app.service.op with
// both sanitising steps of proxy.md §6.1 applied: every character outside
// [,-.0-9A-Za-z_] and '/' becomes '-', then ',' becomes '_'. Characters
// are counted as the reference's UTF-16 units, so a rune outside the BMP
// becomes "--"; an invalid UTF-8 byte becomes one '-'.
func metricBase(app, service, op []byte) []byte {
	b := []byte("tracing.derived.")
	b = appendSanitized(b, app)
	b = append(b, '.')
	b = appendSanitized(b, service)
	b = append(b, '.')
	return appendSanitized(b, op)
}

func appendSanitized(b []byte, s []byte) []byte {
	for _, r := range string(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b = append(b, byte(r))
		case r == ',':
			b = append(b, '_')
		case r > 0xFFFF:
			b = append(b, '-', '-')
		default:
			b = append(b, '-')
		}
	}
	return b
}

func deltaName(base []byte, suffix string) []byte {
	n := make([]byte, 0, len(wavefront.DeltaIncrement)+len(base)+len(suffix))
	n = append(n, wavefront.DeltaIncrement...)
	n = append(n, base...)
	return append(n, suffix...)
}
