package zipkin

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/meshwave/meshwave/internal/red"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// Converter turns normalised Zipkin spans into Wavefront spans the way the
// reference's Zipkin port does, including its system sanitising
// preprocessor (proxy.md §5.3–§5.5). The zero value uses the reference
// defaults. A Converter reuses its buffers and is not safe for concurrent
// use; output slices are valid until the next Convert.
type Converter struct {
	// DefaultApplication is used when a span has no application tag
	// (--traceZipkinApplicationName); "" means "Zipkin".
	DefaultApplication string
	// DefaultService is used when a span has no local service name; ""
	// means "defaultService".
	DefaultService string
	// DefaultOperation is used when a span has no name; "" means
	// "defaultOperation".
	DefaultOperation string
	// SpanLogs enables Zipkin annotations → span logs, and with it the
	// _spanLogs=true annotation.
	SpanLogs bool
	// CustomTagKeys are extra annotation keys carried to RED metrics
	// (--traceDerivedCustomTagKeys); matched exactly, last occurrence wins.
	CustomTagKeys []string

	w      *words
	arena  arena
	custom []wavefront.Tag
	// dirty remembers the last keys that needed sanitising, as tracers send
	// the same few (Envoy's guid:x-request-id) on every span.
	dirty [4]struct {
		key, sanitized []byte
	}
	nextDirty int
	// plans caches tagPlans by Span.keySeq (low four bits); scratch is the
	// plan of a span whose keys are not cached. A pointer, so that a copied
	// Converter does not copy sixteen plans.
	plans   *[16]tagPlan
	scratch tagPlan
	// lastIP is the last local IPv4 address written and lastIPText its
	// text: one sidecar's spans all carry its pod's address.
	lastIP     netip.Addr
	lastIPText []byte
	// hexTraceID and hexSpanID are the UUIDs the last successful
	// AppendCanonicalSpan wrote to its out, from a Decoder's hex IDs: hex
	// and '-' only, which AppendLogs need not escape.
	hexTraceID, hexSpanID []byte
	// after holds AppendCanonicalSpan's annotations after the tags for
	// spans without application, cluster or shard tags, for the last few
	// keys: a body's spans come from a few pods, whose addresses alternate
	// from span to span. nextAfter is the entry to refill next.
	after     [4]fixedAfter
	nextAfter int
	// names are the last few span names AppendCanonicalSpanTo converted;
	// nextName is the entry to refill next.
	names    [4]convertedName
	nextName int
}

// fixedAfter is the text of a span's annotations after its tags
// (application, cluster, shard, debug, ipv4, _spanLogs) when the first
// three are the defaults, for the span described by key.
type fixedAfter struct {
	key             afterKey
	text            []byte
	n, longestValue int // as SpanLine.Annotations takes them
}

// afterKey is what fixedAfter's text depends on.
type afterKey struct {
	ip          netip.Addr // invalid: none
	debug, logs bool       // whether it has the debug and _spanLogs annotations
	fixed       *byte      // the words.fixedAfter it starts with
}

// fill makes a's text for k; ip is k.ip's text.
func (a *fixedAfter) fill(w *words, k afterKey, ip []byte) {
	t := append(a.text[:0], w.fixedAfter...)
	a.n, a.longestValue = 3, w.fixedAfterValue
	if k.debug {
		t = append(append(wavefront.AppendSpanKey(t, w.debug), w.true...), '"')
		a.n++
	}
	if k.ip.IsValid() {
		t = append(append(wavefront.AppendSpanKey(t, w.ipv4), ip...), '"')
		a.n, a.longestValue = a.n+1, max(a.longestValue, len(ip))
	}
	if k.logs {
		t = append(append(wavefront.AppendSpanKey(t, w.spanLogs), w.true...), '"')
		a.n++
	}
	a.text, a.key = t, k
}

// afterFor returns the cached fixedAfter for k, filling the oldest entry
// if none has it. An entry never filled has a nil key.fixed, which no k
// has.
func (c *Converter) afterFor(w *words, k afterKey) *fixedAfter {
	for i := range c.after {
		// Field by field, the likeliest to differ first, rather than by
		// the generated equality function.
		if a := &c.after[i]; a.key.ip == k.ip && a.key.fixed == k.fixed && a.key.debug == k.debug && a.key.logs == k.logs {
			return a
		}
	}
	a := &c.after[c.nextAfter]
	c.nextAfter = (c.nextAfter + 1) % len(c.after)
	var ip []byte
	if k.ip.IsValid() {
		ip = c.ipText(k.ip)
	}
	a.fill(w, k, ip)
	return a
}

// ipText returns ip's text, valid until the next call.
func (c *Converter) ipText(ip netip.Addr) []byte {
	if ip != c.lastIP || c.lastIPText == nil {
		if ip.Is4() {
			c.lastIPText = appendIPv4(c.lastIPText[:0], ip.As4())
		} else {
			c.lastIPText = ip.AppendTo(c.lastIPText[:0])
		}
		c.lastIP = ip
	}
	return c.lastIPText
}

// appendIPv4 appends a's dotted decimal text, as netip.Addr.AppendTo
// does for an IPv4 address, without its general formatter: each byte's
// text is stored whole from a table, and the next one or the '.' stored
// over what is past its end.
func appendIPv4(dst []byte, a [4]byte) []byte {
	var text [4 * len("255.")]byte
	n := 0
	for _, b := range a[:3] {
		o := octets[b]
		*(*[4]byte)(text[n:]) = o
		n += int(o[3])
		text[n] = '.'
		n++
	}
	o := octets[a[3]]
	*(*[4]byte)(text[n:]) = o
	return append(dst, text[:n+int(o[3])]...)
}

// octets holds each byte's decimal text and, in its last byte, the
// text's length.
var octets = func() (t [256][4]byte) {
	for i := range t {
		n := copy(t[i][:3], strconv.Itoa(i))
		t[i][3] = byte(n)
	}
	return t
}()

// tagPlan is what AppendCanonicalSpan derives from a span's tag keys alone:
// which to skip, which feed RED and how each is written. Envoy sends the
// same keys on every span of a kind, so it is worked out once per key
// sequence instead of once per tag.
type tagPlan struct {
	seq    uint64 // the Span.keySeq planned for; 0 while being filled
	source int    // index of the last tag keyed exactly "source", or -1
	tags   []tagConv
	// special are the indexes of the tags that are not plain (see
	// tagConv.plain), in order.
	special []int
	text    []byte // the keys' texts, one after another, and spare bytes
	// keysRoom is what line's keys take in SpanLine.Tags' room: the
	// sum of their texts' lengths and closing quotes.
	keysRoom int
	// longestKey is the length of line's longest key, and emptyKey
	// whether one is empty.
	longestKey int
	emptyKey   bool
	// line is the span line's annotations with their keys filled in:
	// the fixed ones (slot*) around one per tag (from slotTags on), so
	// that a span only sets the values, nil for those it leaves out.
	line []wavefront.SpanTag
}

