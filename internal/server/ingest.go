package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"hash/maphash"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/meshwave/meshwave/internal/httpbody"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// maxErrorSamples bounds the rejection messages returned in a response.
const maxErrorSamples = 10

// ReportResult is the JSON body of a 202 from /report.
type ReportResult struct {
	Accepted int            `json:"accepted"`
	Rejected map[string]int `json:"rejected,omitempty"` // by WF code
	Errors   []string       `json:"errors,omitempty"`   // the first few reasons, with line numbers
}

// handleReport is the Wavefront direct-ingestion endpoint. Lines are
// validated as the proxy does; good ones are re-encoded canonically into
// WAL records, which are fsync'd before the 202.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	// Tells clients which body encodings they may use (RFC 7694): meshwave's
	// proxy then posts its queue's S2 blocks as they are (s2), or zstd.
	w.Header().Set("Accept-Encoding", httpbody.Encodings)
	q := r.URL.Query()
	name := cmp.Or(q.Get("f"), q.Get("format"), "wavefront")
	f, ok := formatNames[name]
	if !ok {
		s.reply(w, http.StatusBadRequest, "unknown format "+strconv.Quote(name))
		return
	}
	bodyBuf, _ := s.bodies.Get().(*[]byte)
	if bodyBuf == nil {
		bodyBuf = new([]byte)
	}
	// Nothing keeps a slice of the body past the handler: lines are
	// re-encoded into WAL frames and errors are copied into strings.
	defer s.bodies.Put(bodyBuf)
	body, code, err := httpbody.ReadInto(*bodyBuf, r, s.cfg.MaxBodyBytes)
	*bodyBuf = body
	if err != nil {
		s.reply(w, code, err.Error())
		return
	}
	dec := s.decs.Get().(*wavefront.Decoder)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	dec.DefaultSource = append(dec.DefaultSource[:0], host...)
	// One clock reading per request, for lines without a timestamp and the
	// WF-402 window, rather than one per line.
	now := time.Now()
	dec.Now = func() time.Time { return now }
	defer func() { dec.Now = nil; s.decs.Put(dec) }()

	res := ReportResult{}
	received := now.UnixMilli()
	// WAL frames are recycled (a fresh megabyte per request was a steady
	// source of GC work); the WAL gives them back once the applier has
	// stored them. hints[i] is what the applier may take from recs[i]
	// without reading it (see pointHint).
	var (
		recs  [][]byte
		hints [][]pointHint
	)
	rec := newFrame(s.frames.get(), f, received, recordCap(len(body)))
	var (
		point wavefront.Point
		dist  wavefront.Distribution
		span  wavefront.Span
		sl    wavefront.SpanLogs
	)
	lineNo, rejected := 0, 0
	var known *knownReader
	if f == fmtPoint {
		known = s.known.reader(&s.hints)
	}
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		lineNo++
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(rec) >= recordBytes {
			recs, hints = append(recs, rec), append(hints, known.takeHints())
			rec = newFrame(s.frames.get(), f, received, recordCap(len(line)+1+len(body)))
		}
		before := len(rec)
		err = nil
		switch f {
		case fmtPoint:
			var done bool
			if rec, done = known.appendPoint(rec, dec, line); done {
				break
			}
			if rec, done = appendCanonicalPoint(rec, dec, line); done {
				known.learn(line, rec[before:])
				break
			}
			rec, err = appendDecodedPoint(rec, dec, line, &point)
		case fmtHistogram:
			if err = dec.DecodeDistribution(line, &dist); err == nil {
				dist.Timestamp = dec.TimestampMillis()
				rec = wavefront.AppendDistribution(rec, &dist)
			}
		case fmtSpan:
			if err = dec.DecodeSpan(line, &span); err == nil {
				rec = wavefront.AppendSpan(rec, &span)
				if full := dec.TruncatedAnnotations(); len(full) > 0 {
					// WF-433: values were truncated; keep them whole as span
					// logs, as the reference does.
					rec, err = appendSpanLogs(rec, wavefront.TruncationSpanLogs(&span, full))
				}
			}
		case fmtSpanLogs:
			if err = wavefront.DecodeSpanLogs(line, &sl); err == nil {
				// The embedded span line only drives the proxy's sampling;
				// the span itself arrives with f=trace.
				sl.Span = ""
				rec, err = appendSpanLogs(rec, &sl)
			}
		}
		if err != nil {
			rec = rec[:before]
			code := wavefront.CodeParse
			var le *wavefront.LineError
			if errors.As(err, &le) {
				code = le.Code
			}
			if res.Rejected == nil {
				res.Rejected = map[string]int{}
			}
			res.Rejected[code]++
			rejected++
			s.m.rejected.WithLabelValues(f.String(), code).Inc()
			if len(res.Errors) < maxErrorSamples {
				res.Errors = append(res.Errors, "line "+strconv.Itoa(lineNo)+": "+err.Error())
			}
			continue
		}
		res.Accepted++
	}
	s.m.received.WithLabelValues(f.String()).Add(float64(res.Accepted + rejected))
	if len(rec) > walFrameHeader+recHeader {
		recs, hints = append(recs, rec), append(hints, known.takeHints())
	} else {
		s.frames.put(rec)
	}
	known.close()
	if len(recs) > 0 {
		if err := s.wal.appendHinted(recs, hints); err != nil {
			s.log.Error("WAL append failed", "err", err)
			s.reply(w, http.StatusServiceUnavailable, "cannot store data: "+err.Error())
			return
		}
	}
	s.m.requests.WithLabelValues("202").Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

