package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshwave/meshwave/internal/queue"
	"github.com/meshwave/meshwave/internal/retry"
)

// Kind is the kind of canonical Wavefront lines in a Record.
type Kind byte

// Record kinds.
const (
	Points Kind = iota + 1
	Histograms
	Spans
	SpanLogs
)

// Record is a run of canonical Wavefront lines of one kind, each ending in
// '\n', as the server has stored them.
type Record struct {
	Kind  Kind
	Lines []byte
}

// Config configures one exporter. Zero values take the defaults noted.
type Config struct {
	// URL is the remote-write URL, or the OTLP/HTTP base endpoint (spans
	// go to URL/v1/traces). Empty disables the exporter. Basic-auth
	// credentials may be given in it (https://user:pass@host/...); logs
	// show it redacted.
	URL string
	// Header is sent with every request (e.g. Authorization, X-Scope-OrgID).
	Header http.Header
	// MaxQueueBytes bounds the exporter's on-disk queue (default 1 GiB,
	// at least 4 MiB); beyond it the oldest data is dropped, counted in
	// meshwave_queue_dropped_records_total{queue="export_<name>"}.
	MaxQueueBytes int64
	// MaxItemsPerRequest caps samples (remote write, default 2000) or spans
	// (OTLP, default 1000) per request.
	MaxItemsPerRequest int
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the retry delay, which doubles per
	// failed attempt with jitter (defaults 250 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Linger is how long the OTLP sender waits for more data after the
	// first record (default 1 s), so that spans and their span logs, which
	// senders post separately, are usually converted together. Remote
	// write does not linger.
	Linger time.Duration
}

// Defaults.
const (
	DefaultMaxQueueBytes = 1 << 30
	MinMaxQueueBytes     = 4 << 20
	defaultTimeout       = 30 * time.Second
	defaultMinBackoff    = 250 * time.Millisecond
	defaultMaxBackoff    = 30 * time.Second
	// readBytes is how much the sender takes from its queue at once.
	readBytes = 1 << 20
	// maxSegmentBytes is the queue's segment size unless MaxQueueBytes
	// forces smaller ones; records are cut to half a segment.
	maxSegmentBytes = 8 << 20
	// failureLogEvery rate-limits the warnings of a remote that stays down.
	failureLogEvery = time.Minute
	// dropLogEvery rate-limits the log of dropped data.
	dropLogEvery = 10 * time.Second
	// maxAnswer bounds how much of an answer is read (and logged).
	maxAnswer = 512
	// maxSplitRequests bounds the extra requests spent isolating the items
	// a remote refuses in one request (see deliver): enough to find a few
	// bad samples among thousands (about 2·log2(n) each), few enough that
	// a remote refusing everything costs little.
	maxSplitRequests = 64
)

// converter turns queued records into requests for one protocol.
type converter interface {
	// accepts reports whether records of kind k are exported at all.
	accepts(k Kind) bool
	// convert decodes the records (each a kind byte then lines) and calls
	// send with each request, in order. It returns the first error send
	// returns.
	convert(recs [][]byte, send func(request) error) error
	// setHeaders sets the content headers of every request.
	setHeaders(h http.Header)
	// rejected reads a 2xx answer's body for items the remote refused
	// although it accepted the request (OTLP partial success).
	rejected(answer []byte) (items int, msg string)
}

// request is one request's worth of items, valid during the send call.
type request interface {
	items() int
	// encode returns the body carrying items [lo, hi), valid until the
	// next encode.
	encode(lo, hi int) ([]byte, error)
	// splittable reports whether parts of the request may be sent on
	// their own, to isolate the items a remote refuses.
	splittable() bool
}

// encoded is a request that was encoded whole and cannot be split.
type encoded struct {
	body []byte
	n    int
}

func (r encoded) items() int                      { return r.n }
func (r encoded) encode(int, int) ([]byte, error) { return r.body, nil }
func (r encoded) splittable() bool                { return false }

// Exporter forwards what the server has stored to a remote system through
// a durable queue of its own; see the package doc.
type Exporter struct {
	url    string
	header http.Header
	cfg    Config
	log    *slog.Logger
	m      *metrics
	q      *queue.Queue
	conv   converter
	client *http.Client
	linger time.Duration
	maxRec int
	mu     sync.Mutex // serialises Add's use of buf
	buf    []byte
	recs   [][]byte
	// lastAddErr rate-limits the log of a failing disk, which every Add
	// would otherwise repeat.
	lastAddErr time.Time
	// lastDropLog and warnedAt (the last warning about a failing remote)
	// rate-limit the sender's logs, so a flaky remote does not flood them;
	// warned says a warning awaits its "accepts again".
	lastDropLog, warnedAt time.Time
	warned                bool
	stop                  context.CancelFunc
	done                  chan struct{}
	closeMu               sync.Once
}

