package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/meshwave/meshwave/internal/queue"
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
	// the queue's segment size, and large enough to amortise framing.
	recordBytes = 1 << 20
	// walSegmentBytes is the queue's segment size.
	walSegmentBytes = 16 << 20
	// readBytes is how much the applier takes from the WAL at once.
	readBytes = 8 << 20
	// syncEvery bounds how long applied batches wait for the tsdb WAL
	// fsync that lets them be acknowledged; maxPending bounds how many.
	// The queue recycles the buffers of up to 4 acknowledged batches, so
	// holding no more than that keeps reading from allocating.
	syncEvery  = time.Second
	maxPending = 4
)

// newRecord starts a record in buf, which it grows to capacity.
func newRecord(buf []byte, f format, received int64, capacity int) []byte {
	b := slices.Grow(buf[:0], capacity)[:recHeader]
	b[0] = byte(f)
	binary.BigEndian.PutUint64(b[1:], uint64(received))
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
}

func (a *applier) run(ctx context.Context) {
	var pending []queue.Batch
	lastSync := time.Now()
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := a.s.metrics.syncWAL(); err != nil {
			a.s.log.Error("fsync of the tsdb WAL failed; will retry", "err", err)
			return
		}
		for _, b := range pending {
			if err := a.s.wal.Ack(b); err != nil {
				a.s.log.Error("WAL ack failed", "err", err)
			}
		}
		pending, lastSync = pending[:0], time.Now()
	}
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if len(pending) > 0 {
			rctx, cancel = context.WithTimeout(ctx, max(0, syncEvery-time.Since(lastSync)))
		}
		b, err := a.s.wal.Read(rctx, readBytes)
		cancel()
		switch {
		case ctx.Err() != nil || errors.Is(err, queue.ErrClosed):
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
		if err := a.apply(ctx, b.Records); err != nil {
			// Nothing after the last acknowledged batch is lost: the stores
			// are idempotent, so the pending batches are simply read again.
			a.s.log.Error("storing WAL batch failed; retrying", "err", err)
			flush()
			a.s.wal.Nack(b)
			pending = pending[:0]
			sleep(ctx, time.Second)
			continue
		}
		pending = append(pending, b)
		if len(pending) >= maxPending || time.Since(lastSync) >= syncEvery {
			flush()
		}
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
// transaction).
func (a *applier) apply(ctx context.Context, recs [][]byte) error {
	app := a.s.metrics.db.Appender(ctx)
	a.kvb.reset()
	var newest int64
	for _, rec := range recs {
		if len(rec) < recHeader {
			continue
		}
		f := format(rec[0])
		received := int64(binary.BigEndian.Uint64(rec[1:]))
		newest = max(newest, received)
		body := rec[recHeader:]
		stored := 0
		if f == fmtPoint {
			stored = a.applyPoints(app, body)
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
// many were stored. A line of the series the reference cache guesses is
// matched in place (nextGuessed); any other goes through applyPoint.
func (a *applier) applyPoints(app storage.Appender, body []byte) (stored int) {
	refs := &a.s.metrics.refs
	for len(body) > 0 {
		var err error
		if i, v, ms, n, ok := nextGuessed(refs, body); ok {
			err = appendCached(app, refs.take(i), ms, v)
			body = body[min(n+1, len(body)):]
		} else {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			err = a.applyPoint(app, line)
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

// applyPoint stores one point line. The handler wrote it canonically, so
// in steady state it is split without a decoder and its series found in
// the reference cache by its series text; only a new series needs the
// full decoder, for its labels.
func (a *applier) applyPoint(app storage.Appender, line []byte) error {
	key, split, v, ms, ok := splitCanonicalPoint(a.key[:0], line)
	if ok {
		a.key = key
		return a.s.metrics.append(app, key, split, func() (labels.Labels, error) { return a.pointLabels(line) }, ms, v)
	}
	// A shape AppendPoint writes only in corner cases (no timestamp, for
	// a point at the epoch): decode it fully and skip the cache.
	lset, err := a.pointLabels(line)
	if err != nil {
		return err
	}
	_, err = app.Append(0, lset, a.dec.TimestampMillis(), a.point.Value)
	return err
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
	sp, v, ok := leadingInt(b)
	if !ok {
		if sp = bytes.IndexByte(b, ' '); sp <= 0 {
			return 0, 0, 0, false
		}
		var err error
		if v, err = strconv.ParseFloat(string(b[:sp]), 64); err != nil {
			return 0, 0, 0, false
		}
	}
	ts := b[sp+1:]
	ms, n := leadingDigits(ts)
	if n == 0 || n > maxTimeDigits || !bytes.HasPrefix(ts[n:], []byte(" source=")) {
		return 0, 0, 0, false
	}
	return v, ms, sp + 1 + n, true
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