// freeList recycles WAL frame buffers and hint lists. Frames stay with
// the WAL and the applier until stored, so more of them are in use at
// once than a sync.Pool, emptied by every other GC, keeps: fresh
// megabytes then cost the handler zeroing and page faults. The list keeps
// up to maxBytes of them for good.
type freeList[T any] struct {
	mu       sync.Mutex
	free     [][]T
	bytes    int
	maxBytes int
}

// maxFrameBuffers is the memory the frame list keeps: frames of a few
// applier batches (readBytes each) and the requests being handled; the
// hint lists take a quarter of that.
const maxFrameBuffers = 4 * readBytes

// get returns an empty slice, nil if none is free.
func (l *freeList[T]) get() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.free)
	if n == 0 {
		return nil
	}
	b := l.free[n-1]
	l.free[n-1] = nil
	l.free = l.free[:n-1]
	l.bytes -= l.size(b)
	return b[:0]
}

// put keeps b for get, if there is room.
func (l *freeList[T]) put(b []T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bytes+l.size(b) <= l.maxBytes {
		l.free = append(l.free, b)
		l.bytes += l.size(b)
	}
}

func (l *freeList[T]) size(b []T) int {
	var t T
	return cap(b) * int(unsafe.Sizeof(t))
}

// recordCap is the capacity of a WAL frame for the canonical form of rest
// bytes of a body: a little more, for quotes the lines may lack, but not
// much past recordBytes, where the next record starts.
func recordCap(rest int) int {
	return min(rest+rest/4, recordBytes+64<<10) + walFrameHeader + recHeader
}

// appendPoint validates a metric line and appends it to rec as the WAL
// keeps it: canonical, with a millisecond timestamp. Common lines are
// validated and written in one pass; the rest, and every rejection with
// its reason, go the general way.
func appendPoint(rec []byte, dec *wavefront.Decoder, line []byte, p *wavefront.Point) ([]byte, error) {
	if out, ok := appendCanonicalPoint(rec, dec, line); ok {
		return out, nil
	}
	return appendDecodedPoint(rec, dec, line, p)
}

