package zipkin

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"net/netip"
	"strconv"
	"unsafe"
)

// decodeJSONV2 decodes a Zipkin v2 JSON list, following the reference's
// V2SpanReader: unknown fields are skipped, null optional fields are
// ignored, and strings are also accepted as numbers where it reads numbers
// (and vice versa).
func (d *Decoder) decodeJSONV2(body []byte) error {
	l := newLexer(body, d)
	d.body = body
	defer func() { d.body = nil }()
	if err := l.expect('['); err != nil {
		return err
	}
	for n := 0; ; n++ {
		ok, err := l.arrayNext(n == 0)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s := d.nextSpan()
		if err := d.readSpanV2(&l, s); err != nil {
			return &SpanError{n, err}
		}
		if err := d.emit(s); err != nil {
			return err
		}
	}
	return l.end()
}

func (d *Decoder) readSpanV2(l *lexer, s *Span) error {
	d.beginSpan(s)
	d.beginIDTags()
	if !l.take('{') {
		if err := l.expectSlow('{'); err != nil {
			return err
		}
	}
	// One switch on the key serves every member, in this loop rather than
	// a call per member: traceId and id must not be null, a null
	// elsewhere is ignored (skip consumes it for unknown members).
	for first := true; ; first = false {
		// The usual member, `"key":` right after the '{' or `, "key":`
		// after a value, with the value right after the colon and the
		// key's end within stopsFrom's bits, and the usual '}'
		// right after a value, are read here: objectNext's fast paths
		// without its call, which costs more than they do. A value that
		// may be null (isNull, inlined) is told by its first byte, which
		// that path has read.
		var key []byte
		var maybeNull bool
		b, i := l.b, l.i
		n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
		k0 := i + 3
		if first {
			k0 = i + 1
		}
		if k0+3 <= n && (first && load8(p, i) == '"' || !first && load32(p, i)&0xffffff == ','|' '<<8|'"'<<16) {
			if x := stopsFrom(l.stops, k0); x != 0 {
				if k := k0 + bits.TrailingZeros64(x); k+3 <= n && load16(p, k) == '"'|':'<<8 {
					if c := load8(p, k+2); c > ' ' {
						key, l.i, maybeNull = bodySlice(p, n, k0, k), k+2, c == 'n'
					}
				}
			}
		}
		if key == nil {
			if !first && i < n && load8(p, i) == '}' { // the span's end, right after a value
				l.i = i + 1
				break
			}
			var ok bool
			var err error
			if key, ok, err = l.objectNext(first); err != nil {
				return err
			}
			if !ok {
				break
			}
			maybeNull = !l.nonNullAt()
		}
		var v []byte
		var err error
		switch string(key) {
		case "traceId":
			if v, err = l.stringOrNumber(); err == nil {
				s.TraceID, err = d.traceID(v)
			}
		case "id":
			if v, err = l.stringOrNumber(); err == nil {
				s.ID, err = d.spanID(v)
			}
		case "parentId":
			if maybeNull && l.isNullSlow() {
				continue
			}
			if v, err = l.stringOrNumber(); err == nil {
				s.ParentID, err = d.parentID(v)
			}
		case "name":
			if maybeNull && l.isNullSlow() {
				continue
			}
			if v, err = l.stringOrNumber(); err == nil {
				s.Name = d.lower(v)
			}
		case "kind":
			if maybeNull && l.isNullSlow() {
				continue
			}
			if v, err = l.stringOrNumber(); err == nil {
				var ok bool
				if s.Kind, ok = parseKind(v); !ok {
					err = errors.New("unknown kind " + strconv.Quote(string(v)))
				}
			}
		case "timestamp":
			if maybeNull && l.isNullSlow() {
				continue
			}
			s.Timestamp, err = l.int64()
			s.Timestamp = clampNonNegative(s.Timestamp)
		case "duration":
			if maybeNull && l.isNullSlow() {
				continue
			}
			s.Duration, err = l.int64()
			s.Duration = clampNonNegative(s.Duration)
		case "localEndpoint":
			if maybeNull && l.isNullSlow() {
				continue
			}
			err = d.readEndpoint(l, &s.LocalEndpoint)
		case "remoteEndpoint":
			if maybeNull && l.isNullSlow() {
				continue
			}
			err = d.readEndpoint(l, &s.RemoteEndpoint)
		case "annotations":
			if maybeNull && l.isNullSlow() {
				continue
			}
			err = d.readAnnotations(l)
		case "tags":
			if maybeNull && l.isNullSlow() {
				continue
			}
			err = d.readTags(l)
		case "debug":
			if maybeNull && l.isNullSlow() {
				continue
			}
			var b bool
			b, err = l.boolean()
			s.Debug = s.Debug || b
		case "shared":
			if maybeNull && l.isNullSlow() {
				continue
			}
			var b bool
			b, err = l.boolean()
			s.Shared = s.Shared || b
		default:
			err = l.skip()
		}
		if err != nil {
			if _, isSyntax := err.(*syntaxError); isSyntax {
				return err
			}
			return errors.New(string(key) + ": " + err.Error())
		}
	}
	return d.finishSpan(s)
}