// Slots of tagPlan.line. The fixed annotations come in the reference's
// order (§5.3), the span's tags between service and application.
const (
	slotSpanID = iota
	slotTraceID
	slotParent
	slotSpanKind
	slotSecondaryID
	slotService
	slotTags
)

// Slots of the annotations after the tags, from len(z.Tags)+slotTags.
const (
	slotApplication = iota
	slotCluster
	slotShard
	slotDebug
	slotIPv4
	slotSpanLogs
	slotsAfterTags
)

// tagConv is the plan for one tag of a sorted tag list.
type tagConv struct {
	at, n   int // the ` "key"="` of the sanitised key, tagPlan.text[at:at+n]
	role    tagRole
	status  bool // the sanitised key is http.status_code, ignoring case
	nameKey bool // the sanitised key has only name bytes: no '~' or delta prefix kept
	// plain is a tag with nothing to do but write it: an ordinary
	// annotation (no role, not the status code) with a name-byte key.
	plain bool
}

// tagRole is what a tag key means to the converter besides an annotation.
type tagRole uint8

const (
	roleAnnotation  tagRole = iota
	roleSkip                // "source" in any case: never an annotation
	roleApplication         // application, cluster and shard become the fixed
	roleCluster             // annotations written after the span's tags
	roleShard
	roleError
	roleComponent
	roleDebug
	roleService
	roleSpanKind
)

// planFor returns the plan for z's tag keys: the cached one if z's key
// sequence has one, else a newly filled one.
func (c *Converter) planFor(z *Span) *tagPlan {
	if z.keySeq == 0 {
		c.fillPlan(&c.scratch, z, 0)
		return &c.scratch
	}
	if c.plans == nil {
		c.plans = new([16]tagPlan)
	}
	p := &c.plans[z.keySeq&15]
	if p.seq != z.keySeq {
		c.fillPlan(p, z, z.keySeq)
	}
	return p
}

func (c *Converter) fillPlan(p *tagPlan, z *Span, seq uint64) {
	p.seq, p.source = 0, -1
	p.tags, p.special, p.text = p.tags[:0], p.special[:0], p.text[:0]
	for i, t := range z.Tags {
		if string(t.Key) == "source" {
			p.source = i
		}
		if len(t.Key) == len("source") && bytes.EqualFold(t.Key, []byte("source")) {
			p.tags, p.special = append(p.tags, tagConv{role: roleSkip}), append(p.special, i)
			continue
		}
		key := c.sanitizeKey(t.Key)
		// A sanitised key equals one of these only if the original did, as
		// sanitising only writes '-'.
		var role tagRole
		switch string(key) {
		case "application":
			role = roleApplication
		case "cluster":
			role = roleCluster
		case "shard":
			role = roleShard
		case "error":
			role = roleError
		case "component":
			role = roleComponent
		case "debug":
			role = roleDebug
		case "service":
			role = roleService
		case "span.kind":
			role = roleSpanKind
		}
		at := len(p.text)
		p.text = wavefront.AppendSpanKey(p.text, key)
		tc := tagConv{
			at: at, n: len(p.text) - at, role: role,
			status:  len(key) == len("http.status_code") && bytes.EqualFold(key, []byte("http.status_code")),
			nameKey: len(key) > 0 && keyByte[key[0]],
		}
		tc.plain = role == roleAnnotation && !tc.status && tc.nameKey
		if !tc.plain {
			p.special = append(p.special, i)
		}
		p.tags = append(p.tags, tc)
	}
	p.text = append(p.text, make([]byte, wavefront.SpanTagSpare)...) // for each key text
	q := &c.w.quoted
	p.line = append(p.line[:0], make([]wavefront.SpanTag, slotTags+len(z.Tags)+slotsAfterTags)...)
	for i, k := range [...][]byte{slotSpanID: q.zipkinSpanID, slotTraceID: q.zipkinTraceID, slotParent: q.parent,
		slotSpanKind: q.spanKind, slotSecondaryID: q.secondaryID, slotService: q.service} {
		p.line[i].KeyText = k
	}
	for i, tc := range p.tags {
		if tc.role != roleSkip {
			p.line[slotTags+i].KeyText = p.text[tc.at : tc.at+tc.n]
		}
	}
	after := p.line[slotTags+len(z.Tags):]
	for i, k := range [...][]byte{slotApplication: q.application, slotCluster: q.cluster, slotShard: q.shard,
		slotDebug: q.debug, slotIPv4: q.ipv4, slotSpanLogs: q.spanLogs} {
		after[i].KeyText = k
	}
	p.keysRoom, p.longestKey, p.emptyKey = 0, 0, false
	for _, t := range p.line {
		p.keysRoom += len(t.KeyText) + len(`"`)
		if t.KeyText != nil {
			k := len(t.KeyText) - len(` ""="`)
			p.longestKey, p.emptyKey = max(p.longestKey, k), p.emptyKey || k == 0
		}
	}
	p.seq = seq
}

// RED is what the RED-metrics and heartbeat stage (§6) needs from a span:
// the span the red package observes, filled by the conversion itself, so
// that the caller hands it on without a copy. Byte slices alias the
// Converter and are valid until its next Convert.
//
// Application, Service, Cluster and Shard are always set on the Zipkin
// port (defaults applied during conversion). Component, SpanKind and
// HTTPStatusCode are nil when the span has none; the RED stage then writes
// the §6.2 defaults ("none"), so metric names can use the raw values.
// After user preprocessing rules, call Converter.Refresh to re-read them
// from the final annotations. Operation is the sanitised span name (the
// operationName tag and the <op> of metric names); Source the span's
// source, which per proxy.md §10.8 meshwave uses as the RED points'
// source instead of adding a "source" tag; SpanKind the value of the last
// span.kind annotation; HTTPStatusCode the last annotation whose key
// equals http.status_code ignoring case (written as lower-case
// "http.status_code"); CustomTags the annotations whose keys are in
// Converter.CustomTagKeys, in that order, one per key. IsError is sticky:
// set by a non-blank Zipkin error tag or any error annotation; later
// removal of the annotation does not clear it. DurationMicros is the
// original Zipkin duration, the sample of the duration.micros histogram;
// DurationMillis the converted span's, the total_time.millis increment.
type RED = red.Span

