package proxy

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/preprocessor"
	"github.com/meshwave/meshwave/internal/queue"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// format is the kind of lines in a queue record; it selects ?f= upstream.
type format byte

const (
	fmtWavefront format = 'w'
	fmtHistogram format = 'h'
	fmtTrace     format = 't'
	fmtSpanLogs  format = 'l'
)

var formats = [...]format{fmtWavefront, fmtHistogram, fmtTrace, fmtSpanLogs}

func (f format) param() string {
	switch f {
	case fmtHistogram:
		return "histogram"
	case fmtTrace:
		return "trace"
	case fmtSpanLogs:
		return "spanLogs"
	}
	return "wavefront"
}

func (f format) entity() string {
	switch f {
	case fmtHistogram:
		return entityHistograms
	case fmtTrace:
		return entitySpans
	case fmtSpanLogs:
		return entitySpanLogs
	}
	return entityPoints
}

// formatOf maps a ?f= / ?format= value; ok is false for values the
// reference ignores (lines are then auto-detected).
func formatOf(s string) (format, bool) {
	switch s {
	case "wavefront", "graphite_v2":
		return fmtWavefront, true
	case "histogram":
		return fmtHistogram, true
	case "trace":
		return fmtTrace, true
	case "spanLogs":
		return fmtSpanLogs, true
	}
	return 0, false
}

// A queue record is [format][len(port)][port][lines…]; the header lets the
// forwarder post each record with the right ?f= and count deliveries per port.
// With --bufferCompression, a record whose lines S2 shrinks is instead
// [format|s2Lines][len(port)][port][uvarint line count][S2 block of the
// lines]: its header stays readable, so the forwarder can post the block
// as it is to a backend that reads s2 (meshwave's server) and count its
// lines without decoding it. (Queues written before that hold records the
// queue itself compressed whole, which it decodes on Read.)
func recordHeader(dst []byte, f format, port string) []byte {
	return append(append(dst, byte(f), byte(len(port))), port...)
}

// s2Lines marks a record whose lines are an S2 block; format bytes are
// ASCII letters.
const s2Lines = 0x80

// record is a parsed queue record.
type record struct {
	f     format
	port  string
	body  []byte // the lines, or their S2 block
	lines int    // how many, for an S2 record
	s2    bool
}

func parseRecord(r []byte) (record, bool) {
	if len(r) < 2 || len(r) < 2+int(r[1]) {
		return record{}, false
	}
	n := int(r[1])
	rec := record{f: format(r[0] &^ s2Lines), port: string(r[2 : 2+n]), body: r[2+n:]}
	if r[0]&s2Lines != 0 {
		lines, k := binary.Uvarint(rec.body)
		if k <= 0 || lines > math.MaxInt32 {
			return record{}, false
		}
		rec.body, rec.lines, rec.s2 = rec.body[k:], int(lines), true
	}
	return rec, true
}

// lineCount returns how many lines the record holds.
func (r record) lineCount() int {
	if r.s2 {
		return r.lines
	}
	return bytes.Count(r.body, []byte{'\n'})
}

// decodedLen returns the size of the record's lines.
func (r record) decodedLen() int {
	if !r.s2 {
		return len(r.body)
	}
	n, _ := s2.DecodedLen(r.body)
	return n
}

// sealS2 seals frame (a record behind queue.FrameHeader bytes of room) as an
// S2 record in dst when S2 shrinks its lines by an eighth or more
// (queue.AppendCompressed), else as it is.
func sealS2(dst, frame []byte, lines int) (sealed []byte, compressed bool) {
	head := queue.FrameHeader + 2 + int(frame[queue.FrameHeader+1])
	dst = append(dst[:0], frame[:head]...)
	dst[queue.FrameHeader] |= s2Lines
	if dst, compressed = queue.AppendCompressed(binary.AppendUvarint(dst, uint64(lines)), frame[head:]); !compressed {
		queue.Seal(frame)
		return frame, false
	}
	queue.Seal(dst)
	return dst, true
}

// stageLimit is how many encoded bytes an ingester holds before it must
// commit them to the queue.
const stageLimit = 256 << 10

// ingester validates the lines of one connection or request and stages their
// canonical encoding until commit makes them durable. Not safe for
// concurrent use.
type ingester struct {
	p       *Proxy
	port    string
	dec     wavefront.Decoder
	pt      wavefront.Point
	hist    wavefront.Distribution
	span    wavefront.Span
	logs    wavefront.SpanLogs
	name    []byte
	lineBuf []byte // a line rewritten by pointLine rules
	utf8Buf []byte // a line with invalid UTF-8 replaced
	rules   preprocessor.Scratch
	staged  *stageSet
	staging int // bytes staged in all formats
	async   *asyncCommitter
}

