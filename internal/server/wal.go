package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/meshwave/meshwave/internal/queue"
	"github.com/meshwave/meshwave/internal/segfile"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// format is the kind of data in a /report body and in a WAL record.
type format byte

const (
	fmtPoint format = iota + 1
	fmtHistogram
	fmtSpan
	fmtSpanLogs
)

var formatNames = map[string]format{
	"wavefront": fmtPoint, "graphite_v2": fmtPoint,
	"histogram": fmtHistogram,
	"trace":     fmtSpan,
	"spanLogs":  fmtSpanLogs,
}

func (f format) String() string {
	switch f {
	case fmtHistogram:
		return "histogram"
	case fmtSpan:
		return "trace"
	case fmtSpanLogs:
		return "spanLogs"
	}
	return "wavefront"
}

// WAL records are: format (1 byte) | received Unix ms (8 bytes BE) |
// canonical lines, each ending in '\n'. Canonical lines carry millisecond
// timestamps, so decoding them again yields exactly what the handler
// accepted, whatever the clock says at replay time.
const (
	recHeader = 9
	// recordBytes is where the handler starts a new record: well under
	// the WAL's segment size, and large enough to amortise framing.
	recordBytes = 1 << 20
	// walSegmentBytes is where the WAL starts a new segment file.
	walSegmentBytes = 16 << 20
	// readBytes is how much the applier takes from the WAL at once (one
	// tsdb commit).
	readBytes = 8 << 20
	// syncEvery and syncBytes bound how long and how much applied data
	// waits for the tsdb WAL fsync that lets its WAL segments go. Applied
	// records hold no memory, so only the disk and the replay after a
	// crash bound them.
	syncEvery = time.Second
	syncBytes = 64 << 20
)

// newFrame starts a WAL frame of a record in buf, which it grows to
// capacity: room for the frame header, then the record header.
func newFrame(buf []byte, f format, received int64, capacity int) []byte {
	b := slices.Grow(buf[:0], capacity)[:walFrameHeader+recHeader]
	b[walFrameHeader] = byte(f)
	binary.BigEndian.PutUint64(b[walFrameHeader+1:], uint64(received))
	return b
}

// applier moves WAL records into the stores. It is the only writer of
// both stores; see doc.go for why acknowledging after the stores commit
// and their logs are fsync'd makes every 202 durable.
type applier struct {
	s     *Server
	dec   wavefront.Decoder
	kvb   kvBatch
	point wavefront.Point
	dist  wavefront.Distribution
	span  wavefront.Span
	key   []byte
	lb    labels.ScratchBuilder
	// byKnown maps knownSeries entries of generation knownGen to
	// reference cache entries (plus one; 0 is none), for pointHints. It
	// is emptied when either side changes generation.
	byKnown    []int32
	knownGen   uint32
	refsClears int
}

