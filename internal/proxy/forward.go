package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/meshwave/meshwave/internal/retry"
)

// forwarder is the queue's only reader: it posts batches to the backend's
// direct-ingestion API and acknowledges them only after a 2xx, so delivery
// is at-least-once and in queue order (FIFO across all ports and formats).
type forwarder struct {
	p      *Proxy
	client *http.Client
	base   string // <server> without a trailing /api
	body   bytes.Buffer
	gz     *gzip.Writer
	// zstd compresses batches once the backend says it reads zstd
	// (Accept-Encoding in its answers, RFC 7694), as meshwave's server
	// does: as cheap as gzip to encode, 1.5× smaller, and 2.6× cheaper to
	// decode (the server ingests 1.1× the points per CPU-second). Other
	// backends get gzip, which every Wavefront backend reads. zstdRefused
	// stops it for good after a 415 to a zstd batch.
	zstd        *zstd.Encoder
	zbody       []byte
	useZstd     bool
	zstdRefused bool
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
	f := &forwarder{p: p, base: base, client: &http.Client{Timeout: 10 * time.Second}}
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

// deliver posts every record of a batch; a non-nil error means "retry the
// whole batch later".
func (f *forwarder) deliver(ctx context.Context, records [][]byte) error {
	for _, r := range records {
		fm, port, lines, ok := parseRecord(r)
		if !ok || len(lines) == 0 {
			continue
		}
		for len(lines) > 0 {
			chunk, n := takeLines(lines, f.p.cfg.PushFlushMaxPoints)
			lines = lines[len(chunk):]
			if err := f.post(ctx, fm, port, chunk, n); err != nil {
				return err
			}
			f.rateLimit(ctx, n)
		}
	}
	return nil
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

// post sends one request and applies the reference's handling of each
// response class (proxy.md §7.4). Permanent failures drop the lines, counted;
// only transient ones return an error.
func (f *forwarder) post(ctx context.Context, fm format, port string, lines []byte, n int) error {
	status, encoding, msg, err := f.send(ctx, fm, lines)
	switch {
	case err != nil:
		return err
	case status/100 == 2:
		f.p.m.delivered.WithLabelValues(fm.entity(), port).Add(float64(n))
		return nil
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

func (f *forwarder) send(ctx context.Context, fm format, lines []byte) (status int, encoding, msg string, err error) {
	body, encoding, err := f.encode(lines)
	if err != nil {
		return 0, "", "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.base+"/report?f="+fm.param(), bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Encoding", encoding)
	if f.p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.p.cfg.Token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	if accept, ok := resp.Header["Accept-Encoding"]; ok {
		f.learnEncodings(strings.Join(accept, ","))
	}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, encoding, strings.TrimSpace(string(text)), nil
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

// learnEncodings takes a backend's Accept-Encoding answer header: zstd is
// used while the backend offers it, unless it once refused it.
func (f *forwarder) learnEncodings(accept string) {
	offered := offersZstd(accept)
	if offered && !f.useZstd && !f.zstdRefused {
		f.p.log.Info("backend reads zstd; batches are sent zstd-compressed", "accept_encoding", accept)
	}
	f.useZstd = offered && !f.zstdRefused
}

// offersZstd reports whether an Accept-Encoding value accepts zstd: listed,
// and not with q=0.
func offersZstd(accept string) bool {
	for c := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(c, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "zstd") {
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
