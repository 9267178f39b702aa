package zipkin

import (
	"bytes"
	"errors"
	"slices"
)

// JSON v1 is decoded into a v1 span and then converted to one or more v2
// spans the way the reference library's V1SpanConverter does: core
// annotations (cs, sr, ss, cr, ms, mr, ws, wr) become kind, timestamp and
// duration; binary annotations become tags or, for ca/sa/ma, remote
// endpoints; and a span reported by both client and server becomes a
// client span plus a shared server span. Clarity wins over speed here:
// nothing current sends v1.

type v1Annotation struct {
	ts    int64
	value []byte
	ep    int // index into v1State.eps, or -1
}

type v1Binary struct {
	key, value []byte
	ep         int
}

type v1Builder struct {
	local, remote int // endpoint indexes, or -1
	kind          Kind
	ts, dur       int64
	shared        bool
	anns          []Annotation
	tags          []Tag
}

type v1Source struct {
	traceID, id, parentID, name []byte
	ts, dur                     int64
	debug                       bool
}

// v1State holds one v1 span and its conversion; reused across spans.
type v1State struct {
	src  v1Source
	eps  []Endpoint
	anns []v1Annotation
	bins []v1Binary
	out  []v1Builder
	// Core annotations by index into anns, or -1.
	cs, sr, ss, cr, ms, mr, ws, wr int
}

func (d *Decoder) decodeJSONV1(body []byte) error {
	l := newLexer(body, d)
	if err := l.expect('['); err != nil {
		return err
	}
	s := &d.cur
	for n := 0; ; n++ {
		ok, err := l.arrayNext(n == 0)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := d.readSpanV1(&l); err != nil {
			return &SpanError{n, err}
		}
		v := &d.v1
		v.convert()
		for i := range v.out {
			if err := d.buildV1(&v.out[i], s); err != nil {
				return &SpanError{n, err}
			}
			if err := d.emit(s); err != nil {
				return err
			}
		}
	}
	return l.end()
}

func (d *Decoder) readSpanV1(l *lexer) error {
	v := &d.v1
	v.src = v1Source{}
	v.eps, v.anns, v.bins = v.eps[:0], v.anns[:0], v.bins[:0]
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := l.objectNext(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := d.readFieldV1(l, key); err != nil {
			if _, isSyntax := err.(*syntaxError); isSyntax {
				return err
			}
			return errors.New(string(key) + ": " + err.Error())
		}
	}
	if err := d.v1IDs(); err != nil {
		return err
	}
	// The reference sorts both lists before converting; which endpoint an
	// annotation is attributed to depends on this order.
	slices.SortStableFunc(v.anns, func(a, b v1Annotation) int {
		return compareAnnotations(Annotation{a.ts, a.value}, Annotation{b.ts, b.value})
	})
	slices.SortStableFunc(v.bins, func(a, b v1Binary) int { return bytes.Compare(a.key, b.key) })
	return nil
}

func (d *Decoder) readFieldV1(l *lexer, key []byte) error {
	v := &d.v1
	var err error
	switch string(key) {
	case "traceId":
		v.src.traceID, err = l.stringOrNumber()
		return err
	case "id":
		v.src.id, err = l.stringOrNumber()
		return err
	}
	if l.isNull() {
		return nil
	}
	switch string(key) {
	case "parentId":
		v.src.parentID, err = l.stringOrNumber()
	case "name":
		v.src.name, err = l.stringOrNumber()
	case "timestamp":
		v.src.ts, err = l.int64()
	case "duration":
		v.src.dur, err = l.int64()
	case "debug":
		v.src.debug, err = l.boolean()
	case "annotations":
		err = d.readList(l, d.readAnnotationV1)
	case "binaryAnnotations":
		err = d.readList(l, d.readBinaryV1)
	default:
		err = l.skip()
	}
	return err
}