func (a *applier) run(ctx context.Context) {
	wal := a.s.wal
	// Everything before done is applied and fsync'd in the stores;
	// everything before pos is applied.
	pos := wal.start()
	done, unsynced := pos, 0
	lastSync := time.Now()
	var (
		recs  []walRecord
		buf   []byte
		body  [][]byte
		hints [][]pointHint
	)
	flush := func() {
		if pos == done {
			return
		}
		if err := a.s.metrics.syncWAL(); err != nil {
			a.s.log.Error("fsync of the tsdb WAL failed; will retry", "err", err)
			return
		}
		if err := wal.applied(pos); err != nil {
			a.s.log.Error("deleting applied WAL segments failed", "err", err)
		}
		done, unsynced, lastSync = pos, 0, time.Now()
	}
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if pos != done {
			rctx, cancel = context.WithTimeout(ctx, max(0, syncEvery-time.Since(lastSync)))
		}
		var err error
		recs, buf, err = wal.take(rctx, pos, readBytes, recs, buf)
		cancel()
		switch {
		case ctx.Err() != nil || errors.Is(err, errWALClosed):
			a.releaseHanded(recs)
			flush()
			return
		case errors.Is(err, context.DeadlineExceeded):
			flush()
			continue
		case err != nil:
			a.s.log.Error("WAL read failed", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		body, hints = body[:0], hints[:0]
		n := 0
		for _, r := range recs {
			body, hints = append(body, r.frame[walFrameHeader:]), append(hints, r.hints)
			n += len(r.frame)
		}
		err = a.apply(ctx, body, hints)
		clear(hints)
		a.releaseHanded(recs)
		if err != nil {
			// The records are read again from disk: the stores are
			// idempotent, and nothing after done has left the WAL.
			a.s.log.Error("storing WAL records failed; retrying", "err", err)
			flush()
			sleep(ctx, time.Second)
			continue
		}
		pos = recs[len(recs)-1].end
		if unsynced += n; unsynced >= syncBytes || time.Since(lastSync) >= syncEvery {
			flush()
		}
	}
}

// releaseHanded gives the appenders' frames among recs back to the WAL,
// and their hint lists to the handlers.
func (a *applier) releaseHanded(recs []walRecord) {
	for i, r := range recs {
		if r.handed {
			a.s.wal.release(r.frame)
		}
		if r.hints != nil {
			a.s.hints.put(r.hints)
		}
		recs[i].frame, recs[i].hints = nil, nil
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// apply writes records to the tsdb (one commit) and the KV store (one
// transaction). hints, if not nil, has the pointHints of each record.
func (a *applier) apply(ctx context.Context, recs [][]byte, hints [][]pointHint) error {
	app := a.s.metrics.db.Appender(ctx)
	a.kvb.reset()
	var newest int64
	for j, rec := range recs {
		if len(rec) < recHeader {
			continue
		}
		f := format(rec[0])
		received := int64(binary.BigEndian.Uint64(rec[1:]))
		newest = max(newest, received)
		body := rec[recHeader:]
		stored := 0
		if f == fmtPoint {
			var h []pointHint
			if hints != nil {
				h = hints[j]
			}
			stored = a.applyPoints(app, body, h)
		} else {
			for line := range wavefront.Lines(body) {
				if a.applyLine(app, f, line, received) {
					stored++
				}
			}
		}
		a.s.m.stored.WithLabelValues(f.String()).Add(float64(stored))
	}
	if err := app.Commit(); err != nil {
		return err
	}
	if err := a.s.kv.write(&a.kvb, &a.dec); err != nil {
		return err
	}
	a.s.export(recs) // the exits (server.go) get what the stores hold
	if newest > 0 {
		a.s.m.applyLag.Set(float64(time.Now().UnixMilli()-newest) / 1000)
	}
	return nil
}

// applyPoints stores the point lines of a record body and returns how
// many were stored. A line with a hint whose series the applier has seen
// is stored without being read (hintedRef); a line of the series the
// reference cache guesses is matched in place (nextGuessed); any other
// goes through applyPoint.
func (a *applier) applyPoints(app storage.Appender, body []byte, hints []pointHint) (stored int) {
	refs := &a.s.metrics.refs
	size := len(body)
	for len(body) > 0 {
		var hint *pointHint
		if len(hints) > 0 && int(hints[0].off) == size-len(body) {
			hint, hints = &hints[0], hints[1:]
		}
		var err error
		if i, ok := a.hintedRef(hint); ok {
			err = appendCached(app, refs.take(i), hint.ms, hint.v)
			body = body[min(int(hint.n)+1, len(body)):]
		} else if i, v, ms, n, ok := nextGuessed(refs, body); ok {
			err = appendCached(app, refs.take(i), ms, v)
			body = body[min(n+1, len(body)):]
			a.noteHinted(hint, i)
		} else {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			var i int32
			if i, err = a.applyPoint(app, line); i >= 0 {
				a.noteHinted(hint, i)
			}
		}
		if err != nil {
			reason, ok := sampleDrop(err)
			switch {
			case errors.Is(err, errUnparsable):
				reason = "unparsable"
			case !ok:
				reason = "error"
				a.s.log.Warn("tsdb refused a sample", "err", err)
			}
			a.drop(reason)
			continue
		}
		stored++
	}
	return stored
}

// hintedRef returns the reference cache entry of a hint's series, if the
// applier has seen the series and neither side has changed generation.
func (a *applier) hintedRef(h *pointHint) (int32, bool) {
	if h == nil || h.gen != a.knownGen || a.s.metrics.refs.clears != a.refsClears || int(h.series) >= len(a.byKnown) {
		return 0, false
	}
	i := a.byKnown[h.series] - 1
	return i, i >= 0
}

// noteHinted records that a hint's series is reference cache entry i.
func (a *applier) noteHinted(h *pointHint, i int32) {
	if h == nil {
		return
	}
	if clears := a.s.metrics.refs.clears; h.gen != a.knownGen || clears != a.refsClears {
		clear(a.byKnown)
		a.knownGen, a.refsClears = h.gen, clears
	}
	if n := int(h.series) + 1; n > len(a.byKnown) {
		a.byKnown = slices.Grow(a.byKnown, n-len(a.byKnown))[:n]
	}
	a.byKnown[h.series] = i + 1
}

// applyLine stores one canonical line other than a point; false if it
// was dropped.
func (a *applier) applyLine(app storage.Appender, f format, line []byte, received int64) bool {
	switch f {
	case fmtHistogram:
		h := &a.dist
		if err := a.dec.DecodeDistribution(line, h); err != nil {
			a.drop("unparsable")
			return false
		}
		a.kvb.dists = append(a.kvb.dists, distRecOf(h, a.dec.TimestampMillis(), line))
	case fmtSpan:
		if err := a.dec.DecodeSpan(line, &a.span); err != nil {
			a.drop("unparsable")
			return false
		}
		a.kvb.spans = append(a.kvb.spans, spanRecOf(&a.span, line))
	case fmtSpanLogs:
		var sl wavefront.SpanLogs
		if err := wavefront.DecodeSpanLogs(line, &sl); err != nil {
			a.drop("unparsable")
			return false
		}
		key := append(append(append([]byte(sl.TraceID), 0), sl.SpanID...), 0)
		key = binary.BigEndian.AppendUint64(key, xxhash.Sum64(line))
		a.kvb.logs = append(a.kvb.logs, logRec{key: key, received: received, json: line})
	default:
		a.drop("unknown_format")
		return false
	}
	return true
}

var errUnparsable = errors.New("unparsable WAL line")

// applyPoint stores one point line and returns its reference cache
// entry, or -1. The handler wrote it canonically, so in steady state it
// is split without a decoder and its series found in the reference cache
// by its series text; only a new series needs the full decoder, for its
// labels.
func (a *applier) applyPoint(app storage.Appender, line []byte) (int32, error) {
	key, split, v, ms, ok := splitCanonicalPoint(a.key[:0], line)
	if ok {
		a.key = key
		return a.s.metrics.append(app, key, split, func() (labels.Labels, error) { return a.pointLabels(line) }, ms, v)
	}
	// A shape AppendPoint writes only in corner cases (no timestamp, for
	// a point at the epoch): decode it fully and skip the cache.
	lset, err := a.pointLabels(line)
	if err != nil {
		return -1, err
	}
	_, err = app.Append(0, lset, a.dec.TimestampMillis(), a.point.Value)
	return -1, err
}

// splitCanonicalPoint splits a point line in the form the handler writes,
//
//	"<name>" <value> <ms> source="<source>" "<k>"="<v>"...
//
// into its series text (the quoted name and everything from " source=",
// appended to key; the name is its first split bytes), value and
// millisecond timestamp. ok is false for any other shape. A sanitised
// name holds no '"' or space, so the first quote after the opening one
// ends it.
func splitCanonicalPoint(key, line []byte) (_ []byte, split int, v float64, ms int64, ok bool) {
	if len(line) == 0 || line[0] != '"' {
		return key, 0, 0, 0, false
	}
	nameEnd := bytes.IndexByte(line[1:], '"') + 2
	if nameEnd < 2 || nameEnd >= len(line) || line[nameEnd] != ' ' {
		return key, 0, 0, 0, false
	}
	rest := line[nameEnd+1:]
	v, ms, end, ok := valueAndTime(rest)
	if !ok {
		return key, 0, 0, 0, false
	}
	return append(append(key, line[:nameEnd]...), rest[end:]...), nameEnd, v, ms, true
}

// valueAndTime reads "<value> <ms>" from the start of b, which must go on
// with " source=", and returns where that starts.
func valueAndTime(b []byte) (v float64, ms int64, end int, ok bool) {
	v, sp, ok := leadingValue(b)
	if !ok {
		return 0, 0, 0, false
	}
	ts := b[sp+1:]
	ms, n := leadingDigits(ts)
	if n == 0 || n > maxTimeDigits || !bytes.HasPrefix(ts[n:], []byte(" source=")) {
		return 0, 0, 0, false
	}
	return v, ms, sp + 1 + n, true
}

// leadingValue reads the value token at the start of b, which a space
// ends, and returns where that space is.
func leadingValue(b []byte) (v float64, sp int, ok bool) {
	if sp, v, ok = leadingInt(b); ok {
		return v, sp, true
	}
	if sp = bytes.IndexByte(b, ' '); sp <= 0 {
		return 0, 0, false
	}
	v, err := strconv.ParseFloat(string(b[:sp]), 64)
	return v, sp, err == nil
}

// maxTimeDigits bounds a WAL timestamp, so that it cannot overflow.
const maxTimeDigits = 18

// leadingDigits reads the decimal digits at the start of b, up to one
// past maxTimeDigits, and returns their value and count. A millisecond
// timestamp has 13: eight of them are read at once (SWAR), which takes
// a third of the time of a loop over bytes.
func leadingDigits(b []byte) (v int64, n int) {
	for n+8 <= min(len(b), maxTimeDigits) {
		x := binary.LittleEndian.Uint64(b[n:])
		// Every byte is 0x30-0x39: high nibble 3, and adding 6 keeps it so.
		if x&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 || (x+0x0606060606060606)&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 {
			break
		}
		// The first digit is the lowest byte: combine neighbours into
		// pairs, quadruples, then eight digits.
		x = (x & 0x0F0F0F0F0F0F0F0F) * (10<<8 + 1) >> 8
		x = (x & 0x00FF00FF00FF00FF) * (100<<16 + 1) >> 16
		x = (x & 0x0000FFFF0000FFFF) * (10000<<32 + 1) >> 32
		v = v*1e8 + int64(x)
		n += 8
	}
	for ; n < len(b) && n <= maxTimeDigits && '0' <= b[n] && b[n] <= '9'; n++ {
		v = v*10 + int64(b[n]-'0')
	}
	return v, n
}

// nextGuessed matches the start of body against the canonical line of
// the series the reference cache guesses comes next. If it is that
// series' line, it returns the cache entry, the value and timestamp, and
// the line's length: no scan for the line's end, no copy of the series
// text, no hash. The series text has no newline, so the line has the
// same parts as splitCanonicalPoint finds once cut at its newline.
func nextGuessed(refs *refCache, body []byte) (i int32, v float64, ms int64, n int, ok bool) {
	i, name, rest, ok := refs.guess()
	if !ok || len(body) <= len(name) || body[len(name)] != ' ' || !bytes.HasPrefix(body, name) {
		return 0, 0, 0, 0, false
	}
	// Bounded, so that a record of other shapes is not scanned to its
	// end for every line: a longer value is left to splitCanonicalPoint.
	head := body[len(name)+1:]
	v, ms, end, ok := valueAndTime(head[:min(len(head), maxGuessedHead)])
	if !ok || !bytes.HasPrefix(head[end:], rest) {
		return 0, 0, 0, 0, false
	}
	n = len(name) + 1 + end + len(rest)
	if n < len(body) && body[n] != '\n' {
		return 0, 0, 0, 0, false
	}
	return i, v, ms, n, true
}

// maxGuessedHead is how far nextGuessed looks for the value and
// timestamp: a shortest float64, 18 digits and " source=" fit.
const maxGuessedHead = 64

// leadingInt reads a value token of an optional '-' and decimal digits
// worth less than 10^15, which a float64 holds exactly, and returns the
// index of the space that ends it. Counters and gauges are mostly integers, and this
// finds the token's end and reads it in one pass, several times quicker
// than strconv.ParseFloat.
func leadingInt(b []byte) (sp int, v float64, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		sp = 1
	}
	var n int64
	for ; sp < len(b) && '0' <= b[sp] && b[sp] <= '9'; sp++ {
		n = n*10 + int64(b[sp]-'0')
		if n >= 1e15 {
			return 0, 0, false
		}
	}
	if sp == len(b) || b[sp] != ' ' || (neg && sp == 1) || sp == 0 {
		return 0, 0, false
	}
	if neg {
		return sp, -float64(n), true
	}
	return sp, float64(n), true
}

// pointLabels decodes a point line into a.point and returns its labels.
func (a *applier) pointLabels(line []byte) (labels.Labels, error) {
	p := &a.point
	if err := a.dec.ParsePoint(line, p); err != nil {
		return labels.EmptyLabels(), fmt.Errorf("%w: %v", errUnparsable, err)
	}
	a.lb.Reset()
	a.lb.Add(labelName, string(p.Name))
	a.lb.Add(labelSource, string(p.Source))
	for _, t := range p.Tags {
		a.lb.Add(tagLabel(string(t.Key)), string(t.Value))
	}
	a.lb.Sort()
	return a.lb.Labels(), nil
}

// drop counts a line the stores refused although the handler accepted it.
func (a *applier) drop(reason string) { a.s.m.dropped.WithLabelValues(reason).Inc() }

// The server's write-ahead log (wal/ under the data directory) holds
// every accepted request until the stores have it. Handlers append
// frames; one writer goroutine writes every pending append, fsyncs once
// and only then releases them (group commit), so a 202 follows the fsync.
// The records just made durable are handed to the applier in memory, as
// long as it holds fewer than walHandoffBytes of them: in steady state
// nothing is read back from disk or parsed twice. Records written while
// the applier lags by more than that, and all records left by a crash or
// a restart, are read from the files instead (walLog.take).
//
// On disk: numbered segment files (<20-digit seq>.wal), each walMagic
// then frames of len uint32 LE | crc32c(payload) uint32 LE | payload.
// A segment is only ever appended to by the process that created it: on
// Open every existing segment is sealed and writing goes on in a new one,
// so a torn tail needs no truncation; reading stops at the first frame
// that does not check out, the rest of that segment is logged and
// counted as lost (only frames whose append had not returned can be
// there). Once records are applied and the stores' logs fsync'd, the
// file "applied" records the position after them and segments wholly
// before it are deleted; Open starts reading there. (A torn cursor makes
// Open read every segment again, which re-applies records the stores
// hold already: harmless, see doc.go.)
const (
	walMagic       = "MWSWAL\x00\x01"
	walMagicBytes  = int64(len(walMagic))
	walFrameHeader = 8
	walSuffix      = ".wal"
	// walCursorName is the file of the position before which everything
	// is applied: seq uint64 LE | offset uint64 LE | crc32c of both.
	walCursorName = "applied"
	// walHandoffBytes bounds the durable records held in memory for the
	// applier: about 60 request bodies.
	walHandoffBytes = 64 << 20
)

// walPos is a position in the log: the segment and a byte offset in it.
type walPos struct {
	seq uint64
	off int64
}

func (p walPos) before(q walPos) bool { return p.seq < q.seq || p.seq == q.seq && p.off < q.off }

type walSeg struct {
	seq    uint64
	size   int64 // bytes that are durable (and, if sealed, all there will be)
	sealed bool
}

// walRecord is one frame of the log: where it starts and ends, and the
// frame itself (data[walFrameHeader:] is the record).
type walRecord struct {
	at, end walPos
	frame   []byte
	handed  bool        // frame is an appender's buffer, to be released after use
	hints   []pointHint // the appender's, with a handed frame only
}

type walAppend struct {
	frames [][]byte
	hints  [][]pointHint // nil, or one list per frame
	done   chan error
}

// walLog is the server's WAL; see above.
type walLog struct {
	dir      string
	log      *slog.Logger
	segBytes int64
	handoff  int
	// release takes back a frame buffer of an append once the log no
	// longer needs it.
	release          func([]byte)
	diskBytes, heldB prometheus.Gauge
	tornFrames       prometheus.Counter

	pmu     sync.Mutex // guards pending and closing
	pending []*walAppend
	closing bool
	wake    chan struct{}
	stopped chan struct{}

	// The writer goroutine's (and Open's, before it starts).
	f    *os.File
	w    segfile.Writer // writes to f
	seq  uint64
	size int64
	werr error // sticky: a failed write could not be undone
	recs []walRecord

	mu     sync.Mutex
	segs   []walSeg    // oldest first; the last is being written
	handed []walRecord // durable records for the applier, in log order
	held   int         // bytes in handed
	notify chan struct{}
	shut   bool
	done   walPos // everything before it is applied

	// The applier's: the segment it reads, and the cursor file.
	rf     *os.File
	rseq   uint64
	cursor *os.File
}

var errWALClosed = errors.New("WAL closed")

// openWAL opens the log in dir; release takes back frame buffers given
// to append.
func openWAL(dir string, segBytes int64, handoff int, release func([]byte), log *slog.Logger, reg prometheus.Registerer) (*walLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &walLog{dir: dir, log: log, segBytes: segBytes, handoff: handoff, release: release,
		diskBytes:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshwave_server_wal_bytes", Help: "Size of the WAL segments on disk."}),
		heldB:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshwave_server_wal_handoff_bytes", Help: "Durable WAL records held in memory for the applier."}),
		tornFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_server_wal_torn_total", Help: "WAL segments whose tail did not check out when read (a crash during a write), or damaged."}),
		wake:       make(chan struct{}, 1), stopped: make(chan struct{}), notify: make(chan struct{})}
	reg.MustRegister(l.diskBytes, l.heldB, l.tornFrames)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		seq, err := strconv.ParseUint(name, 10, 64)
		if !ok || err != nil || len(name) != 20 {
			continue
		}
		size, err := walSegmentSize(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		l.seq = max(l.seq, seq)
		if size < 0 {
			// Created, but the crash came before its header was durable, so
			// no append into it had returned.
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
			continue
		}
		l.segs = append(l.segs, walSeg{seq: seq, size: size, sealed: true})
	}
	slices.SortFunc(l.segs, func(a, b walSeg) int { return cmp.Compare(a.seq, b.seq) })
	if l.cursor, err = os.OpenFile(filepath.Join(dir, walCursorName), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	done, ok := readCursor(l.cursor)
	if ok {
		l.seq = max(l.seq, done.seq) // never reuse a number the cursor names
	}
	for ok && len(l.segs) > 0 && l.segs[0].seq < done.seq {
		// Applied, but the process stopped before deleting it.
		if err := os.Remove(filepath.Join(dir, walSegName(l.segs[0].seq))); err != nil {
			l.cursor.Close()
			return nil, err
		}
		l.segs = l.segs[1:]
	}
	if err := l.createSegment(l.seq + 1); err != nil {
		l.cursor.Close()
		return nil, err
	}
	l.done = walPos{l.segs[0].seq, walMagicBytes}
	if ok && done.seq == l.segs[0].seq {
		l.done.off = max(done.off, walMagicBytes)
	}
	go l.writeLoop()
	return l, nil
}

// readCursor reads the applied position; ok is false if there is none,
// or it does not check out (a torn write), in which case every segment is
// read again: harmless, as replays are.
func readCursor(f *os.File) (p walPos, ok bool) {
	var b [20]byte
	if _, err := f.ReadAt(b[:], 0); err != nil || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return walPos{}, false
	}
	return walPos{binary.LittleEndian.Uint64(b[0:]), int64(binary.LittleEndian.Uint64(b[8:]))}, true
}

func writeCursor(f *os.File, p walPos) error {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], p.seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	if _, err := f.WriteAt(b[:], 0); err != nil {
		return err
	}
	return f.Sync()
}

// walSegmentSize is the size of a segment file, or -1 if its header is
// not (all) there.
func walSegmentSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var magic [walMagicBytes]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != walMagic {
		return -1, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func walSegName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, walSuffix) }