func (p *Proxy) newIngester(port string, defaultSource []byte) *ingester {
	in := &ingester{p: p, port: port}
	in.dec.Limits = &p.limits
	in.dec.DefaultSource = defaultSource
	in.dec.CustomSourceTags = p.srcTags
	in.dec.LenientNonFinite = true
	in.staged = newStageSet(p.m, port, p.cfg.BufferCompression)
	return in
}

func formatIndex(f format) int {
	for i, x := range formats {
		if x == f {
			return i
		}
	}
	return 0
}

// line handles one line. With f == 0 its kind is auto-detected as the
// reference does on the push port.
func (in *ingester) line(line []byte, f format) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	if (f == 0 || f == fmtWavefront) && in.fastPoint(line) {
		return
	}
	if !utf8.Valid(line) {
		// Invalid UTF-8 would make the backend refuse (and the forwarder
		// drop) a whole batch; the reference decodes each bad byte to U+FFFD.
		in.utf8Buf = appendValidUTF8(in.utf8Buf[:0], line)
		line = in.utf8Buf
	}
	if f == 0 {
		f = detect(line)
		if f == 0 {
			in.p.m.discarded.WithLabelValues(entityPoints, in.port).Inc()
			return
		}
	}
	var err error
	switch f {
	case fmtWavefront:
		err = in.point(line)
	case fmtHistogram:
		err = in.histogram(line)
	case fmtTrace:
		err = in.spanLine(line)
	case fmtSpanLogs:
		err = in.spanLogs(line)
	}
	if err != nil {
		in.reject(f.entity(), line, err)
	}
}

// fastPoint stages a metric line through the decoder's single-pass path,
// which writes the same canonical line as point would. It applies only when
// no preprocessor rule or --prefix can rewrite the point between parsing and
// validation, and declines (false) every line outside its subset: those,
// including every invalid one, take the general path. A line it accepts is
// printable ASCII starting with a name, so auto-detection would have called
// it a point too.
func (in *ingester) fastPoint(line []byte) bool {
	if in.p.cfg.Prefix != "" || !in.p.portRules(in.port).Empty() {
		return false
	}
	s := &in.staged.recs[formatIndex(fmtWavefront)]
	before := len(s.buf)
	out, ok := in.dec.AppendCanonicalPoint(s.buf, line)
	if !ok {
		return false
	}
	s.buf = out
	s.lines++
	in.staging += len(out) - before
	return true
}

// appendValidUTF8 appends b with each invalid byte replaced by U+FFFD.
func appendValidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}

// detect is the reference's per-line auto-detection; 0 means a kind meshwave
// does not carry (source tags, events, logs), which is counted as discarded.
func detect(line []byte) format {
	switch {
	case bytes.HasPrefix(line, []byte("@")):
		return 0
	case line[0] == '{' && line[len(line)-1] == '}':
		return fmtSpanLogs
	case len(line) > 2 && line[0] == '!' && (line[1] == 'M' || line[1] == 'H' || line[1] == 'D') && line[2] == ' ':
		return fmtHistogram
	case line[0] == '[' && line[len(line)-1] == ']':
		return 0
	}
	return fmtWavefront
}

var errNonFinite = &wavefront.LineError{Code: "WF-NONFINITE", Reason: "non-finite value (NaN or ±Inf) dropped; set --forwardNonFinite to forward it"}

// errBlocked marks an item a preprocessor rule filtered out.
var errBlocked = errors.New("blocked by a preprocessor rule")

// point runs the reference's order: line rules, parsing, --prefix, the
// timestamp window, object rules, validation (proxy.md §2.5, §8).
func (in *ingester) point(line []byte) error {
	rules := in.p.portRules(in.port)
	if t := rules.TransformLine(line, in.lineBuf[:0]); len(t) > 0 && len(line) > 0 && &t[0] != &line[0] {
		in.lineBuf, line = t, t // keep the rewritten line's buffer for reuse
	}
	if r, _ := rules.LineFilter(line); r != preprocessor.Keep {
		return errBlocked
	}
	p := &in.pt
	if err := in.dec.ParsePoint(line, p); err != nil {
		return err
	}
	in.applyPrefix(&p.Name)
	if err := in.dec.CheckTime(in.dec.TimestampMillis()); err != nil {
		return err
	}
	if r, _ := rules.Point(p, &in.rules); r != preprocessor.Keep {
		return errBlocked
	}
	if err := in.p.limits.ValidatePoint(p); err != nil {
		return err
	}
	if !in.p.cfg.ForwardNonFinite && (math.IsNaN(p.Value) || math.IsInf(p.Value, 0)) {
		return errNonFinite
	}
	in.stage(fmtWavefront, func(b []byte) []byte { return wavefront.AppendPoint(b, p) })
	return nil
}