// appendCanonicalPoint is appendPoint's one pass: false, with rec as
// given, for a line it leaves to appendDecodedPoint. (A timestamp under
// a second, possible only without a Backfill limit, would not be written
// by the one pass.)
func appendCanonicalPoint(rec []byte, dec *wavefront.Decoder, line []byte) ([]byte, bool) {
	if out, ok := dec.AppendCanonicalPoint(rec, line); ok && dec.TimestampMillis() >= 1000 {
		return inMillis(out, len(rec), dec.TimestampMillis()), true
	}
	return rec, false
}

// appendDecodedPoint is appendPoint's general way.
func appendDecodedPoint(rec []byte, dec *wavefront.Decoder, line []byte, p *wavefront.Point) ([]byte, error) {
	if err := dec.DecodePoint(line, p); err != nil {
		return rec, err
	}
	// Milliseconds, not the wire's seconds: keep the precision.
	p.Timestamp = dec.TimestampMillis()
	return wavefront.AppendPoint(rec, p), nil
}

// inMillis turns the timestamp of the canonical point line at rec[start:]
// from whole seconds, as AppendCanonicalPoint writes it, into ms, as the
// WAL keeps it, by inserting the last three digits of ms. The timestamp
// is the token after the quoted name and the value, which hold no quotes
// or spaces.
func inMillis(rec []byte, start int, ms int64) []byte {
	end := start + 1 + bytes.IndexByte(rec[start+1:], '"') + 1 // the name
	end += 1 + bytes.IndexByte(rec[end+1:], ' ')               // the value
	end += 1 + bytes.IndexByte(rec[end+1:], ' ')               // the timestamp
	rec = append(rec, "000"...)
	copy(rec[end+3:], rec[end:])
	frac := ms % 1000
	rec[end], rec[end+1], rec[end+2] = byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10)
	return rec
}