// createSegment starts segment seq as the write segment, sealing the
// previous one. Its header and directory entry are durable before any
// frame goes in, so an fsync'd frame is never lost with its file.
func (l *walLog) createSegment(seq uint64) error {
	path := filepath.Join(l.dir, walSegName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(walMagic))
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = segfile.SyncDir(l.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path) // so that a retry can create it again
		return err
	}
	l.f, l.seq, l.size = f, seq, walMagicBytes
	l.w.Reset(f, walMagicBytes)
	l.mu.Lock()
	if n := len(l.segs); n > 0 {
		l.segs[n-1].sealed = true
	}
	l.segs = append(l.segs, walSeg{seq: seq, size: walMagicBytes})
	l.updateGauges()
	l.mu.Unlock()
	return nil
}

// append writes frames — each walFrameHeader bytes of room, then a
// record — and returns once they are fsync'd. The log owns the frames
// from the call on, whatever it returns: it hands them to the applier or
// gives them back to release. On error some frames may still be stored,
// so a retry can duplicate them, never lose them.
func (l *walLog) append(frames ...[]byte) error { return l.appendHinted(frames, nil) }

// appendHinted is append with the hints of each frame (or nil), which the
// applier gets with the frames it is handed in memory.
func (l *walLog) appendHinted(frames [][]byte, hints [][]pointHint) error {
	for _, f := range frames {
		if int64(len(f)) > l.segBytes-walMagicBytes {
			l.releaseAll(frames)
			return fmt.Errorf("WAL record of %d bytes over the segment size", len(f))
		}
	}
	a := &walAppend{frames: frames, hints: hints, done: make(chan error, 1)}
	l.pmu.Lock()
	if l.closing {
		l.pmu.Unlock()
		l.releaseAll(frames)
		return errWALClosed
	}
	l.pending = append(l.pending, a)
	l.pmu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return <-a.done
}