// words are the fixed keys and values Convert emits. Each Converter owns
// a copy because output tags alias them and []byte cannot be constant.
type words struct {
	zipkinSpanID, zipkinTraceID, parent, spanKind, secondaryID, service,
	application, cluster, shard, debug, ipv4, spanLogs, true, none, zipkin []byte
	kinds [5][]byte // lower-case names by Kind
	// quoted holds the fixed annotation keys as wavefront.SpanTag takes
	// them.
	quoted struct {
		zipkinSpanID, zipkinTraceID, parent, spanKind, secondaryID, service,
		application, cluster, shard, debug, ipv4, spanLogs []byte
	}
	// The configured defaults as bytes; see cached.
	def struct{ application, service, operation []byte }
	// plainFor is the default application of the setting appSetting, as
	// AppendCanonicalSpan writes it, and plainApplication whether it is
	// plain (see Tag.plainValue) and trimmed, as a plain SpanTag must be.
	plainApplication bool
	plainFor         []byte
	appSetting       string
	// fixedAfter is the annotations application, cluster and shard as a
	// span without those tags has them, with the default application
	// (see Converter.fixedAfter), or nil if that is not plain, non-empty
	// and without blanks at its ends; fixedAfterValue is its longest value.
	fixedAfter      []byte
	fixedAfterValue int
	// heads are the fixed annotations before service by headShape.
	heads [5 * 8]*fixedHead
	// logsHead is the span logs' text up to the first annotation's
	// timestamp, by Kind, with the IDs' places blank (see logsTraceIDAt);
	// logsTail their end, for the sampledBy marker logsTailFor.
	logsHead    [5][]byte
	logsTail    []byte
	logsTailFor string
	// logsEnd is, by Kind, the text after the timestamp of a span with
	// one annotation: the last such span's value and marker, and text.
	logsEnd [5]struct {
		value     []byte
		sampledBy string
		text      []byte
	}
}

// cached returns s as bytes from *cache, converting only when the setting
// changed since the last call.
func cached(cache *[]byte, s string) []byte {
	if string(*cache) != s {
		*cache = []byte(s)
	}
	return *cache
}

func newWords() *words {
	b := func(s string) []byte { return []byte(s) }
	w := &words{
		zipkinSpanID: b("zipkinSpanId"), zipkinTraceID: b("zipkinTraceId"), parent: b("parent"),
		spanKind: b("span.kind"), secondaryID: b("_spanSecondaryId"), service: b("service"),
		application: b("application"), cluster: b("cluster"), shard: b("shard"), debug: b("debug"),
		ipv4: b("ipv4"), spanLogs: b("_spanLogs"), true: b("true"), none: b("none"), zipkin: b("zipkin"),
		kinds: [5][]byte{nil, b("client"), b("server"), b("producer"), b("consumer")},
	}
	q := &w.quoted
	for _, k := range []struct {
		quoted *[]byte
		key    []byte
	}{
		{&q.zipkinSpanID, w.zipkinSpanID}, {&q.zipkinTraceID, w.zipkinTraceID}, {&q.parent, w.parent},
		{&q.spanKind, w.spanKind}, {&q.secondaryID, w.secondaryID}, {&q.service, w.service},
		{&q.application, w.application}, {&q.cluster, w.cluster}, {&q.shard, w.shard},
		{&q.debug, w.debug}, {&q.ipv4, w.ipv4}, {&q.spanLogs, w.spanLogs},
	} {
		*k.quoted = wavefront.AppendSpanKey(make([]byte, 0, len(` ""="`)+len(k.key)+wavefront.SpanTagSpare), k.key) // see SpanLine.Tags
	}
	blank := make([]byte, uuidLen)
	for kind, name := range w.kinds {
		h := append([]byte(`{"customer":"default","traceId":"`), blank...)
		h = append(append(append(h, `","spanId":"`...), blank...), `","spanSecondaryId":`...)
		if name == nil {
			h = append(h, "null"...)
		} else {
			h = wavefront.AppendJSONString(h, name)
		}
		w.logsHead[kind] = append(h, `,"logs":[{"timestamp":`...)
	}
	return w
}

func (c *Converter) words() *words {
	if c.w == nil {
		c.w = newWords()
	}
	return c.w
}

// defaultApplication is the configured default application, and whether
// it is plain, which is worked out once per setting (compared as a
// string, by its data pointer first: the setting is the same string
// from span to span).
func (c *Converter) defaultApplication(w *words) ([]byte, bool) {
	if app := c.DefaultApplication; w.plainFor == nil || len(app) != len(w.appSetting) ||
		unsafe.StringData(app) != unsafe.StringData(w.appSetting) && app != w.appSetting {
		w.appSetting = c.DefaultApplication
		app := []byte(orDefault(c.DefaultApplication, "Zipkin"))
		w.plainFor, w.plainApplication = app, isPlain(app) && app[0] > ' ' && app[len(app)-1] > ' '
		w.fixedAfter = nil
		if w.plainApplication {
			w.fixedAfter = wavefront.AppendSpanKey(nil, w.application)
			w.fixedAfter = append(append(w.fixedAfter, app...), '"')
			w.fixedAfter = append(append(wavefront.AppendSpanKey(w.fixedAfter, w.cluster), w.none...), '"')
			w.fixedAfter = append(append(wavefront.AppendSpanKey(w.fixedAfter, w.shard), w.none...), '"')
			w.fixedAfterValue = max(len(app), len(w.none))
		}
	}
	return w.plainFor, w.plainApplication
}

// fixedHead is the text after a span line's name up to service for one
// shape of span: ` source="zipkin" spanId="<uuid>" traceId="<uuid>"`,
// then the annotations zipkinSpanId, zipkinTraceId, parent, span.kind and
// _spanSecondaryId, with the IDs' places to be filled in. For Envoy's
// spans it is most of a span line; its keys, the span kind and the
// source need no checks per span, and the UUIDs need not be made apart
// from it: the converted span's IDs are slices of it.
type fixedHead struct {
	text []byte
	// annAt is where the annotations start, after the source and IDs.
	annAt int
	// Where the IDs go: the UUIDs' starts, and the hex IDs' (parentAt is
	// 0 without a parent; its UUID's hex parts are at parentAt and
	// parentAt+5).
	spanUUIDAt, traceUUIDAt, spanIDAt, traceIDAt, parentAt int
	n, longestKey, longestValue                            int // of the annotations, as SpanLine.Annotations takes them
}