func (d *Decoder) readList(l *lexer, elem func(*lexer) error) error {
	if err := l.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := l.arrayNext(first)
		if err != nil || !ok {
			return err
		}
		if err := elem(l); err != nil {
			return err
		}
	}
}

func (d *Decoder) readAnnotationV1(l *lexer) error {
	v := &d.v1
	a := v1Annotation{ep: -1}
	hasTS, hasValue := false, false
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := l.objectNext(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "timestamp":
			a.ts, err = l.int64()
			hasTS = true
		case "value":
			a.value, err = l.stringOrNumber()
			hasValue = true
		case "endpoint":
			if !l.isNull() {
				a.ep, err = d.readEndpointV1(l)
			}
		default:
			err = l.skip()
		}
		if err != nil {
			return err
		}
	}
	if !hasTS || !hasValue {
		return errIncompleteAnnotation
	}
	v.anns = append(v.anns, a)
	return nil
}

var errNoKey = errors.New("binary annotation has no key")

func (d *Decoder) readBinaryV1(l *lexer) error {
	v := &d.v1
	b := v1Binary{ep: -1}
	var str []byte
	hasStr, boolValue := false, false
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := l.objectNext(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if l.isNull() {
			continue
		}
		switch string(key) {
		case "key":
			b.key, err = l.stringOrNumber()
		case "value":
			// Strings are tags and true marks an address; the reference
			// drops numbers and other types.
			switch l.peek() {
			case '"':
				str, err = l.str()
				hasStr = true
			case 't', 'f':
				boolValue, err = l.boolean()
			default:
				err = l.skip()
			}
		case "endpoint":
			b.ep, err = d.readEndpointV1(l)
		default:
			err = l.skip()
		}
		if err != nil {
			return err
		}
	}
	if b.key == nil {
		return errNoKey
	}
	switch {
	case hasStr:
		b.value = str
	case boolValue && b.ep >= 0 && isAddressKey(b.key):
	default:
		return nil
	}
	v.bins = append(v.bins, b)
	return nil
}

func isAddressKey(k []byte) bool {
	s := string(k)
	return s == "ca" || s == "sa" || s == "ma"
}

// readEndpointV1 returns the index of the endpoint read, or -1 when it had
// no known field (the reference then treats it as absent).
func (d *Decoder) readEndpointV1(l *lexer) (int, error) {
	var e Endpoint
	start := l.i
	if err := d.readEndpoint(l, &e); err != nil {
		return -1, err
	}
	if !endpointHasField(l.b[start:l.i]) {
		return -1, nil
	}
	d.v1.eps = append(d.v1.eps, e)
	return len(d.v1.eps) - 1, nil
}

// endpointHasField re-scans a valid endpoint object for a known key with a
// non-null value, which Endpoint's zero value cannot tell (port 0, bad IP).
func endpointHasField(obj []byte) bool {
	l := newLexer(obj, &Decoder{})
	_ = l.expect('{')
	for first := true; ; first = false {
		key, ok, err := l.objectNext(first)
		if err != nil || !ok {
			return false
		}
		known := false
		switch string(key) {
		case "serviceName", "ipv4", "ipv6", "port":
			known = true
		}
		if !l.isNull() {
			if known {
				return true
			}
			_ = l.skip()
		}
	}
}

// v1IDs validates and normalises the v1 IDs. The reference parses them as
// unsigned 64-bit numbers, so only a 32-character trace ID keeps its upper
// half and longer-than-16 span IDs keep their last 16 characters.
func (d *Decoder) v1IDs() error {
	s := &d.v1.src
	var err error
	if s.traceID == nil || allZero(s.traceID) {
		return errMissingTraceID
	}
	if len(s.traceID) != 32 {
		if s.traceID, err = d.v1Hex64("traceId", s.traceID); err != nil {
			return err
		}
	}
	if s.traceID, err = d.traceID(s.traceID); err != nil {
		return err
	}
	if s.id == nil || allZero(s.id) {
		return errMissingID
	}
	if s.id, err = d.v1Hex64("id", s.id); err != nil {
		return err
	}
	if s.parentID != nil {
		if s.parentID, err = d.v1Hex64("parentId", s.parentID); err != nil {
			return err
		}
		if allZero(s.parentID) {
			s.parentID = nil
		}
	}
	return nil
}