func (l *walLog) releaseAll(frames [][]byte) {
	for _, f := range frames {
		l.release(f)
	}
}

// writeLoop is the only writer of segments: it takes every pending
// append, writes and fsyncs them, hands their records to the applier and
// releases the appenders. Appends arriving meanwhile form the next group.
func (l *walLog) writeLoop() {
	defer close(l.stopped)
	var group []*walAppend
	for {
		<-l.wake
		l.pmu.Lock()
		group, l.pending = l.pending, group[:0]
		closing := l.closing
		l.pmu.Unlock()
		if len(group) > 0 {
			err := l.commit(group)
			l.publish(err)
			for _, a := range group {
				a.done <- err
			}
			clear(group)
		}
		if closing {
			return
		}
	}
}

// commit writes the frames of group and fsyncs them, noting each in
// l.recs.
func (l *walLog) commit(group []*walAppend) error {
	l.recs = l.recs[:0]
	for _, a := range group {
		for i, fr := range a.frames {
			r := walRecord{frame: fr, handed: true}
			if a.hints != nil {
				r.hints = a.hints[i]
			}
			l.recs = append(l.recs, r)
		}
	}
	if l.werr != nil {
		return l.werr
	}
	if l.f == nil {
		// An earlier rotation could not create the next segment.
		if err := l.createSegment(l.seq + 1); err != nil {
			return err
		}
	}
	synced := l.size
	for i := range l.recs {
		r := &l.recs[i]
		if l.size+int64(len(r.frame)) > l.segBytes && l.size > walMagicBytes {
			if err := l.rotate(); err != nil {
				return l.fail(err, synced)
			}
			synced = l.size
		}
		sealFrame(r.frame)
		if err := l.w.Append(r.frame); err != nil {
			return l.fail(err, synced)
		}
		r.at = walPos{l.seq, l.size}
		l.size += int64(len(r.frame))
		r.end = walPos{l.seq, l.size}
	}
	if err := l.w.Flush(); err != nil {
		return l.fail(err, synced)
	}
	if err := l.f.Sync(); err != nil {
		return l.fail(err, synced)
	}
	return nil
}