// applyPrefix adds --prefix, never to internal (~) or delta names (defect §10.4).
func (in *ingester) applyPrefix(name *[]byte) {
	pre := in.p.cfg.Prefix
	n := *name
	if pre == "" || bytes.HasPrefix(n, []byte("~")) || bytes.HasPrefix(n, []byte(wavefront.DeltaIncrement)) || bytes.HasPrefix(n, []byte(wavefront.DeltaGreek)) {
		return
	}
	in.name = append(append(append(in.name[:0], pre...), '.'), n...)
	*name = in.name
}

func (in *ingester) histogram(line []byte) error {
	h := &in.hist
	if err := in.dec.DecodeDistribution(line, h); err != nil {
		return err
	}
	in.stage(fmtHistogram, func(b []byte) []byte { return wavefront.AppendDistribution(b, h) })
	return nil
}

func (in *ingester) spanLine(line []byte) error {
	s := &in.span
	if err := in.dec.DecodeSpan(line, s); err != nil {
		return err
	}
	if r, _ := in.p.portRules(in.port).Span(s, &in.rules); r != preprocessor.Keep {
		return errBlocked
	}
	in.stage(fmtTrace, func(b []byte) []byte { return wavefront.AppendSpan(b, s) })
	return nil
}

func (in *ingester) spanLogs(line []byte) error {
	if err := wavefront.DecodeSpanLogs(line, &in.logs); err != nil {
		return err
	}
	return in.stageSpanLogs(&in.logs)
}