// headFor returns the fixedHead of z's shape: its trace ID's length, its
// parent, kind and whether it has annotations. It returns nil for IDs of
// other lengths than a Decoder's (16 or 32 hex digits, parent 16).
func (c *Converter) headFor(z *Span, w *words) *fixedHead {
	if len(z.ID) != 16 || len(z.TraceID) != 16 && len(z.TraceID) != 32 ||
		z.ParentID != nil && len(z.ParentID) != 16 || int(z.Kind) >= len(w.kinds) {
		return nil
	}
	shape := int(z.Kind) * 8
	if len(z.TraceID) == 32 {
		shape |= 1
	}
	if z.ParentID != nil {
		shape |= 2
	}
	if len(z.Annotations) > 0 {
		shape |= 4
	}
	if h := w.heads[shape]; h != nil {
		return h
	}
	h := &fixedHead{n: 2, longestKey: len(w.zipkinTraceID), longestValue: len(z.TraceID)}
	// The IDs' places hold zeros, as a UUID of hexUUID's keeps where fill
	// does not write (not the IDs of z: they would take the arena).
	const zeroUUID = "00000000-0000-0000-0000-000000000000"
	t := append(append(append([]byte(nil), ` source="`...), w.zipkin...), `" spanId="`...)
	h.spanUUIDAt = len(t)
	t = append(append(t, zeroUUID...), `" traceId="`...)
	h.traceUUIDAt = len(t)
	t = append(append(t, zeroUUID...), '"')
	h.annAt = len(t)
	t = wavefront.AppendSpanKey(t, w.zipkinSpanID)
	h.spanIDAt = len(t)
	t = wavefront.AppendSpanKey(append(append(t, z.ID...), '"'), w.zipkinTraceID)
	h.traceIDAt = len(t)
	t = append(append(t, z.TraceID...), '"')
	if z.ParentID != nil {
		// hexUUID's form of a 16-digit ID: zeros, then the ID from [19:].
		t = append(wavefront.AppendSpanKey(t, w.parent), zeroUUID[:19]...)
		h.parentAt = len(t)
		t = append(append(t, zeroUUID[19:]...), '"')
		h.n, h.longestValue = h.n+1, uuidLen
	}
	if z.Kind != KindUnset {
		t = append(append(wavefront.AppendSpanKey(t, w.spanKind), w.kinds[z.Kind]...), '"')
		h.n++
		if len(z.Annotations) > 0 {
			t = append(append(wavefront.AppendSpanKey(t, w.secondaryID), w.kinds[z.Kind]...), '"')
			h.n, h.longestKey = h.n+1, len(w.secondaryID)
		}
	}
	h.text = t
	w.heads[shape] = h
	return h
}

// fill puts z's IDs into h.text, which headFor made for z's shape, and
// returns the UUIDs of z's span and trace IDs, in h.text. The shape fixes
// the IDs' lengths and places, which headFor checked, so they are stored
// through pointers without a bounds check each, in moves of at most 16
// bytes, which the compiler inlines.
func (h *fixedHead) fill(z *Span) (spanUUID, traceUUID []byte) {
	t := unsafe.Pointer(unsafe.SliceData(h.text))
	id := unsafe.Pointer(unsafe.SliceData(z.ID))
	u := unsafe.Add(t, h.spanUUIDAt) // "00000000-0000-0000-" and the ID
	*(*[4]byte)(unsafe.Add(u, 19)) = *(*[4]byte)(id)
	*(*[12]byte)(unsafe.Add(u, 24)) = *(*[12]byte)(unsafe.Add(id, 4))
	*(*[16]byte)(unsafe.Add(t, h.spanIDAt)) = *(*[16]byte)(id)
	tr := unsafe.Pointer(unsafe.SliceData(z.TraceID))
	v := unsafe.Add(t, h.traceUUIDAt)
	if len(z.TraceID) == 32 {
		*(*[8]byte)(v) = *(*[8]byte)(tr)
		*(*[4]byte)(unsafe.Add(v, 9)) = *(*[4]byte)(unsafe.Add(tr, 8))
		*(*[4]byte)(unsafe.Add(v, 14)) = *(*[4]byte)(unsafe.Add(tr, 12))
		*(*[4]byte)(unsafe.Add(v, 19)) = *(*[4]byte)(unsafe.Add(tr, 16))
		*(*[12]byte)(unsafe.Add(v, 24)) = *(*[12]byte)(unsafe.Add(tr, 20))
		*(*[16]byte)(unsafe.Add(t, h.traceIDAt)) = *(*[16]byte)(tr)
		*(*[16]byte)(unsafe.Add(t, h.traceIDAt+16)) = *(*[16]byte)(unsafe.Add(tr, 16))
	} else {
		*(*[4]byte)(unsafe.Add(v, 19)) = *(*[4]byte)(tr)
		*(*[12]byte)(unsafe.Add(v, 24)) = *(*[12]byte)(unsafe.Add(tr, 4))
		*(*[16]byte)(unsafe.Add(t, h.traceIDAt)) = *(*[16]byte)(tr)
	}
	if h.parentAt > 0 {
		p, at := unsafe.Pointer(unsafe.SliceData(z.ParentID)), unsafe.Add(t, h.parentAt)
		*(*[4]byte)(at) = *(*[4]byte)(p)
		*(*[12]byte)(unsafe.Add(at, 5)) = *(*[12]byte)(unsafe.Add(p, 4))
	}
	return unsafe.Slice((*byte)(u), uuidLen), unsafe.Slice((*byte)(v), uuidLen)
}

// isPlain reports whether b is ASCII without '"', '\\' or '\n', the values
// a plain wavefront.SpanTag holds.
func isPlain(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '\n' {
			return false
		}
	}
	return true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Convert fills out from z, reusing out.Tags' capacity, and returns the