// sealFrame writes the frame header: the record's length and checksum.
func sealFrame(frame []byte) {
	rec := frame[walFrameHeader:]
	binary.LittleEndian.PutUint32(frame[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(frame[4:8], crc32.Checksum(rec, castagnoli))
}

// rotate makes the write segment durable, publishes it sealed and starts
// the next one.
func (l *walLog) rotate() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.mu.Lock()
	l.segs[len(l.segs)-1].size = l.size
	l.notifyLocked()
	l.mu.Unlock()
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return err
	}
	return l.createSegment(l.seq + 1)
}

// fail cuts the write segment back to its durable size, so the next
// append does not land after a partial frame. If even that fails, the
// log refuses appends until it is reopened.
func (l *walLog) fail(err error, synced int64) error {
	if l.f == nil {
		return err
	}
	if terr := l.f.Truncate(synced); terr != nil {
		l.werr = fmt.Errorf("WAL write failed (%v) and could not be undone: %w", err, terr)
		return l.werr
	}
	l.size = synced
	l.w.Reset(l.f, synced)
	return err
}

// publish makes what commit wrote visible to the applier: the durable
// size of the write segment and, while it holds less than l.handoff, the
// records themselves. Frames not handed over are released; the applier
// reads them from disk.
func (l *walLog) publish(err error) {
	l.mu.Lock()
	l.segs[len(l.segs)-1].size = l.size
	for i := range l.recs {
		r := &l.recs[i]
		if err == nil && l.held+len(r.frame) <= l.handoff {
			l.handed = append(l.handed, *r)
			l.held += len(r.frame)
			r.frame = nil
		}
	}
	l.notifyLocked()
	l.updateGauges()
	l.mu.Unlock()
	for i := range l.recs {
		if r := &l.recs[i]; r.frame != nil {
			l.release(r.frame)
		}
		l.recs[i] = walRecord{}
	}
}

