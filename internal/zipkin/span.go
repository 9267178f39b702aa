package zipkin

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
)

// Kind is a Zipkin span kind; KindUnset when the span has none.
type Kind uint8

// Span kinds, in Zipkin's proto3 enum order.
const (
	KindUnset Kind = iota
	KindClient
	KindServer
	KindProducer
	KindConsumer
)

var kindNames = [...]string{"", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"}

// String returns the upper-case Zipkin name ("" for KindUnset).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

func parseKind(b []byte) (Kind, bool) {
	switch string(b) {
	case "CLIENT":
		return KindClient, true
	case "SERVER":
		return KindServer, true
	case "PRODUCER":
		return KindProducer, true
	case "CONSUMER":
		return KindConsumer, true
	}
	return KindUnset, false
}

// Endpoint is a Zipkin endpoint. The zero value means "absent". Addresses
// are parsed as the reference does: an IPv4-mapped IPv6 address is stored
// as IPv4, and an unparsable address is dropped rather than failing the span.
type Endpoint struct {
	ServiceName []byte // lower-cased; nil when absent or empty
	IPv4        netip.Addr
	IPv6        netip.Addr
	Port        uint16
}

func (e *Endpoint) setIP(a netip.Addr) {
	switch {
	case a.Is4() || a.Is4In6():
		e.IPv4 = a.Unmap()
	case a.Is6() && a.Zone() == "":
		e.IPv6 = a
	}
}

// Annotation is a timestamped event on a span (µs since the epoch).
type Annotation struct {
	Timestamp int64
	Value     []byte
}

// Tag is one Zipkin tag.
type Tag struct {
	Key, Value []byte
	// plainValue is set when the decoder saw that Value is ASCII without
	// '"', '\\' or '\n', which a span line then need not check again.
	plainValue bool
}

// Span is a normalised Zipkin v2 span (proxy.md §5.2):
//   - IDs are lower-case hex: TraceID 16 or 32 characters (a 32-character
//     ID with a zero upper half is shortened to 16), ID and ParentID 16;
//     ParentID is nil when absent, all zeros or equal to ID;
//   - Name and LocalEndpoint.ServiceName are lower-cased, nil when empty;
//   - Timestamp and Duration are µs, 0 when absent or negative;
//   - Annotations are sorted by (timestamp, value) without duplicates;
//   - Tags are sorted by key with unique keys (the last value wins).
type Span struct {
	TraceID, ID, ParentID []byte
	Name                  []byte
	Kind                  Kind
	Timestamp, Duration   int64
	Debug, Shared         bool
	LocalEndpoint         Endpoint
	RemoteEndpoint        Endpoint
	Annotations           []Annotation
	Tags                  []Tag

	// Ranges into the Decoder's pools while a batch is buffered; the pools
	// may be reallocated until the batch is complete.
	annLo, annHi, tagLo, tagHi int
	// keySeq names the span's sorted tag keys when the Decoder's tag-order
	// cache holds them (0 otherwise): spans with equal keySeq have equal
	// Tags keys, whatever order they arrived in, so the Converter can reuse
	// what it derived from them (see tagPlan).
	keySeq uint64
}

// Decoder decodes Zipkin span lists, reusing its buffers across calls.
// The zero value is ready to use.
type Decoder struct {
	spans   []Span
	cur     Span // the span being decoded
	anns    []Annotation
	tags    []Tag
	arena   arena    // unescaped or rewritten strings
	scratch []byte   // a string being unescaped
	stops   []uint64 // the body's structural index (buildStops)
	// ids interns tag keys (see keyTable); allocated on first use, so
	// that a Decoder stays small. While byID, the current span's tags are
	// in ids.slots, tagBits holding their keys' ids.
	ids     *keyTable
	tagBits [2]uint64
	byID    bool
	// The current span's tags in arrival order when not byID, which
	// finishSpan places: first tagIn, then plainIn. plainIn holds those
	// the JSON v2 readers read, as offsets into body, so recording one is
	// pointer-free; anything added to tagIn first takes plainIn's tags
	// along (flushPlain). While byID, tagIn holds the tags that are not
	// plain, which slots point to.
	tagIn   []Tag
	plainIn []plainTag
	body    []byte // the JSON v2 body being decoded, for plainIn
	v1      v1State
	ips     ipCache // endpoint addresses seen, by text

	// maxBuffered bounds how many spans, tags and annotations one batch may
	// hold in memory (0 means defaultMaxBuffered). Beyond it Decode
	// validates the whole body first and decodes it a second time while
	// emitting, so memory stays proportional to the largest span instead
	// of to the body, whose worst case is ~30 bytes per span.
	maxBuffered int
	limit       int
	mode        int
	fn          func(*Span) error
}

const defaultMaxBuffered = 1 << 16

// Decode decodes body in encoding enc and calls fn for every span, in body
// order, but only once the whole body has decoded without error (§5.1).
// The span and everything it references are valid only during the call.
// An error from fn stops the iteration and is returned unchanged.
func (d *Decoder) Decode(body []byte, enc Encoding, fn func(*Span) error) error {
	if enc != JSONV2 && enc != JSONV1 && enc != Proto3 {
		return errUnknownEncoding
	}
	d.limit = d.maxBuffered
	if d.limit <= 0 {
		d.limit = defaultMaxBuffered
	}
	d.reset()
	d.mode = modeBuffer
	err := d.decode(body, enc)
	if err == nil && d.mode == modeValidate {
		d.mode, d.fn = modeEmit, fn
		err = d.decode(body, enc)
		d.fn = nil
	} else if err == nil {
		for i := range d.spans {
			s := &d.spans[i]
			d.resolve(s)
			if err = fn(s); err != nil {
				break
			}
		}
	}
	return err
}

// Decode passes: buffer the batch until it exceeds the limit, then only
// validate the rest; if that happened, decode again and emit span by span.
const (
	modeBuffer = iota
	modeValidate
	modeEmit
)

func (d *Decoder) decode(body []byte, enc Encoding) error {
	switch enc {
	case JSONV2:
		return d.decodeJSONV2(body)
	case JSONV1:
		return d.decodeJSONV1(body)
	}
	return d.decodeProto3(body)
}

// nextSpan returns where to decode the next span: while buffering, the
// next element of spans, which emit then takes without copying it.
func (d *Decoder) nextSpan() *Span {
	if d.mode != modeBuffer {
		return &d.cur
	}
	d.spans = slices.Grow(d.spans, 1)
	return &d.spans[:len(d.spans)+1][len(d.spans)]
}

// emit hands over a finished span according to the current mode.
func (d *Decoder) emit(s *Span) error {
	switch d.mode {
	case modeBuffer:
		if n := len(d.spans); n < cap(d.spans) && s == &d.spans[:n+1][n] {
			d.spans = d.spans[:n+1] // decoded in place (nextSpan)
		} else {
			d.spans = append(d.spans, *s)
		}
		if len(d.spans)+len(d.tags)+len(d.anns) <= d.limit {
			return nil
		}
		d.mode = modeValidate
	case modeEmit:
		d.resolve(s)
		if err := d.fn(s); err != nil {
			return err
		}
	}
	d.reset() // forget the span: the pools only ever hold one
	return nil
}

func (d *Decoder) reset() {
	d.spans = d.spans[:0]
	d.anns = d.anns[:0]
	d.tags = d.tags[:0]
	d.arena.reset()
}

func (d *Decoder) resolve(s *Span) {
	s.Annotations = d.anns[s.annLo:s.annHi:s.annHi]
	s.Tags = d.tags[s.tagLo:s.tagHi:s.tagHi]
}

func (d *Decoder) alloc(n int) []byte { return d.arena.alloc(n) }

// arena hands out byte slices for rewritten strings. A full chunk is
// replaced rather than grown, so slices handed out earlier stay valid until
// reset.
type arena struct{ b []byte }

func (a *arena) alloc(n int) []byte {
	if cap(a.b)-len(a.b) < n {
		a.b = make([]byte, 0, max(2*cap(a.b), n, 4096))
	}
	start := len(a.b)
	a.b = a.b[:start+n]
	return a.b[start : start+n : start+n]
}

func (a *arena) reset() { a.b = a.b[:0] }

// beginSpan prepares s to collect annotations and tags into the pools.
func (d *Decoder) beginSpan(s *Span) {
	*s = Span{annLo: len(d.anns), tagLo: len(d.tags)}
	d.tagIn, d.plainIn = d.tagIn[:0], d.plainIn[:0]
	d.byID = false
}

// plainTag is a tag of plain key and value strings (see Tag.plainValue),
// body[k0:k1] and body[v0:v1].
type plainTag struct{ k0, k1, v0, v1 int }

// addTag appends a tag of the current span after those read so far.
func (d *Decoder) addTag(t Tag) {
	if d.byID {
		if id, ok := d.ids.idOf(t.Key); ok {
			d.tagIn = append(d.tagIn, t)
			d.addIDTag(id, plainTag{k0: -len(d.tagIn)})
			return
		}
		d.leaveIDTags()
	}
	d.flushPlain()
	d.tagIn = append(d.tagIn, t)
}

// flushPlain moves plainIn's tags to the end of tagIn.
func (d *Decoder) flushPlain() {
	d.tagIn = d.appendPlain(d.tagIn)
	d.plainIn = d.plainIn[:0]
}

// appendPlain appends plainIn's tags to t.
func (d *Decoder) appendPlain(t []Tag) []Tag {
	for _, p := range d.plainIn {
		t = append(t, Tag{Key: d.body[p.k0:p.k1], Value: d.body[p.v0:p.v1], plainValue: true})
	}
	return t
}

// finishSpan applies the checks and normalisation that need the whole span
// (§5.2) and records its pool ranges.
func (d *Decoder) finishSpan(s *Span) error {
	if s.TraceID == nil {
		if s.ID == nil {
			return errMissingBoth
		}
		return errMissingTraceID
	}
	if s.ID == nil {
		return errMissingID
	}
	if bytes.Equal(s.ParentID, s.ID) {
		s.ParentID = nil
	}
	// The reference clears "shared" on client spans: only a server can
	// share its client's span ID.
	if s.Kind == KindClient {
		s.Shared = false
	}
	s.annHi = len(d.anns)
	d.anns = d.anns[:s.annLo+sortAnnotations(d.anns[s.annLo:s.annHi])]
	s.annHi = len(d.anns)
	s.keySeq = d.placeTags()
	s.tagHi = len(d.tags)
	return nil
}

// placeTags appends the current span's tags to the pool sorted by key with
// unique keys, and returns their key sequence number (0 for fewer than two
// tags, or more different keys than the key table holds, which are
// sorted). Tags that were not placed by id while read (JSON v1, proto3,
// a JSON v2 span whose keys overflowed the table) are placed by id here.
func (d *Decoder) placeTags() uint64 {
	if !d.byID {
		d.flushPlain()
		if !d.tagInByID() {
			lo := len(d.tags)
			d.tags = append(d.tags, d.tagIn...)
			d.tags = d.tags[:lo+sortTags(d.tags[lo:])]
			return 0
		}
	}
	return d.placeIDTags()
}

// sortTags sorts by key and keeps the last value of each key, as the
// reference's TreeMap does; it returns the new length.
func sortTags(t []Tag) int {
	if len(t) < 2 {
		return len(t)
	}
	if len(t) > maxInsertionSort {
		slices.SortStableFunc(t, func(a, b Tag) int { return bytes.Compare(a.Key, b.Key) })
		n := 0
		for i := range t {
			if n > 0 && bytes.Equal(t[n-1].Key, t[i].Key) {
				t[n-1] = t[i]
				continue
			}
			t[n] = t[i]
			n++
		}
		return n
	}
	var perm [maxInsertionSort]uint8
	var sorted [maxInsertionSort]Tag
	var keys [maxInsertionSort][]byte
	return applyTagOrder(t, tagOrderOf(tagKeys(&keys, t), perm[:0]), sorted[:0])
}

// tagKeys returns t's keys in keys' storage; t has at most
// maxInsertionSort tags.
func tagKeys(keys *[maxInsertionSort][]byte, t []Tag) [][]byte {
	for i := range t {
		keys[i] = t[i].Key
	}
	return keys[:len(t)]
}

// tagOrderOf appends to perm the indices of keys in key order, one per
// key, the last of equal keys. There are at most maxInsertionSort keys.
//
// An Envoy span has ~20 tags. Insertion sort is stable and fastest at that
// size; it sorts pointer-free words on the stack, a key's first seven
// bytes (big-endian, zero-padded) above its index, which compare in one
// instruction unless the seven bytes are equal and move without GC write
// barriers.
func tagOrderOf(keys [][]byte, perm []uint8) []uint8 {
	var order [maxInsertionSort]uint64
	for i, k := range keys {
		order[i] = keyPrefix(k)&^0xff | uint64(i)
	}
	for i := 1; i < len(keys); i++ {
		x, j := order[i], i
		for ; j > 0; j-- {
			y := order[j-1]
			if y>>8 != x>>8 {
				if y < x {
					break
				}
			} else if bytes.Compare(keys[y&0xff], keys[x&0xff]) <= 0 {
				break // equal keys keep their order
			}
			order[j] = y
		}
		order[j] = x
	}
	var prev uint64
	for _, o := range order[:len(keys)] {
		if n := len(perm); n > 0 && prev>>8 == o>>8 && bytes.Equal(keys[perm[n-1]], keys[o&0xff]) {
			perm[n-1] = uint8(o) // the later value wins
			continue
		}
		perm, prev = append(perm, uint8(o)), o
	}
	return perm
}

// applyTagOrder rearranges t as perm says through scratch, which must have
// room for len(perm) tags, and returns the new length.
func applyTagOrder(t []Tag, perm []uint8, scratch []Tag) int {
	for _, i := range perm {
		scratch = append(scratch, t[i])
	}
	copy(t, scratch)
	return len(perm)
}

// keySeqs numbers the key sets cached by all Decoders, so a keySeq never
// names two different sets of keys, even across Decoders.
var keySeqs atomic.Uint64

const maxInsertionSort = 32

func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var p uint64
	for i, c := range k {
		p |= uint64(c) << (56 - 8*i)
	}
	return p
}

