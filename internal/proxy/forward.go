package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/meshwave/meshwave/internal/retry"
)

// forwarder is the queue's only reader: it posts batches to the backend's
// direct-ingestion API and acknowledges them only after a 2xx, so delivery
// is at-least-once, and in queue order per format and port (see deliver).
type forwarder struct {
	p      *Proxy
	client *http.Client
	base   string // <server> without a trailing /api
	body   bytes.Buffer
	gz     *gzip.Writer
	// zstd compresses batches once the backend says it reads zstd
	// (Accept-Encoding in its answers, RFC 7694): as cheap as gzip to
	// encode, 1.5× smaller, and 2.6× cheaper to decode (meshwave's server
	// ingests 1.1× the points per CPU-second), for what does not go as s2.
	// Other backends get gzip, which every Wavefront backend reads.
	// zstdRefused stops it for good after a 415 to a zstd batch.
	zstd        *zstd.Encoder
	zbody       []byte
	useZstd     bool
	zstdRefused bool
	// useS2: the backend reads s2, so the S2 blocks the queue holds are
	// posted as they are, joined, with no decoding or compressing
	// (meshwave's server). s2Refused stops it for good after a 415 to one.
	useS2, s2Refused bool
	// Reused from post to post: the blocks joined for a post, and the
	// records stored as lines compressed for it (encoded, ending at ends);
	// the lines joined for a post otherwise (plain).
	blocks  [][]byte
	encoded []byte
	ends    []int
	joined  []byte
	plain   []byte
}

// Backoff bounds for retrying a backend that is down or pushing back.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
	readBytes  = 4 << 20 // one batch read from the queue
)

func newForwarder(p *Proxy) *forwarder {
	base := strings.TrimSuffix(p.cfg.Server, "/")
	// A reference wavefront.conf names the proxy API (…/api/); direct
	// ingestion lives at the root.
	base = strings.TrimSuffix(base, "/api")
	// A post goes out in one write(2), its headers and body together,
	// instead of the headers with the body's first 4 KiB and then the rest
	// through a 32 KiB copy buffer the transport allocates for each post.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.WriteBufferSize = 64 << 10
	f := &forwarder{p: p, base: base, client: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
	// Speed over ratio: the link to the backend is rarely the bottleneck,
	// the proxy's CPU is.
	f.gz, _ = gzip.NewWriterLevel(&f.body, gzip.BestSpeed)
	return f
}

func (f *forwarder) run(ctx context.Context) {
	failures := 0
	for {
		b, err := f.p.queue.Read(ctx, readBytes)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.p.log.Error("reading the queue failed", "err", err)
			retry.Sleep(ctx, time.Second)
			continue
		}
		if err := f.deliver(ctx, b.Records); err != nil {
			f.p.queue.Nack(b)
			f.p.m.retries.Inc()
			failures++
			wait := retry.Backoff(failures, minBackoff, maxBackoff)
			f.p.log.Warn("backend unavailable; data stays queued and will be retried", "err", err, "retry_in", wait.Round(time.Millisecond), "queued_bytes", f.p.queue.Bytes())
			if !retry.Sleep(ctx, wait) {
				return
			}
			continue
		}
		failures = 0
		if err := f.p.queue.Ack(b); err != nil {
			f.p.log.Error("acknowledging a delivered batch failed; it may be sent again after a restart", "err", err)
		}
	}
}

// maxPostBytes caps the lines one post carries, before compression, when
// the forwarder joins records: meshwave's server reads bodies of up to
// 16 MiB, and a 413 from any backend splits a post anyway.
const maxPostBytes = 4 << 20

// group is the records of one format and port in a batch, in queue order.
type group struct {
	f    format
	port string
	recs []record
}

// deliver posts a batch's records, those of one format and port together
// in as few posts as --pushFlushMaxPoints and maxPostBytes allow, rather
// than a post per record: a Zipkin body is two records (spans and span
// logs), and Envoy posts 5 spans at a time. Delivery is therefore FIFO per
// format and port; across them, FIFO between batches. A non-nil error
// means "retry the whole batch later".
func (f *forwarder) deliver(ctx context.Context, records [][]byte) error {
	var groups []group // a few: formats × ports
	for _, r := range records {
		rec, ok := parseRecord(r)
		if !ok || len(rec.body) == 0 {
			continue
		}
		i := slices.IndexFunc(groups, func(g group) bool { return g.f == rec.f && g.port == rec.port })
		if i < 0 {
			i = len(groups)
			groups = append(groups, group{f: rec.f, port: rec.port})
		}
		groups[i].recs = append(groups[i].recs, rec)
	}
	for _, g := range groups {
		for recs := g.recs; len(recs) > 0; {
			n, lines := f.postable(recs)
			if err := f.deliverRecords(ctx, g.f, g.port, recs[:n], lines); err != nil {
				return err
			}
			recs = recs[n:]
		}
	}
	return nil
}