func (l *walLog) notifyLocked() {
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *walLog) updateGauges() {
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	l.diskBytes.Set(float64(n))
	l.heldB.Set(float64(l.held))
}

// start is where the applier starts: the oldest record on disk.
func (l *walLog) start() walPos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// nextLocked moves p from the end of a sealed segment to the start of
// the next one.
func (l *walLog) nextLocked(p walPos) walPos {
	for _, s := range l.segs {
		if s.seq < p.seq {
			continue
		}
		if s.seq > p.seq {
			return walPos{s.seq, walMagicBytes}
		}
		if !s.sealed || p.off < s.size {
			return p
		}
	}
	return p
}

// segLocked returns the segment seq.
func (l *walLog) segLocked(seq uint64) (walSeg, bool) {
	i, ok := slices.BinarySearchFunc(l.segs, seq, func(s walSeg, seq uint64) int { return cmp.Compare(s.seq, seq) })
	if !ok {
		return walSeg{}, false
	}
	return l.segs[i], true
}

// take returns the records from pos on, about maxBytes of them (at least
// one), waiting for some if there are none yet. They are the appenders'
// frames if the oldest record handed over starts at pos, else frames read
// from disk into buf, up to the first record handed over. Handed frames
// must be given back with l.release once used; read ones alias buf.
func (l *walLog) take(ctx context.Context, pos walPos, maxBytes int, dst []walRecord, buf []byte) ([]walRecord, []byte, error) {
	dst = dst[:0]
	for {
		l.mu.Lock()
		if l.shut {
			l.mu.Unlock()
			return dst, buf, errWALClosed
		}
		pos = l.nextLocked(pos)
		// Records before pos were read from disk meanwhile.
		for len(l.handed) > 0 && l.handed[0].at.before(pos) {
			l.held -= len(l.handed[0].frame)
			l.release(l.handed[0].frame)
			l.handed[0] = walRecord{}
			l.handed = l.handed[1:]
		}
		if len(l.handed) > 0 && l.handed[0].at == pos {
			n := 0
			for _, r := range l.handed {
				if r.at != pos || (n > 0 && n+len(r.frame) > maxBytes) {
					break
				}
				dst = append(dst, r)
				n += len(r.frame)
				pos = l.nextLocked(r.end)
			}
			clear(l.handed[:len(dst)])
			l.handed = l.handed[len(dst):]
			l.held -= n
			l.updateGauges()
			l.mu.Unlock()
			return dst, buf, nil
		}
		seg, ok := l.segLocked(pos.seq)
		limit := seg.size
		if len(l.handed) > 0 && l.handed[0].at.seq == pos.seq {
			limit = l.handed[0].at.off
		}
		ch := l.notify
		l.mu.Unlock()
		if ok && pos.off < limit {
			var err error
			if dst, buf, err = l.read(pos, limit, maxBytes, dst, buf); err != nil || len(dst) > 0 {
				return dst, buf, err
			}
			continue // the segment was cut at pos
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return dst, buf, ctx.Err()
		}
	}
}