func compareAnnotations(a, b Annotation) int {
	switch {
	case a.Timestamp < b.Timestamp:
		return -1
	case a.Timestamp > b.Timestamp:
		return 1
	}
	return bytes.Compare(a.Value, b.Value)
}

// sortAnnotations sorts by (timestamp, value), drops exact duplicates and
// returns the new length.
func sortAnnotations(a []Annotation) int {
	if len(a) < 2 {
		return len(a)
	}
	slices.SortFunc(a, compareAnnotations)
	return len(slices.CompactFunc(a, func(x, y Annotation) bool { return compareAnnotations(x, y) == 0 }))
}

// Hex ID normalisation (§5.2). Each returns the normalised ID or an error
// naming the field; results alias id unless padding was needed.

func (d *Decoder) traceID(id []byte) ([]byte, error) {
	n := len(id)
	switch {
	case n == 0:
		return nil, errEmptyTraceID
	case n > 32:
		return nil, errLongTraceID
	case n == 15:
		// The reference library rejects exactly this length (an upstream
		// quirk, proxy.md §5.2); kept so both proxies agree on the batch.
		return nil, errTraceID15
	}
	zeros, ok := lowerHexZeros(id)
	switch {
	case !ok:
		return nil, hexError("traceId", id)
	case zeros == n:
		return nil, errZeroTraceID
	case n == 32 && zeros >= 16:
		return id[16:], nil
	case n == 16 || n == 32:
		return id, nil
	case n < 16:
		return d.padLeft(id, 16), nil
	}
	return d.padLeft(id, 32), nil
}