// open creates the exporter called name with its queue in dir and starts
// its sender.
func open(name, dir, endpoint string, cfg Config, conv converter, m *metrics, reg prometheus.Registerer, log *slog.Logger) (*Exporter, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("export %s: URL %q is not an http(s) URL", name, cfg.URL)
	}
	if cfg.MaxQueueBytes == 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if cfg.MaxQueueBytes < MinMaxQueueBytes {
		return nil, fmt.Errorf("export %s: max queue bytes %d below the minimum %d", name, cfg.MaxQueueBytes, MinMaxQueueBytes)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if log == nil {
		log = slog.Default()
	}
	log = log.With("exporter", name, "url", u.Redacted())
	segment := min(maxSegmentBytes, cfg.MaxQueueBytes/4)
	q, err := queue.Open(dir, queue.Options{
		MaxBytes:     cfg.MaxQueueBytes,
		SegmentBytes: segment,
		Logger:       log,
		Metrics:      queue.NewMetrics(reg, "export_"+name),
	})
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	// The headers are the same for every request: built once, the
	// converter's content headers overriding the configured ones.
	header := cfg.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	conv.setHeaders(header)
	e := &Exporter{
		url:    endpoint,
		header: header,
		cfg:    cfg,
		log:    log,
		m:      m,
		q:      q,
		conv:   conv,
		client: &http.Client{Timeout: cfg.Timeout, Transport: transport()},
		linger: cfg.Linger,
		maxRec: int(segment / 2),
		done:   make(chan struct{}),
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go func() { defer close(e.done); e.run(ctx) }()
	return e, nil
}

// transport is the default one with a write buffer that takes a typical
// request body in a few syscalls instead of one per 4 KiB.
func transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.WriteBufferSize = 64 << 10
	return tr
}

// Add queues the records this exporter exports and returns once they are
// durable in its queue, so a crash after Add loses nothing. It never waits
// for the remote: a full queue drops its oldest data instead. Failures to
// queue are logged and counted, not returned, because the caller's data
// is already stored and must not be held up by an exit.
func (e *Exporter) Add(recs []Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf, e.recs = e.buf[:0], e.recs[:0]
	var bounds [][2]int // record boundaries in buf: buf may move while growing
	for _, r := range recs {
		if !e.conv.accepts(r.Kind) {
			continue
		}
		lines := r.Lines
		for len(lines) > 0 {
			chunk := cutLines(lines, e.maxRec-1)
			if len(chunk) == 0 {
				// One line longer than a queue record cannot be queued.
				end := bytes.IndexByte(lines, '\n') + 1
				if end == 0 {
					end = len(lines)
				}
				e.m.dropped.WithLabelValues("line_too_large").Inc()
				e.log.Warn("a line is too large for the export queue; dropped", "bytes", end, "limit", e.maxRec-1)
				lines = lines[end:]
				continue
			}
			start := len(e.buf)
			e.buf = append(append(e.buf, byte(r.Kind)), chunk...)
			bounds = append(bounds, [2]int{start, len(e.buf)})
			lines = lines[len(chunk):]
		}
	}
	if len(bounds) == 0 {
		return
	}
	for _, s := range bounds {
		e.recs = append(e.recs, e.buf[s[0]:s[1]])
	}
	if err := e.q.Append(e.recs...); err != nil {
		e.m.dropped.WithLabelValues("queue_error").Add(float64(bytes.Count(e.buf, []byte{'\n'})))
		if now := time.Now(); now.Sub(e.lastAddErr) >= failureLogEvery {
			e.lastAddErr = now
			e.log.Error("queueing data for export failed; it is not exported (logged once a minute)", "err", err)
		}
	}
}

// cutLines returns the longest prefix of whole lines of b within limit
// bytes (a last line without '\n' counts as whole).
func cutLines(b []byte, limit int) []byte {
	if len(b) <= limit {
		return b
	}
	i := bytes.LastIndexByte(b[:limit], '\n')
	return b[:i+1]
}

// Close stops the sender, abandoning a request in flight, and closes the
// queue. Whatever was not delivered stays queued for the next start.
func (e *Exporter) Close() error {
	var err error
	e.closeMu.Do(func() {
		e.stop()
		<-e.done
		err = e.q.Close()
	})
	return err
}

// Pending is the number of queued records not yet delivered or dropped.
func (e *Exporter) Pending() int64 { return e.q.Len() }

// run is the queue's only reader: it converts batches, delivers them and
// acknowledges them once every request built from them was accepted or
// permanently refused.
func (e *Exporter) run(ctx context.Context) {
	var batches []queue.Batch
	var recs [][]byte
	for {
		b, err := e.q.Read(ctx, readBytes)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			e.log.Error("reading the export queue failed", "err", err)
			retry.Sleep(ctx, time.Second)
			continue
		}
		batches = append(batches[:0], b)
		batches = e.gather(ctx, batches, b.Bytes())
		recs = recs[:0]
		for _, b := range batches {
			recs = append(recs, b.Records...)
		}
		if err := e.conv.convert(recs, func(r request) error { return e.deliver(ctx, r) }); err != nil {
			return // only the end of ctx stops delivery; the batches stay queued
		}
		for _, b := range batches {
			if err := e.q.Ack(b); err != nil {
				e.log.Error("acknowledging exported data failed; it may be sent again after a restart", "err", err)
			}
		}
	}
}