// RED inputs. Annotations are emitted in the reference's order (§5.3).
// AppendCanonicalSpan repeats this conversion in one pass for the common
// span; TestAppendCanonicalSpanMatchesConvert keeps the two equal.
func (c *Converter) Convert(z *Span, out *wavefront.Span) RED {
	w := c.words()
	c.arena.reset()
	c.hexTraceID, c.hexSpanID = nil, nil
	name := z.Name
	if len(name) == 0 {
		name = cached(&w.def.operation, orDefault(c.DefaultOperation, "defaultOperation"))
	}
	out.Name = c.sanitizeName(name)
	out.Source = c.source(z)
	out.TraceID = c.uuid(z.TraceID)
	out.SpanID = c.uuid(z.ID)
	out.StartMillis = z.Timestamp / 1000
	out.DurationMillis = z.Duration / 1000

	tags := append(out.Tags[:0],
		wavefront.Tag{Key: w.zipkinSpanID, Value: z.ID},
		wavefront.Tag{Key: w.zipkinTraceID, Value: z.TraceID})
	if z.ParentID != nil {
		tags = append(tags, wavefront.Tag{Key: w.parent, Value: c.uuid(z.ParentID)})
	}
	if z.Kind != KindUnset {
		tags = append(tags, wavefront.Tag{Key: w.spanKind, Value: w.kinds[z.Kind]})
		if len(z.Annotations) > 0 {
			tags = append(tags, wavefront.Tag{Key: w.secondaryID, Value: w.kinds[z.Kind]})
		}
	}
	service := z.LocalEndpoint.ServiceName
	if service == nil {
		service = cached(&w.def.service, orDefault(c.DefaultService, "defaultService"))
	}
	tags = append(tags, wavefront.Tag{Key: w.service, Value: javaTrim(service)})

	red := RED{Cluster: w.none, Shard: w.none, DurationMicros: z.Duration}
	debugTagged := false
	for _, t := range z.Tags {
		v := javaTrim(t.Value)
		if len(v) == 0 || len(t.Key) == len("source") && bytes.EqualFold(t.Key, []byte("source")) {
			continue
		}
		// Special keys match exactly: "Application" is an ordinary tag.
		switch string(t.Key) {
		case "application":
			red.Application = v
			continue
		case "cluster":
			red.Cluster = v
			continue
		case "shard":
			red.Shard = v
			continue
		case "error":
			// Any non-blank value, even "false", marks an error.
			red.IsError = true
			v = w.true
		case "component":
			red.Component = v
		case "debug":
			debugTagged = debugTagged || string(v) == "true"
		}
		tags = append(tags, wavefront.Tag{Key: c.sanitizeKey(t.Key), Value: v})
	}
	if red.Application == nil {
		red.Application = cached(&w.def.application, orDefault(c.DefaultApplication, "Zipkin"))
	}
	tags = append(tags,
		wavefront.Tag{Key: w.application, Value: red.Application},
		wavefront.Tag{Key: w.cluster, Value: red.Cluster},
		wavefront.Tag{Key: w.shard, Value: red.Shard})
	if z.Debug && !debugTagged {
		tags = append(tags, wavefront.Tag{Key: w.debug, Value: w.true})
	}
	if ip := z.LocalEndpoint.IPv4; ip.IsValid() {
		tags = append(tags, wavefront.Tag{Key: w.ipv4, Value: c.ipText(ip)})
	}
	if len(z.Annotations) > 0 && c.SpanLogs {
		tags = append(tags, wavefront.Tag{Key: w.spanLogs, Value: w.true})
	}
	out.Tags = tags
	red.Service = service
	c.Refresh(&red, out)
	return red
}

// Refresh re-reads red from s's annotations, as the reference does after
// preprocessing (§6): application, service, cluster, shard and component
// take the last annotation with that exact key and keep their previous
// value when a rule removed it; span.kind, http.status_code and custom
// tags are present only if still on the span; an error annotation sets
// IsError, and nothing clears it. DurationMillis is s's.
func (c *Converter) Refresh(red *RED, s *wavefront.Span) {
	red.Operation, red.Source, red.DurationMillis = s.Name, s.Source, s.DurationMillis
	red.SpanKind, red.HTTPStatusCode = nil, nil
	c.custom = c.custom[:0]
	for _, t := range s.Tags {
		switch string(t.Key) {
		case "application":
			red.Application = t.Value
		case "service":
			red.Service = t.Value
		case "cluster":
			red.Cluster = t.Value
		case "shard":
			red.Shard = t.Value
		case "component":
			red.Component = t.Value
		case "span.kind":
			red.SpanKind = t.Value
		case "error":
			red.IsError = true
		}
		if len(t.Key) == len("http.status_code") && bytes.EqualFold(t.Key, []byte("http.status_code")) {
			red.HTTPStatusCode = t.Value
		}
	}
	for _, k := range c.CustomTagKeys {
		for i := len(s.Tags) - 1; i >= 0; i-- {
			if string(s.Tags[i].Key) == k {
				c.custom = append(c.custom, s.Tags[i])
				break
			}
		}
	}
	red.CustomTags = c.custom
}

// AppendLogs appends z's annotations as the span-logs line the reference
// forwards for a sampled span (§5.5), or nothing when z has none or span
// logs are off. out must be z's converted span; sampledBy is the
// _sampledByPolicy=<policy|NONE> marker. The line is written directly, equal
// byte for byte to wavefront.AppendSpanLogs of the same SpanLogs, but
// without building one: a map per annotation and encoding/json's
// reflection cost more than the rest of a span's conversion. The parts
// that are the same for every span of a kind are written once per
// Converter, and the IDs that AppendCanonicalSpan made from a Decoder's
// hex are put into them without escaping.
func (c *Converter) AppendLogs(dst []byte, z *Span, out *wavefront.Span, sampledBy string) []byte {
	if len(z.Annotations) == 0 || !c.SpanLogs {
		return dst
	}
	w := c.words()
	if c.isHexUUID(out.TraceID, c.hexTraceID) && c.isHexUUID(out.SpanID, c.hexSpanID) {
		// The head with the IDs' places blank, then the IDs put in.
		at := len(dst)
		dst = append(dst, w.logsHead[z.Kind]...)
		putUUID((*[uuidLen]byte)(dst[at+logsTraceIDAt:]), (*[uuidLen]byte)(out.TraceID))
		putUUID((*[uuidLen]byte)(dst[at+logsSpanIDAt:]), (*[uuidLen]byte)(out.SpanID))
	} else {
		dst = append(dst, `{"customer":"default","traceId":`...)
		dst = wavefront.AppendJSONString(dst, out.TraceID)
		dst = append(dst, `,"spanId":`...)
		dst = wavefront.AppendJSONString(dst, out.SpanID)
		dst = append(dst, w.logsHead[z.Kind][logsKindAt:]...)
	}
	if anns := z.Annotations; len(anns) == 1 {
		// Envoy's span: one annotation, whose text after the timestamp
		// is the same for most spans of a kind ("ss", "cs").
		dst = wavefront.AppendInt(dst, anns[0].Timestamp)
		// sampledBy is compared by data pointer first: callers pass the
		// same constant.
		e := &w.logsEnd[z.Kind]
		if e.text == nil || string(e.value) != string(anns[0].Value) || len(e.sampledBy) != len(sampledBy) ||
			unsafe.StringData(e.sampledBy) != unsafe.StringData(sampledBy) && e.sampledBy != sampledBy {
			e.value = append(e.value[:0], anns[0].Value...)
			e.sampledBy = sampledBy
			e.text = appendLogField(e.text[:0], anns[0].Value)
			e.text = append(e.text, w.tail(sampledBy)...)
		}
		return append(dst, e.text...)
	}
	for i, a := range z.Annotations {
		if i > 0 {
			dst = append(dst, `},{"timestamp":`...)
		}
		dst = wavefront.AppendInt(dst, a.Timestamp)
		dst = appendLogField(dst, a.Value)
	}
	return append(dst, w.tail(sampledBy)...)
}

// appendLogField appends a span log's fields after its timestamp.
func appendLogField(dst, annotation []byte) []byte {
	dst = append(dst, `,"fields":{"annotation":`...)
	return append(wavefront.AppendJSONString(dst, annotation), '}')
}