// postable returns how many of recs, at least one, go in one post, and
// their lines.
func (f *forwarder) postable(recs []record) (n, lines int) {
	size := 0
	for _, r := range recs {
		l, b := r.lineCount(), r.decodedLen()
		if n > 0 && (lines+l > f.p.cfg.PushFlushMaxPoints || size+b > maxPostBytes) {
			break
		}
		n, lines, size = n+1, lines+l, size+b
	}
	return n, lines
}

// deliverRecords posts records of one format and port: their S2 blocks
// joined into one, as they are, to a backend that reads s2; otherwise
// their lines, compressed, in posts of at most --pushFlushMaxPoints.
func (f *forwarder) deliverRecords(ctx context.Context, fm format, port string, recs []record, lines int) error {
	if f.useS2 && lines <= f.p.cfg.PushFlushMaxPoints {
		if block, ok := f.joinBlocks(recs); ok {
			sent, err := f.postBlock(ctx, fm, port, block, lines)
			if err != nil {
				return err
			}
			if sent {
				f.rateLimit(ctx, lines)
				return nil
			}
		}
	}
	for all := f.joinLines(fm, recs); len(all) > 0; {
		chunk, n := takeLines(all, f.p.cfg.PushFlushMaxPoints)
		all = all[len(chunk):]
		if err := f.post(ctx, fm, port, chunk, n); err != nil {
			return err
		}
		f.rateLimit(ctx, n)
	}
	return nil
}

// joinBlocks returns recs as one S2 block, in buffers reused for the next
// call: S2 blocks concatenate by their headers alone (s2.ConcatBlocks),
// and a record stored as lines, because S2 did not shrink it, is
// compressed for it. Every record ends its last line with '\n' (staging
// writes whole lines), so lines do not run together. ok is false if a
// block's header does not read.
func (f *forwarder) joinBlocks(recs []record) (block []byte, ok bool) {
	if len(recs) == 1 && recs[0].s2 {
		return recs[0].body, true
	}
	// The records stored as lines are compressed first, one after the
	// other into f.encoded, so that no block moves once sliced.
	f.encoded, f.ends = f.encoded[:0], f.ends[:0]
	for _, r := range recs {
		if !r.s2 {
			at, room := len(f.encoded), s2.MaxEncodedLen(len(r.body))
			f.encoded = slices.Grow(f.encoded, room)
			f.encoded = f.encoded[:at+len(s2.Encode(f.encoded[at:at+room], r.body))]
			f.ends = append(f.ends, len(f.encoded))
		}
	}
	f.blocks = f.blocks[:0]
	at, k := 0, 0
	for _, r := range recs {
		b := r.body
		if !r.s2 {
			b, at, k = f.encoded[at:f.ends[k]], f.ends[k], k+1
		}
		f.blocks = append(f.blocks, b)
	}
	joined, err := s2.ConcatBlocks(f.joined[:0], f.blocks...)
	if err != nil {
		return nil, false
	}
	f.joined = joined
	return joined, true
}

// joinLines returns the lines of recs, in a buffer reused for the next
// call. A record that does not decode is dropped, counted and logged: the
// queue checked its checksum, so this is a bug, not damage, and retrying
// would block the queue.
func (f *forwarder) joinLines(fm format, recs []record) []byte {
	if len(recs) == 1 && !recs[0].s2 {
		return recs[0].body
	}
	f.plain = f.plain[:0]
	for _, r := range recs {
		at := len(f.plain)
		if r.s2 {
			n, err := s2.DecodedLen(r.body)
			if err == nil {
				f.plain = slices.Grow(f.plain, n)
				_, err = s2.Decode(f.plain[at:at+n], r.body)
				f.plain = f.plain[:at+n]
			}
			if err != nil {
				f.plain = f.plain[:at]
				f.p.log.Error("cannot decode a queued record; lines dropped", "err", err, "lines", r.lines)
				f.p.m.dropped.WithLabelValues(fm.entity()).Add(float64(r.lines))
				continue
			}
		} else {
			f.plain = append(f.plain, r.body...)
		}
		if len(f.plain) > at && f.plain[len(f.plain)-1] != '\n' {
			f.plain = append(f.plain, '\n')
		}
	}
	return f.plain
}

// takeLines returns the first max lines of b and their count.
func takeLines(b []byte, max int) ([]byte, int) {
	n, end := 0, 0
	for n < max && end < len(b) {
		i := bytes.IndexByte(b[end:], '\n')
		if i < 0 {
			end = len(b)
		} else {
			end += i + 1
		}
		n++
	}
	return b[:end], n
}