// read reads frames of segment pos.seq from pos.off up to limit, about
// maxBytes of them. A frame that does not check out ends the segment:
// what follows it is logged and counted as lost.
func (l *walLog) read(pos walPos, limit int64, maxBytes int, dst []walRecord, buf []byte) ([]walRecord, []byte, error) {
	if l.rf == nil || l.rseq != pos.seq {
		if l.rf != nil {
			l.rf.Close()
			l.rf = nil
		}
		f, err := os.Open(filepath.Join(l.dir, walSegName(pos.seq)))
		if err != nil {
			return dst, buf, err
		}
		l.rf, l.rseq = f, pos.seq
	}
	buf = buf[:0]
	type span struct {
		at  walPos
		end int
	}
	var spans []span
	for pos.off < limit && (len(buf) == 0 || len(buf) < maxBytes) {
		var h [walFrameHeader]byte
		bad := pos.off+walFrameHeader > limit
		if !bad {
			if _, err := l.rf.ReadAt(h[:], pos.off); err != nil {
				return dst, buf, err
			}
		}
		n := int64(binary.LittleEndian.Uint32(h[0:4]))
		bad = bad || pos.off+walFrameHeader+n > limit
		start := len(buf)
		if !bad {
			buf = slices.Grow(buf, walFrameHeader+int(n))[:start+walFrameHeader+int(n)]
			copy(buf[start:], h[:])
			if _, err := l.rf.ReadAt(buf[start+walFrameHeader:], pos.off+walFrameHeader); err != nil {
				return dst, buf[:start], err
			}
			bad = crc32.Checksum(buf[start+walFrameHeader:], castagnoli) != binary.LittleEndian.Uint32(h[4:8])
		}
		if bad {
			buf = buf[:start]
			if err := l.cutSegment(pos, limit); err != nil && len(spans) == 0 {
				return dst, buf, err
			}
			break
		}
		spans = append(spans, span{pos, len(buf)})
		pos.off += walFrameHeader + n
	}
	start := 0
	for _, s := range spans {
		dst = append(dst, walRecord{at: s.at, end: walPos{s.at.seq, s.at.off + int64(s.end-start)}, frame: buf[start:s.end:s.end]})
		start = s.end
	}
	return dst, buf, nil
}