// tail returns the span logs' end after the last log's fields, with the
// sampledBy marker.
func (w *words) tail(sampledBy string) []byte {
	if w.logsTail == nil || w.logsTailFor != sampledBy {
		// Kept as the caller's string, not a copy: the next call's
		// constant compares equal by its pointer.
		w.logsTailFor = sampledBy
		w.logsTail = append(w.logsTail[:0], "}]"...)
		if sampledBy != "" { // omitempty
			w.logsTail = append(w.logsTail, `,"span":`...)
			w.logsTail = wavefront.AppendJSONString(w.logsTail, []byte(sampledBy))
		}
		w.logsTail = append(w.logsTail, "}\n"...)
	}
	return w.logsTail
}

// isHexUUID reports whether id is hex, the 36-character UUID that
// AppendCanonicalSpan made from a Decoder's hex ID and copied to its out.
func (c *Converter) isHexUUID(id, hex []byte) bool {
	return len(id) == uuidLen && len(hex) == uuidLen && &id[0] == &hex[0]
}

// putUUID copies a UUID's text in moves of at most 16 bytes, which the
// compiler inlines; a copy, or an array assignment of more, calls
// memmove, costlier than the copy itself. Array pointers, so that the
// lengths are checked once, by the caller's conversions.
func putUUID(dst, id *[uuidLen]byte) {
	*(*[16]byte)(dst[:16]) = *(*[16]byte)(id[:16])
	*(*[16]byte)(dst[16:32]) = *(*[16]byte)(id[16:32])
	*(*[4]byte)(dst[32:]) = *(*[4]byte)(id[32:])
}

// The span logs' head as words.logsHead holds it: the IDs' places and
// where the text from the secondary ID on starts.
const (
	uuidLen       = len("00000000-0000-0000-0000-000000000000")
	logsTraceIDAt = len(`{"customer":"default","traceId":"`)
	logsSpanIDAt  = logsTraceIDAt + uuidLen + len(`","spanId":"`)
	logsKindAt    = logsSpanIDAt + uuidLen + len(`"`)
)

// source is the span's source: its "source" tag (exact key), sanitised,
// or "zipkin".
func (c *Converter) source(z *Span) []byte {
	src := c.w.zipkin
	for _, t := range z.Tags {
		if string(t.Key) == "source" {
			src = c.sanitizeKey(t.Value)
		}
	}
	return src
}

// uuid writes a hex ID in UUID form (§5.4): left-padded to 32 characters
// and hyphenated 8-4-4-4-12. IDs containing '-' are kept as they are.
func (c *Converter) uuid(id []byte) []byte {
	if bytes.IndexByte(id, '-') >= 0 || len(id) > 32 {
		return id
	}
	return c.hexUUID(id)
}

// hexUUID is uuid for an ID without '-' and at most 32 long, as a
// Decoder's are. Its 16- and 32-character IDs are moved in words.
func (c *Converter) hexUUID(id []byte) []byte {
	le := binary.LittleEndian
	b := c.arena.alloc(36)
	if len(id) == 16 { // a span ID, or a 64-bit trace ID
		const zeros = 0x3030303030303030 // "00000000"
		le.PutUint64(b[0:], zeros)
		le.PutUint64(b[8:], zeros)
		le.PutUint64(b[16:], zeros)
		b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
		le.PutUint32(b[19:], le.Uint32(id[0:]))
		le.PutUint64(b[24:], le.Uint64(id[4:]))
		le.PutUint32(b[32:], le.Uint32(id[12:]))
		return b
	}
	hex := id
	if len(id) < 32 {
		var padded [32]byte
		p := 32 - len(id)
		for i := range p {
			padded[i] = '0'
		}
		copy(padded[p:], id)
		hex = padded[:]
	}
	le.PutUint64(b[0:], le.Uint64(hex[0:]))
	le.PutUint32(b[9:], le.Uint32(hex[8:]))
	le.PutUint32(b[14:], le.Uint32(hex[12:]))
	le.PutUint32(b[19:], le.Uint32(hex[16:]))
	le.PutUint64(b[24:], le.Uint64(hex[20:]))
	le.PutUint32(b[32:], le.Uint32(hex[28:]))
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return b
}

// javaTrim trims like Java's String.trim: every byte ≤ ' '.
func javaTrim(b []byte) []byte {
	for len(b) > 0 && b[0] <= ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] <= ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// convertedName is a span name as sanitizeName makes it, kept with the
// name it was made from.
type convertedName struct {
	raw, name []byte
	// plain says that name is in wavefront's canonical subset (see
	// wavefront.Decoder.BeginCanonicalSpanText's plainName).
	plain bool
}

// nameFor returns name sanitised, from the cache of the last few names
// (Envoy names a span by its route, so a body's spans share a few) or
// else made and kept in it, with whether it is plain. Its slices are
// valid until the next conversion.
func (c *Converter) nameFor(name []byte) *convertedName {
	for i := range c.names {
		// An entry not yet filled has no raw name, and name is never
		// empty.
		if e := &c.names[i]; len(e.raw) == len(name) && string(e.raw) == string(name) {
			return e
		}
	}
	e := &c.names[c.nextName]
	c.nextName = (c.nextName + 1) % len(c.names)
	sanitized := c.sanitizeName(name)
	e.raw = append(e.raw[:0], name...)
	e.name = append(e.name[:0], sanitized...)
	// Trimmed and without '*', so plain if it is non-empty and plain.
	e.plain = len(e.name) > 0 && isPlain(e.name)
	return e
}

// sanitizeName trims the operation name and replaces '*' with '-'.
// Newlines are escaped later by wavefront.AppendSpan.
func (c *Converter) sanitizeName(name []byte) []byte {
	name = javaTrim(name)
	i := bytes.IndexByte(name, '*')
	if i < 0 {
		return name
	}
	b := c.arena.alloc(len(name))
	copy(b, name)
	for ; i < len(b); i++ {
		if b[i] == '*' {
			b[i] = '-'
		}
	}
	return b
}

// keyByte marks the bytes the span sanitiser keeps in keys and sources:
// [,-.0-9A-Za-z_]. Unlike point tag keys, '/' is replaced too.
var keyByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	t[','], t['-'], t['.'], t['_'] = true, true, true, true
	return t
}()