func (d *Decoder) spanID(id []byte) ([]byte, error) {
	n := len(id)
	switch {
	case n == 0:
		return nil, errEmptyID
	case n > 16:
		return nil, errLongID
	}
	zeros, ok := lowerHexZeros(id)
	switch {
	case !ok:
		return nil, hexError("id", id)
	case zeros == n:
		return nil, errZeroID
	case n < 16:
		return d.padLeft(id, 16), nil
	}
	return id, nil
}

// parentID returns nil for an all-zero parent, which means "root span".
func (d *Decoder) parentID(id []byte) ([]byte, error) {
	n := len(id)
	switch {
	case n == 0:
		return nil, errEmptyParentID
	case n > 16:
		return nil, errLongParentID
	}
	zeros, ok := lowerHexZeros(id)
	switch {
	case !ok:
		return nil, hexError("parentId", id)
	case zeros == n:
		return nil, nil
	case n < 16:
		return d.padLeft(id, 16), nil
	}
	return id, nil
}

// lowerHexZeros reports the number of leading '0's and whether id is
// entirely lower-case hex; IDs of the usual lengths, 16 and 32, take
// lowerHexZeros16or32 (SSE2 on amd64).
func lowerHexZeros(id []byte) (zeros int, ok bool) {
	if n := len(id); n == 16 || n == 32 {
		return lowerHexZeros16or32(id)
	}
	return lowerHexZerosGo(id)
}