// cutSegment ends sealed segment pos.seq at pos, where a frame does not
// check out: what follows, up to limit, is lost. Such a frame in the
// segment being written is an error: this process fsync'd every frame
// there, so the disk gave back something else.
func (l *walLog) cutSegment(pos walPos, limit int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := slices.BinarySearchFunc(l.segs, pos.seq, func(s walSeg, seq uint64) int { return cmp.Compare(s.seq, seq) })
	if !ok || !l.segs[i].sealed {
		return fmt.Errorf("WAL segment %s: damaged frame at offset %d", walSegName(pos.seq), pos.off)
	}
	l.segs[i].size = pos.off
	l.tornFrames.Inc()
	l.log.Warn("WAL segment ends in a torn or damaged frame; skipping the rest", "segment", walSegName(pos.seq), "offset", pos.off, "bytes", limit-pos.off)
	return nil
}

// applied records that everything before pos is in the stores, their
// logs fsync'd, and deletes the segments wholly before it.
func (l *walLog) applied(pos walPos) error {
	l.mu.Lock()
	pos = l.nextLocked(pos)
	l.done = pos
	var gone []uint64
	for len(l.segs) > 1 && l.segs[0].seq < pos.seq {
		gone = append(gone, l.segs[0].seq)
		l.segs = l.segs[1:]
	}
	l.updateGauges()
	l.mu.Unlock()
	// The cursor goes first: a crash between the two steps leaves
	// segments that Open knows are applied.
	if err := writeCursor(l.cursor, pos); err != nil {
		return err
	}
	for _, seq := range gone {
		if err := os.Remove(filepath.Join(l.dir, walSegName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// idle tells whether everything written has been applied.
func (l *walLog) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.segs[len(l.segs)-1]
	return l.nextLocked(l.done) == walPos{last.seq, last.size}
}

// close waits for pending appends, fails later calls and closes the
// files. Records not yet applied stay on disk for the next Open.
func (l *walLog) close() error {
	l.pmu.Lock()
	if l.closing {
		l.pmu.Unlock()
		return errWALClosed
	}
	l.closing = true
	l.pmu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.stopped
	l.mu.Lock()
	l.shut = true
	l.notifyLocked()
	for _, r := range l.handed {
		l.release(r.frame)
	}
	l.handed, l.held = nil, 0
	l.mu.Unlock()
	errs := []error{l.cursor.Close()}
	if l.f != nil {
		errs = append(errs, l.f.Close())
	}
	if l.rf != nil {
		errs = append(errs, l.rf.Close())
	}
	return errors.Join(errs...)
}

// drainQueue applies what a WAL of the previous layout — an
// internal/queue FIFO in the same directory, recognised by its cursor
// file — still holds, then removes its files, so that an upgrade loses
// no acknowledged request. It runs in Open, before the applier.
func (a *applier) drainQueue(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "cursor")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	q, err := queue.Open(dir, queue.Options{SegmentBytes: walSegmentBytes, Logger: a.s.log})
	if err != nil {
		return err
	}
	ctx := context.Background()
	for q.Len() > 0 {
		b, err := q.Read(ctx, readBytes)
		if err == nil {
			err = a.apply(ctx, b.Records, nil)
		}
		if err == nil {
			err = a.s.metrics.syncWAL()
		}
		if err == nil {
			err = q.Ack(b)
		}
		if err != nil {
			q.Close()
			return err
		}
	}
	if err := q.Close(); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	// The cursor goes last: while it is there, the next Open drains again.
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".seg") || e.Name() == "lock" {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(filepath.Join(dir, "cursor")); err != nil {
		return err
	}
	return segfile.SyncDir(dir)
}