// post sends lines in one request and applies the reference's handling of
// each response class (proxy.md §7.4). Permanent failures drop the lines,
// counted; only transient ones return an error.
func (f *forwarder) post(ctx context.Context, fm format, port string, lines []byte, n int) error {
	body, encoding, err := f.encode(lines)
	if err != nil {
		return err
	}
	status, msg, err := f.send(ctx, fm, body, encoding)
	switch {
	case err != nil:
		return err
	case status == http.StatusRequestEntityTooLarge && n > 1:
		// Too large: split in halves and send each.
		first, k := takeLines(lines, n/2)
		if err := f.post(ctx, fm, port, first, k); err != nil {
			return err
		}
		return f.post(ctx, fm, port, lines[len(first):], n-k)
	case status == http.StatusUnsupportedMediaType && encoding == "zstd":
		// Something on the way to a backend that offered zstd does not
		// read it: gzip from now on.
		f.useZstd, f.zstdRefused = false, true
		f.p.log.Warn("backend refused a zstd batch; sending gzip from now on", "body", msg)
		return f.post(ctx, fm, port, lines, n)
	}
	return f.outcome(fm, port, n, status, msg)
}

// postBlock posts an S2 block of n lines as it is. sent is false when the
// backend wants it otherwise (413: split it; 415: it does not read s2
// after all, and gets none from now on); the caller then sends its lines.
func (f *forwarder) postBlock(ctx context.Context, fm format, port string, block []byte, n int) (sent bool, err error) {
	status, msg, err := f.send(ctx, fm, block, "s2")
	switch {
	case err != nil:
		return false, err
	case status == http.StatusUnsupportedMediaType:
		f.useS2, f.s2Refused = false, true
		f.p.log.Warn("backend refused an s2 batch; compressing batches again from now on", "body", msg)
		return false, nil
	case status == http.StatusRequestEntityTooLarge && n > 1:
		return false, nil
	}
	return true, f.outcome(fm, port, n, status, msg)
}

// outcome counts n lines delivered on a 2xx, drops them (counted and logged)
// on an answer that retrying cannot change, and returns an error for the
// caller to retry otherwise.
func (f *forwarder) outcome(fm format, port string, n, status int, msg string) error {
	switch {
	case status/100 == 2:
		f.p.m.delivered.WithLabelValues(fm.entity(), port).Add(float64(n))
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		f.p.log.Error(`backend refused the token; please verify that "`+fm.entity()+`" is enabled for your account; lines dropped`, "status", status, "lines", n, "body", msg)
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		f.p.log.Error("backend cannot read the batch; lines dropped", "status", status, "lines", n, "body", msg)
	default: // 406/429 pushback, 407/408, other 4xx and 5xx: keep and retry
		return fmt.Errorf("backend answered %d: %s", status, msg)
	}
	f.p.m.dropped.WithLabelValues(fm.entity()).Add(float64(n))
	return nil
}

// send posts body, in encoding, and takes note of the codings the backend
// offers in its answer.
func (f *forwarder) send(ctx context.Context, fm format, body []byte, encoding string) (status int, msg string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.base+"/report?f="+fm.param(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Encoding", encoding)
	if f.p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.p.cfg.Token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if accept, ok := resp.Header["Accept-Encoding"]; ok {
		f.learnEncodings(strings.Join(accept, ","))
	}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(text)), nil
}

// encode compresses lines for the backend, into f.zbody or f.body.
func (f *forwarder) encode(lines []byte) ([]byte, string, error) {
	if f.useZstd {
		if f.zstd == nil {
			// Without zstd's optional checksum (5 % of a forwarding proxy's
			// CPU), as Prometheus remote write sends its snappy blocks: TCP
			// and TLS guard the bytes, and the server validates every line.
			f.zstd, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		}
		f.zbody = f.zstd.EncodeAll(lines, f.zbody[:0])
		return f.zbody, "zstd", nil
	}
	f.body.Reset()
	f.gz.Reset(&f.body)
	if _, err := f.gz.Write(lines); err != nil {
		return nil, "", err
	}
	if err := f.gz.Close(); err != nil {
		return nil, "", err
	}
	return f.body.Bytes(), "gzip", nil
}

// learnEncodings takes a backend's Accept-Encoding answer header: s2 and
// zstd are used while the backend offers them, unless it once refused them.
func (f *forwarder) learnEncodings(accept string) {
	s2OK, zstdOK := offers(accept, "s2") && !f.s2Refused, offers(accept, "zstd") && !f.zstdRefused
	if s2OK && !f.useS2 {
		f.p.log.Info("backend reads s2; compressed batches are sent as the queue holds them", "accept_encoding", accept)
	} else if zstdOK && !f.useZstd && !s2OK {
		f.p.log.Info("backend reads zstd; batches are sent zstd-compressed", "accept_encoding", accept)
	}
	f.useS2, f.useZstd = s2OK, zstdOK
}

// offers reports whether an Accept-Encoding value accepts coding: listed,
// and not with q=0.
func offers(accept, coding string) bool {
	for c := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(c, ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				q, err := strconv.ParseFloat(v, 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}

// rateLimit holds the forwarder to --pushRateLimit lines per second.
func (f *forwarder) rateLimit(ctx context.Context, n int) {
	if r := f.p.cfg.PushRateLimit; r > 0 {
		retry.Sleep(ctx, time.Duration(float64(n)/r*float64(time.Second)))
	}
}