// lowerHexZerosGo is lowerHexZeros eight bytes at a time; an ID whose
// length is not a multiple of eight has its last eight bytes checked as
// one word that overlaps the previous one.
func lowerHexZerosGo(id []byte) (zeros int, ok bool) {
	for ; zeros+8 <= len(id); zeros += 8 {
		if x := binary.LittleEndian.Uint64(id[zeros:]) ^ lowBits*'0'; x != 0 {
			zeros += bits.TrailingZeros64(x) / 8
			break
		}
	}
	for zeros < len(id) && id[zeros] == '0' {
		zeros++
	}
	n := len(id)
	if n < 8 {
		for _, c := range id {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return zeros, false
			}
		}
		return zeros, true
	}
	for i := 0; i < n-8; i += 8 {
		if !lowerHexWord(binary.LittleEndian.Uint64(id[i:])) {
			return zeros, false
		}
	}
	return zeros, lowerHexWord(binary.LittleEndian.Uint64(id[n-8:]))
}

// lowerHexWord reports whether the eight bytes of x are lower-case hex.
func lowerHexWord(x uint64) bool {
	return byteBetween(x, '0'-1, '9'+1)|byteBetween(x, 'a'-1, 'f'+1) == highBits
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// upperASCII sets the high bit of the bytes of x that are upper-case
// letters if all its bytes are ASCII: byteBetween(x, 'A'-1, 'Z'+1)
// without the masks that keep bytes from 0x80 on from carrying into the
// next byte, and lower takes a word with such a byte elsewhere anyway.
// Its other bits are garbage.
func upperASCII(x uint64) uint64 {
	return (lowBits*(127+'Z'+1) - x) & (x + lowBits*(127-('A'-1)))
}

// byteBetween sets the high bit of exactly those bytes c of x with
// lo < c < hi, for 0 ≤ lo ≤ 127 and 0 < hi ≤ 128; bytes ≥ 0x80 are never
// marked. No byte's arithmetic carries into the next, so the result is
// exact ("Determine if a word has a byte between m and n", Bit Twiddling
// Hacks).
func byteBetween(x uint64, lo, hi byte) uint64 {
	low7 := x & (highBits - lowBits) // each byte's low seven bits
	return (lowBits*(127+uint64(hi)) - low7) & ^x & (low7 + lowBits*(127-uint64(lo))) & highBits
}

func (d *Decoder) padLeft(id []byte, n int) []byte {
	b := d.alloc(n)
	p := n - len(id)
	for i := range p {
		b[i] = '0'
	}
	copy(b[p:], id)
	return b
}

// lower returns b lower-cased (nil when empty), copying only when needed.
// The reference lower-cases with Java's Locale.ROOT rules; Go's Unicode
// simple case mapping agrees on everything but a few special cases.
func (d *Decoder) lower(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	// Eight bytes at a time: any non-ASCII byte, and any upper-case one.
	// The last eight bytes are one word, overlapping the previous one
	// unless the length is a multiple of eight.
	var nonASCII, upper uint64
	if n := len(b); n >= 8 {
		for i := 0; i < n-8; i += 8 {
			x := binary.LittleEndian.Uint64(b[i:])
			nonASCII |= x
			upper |= upperASCII(x)
		}
		x := binary.LittleEndian.Uint64(b[n-8:])
		nonASCII |= x
		upper |= upperASCII(x)
		upper &= highBits
	} else {
		for _, c := range b {
			nonASCII |= uint64(c)
			if 'A' <= c && c <= 'Z' {
				upper = 1
			}
		}
	}
	if nonASCII&highBits != 0 {
		return bytes.ToLower(b)
	}
	if upper == 0 {
		return b
	}
	out := d.alloc(len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func clampNonNegative(v int64) int64 { return max(v, 0) }