var errIncompleteAnnotation = errors.New("annotation needs a timestamp and a value")

func (d *Decoder) readAnnotations(l *lexer) error {
	lo := len(d.anns)
	if d.readAnnotationsFast(l) {
		return nil
	}
	d.anns = d.anns[:lo]
	return d.readAnnotationsGeneral(l)
}

// readAnnotationsFast reads an annotations list of the form tracers
// write, [{"timestamp":…, "value":"…"}, …] with the two members in either
// order, in one loop rather than calls per element, member and value,
// and reports whether it did: after '[', '{' or ", " (or ','), each
// element has exactly those two members, the timestamp a non-negative
// integer as lexer.int64 reads it without a call (digitsAt), the value a
// plain string, with no whitespace or null. On anything else it stops,
// having appended what it read to d.anns, and readAnnotations drops that
// and reads the list with its general loop, which agrees with it on what
// it accepts.
func (d *Decoder) readAnnotationsFast(l *lexer) bool {
	b, stops := l.b, l.stops
	n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
	i := l.i
	if i+2 > n || load8(p, i) != '[' {
		return false
	}
	i++
	for first := true; ; first = false {
		if load8(p, i) == ']' { // i < n: each step checks the byte after it is in b
			i++
			break
		}
		if !first {
			if i = afterComma(p, n, i); i < 0 {
				return false
			}
		}
		if i+2 > n || load8(p, i) != '{' {
			return false
		}
		i++
		var a Annotation
		var seen uint8 // bits: timestamp, value
		for member := range 2 {
			if member == 1 {
				if i = afterComma(p, n, i); i < 0 {
					return false
				}
			}
			// The member's key, read as readEndpointFast reads it: a
			// shared function is over the inlining budget, and a call
			// per member costs more than these lines.
			if i >= n || load8(p, i) != '"' {
				return false
			}
			k0 := i + 1
			k := nextStopIn(stops, k0, n)
			v := k + 2
			if v+2 > n || load16(p, k) != '"'|':'<<8 {
				return false
			}
			switch string(b[k0:k]) {
			case "timestamp":
				ts, end, ok := digitsAt(p, n, v)
				if !ok || seen&1 != 0 {
					return false
				}
				a.Timestamp, i, seen = ts, end, seen|1
			case "value":
				if load8(p, v) != '"' || seen&2 != 0 {
					return false
				}
				end := nextStopIn(stops, v+1, n)
				if end >= n || load8(p, end) != '"' {
					return false
				}
				a.Value, i, seen = bodySlice(p, n, v+1, end), end+1, seen|2
			default:
				return false
			}
		}
		if i+2 > n || load8(p, i) != '}' {
			return false
		}
		i++
		d.anns = append(d.anns, a)
	}
	l.i = i
	return true
}

// afterComma returns the index after the ", " or ',' at i of the n
// bytes at p, or -1 if there is neither.
func afterComma(p unsafe.Pointer, n, i int) int {
	switch {
	case i+2 <= n && load16(p, i) == ','|' '<<8:
		return i + 2
	case i < n && load8(p, i) == ',':
		return i + 1
	}
	return -1
}

// readAnnotationsGeneral is readAnnotations for any input.
func (d *Decoder) readAnnotationsGeneral(l *lexer) error {
	if !l.take('[') {
		if err := l.expectSlow('['); err != nil {
			return err
		}
	}
	for first := true; ; first = false {
		ok, err := l.arrayNext(first)
		if err != nil || !ok {
			return err
		}
		if !l.take('{') {
			if err := l.expectSlow('{'); err != nil {
				return err
			}
		}
		var a Annotation
		hasTS, hasValue := false, false
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
				a.Timestamp, err = l.int64()
				hasTS = true
			case "value":
				a.Value, err = l.stringOrNumber()
				hasValue = true
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
		d.anns = append(d.anns, a)
	}
}