// gather lingers for more records after the first batch, up to readBytes,
// so that data sent in separate requests (a span and its span logs) can
// meet in one conversion.
func (e *Exporter) gather(ctx context.Context, batches []queue.Batch, size int) []queue.Batch {
	if e.linger <= 0 {
		return batches
	}
	lctx, cancel := context.WithTimeout(ctx, e.linger)
	defer cancel()
	for size < readBytes {
		b, err := e.q.Read(lctx, readBytes-size)
		if err != nil {
			break
		}
		batches = append(batches, b)
		size += b.Bytes()
	}
	return batches
}

// deliver sends r until the remote accepts it or refuses it for good; it
// returns an error only when ctx ends. A request refused with 400 or 413
// is sent again in halves, recursively, within a budget of
// maxSplitRequests, so that one sample a remote cannot take (out of
// order, say, which Prometheus answers with a 400 for the whole request)
// costs that sample, not the other thousands.
func (e *Exporter) deliver(ctx context.Context, r request) error {
	budget := maxSplitRequests
	return e.deliverRange(ctx, r, 0, r.items(), &budget)
}

func (e *Exporter) deliverRange(ctx context.Context, r request, lo, hi int, budget *int) error {
	items := hi - lo
	body, err := r.encode(lo, hi)
	if err != nil {
		// Encoding plain structs does not fail; should it, say so.
		e.m.dropped.WithLabelValues("marshal_error").Add(float64(items))
		e.log.Error("encoding a request failed; its data is dropped", "err", err, "items", items)
		return nil
	}
	for attempt := 1; ; attempt++ {
		status, retryAfter, answer, err := e.post(ctx, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.ToValidUTF8(strings.TrimSpace(string(answer)), "?")
		switch {
		case err == nil && status/100 == 2:
			e.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
			if n, why := e.conv.rejected(answer); n > 0 {
				n = min(n, items)
				e.drop("partially_rejected", n, "remote accepted a request but rejected part of it", "reason", why)
				items -= n
			}
			e.m.sent.Add(float64(items))
			if e.warned {
				e.log.Info("remote accepts data again")
				e.warned = false
			}
			return nil
		case err == nil && !retryable(status):
			e.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
			if (status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge) && items > 1 && r.splittable() && *budget >= 2 {
				*budget -= 2
				mid := lo + items/2
				if err := e.deliverRange(ctx, r, lo, mid, budget); err != nil {
					return err
				}
				return e.deliverRange(ctx, r, mid, hi, budget)
			}
			e.drop("http_"+strconv.Itoa(status), items, "remote refused a request; its data is dropped", "status", status, "body", msg)
			return nil
		}
		code := "error"
		if err == nil {
			code = strconv.Itoa(status)
			err = fmt.Errorf("HTTP %d: %s", status, msg)
		}
		e.m.requests.WithLabelValues(code).Inc()
		e.m.retries.Inc()
		wait := max(retry.Backoff(attempt, e.cfg.MinBackoff, e.cfg.MaxBackoff), min(retryAfter, e.cfg.MaxBackoff))
		if now := time.Now(); now.Sub(e.warnedAt) >= failureLogEvery {
			e.warnedAt, e.warned = now, true
			e.log.Warn("remote unavailable; data stays queued and is retried", "err", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "queued_bytes", e.q.Bytes())
		}
		if !retry.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// drop counts n items dropped for reason and logs it, at most once per
// dropLogEvery (a remote refusing everything would otherwise flood the
// log); the counter has every drop.
func (e *Exporter) drop(reason string, n int, msg string, args ...any) {
	e.m.dropped.WithLabelValues(reason).Add(float64(n))
	if now := time.Now(); now.Sub(e.lastDropLog) >= dropLogEvery {
		e.lastDropLog = now
		e.log.Error(msg, append(args, "items", n, "reason_label", reason)...)
	}
}

// post sends one request and returns its status, Retry-After and the start
// of the answer.
func (e *Exporter) post(ctx context.Context, body []byte) (int, time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, err
	}
	for k, vs := range e.header {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	// Drained (bounded) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, retryAfterOf(resp.Header.Get("Retry-After")), answer, nil
}

// retryable: push-back (429), timeouts (408) and server trouble. Every
// other answer is final: resending the same body cannot change it.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// retryAfterOf reads a Retry-After in seconds; dates and junk count as none.
func retryAfterOf(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