func (d *Decoder) v1Hex64(field string, id []byte) ([]byte, error) {
	if len(id) == 0 || len(id) > 32 {
		return nil, errors.New(field + " must have 1 to 32 hex characters")
	}
	if _, ok := lowerHexZeros(id); !ok {
		return nil, hexError(field, id)
	}
	if len(id) > 16 {
		return id[len(id)-16:], nil
	}
	if len(id) < 16 {
		return d.padLeft(id, 16), nil
	}
	return id, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

func (v *v1State) newBuilder(local int) int {
	v.out = append(v.out, v1Builder{local: local, remote: -1})
	return len(v.out) - 1
}

func (v *v1State) sameService(a, b int) bool {
	return bytes.Equal(v.eps[a].ServiceName, v.eps[b].ServiceName)
}

func (v *v1State) sameEndpoint(a, b int) bool {
	x, y := &v.eps[a], &v.eps[b]
	return bytes.Equal(x.ServiceName, y.ServiceName) && x.IPv4 == y.IPv4 && x.IPv6 == y.IPv6 && x.Port == y.Port
}

// forEndpoint returns the builder for spans recorded at endpoint ep:
// missing endpoints go to the first span, which also adopts the first
// endpoint it sees.
func (v *v1State) forEndpoint(ep int) int {
	if ep < 0 {
		return 0
	}
	for i := range v.out {
		b := &v.out[i]
		if b.local < 0 {
			b.local = ep
			return i
		}
		if v.sameService(b.local, ep) {
			return i
		}
	}
	return v.newBuilder(ep)
}

func (v *v1State) annotate(b int, a int) {
	v.out[b].anns = append(v.out[b].anns, Annotation{v.anns[a].ts, v.anns[a].value})
}

func (v *v1State) timestampDuration(begin, end int) {
	src := &v.src
	b := &v.out[v.forEndpoint(v.anns[begin].ep)]
	if src.ts != 0 && src.dur != 0 {
		b.ts, b.dur = src.ts, src.dur
		return
	}
	b.ts = v.anns[begin].ts
	if end >= 0 {
		b.dur = v.anns[end].ts - v.anns[begin].ts
	}
}

// endReflectsDuration reports whether end marks the span's explicit end.
func (v *v1State) endReflectsDuration(end int) bool {
	return end >= 0 && v.src.ts != 0 && v.src.dur != 0 && v.src.ts+v.src.dur == v.anns[end].ts
}

func (v *v1State) synthesize(value string, ep int) int {
	v.anns = append(v.anns, v1Annotation{ts: v.src.ts, value: []byte(value), ep: ep})
	return len(v.anns) - 1
}

func (v *v1State) convert() {
	v.out = v.out[:0]
	v.newBuilder(-1)
	v.cs, v.sr, v.ss, v.cr, v.ms, v.mr, v.ws, v.wr = -1, -1, -1, -1, -1, -1, -1, -1
	v.processAnnotations()
	v.processBinaryAnnotations()
}

func (v *v1State) processAnnotations() {
	src := &v.src
	for i, n := 0, len(v.anns); i < n; i++ {
		a := &v.anns[i]
		b := v.forEndpoint(a.ep)
		// Core annotations need an endpoint; without one they are plain.
		if len(a.value) != 2 || a.ep < 0 {
			v.annotate(b, i)
			continue
		}
		switch string(a.value) {
		case "cs":
			v.out[b].kind, v.cs = KindClient, i
		case "sr":
			v.out[b].kind, v.sr = KindServer, i
		case "ss":
			v.out[b].kind, v.ss = KindServer, i
		case "cr":
			v.out[b].kind, v.cr = KindClient, i
		case "ms":
			v.out[b].kind, v.ms = KindProducer, i
		case "mr":
			v.out[b].kind, v.mr = KindConsumer, i
		case "ws":
			v.ws = i
		case "wr":
			v.wr = i
		default:
			v.annotate(b, i)
		}
	}
	// Bridged instrumentation may omit the start annotation.
	if v.cs < 0 && v.endReflectsDuration(v.cr) {
		v.cs = v.synthesize("cs", v.anns[v.cr].ep)
	}
	if v.sr < 0 && v.endReflectsDuration(v.ss) {
		v.sr = v.synthesize("sr", v.anns[v.ss].ep)
	}
	switch {
	case v.cs >= 0 && v.sr >= 0:
		// A shared span: the client owns the span's timing.
		v.timestampDuration(v.cs, v.cr)
		client := v.forEndpoint(v.anns[v.cs].ep)
		var server int
		if v.sameService(v.anns[v.cs].ep, v.anns[v.sr].ep) {
			// Loopback: fork a separate server span.
			v.out[client].kind = KindClient
			server = v.newBuilder(v.anns[v.sr].ep)
			v.out[server].kind = KindServer
		} else {
			server = v.forEndpoint(v.anns[v.sr].ep)
		}
		sv := &v.out[server]
		sv.shared, sv.ts = true, v.anns[v.sr].ts
		if v.ss >= 0 {
			sv.dur = v.anns[v.ss].ts - v.anns[v.sr].ts
		}
		if v.cr < 0 && src.dur == 0 {
			v.out[client].dur = 0
		}
	case v.cs >= 0 && v.cr >= 0:
		v.timestampDuration(v.cs, v.cr)
	case v.sr >= 0 && v.ss >= 0:
		v.timestampDuration(v.sr, v.ss)
	default:
		v.handleIncompleteRPC()
	}
	// v1 had no shared flag: a server-only span without its own timestamp
	// is by convention sharing its client's span ID.
	if v.cs < 0 && v.sr >= 0 && (src.ts == 0 || v.ss >= 0 && src.dur == 0) {
		v.out[v.forEndpoint(v.anns[v.sr].ep)].shared = true
	}
	switch {
	case v.ms >= 0 && v.mr >= 0:
		producer := v.forEndpoint(v.anns[v.ms].ep)
		var consumer int
		if v.sameService(v.anns[v.ms].ep, v.anns[v.mr].ep) {
			v.out[producer].kind = KindProducer
			consumer = v.newBuilder(v.anns[v.mr].ep)
			v.out[consumer].kind = KindConsumer
		} else {
			consumer = v.forEndpoint(v.anns[v.mr].ep)
		}
		c := &v.out[consumer]
		c.shared = true
		if v.wr >= 0 {
			c.ts, c.dur = v.anns[v.wr].ts, v.anns[v.mr].ts-v.anns[v.wr].ts
		} else {
			c.ts = v.anns[v.mr].ts
		}
		p := &v.out[producer]
		p.ts, p.dur = v.anns[v.ms].ts, 0
		if v.ws >= 0 {
			p.dur = v.anns[v.ws].ts - v.anns[v.ms].ts
		}
	case v.ms >= 0:
		v.timestampDuration(v.ms, v.ws)
	case v.mr >= 0 && v.wr >= 0:
		v.timestampDuration(v.wr, v.mr)
	case v.mr >= 0:
		v.timestampDuration(v.mr, -1)
	default:
		if v.ws >= 0 {
			v.annotate(v.forEndpoint(v.anns[v.ws].ep), v.ws)
		}
		if v.wr >= 0 {
			v.annotate(v.forEndpoint(v.anns[v.wr].ep), v.wr)
		}
	}
}

// handleIncompleteRPC keeps what it can of a span missing one side of its
// core annotations.
func (v *v1State) handleIncompleteRPC() {
	for i := range v.out {
		switch v.out[i].kind {
		case KindClient:
			if v.cs >= 0 {
				v.out[i].ts = v.anns[v.cs].ts
			}
			if v.cr >= 0 {
				v.annotate(i, v.cr)
			}
		case KindServer:
			if v.sr >= 0 {
				v.out[i].ts = v.anns[v.sr].ts
			}
			if v.ss >= 0 {
				v.annotate(i, v.ss)
			}
		}
	}
	if v.src.ts != 0 {
		v.out[0].ts, v.out[0].dur = v.src.ts, v.src.dur
	}
}

func (v *v1State) processBinaryAnnotations() {
	ca, sa, ma := -1, -1, -1
	for _, b := range v.bins {
		switch string(b.key) {
		case "ca":
			ca = b.ep
			continue
		case "sa":
			sa = b.ep
			continue
		case "ma":
			ma = b.ep
			continue
		}
		if string(b.key) == "lc" && len(b.value) == 0 {
			continue // a marker, not a tag
		}
		i := v.forEndpoint(b.ep)
		v.out[i].tags = append(v.out[i].tags, Tag{Key: b.key, Value: b.value})
	}
	if v.cs < 0 && v.cr < 0 && v.ss < 0 && v.sr < 0 && (ca >= 0 || sa >= 0) {
		switch {
		case ca >= 0 && sa >= 0:
			v.out[v.forEndpoint(ca)].remote = sa
		case sa >= 0:
			// "sa" alone is a plain remote address, not a client hint.
			v.out[v.forEndpoint(-1)].remote = sa
		default:
			v.out[v.forEndpoint(-1)].remote = ca
		}
		return
	}
	server := v.sr
	if server < 0 {
		server = v.ss
	}
	if ca >= 0 && server >= 0 && !v.sameEndpoint(ca, v.anns[server].ep) {
		// Finagle reports the client socket with the server's service
		// name; dropping it avoids a loopback link.
		if v.sameService(ca, v.anns[server].ep) {
			e := v.eps[ca]
			e.ServiceName = nil
			v.eps = append(v.eps, e)
			ca = len(v.eps) - 1
		}
		v.out[v.forEndpoint(v.anns[server].ep)].remote = ca
	}
	client := v.cs
	if client < 0 {
		client = v.cr
	}
	if sa >= 0 && client >= 0 && !v.sameEndpoint(sa, v.anns[client].ep) {
		v.out[v.forEndpoint(v.anns[client].ep)].remote = sa
	}
	if ma >= 0 {
		switch {
		case v.ms >= 0 && !v.sameEndpoint(ma, v.anns[v.ms].ep):
			v.out[v.forEndpoint(v.anns[v.ms].ep)].remote = ma
		case v.mr >= 0 && !v.sameEndpoint(ma, v.anns[v.mr].ep):
			v.out[v.forEndpoint(v.anns[v.mr].ep)].remote = ma
		}
	}
}

// buildV1 turns one converted builder into a normalised Span.
func (d *Decoder) buildV1(b *v1Builder, s *Span) error {
	v := &d.v1
	d.beginSpan(s)
	s.TraceID, s.ID, s.ParentID = v.src.traceID, v.src.id, v.src.parentID
	s.Name = d.lower(v.src.name)
	s.Debug = v.src.debug
	s.Kind, s.Shared = b.kind, b.shared
	s.Timestamp, s.Duration = clampNonNegative(b.ts), clampNonNegative(b.dur)
	if b.local >= 0 {
		s.LocalEndpoint = v.eps[b.local]
	}
	if b.remote >= 0 {
		s.RemoteEndpoint = v.eps[b.remote]
	}
	d.anns = append(d.anns, b.anns...)
	d.tagIn = append(d.tagIn, b.tags...)
	return d.finishSpan(s)
}