func (d *Decoder) readTags(l *lexer) error {
	if !l.take('{') {
		if err := l.expectSlow('{'); err != nil {
			return err
		}
	}
	for first := true; ; first = false {
		if d.byID && d.readIDTags(l, first) {
			first = false
			if l.take('}') { // the usual end, right after them
				return nil
			}
		}
		// readPlainTags is for other forms; not at the object's end.
		if (l.i >= len(l.b) || l.b[l.i] != '}') && d.readPlainTags(l, first) {
			first = false
		}
		key, ok, err := l.objectNext(first)
		if err != nil || !ok {
			return err
		}
		// Only strings and numbers: the reference fails the batch on a
		// null or boolean tag value (§5.2).
		v, err := l.stringOrNumber()
		if err != nil {
			if _, isSyntax := err.(*syntaxError); isSyntax && l.i < len(l.b) && isValueStart(l.b[l.i]) {
				return errors.New("value of tag " + strconv.Quote(string(key)) + " must be a string or number")
			}
			return err
		}
		d.addTag(Tag{Key: key, Value: v})
	}
}

// readPlainTags reads the tags object's members of the common form,
// "key":"value" with both strings plain, from l.i on, and reports whether
// it read any. It stops before anything else (another form, the closing
// brace, bad input), which objectNext then reads and reports, so it
// accepts nothing objectNext would not. String ends come from the index;
// whitespace is looked for only where the usual "," ", " and ":" are not
// found. While the span's tags are placed by id, each goes to its key's
// slot (addTagByID).
func (d *Decoder) readPlainTags(l *lexer, first bool) bool {
	b, stops := l.b, l.stops
	i, read := l.i, false
	for ; i < len(b); first = false {
		j := i
		switch {
		case first:
			j = skipWS(b, i)
		case b[i] == ',':
			if j = i + 1; j+1 < len(b) && b[j] == ' ' && b[j+1] == '"' {
				j++
			} else if j < len(b) && b[j] != '"' {
				j = skipWS(b, j)
			}
		default:
			if j = skipWS(b, i); j >= len(b) || b[j] != ',' {
				j = len(b)
			}
			j = skipWS(b, j+1)
		}
		if j >= len(b) || b[j] != '"' {
			break
		}
		k := j + 1
		if x := stops[k>>6] >> (k & 63); x != 0 {
			k += bits.TrailingZeros64(x)
		} else {
			k = l.nextStopAfter(k)
		}
		if k >= len(b) || b[k] != '"' {
			break
		}
		v := k + 2
		if v >= len(b) || b[k+1] != ':' || b[v] != '"' {
			if v = skipWS(b, k+1); v >= len(b) || b[v] != ':' {
				break
			}
			if v = skipWS(b, v+1); v >= len(b) || b[v] != '"' {
				break
			}
		}
		e := v + 1
		if x := stops[e>>6] >> (e & 63); x != 0 {
			e += bits.TrailingZeros64(x)
		} else {
			e = l.nextStopAfter(e)
		}
		if e >= len(b) || b[e] != '"' {
			break
		}
		i, read = e+1, true
		p := plainTag{j + 1, k, v + 1, e}
		if d.byID && d.addTagByID(b, p) {
			continue
		}
		d.plainIn = append(d.plainIn, p)
	}
	l.i = i
	return read
}

func isValueStart(c byte) bool {
	return c == 'n' || c == 't' || c == 'f' || c == '{' || c == '['
}

func (d *Decoder) readEndpoint(l *lexer, e *Endpoint) error {
	if d.readEndpointFast(l, e) {
		return nil
	}
	return d.readEndpointGeneral(l, e)
}

// readEndpointGeneral is readEndpoint for any input.
func (d *Decoder) readEndpointGeneral(l *lexer, e *Endpoint) error {
	*e = Endpoint{}
	if !l.take('{') {
		if err := l.expectSlow('{'); err != nil {
			return err
		}
	}
	for first := true; ; first = false {
		key, ok, err := l.objectNext(first)
		if err != nil || !ok {
			return err
		}
		if !l.nonNullAt() && l.isNullSlow() {
			continue
		}
		var v []byte
		switch string(key) {
		case "serviceName":
			if v, err = l.stringOrNumber(); err == nil {
				e.ServiceName = d.lower(v)
			}
		case "ipv4", "ipv6":
			if v, err = l.stringOrNumber(); err == nil {
				e.setIP(d.ips.parse(v))
			}
		case "port":
			var p int64
			if p, err = l.int64(); err == nil {
				e.Port, err = port(p)
			}
		default:
			err = l.skip()
		}
		if err != nil {
			return err
		}
	}
}