func appendSpanLogs(dst []byte, sl *wavefront.SpanLogs) ([]byte, error) {
	b, err := json.Marshal(sl)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

func (s *Server) reply(w http.ResponseWriter, code int, msg string) {
	s.m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	http.Error(w, msg, code)
}

// knownSeries remembers the series of point lines the decoder accepted
// exactly as written, with canonical names, source and tags, as the
// proxy's forwarder and SDKs send them. Validating a line is most of the
// handler's work, and whether a series is valid, and how its canonical
// form is written, depends on its text and the server's fixed limits
// only: another line of a known series, with a value and timestamp that
// are canonical too and in the time window, is accepted as it is, without
// the decoder (appendKnownPoint). The value, the timestamp and the series
// are read as the decoder's tokens, so such a line is exactly one the
// decoder accepts unchanged.
//
// Handlers read it concurrently, each under the read lock for its body,
// and add what they learned afterwards (knownReader).
type knownSeries struct {
	mu      sync.RWMutex
	seed    maphash.Seed
	index   map[uint64]int32 // hash of a series → its newest entry
	entries []knownEntry
	arena   []byte // the series texts, back to back
	// The set is emptied when an add would pass either bound; gen counts
	// the times, so that a pointHint names an entry of one generation.
	gen                      uint32
	maxEntries, maxTextBytes int
}

// knownEntry is a series text: the quoted name arena[off:split], then
// arena[split:end], the line from the space after the timestamp on.
type knownEntry struct {
	off, split, end int
	sameHash        int32 // an older entry with the same hash, or -1
}

// Bounds of knownSeries: at ~170 bytes a series, about 400 k series.
const (
	maxKnownSeries    = 1 << 20
	maxKnownTextBytes = 64 << 20
)

func newKnownSeries() *knownSeries {
	return &knownSeries{seed: maphash.MakeSeed(), index: make(map[uint64]int32),
		maxEntries: maxKnownSeries, maxTextBytes: maxKnownTextBytes}
}

func (k *knownSeries) hash(name, rest []byte) uint64 {
	return maphash.Bytes(k.seed, name)*0x9e3779b97f4a7c15 ^ maphash.Bytes(k.seed, rest)
}

// find returns the entry of the series name+rest whose hash is h, or -1.
func (k *knownSeries) find(name, rest []byte, h uint64) int32 {
	for i, ok := k.index[h]; ok && i >= 0; i = k.entries[i].sameHash {
		if k.is(i, name, rest) {
			return i
		}
	}
	return -1
}

// is reports whether entry i is the series name+rest.
func (k *knownSeries) is(i int32, name, rest []byte) bool {
	e := &k.entries[i]
	return bytes.Equal(k.arena[e.off:e.split], name) && bytes.Equal(k.arena[e.split:e.end], rest)
}

// add adds the series name+rest, unless known, under the write lock.
func (k *knownSeries) add(name, rest []byte) {
	h := k.hash(name, rest)
	if k.find(name, rest, h) >= 0 {
		return
	}
	if len(k.entries) >= k.maxEntries || len(k.arena)+len(name)+len(rest) > k.maxTextBytes {
		clear(k.index)
		k.entries, k.arena = k.entries[:0], k.arena[:0]
		k.gen++
	}
	prev, ok := k.index[h]
	if !ok {
		prev = -1
	}
	k.index[h] = int32(len(k.entries))
	off := len(k.arena)
	k.arena = append(append(k.arena, name...), rest...)
	k.entries = append(k.entries, knownEntry{off: off, split: off + len(name), end: len(k.arena), sameHash: prev})
}

// knownReader is one request's use of knownSeries: it holds the read
// lock from reader to close, and collects the series the decoder accepted
// unchanged, which close adds. A nil *knownReader knows no series.
type knownReader struct {
	k     *knownSeries
	gen   uint32      // k.gen, fixed while the read lock is held
	hints []pointHint // of the lines taken into the current record
	lists *freeList[pointHint]
	// last is the entry of the previous line, or -1. Senders repeat their
	// series in the same order body after body, and entries are added in
	// the order they were first seen, so the next line is most likely of
	// entry last+1: a comparison instead of a hash.
	last    int32
	learned []byte // name+rest of series to add, back to back
	parts   []int  // their name and rest lengths, in turn
}

// reader read-locks k for a request; hint lists come from lists.
func (k *knownSeries) reader(lists *freeList[pointHint]) *knownReader {
	k.mu.RLock()
	return &knownReader{k: k, gen: k.gen, last: -1, lists: lists}
}

// takeHints returns the hints of the record that has just ended.
func (r *knownReader) takeHints() []pointHint {
	if r == nil {
		return nil
	}
	h := r.hints
	r.hints = nil
	return h
}

// close releases the read lock and adds the series learned.
func (r *knownReader) close() {
	if r == nil {
		return
	}
	r.k.mu.RUnlock()
	if len(r.parts) == 0 {
		return
	}
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	b := r.learned
	for i := 0; i < len(r.parts); i += 2 {
		nameLen, restLen := r.parts[i], r.parts[i+1]
		r.k.add(b[:nameLen], b[nameLen:nameLen+restLen])
		b = b[nameLen+restLen:]
	}
}

// appendPoint appends line to rec as appendCanonicalPoint would, if it
// is a canonical line of a known series (see knownSeries) whose timestamp
// dec finds in its window, and reports whether it did.
func (r *knownReader) appendPoint(rec []byte, dec *wavefront.Decoder, line []byte) ([]byte, bool) {
	if r == nil {
		return rec, false
	}
	l, ok := splitKnownLine(line)
	if !ok {
		return rec, false
	}
	name, rest := line[:l.nameEnd], line[l.tsEnd:]
	k := r.k
	if i := r.last + 1; r.last < 0 || int(i) >= len(k.entries) || !k.is(i, name, rest) {
		if i = k.find(name, rest, k.hash(name, rest)); i < 0 {
			return rec, false
		}
		r.last = i
	} else {
		r.last = i
	}
	v, _, ok := leadingValue(line[l.nameEnd+1:])
	if !ok || dec.CheckTime(l.ms) != nil {
		return rec, false
	}
	if r.hints == nil {
		r.hints = r.lists.get()
	}
	off := len(rec) - walFrameHeader - recHeader
	rec = l.appendWAL(rec, line)
	r.hints = append(r.hints, pointHint{off: int32(off), n: int32(len(rec) - walFrameHeader - recHeader - off - 1), series: r.last, gen: r.gen, v: v, ms: l.ms})
	return rec, true
}

// pointHint is what the handler knows of a point line it took as a known
// series' (knownReader.appendPoint): where the line is in its record, the
// series' knownSeries entry, its value and timestamp. The applier, given
// the record in memory with its hints, stores such a line without reading
// it once it has seen the series (applier.hintedRef); records read from
// disk have no hints.
type pointHint struct {
	off, n int32  // the line is the record's body[off:off+n]
	series int32  // the knownSeries entry
	gen    uint32 // of knownSeries
	v      float64
	ms     int64
}

// learn notes line's series if line is in the form splitKnownLine reads
// and out, what appendCanonicalPoint wrote for it, is line itself in the
// WAL's form: the decoder's one pass accepted the series as written (so
// it takes any line of it with a canonical value and timestamp in the
// window, and writes such values as they are).
func (r *knownReader) learn(line, out []byte) {
	if r == nil {
		return
	}
	l, ok := splitKnownLine(line)
	if !ok || !bytes.Equal(out, l.appendWAL(r.learned[len(r.learned):], line)) {
		return
	}
	r.learned = append(append(r.learned, line[:l.nameEnd]...), line[l.tsEnd:]...)
	r.parts = append(r.parts, l.nameEnd, len(line)-l.tsEnd)
}

// knownLine is where splitKnownLine found the parts of a point line.
type knownLine struct {
	nameEnd int   // after the name's closing quote
	tsEnd   int   // after the timestamp
	ms      int64 // the timestamp
	seconds bool  // the timestamp is in whole seconds
}

// splitKnownLine splits a point line in canonical form,
//
//	"<name>" <value> <timestamp> <series…>
//
// with a value that the decoder writes back as it is (an integer of up to
// 15 digits, or a decimal of up to 15 significant digits without
// redundant zeros) and a timestamp of whole seconds (up to 12 digits) or
// milliseconds (13), without a leading zero. ok is false for anything
// else; the decoder then reads the line. The quoted name ends at the
// first quote: a canonical name holds none.
func splitKnownLine(line []byte) (l knownLine, ok bool) {
	if len(line) < 3 || line[0] != '"' {
		return l, false
	}
	l.nameEnd = bytes.IndexByte(line[1:], '"') + 2
	if l.nameEnd < 3 || l.nameEnd >= len(line) || line[l.nameEnd] != ' ' {
		return l, false
	}
	v0 := l.nameEnd + 1
	v1 := v0 + bytes.IndexByte(line[v0:], ' ')
	if v1 < v0 || !wavefront.ValueWrittenAsIs(line[v0:v1]) {
		return l, false
	}
	ts := line[v1+1:]
	n := 0
	for n < len(ts) && n <= 13 && '0' <= ts[n] && ts[n] <= '9' {
		l.ms = l.ms*10 + int64(ts[n]-'0')
		n++
	}
	if n == 0 || n > 13 || ts[0] == '0' || n == len(ts) || ts[n] != ' ' {
		return l, false
	}
	if l.seconds = n < 13; l.seconds {
		l.ms *= 1000
	}
	l.tsEnd = v1 + 1 + n
	return l, true
}

// appendWAL appends line, split as l, in the WAL's form: the timestamp in
// milliseconds and a newline.
func (l knownLine) appendWAL(rec, line []byte) []byte {
	rec = append(rec, line[:l.tsEnd]...)
	if l.seconds {
		rec = append(rec, "000"...)
	}
	rec = append(rec, line[l.tsEnd:]...)
	return append(rec, '\n')
}