func (in *ingester) stageSpanLogs(sl *wavefront.SpanLogs) error {
	var err error
	in.stage(fmtSpanLogs, func(b []byte) []byte {
		out, e := wavefront.AppendSpanLogs(b, sl)
		if e != nil {
			err = e
			return b
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return out
	})
	return err
}

// stage appends one encoded line for f.
func (in *ingester) stage(f format, encode func([]byte) []byte) {
	s := &in.staged.recs[formatIndex(f)]
	before := len(s.buf)
	s.buf = encode(s.buf)
	if len(s.buf) > before {
		s.lines++
		in.staging += len(s.buf) - before
	}
}

// full reports whether the staged lines should be committed now.
func (in *ingester) full() bool { return in.staging >= stageLimit }

// stageSet holds one batch of encoded lines, a queue record per format.
// Each record is built as a queue frame (queue.FrameHeader bytes of room,
// then the record), so the ingester can seal it while its bytes are still
// in cache and the queue writes it without a copy (or, with compression,
// writes the compressed copy seal made of it).
type stageSet struct {
	compress bool
	recs     [len(formats)]struct {
		buf      []byte
		lines    int
		received prometheus.Counter // proxy_received of the format and port, looked up once
		sealed   []byte             // buf sealed: buf itself, or its compressed frame in zbuf
		zbuf     []byte
	}
}

func newStageSet(m *Metrics, port string, compress bool) *stageSet {
	s := &stageSet{compress: compress}
	for i := range s.recs {
		r := &s.recs[i]
		r.buf = recordHeader(make([]byte, queue.FrameHeader), formats[i], port)
		r.received = m.received.WithLabelValues(formats[i].entity(), port)
	}
	return s
}

// seal makes the frames of the records that hold lines.
func (s *stageSet) seal() {
	for i := range s.recs {
		r := &s.recs[i]
		switch {
		case r.lines == 0:
		case s.compress:
			var compressed bool
			if r.sealed, compressed = sealS2(r.zbuf, r.buf, r.lines); compressed {
				r.zbuf = r.sealed
			}
		default:
			queue.Seal(r.buf)
			r.sealed = r.buf
		}
	}
}

// frames are the set's sealed records that hold lines.
func (s *stageSet) frames() [][]byte {
	var frames [][]byte
	for i := range s.recs {
		if s.recs[i].lines > 0 {
			frames = append(frames, s.recs[i].sealed)
		}
	}
	return frames
}

// appended counts the set's lines received if err is nil (they are
// durable, or written for TCP) and leaves the set empty for reuse.
func (s *stageSet) appended(port string, err error) {
	for i := range s.recs {
		r := &s.recs[i]
		if r.lines > 0 && err == nil {
			r.received.Add(float64(r.lines))
		}
		r.buf = recordHeader(r.buf[:queue.FrameHeader], formats[i], port)
		r.lines, r.sealed = 0, nil
	}
}

// append makes the set's sealed lines durable and only then counts them
// received; it leaves the set empty for reuse.
func (s *stageSet) append(p *Proxy, port string) error {
	var err error
	if frames := s.frames(); len(frames) > 0 {
		err = p.queue.AppendFrames(frames...)
	}
	s.appended(port, err)
	return err
}

// commit makes every staged line durable before it returns (HTTP answers
// only after this).
func (in *ingester) commit() error {
	if in.staging == 0 {
		return nil
	}
	in.staging = 0
	in.staged.seal()
	return in.staged.append(in.p, in.port)
}

// asyncCommitter lets a TCP connection keep reading while its previous
// batch is being written: one batch in the queue's writer, one waiting,
// and the reader filling a third. The queue's writer hands a batch back
// once it is written to the segment file (AppendFramesWrittenAsync), so
// no goroutine waits for it. A TCP client gets no acknowledgement, so a
// line is counted once written, when it survives a kill of the process
// (the page cache holds it); the queue fsyncs it within 100 ms, or with
// the next HTTP commit. Lines are counted only once written.
type asyncCommitter struct {
	free chan *stageSet // the sets not in the queue
	mu   sync.Mutex
	err  error
}

// inFlight is how many batches a connection may have in the queue.
const inFlight = 2

// commitAsync hands the staged lines to the queue. It blocks only while
// inFlight batches are already there, and returns the first error an
// earlier batch met.
func (in *ingester) commitAsync() error {
	if in.async == nil {
		in.async = &asyncCommitter{free: make(chan *stageSet, inFlight)}
		for range inFlight {
			in.async.free <- newStageSet(in.p.m, in.port, in.p.cfg.BufferCompression)
		}
	}
	a := in.async
	if err := a.failed(); err != nil {
		return err
	}
	if in.staging == 0 {
		return nil
	}
	s := in.staged
	s.seal() // here, while the lines just staged are in this core's cache
	in.staged, in.staging = <-a.free, 0
	p, port := in.p, in.port
	p.queue.AppendFramesWrittenAsync(func(err error) {
		s.appended(port, err)
		if err != nil {
			a.mu.Lock()
			a.err = cmp.Or(a.err, err)
			a.mu.Unlock()
		}
		a.free <- s
	}, s.frames()...)
	return nil
}

// finish waits until every batch handed to the queue is written (or
// failed): then all the sets are back.
func (in *ingester) finish() error {
	a := in.async
	if a == nil {
		return nil
	}
	in.async = nil
	for range inFlight {
		<-a.free
	}
	return a.failed()
}

func (a *asyncCommitter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// reject counts a refused line per error code and logs it, rate-limited, in
// the blocked-items log.
func (in *ingester) reject(entity string, line []byte, err error) {
	if err == errBlocked {
		in.p.m.blocked.WithLabelValues(entity, in.port).Inc()
		return
	}
	var le *wavefront.LineError
	code := "WF-300"
	if errors.As(err, &le) {
		code = le.Code
		if le.Discarded() || le == errNonFinite {
			in.p.m.discarded.WithLabelValues(entity, in.port).Inc()
			return
		}
	}
	in.p.m.rejected.WithLabelValues(entity, in.port, code).Inc()
	in.p.blocked.log(in.port, line, err)
}

// blockedLog writes rejected lines to the blocked-items log at a bounded
// rate, like the reference's RawBlockedPoints logger.
type blockedLog struct {
	logger   *slog.Logger
	perTen   int
	mu       sync.Mutex
	window   time.Time
	written  int
	suppress int
}

func (b *blockedLog) log(port string, line []byte, err error) {
	b.mu.Lock()
	now := time.Now()
	if now.Sub(b.window) >= 10*time.Second {
		if b.suppress > 0 {
			b.logger.Warn("blocked input: more lines not logged", "port", port, "count", b.suppress)
		}
		b.window, b.written, b.suppress = now, 0, 0
	}
	ok := b.written < b.perTen
	if ok {
		b.written++
	} else {
		b.suppress++
	}
	b.mu.Unlock()
	if ok {
		const maxShown = 512
		if len(line) > maxShown {
			line = line[:maxShown]
		}
		b.logger.Warn("blocked input", "port", port, "reason", err.Error(), "line", string(line))
	}
}