// readEndpointFast reads an endpoint object of the form tracers write,
// {"serviceName":"…", "ipv4":"…", "port":…} in any order, in one loop
// rather than a call per member and value, and reports whether it did:
// its members are serviceName, ipv4, ipv6 and port, each once at most,
// after '{' or ", " (or ','), their strings plain, the port 0 to 65535
// without a leading zero, with no whitespace or null. On anything else
// it reads nothing, and readEndpoint's general loop reads the object,
// which agrees with it on what it accepts. The loop only finds the
// values; they are converted after it, so that it keeps its values in
// registers across no calls.
func (d *Decoder) readEndpointFast(l *lexer, e *Endpoint) bool {
	b, stops := l.b, l.stops
	n, p := len(b), unsafe.Pointer(unsafe.SliceData(b))
	i := l.i
	if i+2 > n || load8(p, i) != '{' {
		return false
	}
	i++
	var seen uint8               // bits: serviceName, ipv4, ipv6, port
	var service, ip0, ip1 [2]int // the strings' bounds, the addresses in body order
	port := 0
	for first := true; ; first = false {
		if load8(p, i) == '}' { // i < n: each step checks the byte after it is in b
			i++
			break
		}
		if !first {
			if i = afterComma(p, n, i); i < 0 {
				return false
			}
		}
		if i >= n || load8(p, i) != '"' {
			return false
		}
		k0 := i + 1
		k := nextStopIn(stops, k0, n)
		v := k + 2
		if v+2 > n || load16(p, k) != '"'|':'<<8 {
			return false
		}
		var member uint8 // its bit in seen
		switch string(b[k0:k]) {
		case "serviceName":
			member = 1
		case "ipv4":
			member = 2
		case "ipv6":
			member = 4
		case "port":
			member = 8
		default:
			return false
		}
		if seen&member != 0 {
			return false
		}
		if member == 8 {
			j := v
			for ; j < v+5 && j < n && load8(p, j)-'0' <= 9; j++ {
				port = port*10 + int(load8(p, j)-'0')
			}
			if j == v || j+1 > n || numberByte[load8(p, j)] || load8(p, v) == '0' && j > v+1 || port > 0xffff {
				return false
			}
			seen, i = seen|member, j
			continue
		}
		if load8(p, v) != '"' {
			return false
		}
		end := nextStopIn(stops, v+1, n)
		if end+2 > n || load8(p, end) != '"' {
			return false
		}
		switch {
		case member == 1:
			service = [2]int{v + 1, end}
		case seen&6 == 0:
			ip0 = [2]int{v + 1, end}
		default:
			ip1 = [2]int{v + 1, end}
		}
		seen, i = seen|member, end+1
	}
	*e = Endpoint{Port: uint16(port)}
	if seen&1 != 0 {
		e.ServiceName = d.lower(bodySlice(p, n, service[0], service[1]))
	}
	if seen&6 != 0 {
		e.setIP(d.ips.parse(bodySlice(p, n, ip0[0], ip0[1])))
	}
	if seen&6 == 6 {
		e.setIP(d.ips.parse(bodySlice(p, n, ip1[0], ip1[1])))
	}
	l.i = i
	return true
}

// port applies the reference's rule: above 65535 is an error, and zero or
// negative means "no port".
func port(p int64) (uint16, error) {
	if p > 0xffff {
		return 0, errors.New("invalid port " + strconv.FormatInt(p, 10))
	}
	return uint16(max(p, 0)), nil
}

// ipCache remembers the addresses of the last endpoint texts of 1 to 16
// bytes, by text: a sidecar's spans name the same few addresses (its
// pod's above all) again and again, and comparing two words costs a
// fraction of parsing them.
type ipCache [16]struct {
	first, last uint64 // the text's first and last eight bytes (zero-padded)
	n           int    // its length; 0 for an empty entry
	addr        netip.Addr
}

// parse is parseIP(b), from the cache when it holds b: a text of 1 to 16
// bytes is its length, first and last eight bytes (a shorter one's bytes
// in first, zero-padded).
func (c *ipCache) parse(b []byte) netip.Addr {
	n := len(b)
	var first, last uint64
	switch {
	case n >= 8 && n <= 16:
		first, last = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 1 && n < 8:
		for i, ch := range b {
			first |= uint64(ch) << (8 * i)
		}
	default:
		return parseIP(b)
	}
	// Texts differ most in their last bytes, the top of last: rotated
	// down, the product carries them to the slot bits.
	e := &c[((first^bits.RotateLeft64(last, 32))*0x9E3779B97F4A7C15)>>60]
	if e.n != n || e.first != first || e.last != last {
		e.first, e.last, e.n, e.addr = first, last, n, parseIP(b)
	}
	return e.addr
}
