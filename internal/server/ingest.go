package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

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
	// stored them.
	var recs [][]byte
	rec := newFrame(s.frames.get(), f, received, recordCap(len(body)))
	var (
		point wavefront.Point
		dist  wavefront.Distribution
		span  wavefront.Span
		sl    wavefront.SpanLogs
	)
	lineNo, rejected := 0, 0
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
			recs = append(recs, rec)
			rec = newFrame(s.frames.get(), f, received, recordCap(len(line)+1+len(body)))
		}
		before := len(rec)
		err = nil
		switch f {
		case fmtPoint:
			rec, err = appendPoint(rec, dec, line, &point)
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
		recs = append(recs, rec)
	} else {
		s.frames.put(rec)
	}
	if len(recs) > 0 {
		if err := s.wal.append(recs...); err != nil {
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

// frameBuffers recycles WAL frame buffers. Frames stay with the WAL and
// the applier until stored, so more of them are in use at once than a
// sync.Pool, emptied by every other GC, keeps: fresh megabytes then cost
// the handler zeroing and page faults. The list keeps up to maxBytes of
// them for good.
type frameBuffers struct {
	mu       sync.Mutex
	free     [][]byte
	bytes    int
	maxBytes int
}

// maxFrameBuffers is the memory frameBuffers keeps: frames of a few
// applier batches (readBytes each) and the requests being handled.
const maxFrameBuffers = 4 * readBytes

// get returns an empty buffer, nil if none is free.
func (l *frameBuffers) get() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.free)
	if n == 0 {
		return nil
	}
	b := l.free[n-1]
	l.free[n-1] = nil
	l.free = l.free[:n-1]
	l.bytes -= cap(b)
	return b[:0]
}

// put keeps b for get, if there is room.
func (l *frameBuffers) put(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bytes+cap(b) <= l.maxBytes {
		l.free = append(l.free, b)
		l.bytes += cap(b)
	}
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
// its reason, go the general way. (A timestamp under a second, possible
// only without a Backfill limit, would not be written by the one pass.)
func appendPoint(rec []byte, dec *wavefront.Decoder, line []byte, p *wavefront.Point) ([]byte, error) {
	if out, ok := dec.AppendCanonicalPoint(rec, line); ok && dec.TimestampMillis() >= 1000 {
		return inMillis(out, len(rec), dec.TimestampMillis()), nil
	}
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