// sanitizeKey replaces every character outside [,-.0-9A-Za-z_] with '-',
// keeping a leading '~' or delta marker (and a '~' after the marker) as
// §2.4 allows. Like the reference, which works on UTF-16 code units, a
// character beyond U+FFFF becomes two '-'.
func (c *Converter) sanitizeKey(k []byte) []byte {
	// The usual key is clean from its first byte: no prefix to look for.
	if len(k) > 0 && keyByte[k[0]] {
		i := 1
		for i < len(k) && keyByte[k[i]] {
			i++
		}
		if i == len(k) {
			return k
		}
	}
	for i := range c.dirty {
		if string(c.dirty[i].key) == string(k) {
			return c.dirty[i].sanitized
		}
	}
	keep := 0
	switch {
	case len(k) > 0 && k[0] == '~':
		keep = 1
	case bytes.HasPrefix(k, []byte(wavefront.DeltaIncrement)):
		keep = len(wavefront.DeltaIncrement)
	case bytes.HasPrefix(k, []byte(wavefront.DeltaGreek)):
		keep = len(wavefront.DeltaGreek)
	}
	if keep > 1 && keep < len(k) && k[keep] == '~' {
		keep++
	}
	i := keep
	for i < len(k) && keyByte[k[i]] {
		i++
	}
	if i == len(k) {
		return k
	}
	b := make([]byte, i, len(k))
	copy(b, k[:i])
	for i < len(k) {
		if keyByte[k[i]] {
			b = append(b, k[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		b = append(b, '-')
		if r > 0xFFFF {
			b = append(b, '-')
		}
		i += n
	}
	d := &c.dirty[c.nextDirty%len(c.dirty)]
	c.nextDirty++
	b = b[:len(b):len(b)] // an append by a caller must not write into the cache
	d.key, d.sanitized = append(d.key[:0], k...), b
	return b
}

// AppendCanonicalSpan is AppendCanonicalSpanTo returning the RED inputs.
func (c *Converter) AppendCanonicalSpan(dst []byte, z *Span, out *wavefront.Span, d *wavefront.Decoder) ([]byte, RED, bool) {
	var red RED
	dst, ok := c.AppendCanonicalSpanTo(dst, z, out, &red, d)
	return dst, red, ok
}

// AppendCanonicalSpanTo is Convert followed by d.AppendCanonicalSpan, in
// one pass over z's tags and without building out.Tags: the span line is
// written as the tags are converted, and the RED inputs are collected on
// the way into red instead of by Refresh (a RED is ~30 words, which a
// caller that keeps one then need not have copied). It reports true only
// when both steps would, and then appends the same bytes and sets red to
// what Convert returns; otherwise dst is unchanged, red undefined, and the
// caller uses Convert and the general path. It also declines when CustomTagKeys is set. After a true, out holds
// the converted span without its tags, enough for AppendLogs and the RED
// durations. z must be a Decoder's: its IDs are copied as the lower-case
// hex the Decoder guarantees, without a second check.
func (c *Converter) AppendCanonicalSpanTo(dst []byte, z *Span, out *wavefront.Span, red *RED, d *wavefront.Decoder) ([]byte, bool) {
	if len(c.CustomTagKeys) > 0 {
		return dst, false
	}
	w := c.words()
	c.arena.reset()
	c.hexTraceID, c.hexSpanID = nil, nil
	name := z.Name
	if len(name) == 0 {
		name = cached(&w.def.operation, orDefault(c.DefaultOperation, "defaultOperation"))
	}
	nc := c.nameFor(name)
	out.Name = nc.name
	plan := c.planFor(z)
	out.Source = w.zipkin
	if plan.source >= 0 {
		out.Source = c.sanitizeKey(z.Tags[plan.source].Value)
	}
	out.StartMillis = z.Timestamp / 1000
	out.DurationMillis = z.Duration / 1000
	out.Tags = out.Tags[:0]
	// The source, IDs and annotations before service come from the
	// span's shape's text, else the IDs are made here and the
	// annotations come from the plan's line like the others.
	var l wavefront.SpanLine
	var ok bool
	first := 0
	h := c.headFor(z, w)
	if h != nil {
		out.SpanID, out.TraceID = h.fill(z)
		first = slotService
		if plan.source < 0 {
			l, ok = d.BeginCanonicalSpanText(dst, out.Name, nc.plain, len(out.Source), h.text, h.n, h.longestKey, h.longestValue, out.StartMillis, out.DurationMillis)
		} else if l, ok = d.BeginCanonicalSpan(dst, out.Name, out.Source, out.SpanID, out.TraceID, false, true, out.StartMillis, out.DurationMillis); ok &&
			!l.Annotations(h.text[h.annAt:], h.n, h.longestKey, h.longestValue) {
			return l.Discard(), false
		}
	} else {
		out.TraceID = c.hexUUID(z.TraceID)
		out.SpanID = c.hexUUID(z.ID)
		l, ok = d.BeginCanonicalSpan(dst, out.Name, out.Source, out.SpanID, out.TraceID, plan.source < 0, true, out.StartMillis, out.DurationMillis)
	}
	if !ok {
		return dst, false
	}
	// Field by field: a composite literal is built on the stack and then
	// copied, and red's every field but Service and CustomTags, set
	// below, needs a value here.
	red.Application, red.Cluster, red.Shard, red.Component = nil, w.none, w.none, nil
	red.Operation, red.Source, red.SpanKind, red.HTTPStatusCode = out.Name, out.Source, nil, nil
	red.IsError, red.DurationMicros, red.DurationMillis = false, z.Duration, out.DurationMillis
	// The fixed keys are name bytes, and so is a sanitised key unless it
	// kept a '~' or delta prefix, which is the only way its first byte can
	// be outside keyByte. Span kinds, "true", "none", IP addresses and IDs
	// (lower-case hex from the Decoder, and so their UUID forms) are plain
	// values, and so are the tag values the decoder marked; names and
	// other values are checked. Every slot handed to Tags is set: the
	// plan's line keeps the previous span's values.
	line := plan.line
	if z.Kind != KindUnset {
		red.SpanKind = w.kinds[z.Kind]
	}
	if h == nil {
		head := line[:slotTags:slotTags]
		head[slotSpanID].Value, head[slotSpanID].Plain = z.ID, true
		head[slotTraceID].Value, head[slotTraceID].Plain = z.TraceID, true
		head[slotParent].Value, head[slotParent].Plain = nil, true
		if z.ParentID != nil {
			head[slotParent].Value = c.hexUUID(z.ParentID)
		}
		head[slotSpanKind].Value, head[slotSecondaryID].Value = red.SpanKind, nil
		head[slotSpanKind].Plain, head[slotSecondaryID].Plain = true, true
		if len(z.Annotations) > 0 {
			head[slotSecondaryID].Value = red.SpanKind
		}
	}
	service := z.LocalEndpoint.ServiceName
	if service == nil {
		service = cached(&w.def.service, orDefault(c.DefaultService, "defaultService"))
	}
	red.Service = javaTrim(service)
	// An empty service is declined by Tags; here it would read as absent.
	line[slotService].Value, line[slotService].Plain = red.Service, false
	if len(red.Service) == 0 {
		return l.Discard(), false
	}

	// An upper bound of the values' bytes, for SpanLine.Tags' room: the
	// fixed annotations' longest values, then each tag's.
	values := len(z.ID) + len(z.TraceID) + uuidLen + 2*len("consumer") + len(red.Service) +
		len(w.none) + len(w.none) + len(w.true) + len(w.true) + len("255.255.255.255")
	// Every tag's value goes to its slot, trimmed; then the few whose keys
	// mean more than an annotation (plan.special) are seen to.
	zt := z.Tags
	tagSlots := line[slotTags : slotTags+len(zt)]
	zt = zt[:len(tagSlots)]
	for i := range tagSlots {
		t, out := &zt[i], &tagSlots[i]
		v := t.Value
		if len(v) == 0 || v[0] <= ' ' || v[len(v)-1] <= ' ' {
			v = javaTrim(v) // a blank value is left out
		}
		out.Value, out.Plain = v, t.plainValue
		values += len(v)
	}
	st, ok := c.specialTags(plan, tagSlots, red)
	if !ok {
		return l.Discard(), false
	}
	values += st.values
	appPlain := st.appPlain
	if red.Application == nil {
		red.Application, appPlain = c.defaultApplication(w)
		values += len(red.Application)
	}
	if !st.tagged && w.fixedAfter != nil {
		// The annotations after the tags as a text, the default
		// application's and "none"s made once, the rest when it differs
		// from the previous span's: a sidecar's spans share its address.
		tags := line[first : slotTags+len(zt)]
		if longest, ok := plan.longestWritten(tags, l.Limits()); !ok || !l.Tags(tags, plan.keysRoom+values, longest) {
			return l.Discard(), false
		}
		a := c.afterFor(w, afterKey{z.LocalEndpoint.IPv4, z.Debug && !st.debugTagged, len(z.Annotations) > 0 && c.SpanLogs, &w.fixedAfter[0]})
		if !l.Annotations(a.text, a.n, len(w.application), a.longestValue) {
			return l.Discard(), false
		}
	} else if !c.tagsAfter(&l, z, plan, line[first:], plan.keysRoom+values, red, appPlain, st.clusterPlain, st.shardPlain, st.debugTagged) {
		return l.Discard(), false
	}
	c.custom = c.custom[:0]
	red.CustomTags = c.custom
	c.hexTraceID, c.hexSpanID = out.TraceID, out.SpanID
	return l.End(), true
}

// specialResult is what specialTags found for the annotations after the
// tags.
type specialResult struct {
	values                             int  // what the values set add to SpanLine.Tags' room
	tagged                             bool // application, cluster or shard came from a tag
	appPlain, clusterPlain, shardPlain bool // their values are plain (see SpanTag.Plain)
	debugTagged                        bool // a debug tag is "true"
}

// specialTags sees to the tags of plan.special in their slots, whose
// values are set: it sets red from them and their slots' values as the
// annotations they become, if any. It reports false if the span must take
// the general path. A function of its own, so that AppendCanonicalSpanTo's
// loops keep their state in registers.
func (c *Converter) specialTags(plan *tagPlan, slots []wavefront.SpanTag, red *RED) (specialResult, bool) {
	st := specialResult{clusterPlain: true, shardPlain: true} // cluster and shard default to "none"
	for _, i := range plan.special {
		tc, out := &plan.tags[i], &slots[i]
		v, plain := out.Value, out.Plain
		if len(v) == 0 {
			continue
		}
		// The roles are Convert's special keys and then what Refresh reads
		// from the converted tags.
		switch tc.role {
		case roleSkip:
			out.Value = nil
			continue
		case roleApplication:
			red.Application, st.appPlain, out.Value, st.tagged = v, plain, nil, true
			continue
		case roleCluster:
			red.Cluster, st.clusterPlain, out.Value, st.tagged = v, plain, nil, true
			continue
		case roleShard:
			red.Shard, st.shardPlain, out.Value, st.tagged = v, plain, nil, true
			continue
		case roleError:
			red.IsError = true
			out.Value = c.w.true
			st.values += len(c.w.true)
		case roleComponent:
			red.Component = v
		case roleDebug:
			st.debugTagged = st.debugTagged || string(v) == "true"
		case roleService:
			red.Service = v
		case roleSpanKind:
			red.SpanKind = v
		}
		if tc.status {
			red.HTTPStatusCode = out.Value
		}
		if !tc.nameKey {
			// A kept '~' or delta prefix is not a name byte: the general
			// path writes and validates such a key.
			return st, false
		}
	}
	return st, true
}

// tagsAfter writes line, the tags and the annotations after them from the
// plan's slots, the general way for the spans whose application, cluster
// or shard came from their tags.
func (c *Converter) tagsAfter(l *wavefront.SpanLine, z *Span, plan *tagPlan, line []wavefront.SpanTag, room int, red *RED, appPlain, clusterPlain, shardPlain, debugTagged bool) bool {
	w := c.w
	after := line[len(line)-slotsAfterTags:]
	after[slotApplication].Value, after[slotApplication].Plain = red.Application, appPlain
	after[slotCluster].Value, after[slotCluster].Plain = red.Cluster, clusterPlain
	after[slotShard].Value, after[slotShard].Plain = red.Shard, shardPlain
	after[slotDebug].Value, after[slotDebug].Plain = nil, true
	if z.Debug && !debugTagged {
		after[slotDebug].Value = w.true
	}
	after[slotIPv4].Value, after[slotIPv4].Plain = nil, true
	if ip := z.LocalEndpoint.IPv4; ip.IsValid() {
		after[slotIPv4].Value = c.ipText(ip)
	}
	after[slotSpanLogs].Value, after[slotSpanLogs].Plain = nil, true
	if len(z.Annotations) > 0 && c.SpanLogs {
		after[slotSpanLogs].Value = w.true
	}
	longest, ok := plan.longestWritten(line, l.Limits())
	return ok && l.Tags(line, room, longest)
}

// longestWritten returns the length of the longest key of line's entries
// with a value, or at least that, for SpanLine.Tags: p's longest key when
// all of p's keys keep to the limit, else the longest of those entries',
// and false if one of those is empty, which Tags would decline.
func (p *tagPlan) longestWritten(line []wavefront.SpanTag, lim *wavefront.Limits) (int, bool) {
	if !p.emptyKey && p.longestKey <= lim.MaxSpanKeyLength {
		return p.longestKey, true
	}
	longest := 0
	for _, t := range line {
		if len(t.Value) > 0 {
			k := len(t.KeyText) - len(` ""="`)
			if k == 0 {
				return 0, false
			}
			longest = max(longest, k)
		}
	}
	return longest, true
}
