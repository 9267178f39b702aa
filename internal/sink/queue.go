package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// blockSize is the unit of queue memory and of one TCP/file write: large
// enough to amortise syscalls, small enough to keep pooled blocks cheap.
const blockSize = 64 << 10

// block holds whole lines. buf[off:] is what is left to send; start is the
// stream offset (bytes accepted by Write before it) of buf[off], which lets
// Flush tell when everything before a point has been dealt with.
type block struct {
	buf    []byte
	off    int
	lines  int
	start  int64
	sentAt time.Time // TCP replay only
}

func (b *block) data() []byte { return b.buf[b.off:] }

// transport delivers one block at a time, always from the writer goroutine.
type transport interface {
	// send delivers b. On success the transport owns b and must hand it
	// back with core.release once done with it; on error the core keeps it
	// and will offer it again (or give up on it).
	send(ctx context.Context, b *block) error
	// pending reports work the transport has besides the queue: a TCP
	// connection that died with recently written bytes to replay. The core
	// then calls send with an empty block.
	pending() bool
	// close releases the connection or file once the writer goroutine has
	// stopped.
	close() error
}

// retryAfterer is an error that knows the earliest sensible retry.
type retryAfterer interface{ retryAfter() time.Duration }

// statusError is a destination's refusal. permanent ones are not retried.
type statusError struct {
	code      int
	body      string
	permanent bool
	after     time.Duration // from Retry-After
}

func (e *statusError) retryAfter() time.Duration { return e.after }

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

// core is the queue and delivery loop shared by every transport; it is the
// Writer returned by the constructors.
type core struct {
	opt  Options
	log  *slog.Logger
	logs *logLimiter
	m    sinkMetrics
	t    transport

	// batchLines > 0 makes the core hand out batches of up to that many
	// lines (HTTP); otherwise it hands out whole blocks (TCP, file).
	batchLines int
	batch      *block // reused buffer for line batches
	pool       sync.Pool

	ctx    context.Context // cancelled to abort delivery (Close timed out)
	cancel context.CancelFunc
	wake   chan struct{}
	exited chan struct{}
	closed sync.Once

	mu            sync.Mutex
	queue         []*block
	queuedBytes   int
	queuedLines   int
	enqueued      int64 // bytes accepted by Write, ever
	lost          int64 // lines dropped or rejected, ever
	inflight      bool
	inflightStart int64
	inflightBytes int
	flushWanted   bool
	closing       bool
	progress      chan struct{} // closed and replaced whenever the watermark moves
}

func newCore(opt Options, m *Metrics, log *slog.Logger, dest string) *core {
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("sink", opt.Name, "dest", dest)
	ctx, cancel := context.WithCancel(context.Background())
	return &core{
		opt:        opt,
		log:        log,
		logs:       newLogLimiter(log, opt.LogInterval),
		m:          m.forSink(opt.Name),
		batchLines: opt.BatchLines,
		ctx:        ctx,
		cancel:     cancel,
		wake:       make(chan struct{}, 1),
		exited:     make(chan struct{}),
		progress:   make(chan struct{}),
	}
}

// start runs the delivery loop over t.
func (c *core) start(t transport) *core {
	c.t = t
	go c.run()
	return c
}

func (c *core) getBlock(n int) *block {
	if n <= blockSize {
		if b, ok := c.pool.Get().(*block); ok {
			return b
		}
		n = blockSize
	}
	return &block{buf: make([]byte, 0, n)}
}

// release recycles b. Oversized blocks (one huge chunk) go to the GC.
func (c *core) release(b *block) {
	if b == c.batch || cap(b.buf) != blockSize {
		return
	}
	*b = block{buf: b.buf[:0]}
	c.pool.Put(b)
}

func (c *core) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Write implements Writer.
func (c *core) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	lines := bytes.Count(p, []byte{'\n'})
	c.mu.Lock()
	if c.closing {
		c.lost += int64(lines)
		c.mu.Unlock()
		c.m.errors.Add(float64(lines))
		c.logs.error("closed", "write after close; lines discarded", "lines", lines)
		return
	}
	var tail *block
	if n := len(c.queue); n > 0 {
		tail = c.queue[n-1]
	}
	if tail == nil || cap(tail.buf)-len(tail.buf) < len(p) {
		tail = c.getBlock(len(p))
		tail.start = c.enqueued
		c.queue = append(c.queue, tail)
	}
	tail.buf = append(tail.buf, p...)
	tail.lines += lines
	c.enqueued += int64(len(p))
	c.queuedBytes += len(p)
	c.queuedLines += lines
	dropped := c.trimLocked()
	ready := c.readyLocked()
	c.m.queueBytes.Set(float64(c.queuedBytes + c.inflightBytes))
	c.mu.Unlock()
	if dropped > 0 {
		c.logs.warn("overflow", "queue full; dropped oldest lines",
			"lines", dropped, "max_bytes", c.opt.MaxBufferBytes, "max_lines", c.opt.MaxBufferLines)
	}
	if ready {
		c.signal()
	}
}

// consumeLocked removes the first n bytes (l lines) of the head block h.
func (c *core) consumeLocked(h *block, n, l int) {
	h.off += n
	h.start += int64(n)
	h.lines -= l
	c.queuedBytes -= n
	c.queuedLines -= l
	if h.off == len(h.buf) {
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.release(h)
	}
}

// trimLocked drops whole lines from the head until the queue fits its
// bounds, and returns how many it dropped.
func (c *core) trimLocked() (dropped int) {
	for {
		needBytes := c.queuedBytes - c.opt.MaxBufferBytes
		needLines := 0
		if c.opt.MaxBufferLines > 0 {
			needLines = c.queuedLines - c.opt.MaxBufferLines
		}
		if needBytes <= 0 && needLines <= 0 {
			break
		}
		h := c.queue[0]
		n, l := cutLines(h.data(), needBytes, needLines)
		if n >= len(h.data()) {
			l = h.lines // also covers a malformed unterminated tail
		}
		c.consumeLocked(h, n, l)
		dropped += l
	}
	if dropped > 0 {
		c.m.dropped.Add(float64(dropped))
		c.lost += int64(dropped)
		c.broadcastLocked()
	}
	return dropped
}

// cutLines returns the length n of the shortest prefix of whole lines of d
// with at least minBytes bytes and minLines lines, and its line count l
// (n == len(d) if d is too short).
func cutLines(d []byte, minBytes, minLines int) (n, l int) {
	for n < len(d) && (n < minBytes || l < minLines) {
		i := bytes.IndexByte(d[n:], '\n')
		if i < 0 {
			return len(d), l
		}
		n += i + 1
		l++
	}
	return n, l
}

func (c *core) readyLocked() bool {
	if c.queuedBytes == 0 {
		return false
	}
	if c.flushWanted || c.closing || c.queuedBytes >= blockSize && c.batchLines == 0 {
		return true
	}
	return c.batchLines > 0 && c.queuedLines >= c.batchLines
}

// takeLocked removes the next unit to send from the queue.
func (c *core) takeLocked() *block {
	if c.batchLines == 0 {
		h := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queuedBytes -= len(h.data())
		c.queuedLines -= h.lines
		return h
	}
	if c.batch == nil {
		c.batch = &block{}
	}
	b := c.batch
	b.buf, b.off, b.lines, b.start = b.buf[:0], 0, 0, c.queue[0].start
	for len(c.queue) > 0 && b.lines < c.batchLines {
		h := c.queue[0]
		d := h.data()
		n, l := len(d), h.lines
		if l > c.batchLines-b.lines {
			n, l = cutLines(d, 0, c.batchLines-b.lines)
		}
		b.buf = append(b.buf, d[:n]...)
		b.lines += l
		c.consumeLocked(h, n, l)
	}
	return b
}

// watermarkLocked is the stream offset before which every byte has been
// delivered, dropped or rejected.
func (c *core) watermarkLocked() int64 {
	switch {
	case c.inflight:
		return c.inflightStart
	case len(c.queue) > 0:
		return c.queue[0].start
	}
	return c.enqueued
}

func (c *core) broadcastLocked() {
	close(c.progress)
	c.progress = make(chan struct{})
}

func (c *core) run() {
	defer close(c.exited)
	tick := time.NewTicker(c.opt.FlushInterval)
	defer tick.Stop()
	for {
		b := c.next(tick.C)
		if b == nil {
			return
		}
		c.deliver(b)
	}
}

// next waits for something worth sending; nil means stop.
func (c *core) next(tick <-chan time.Time) *block {
	for {
		if c.ctx.Err() != nil {
			return nil
		}
		c.mu.Lock()
		if c.readyLocked() {
			b := c.takeLocked()
			c.inflight, c.inflightStart, c.inflightBytes = true, b.start, len(b.data())
			if c.queuedBytes == 0 {
				c.flushWanted = false
			}
			c.mu.Unlock()
			return b
		}
		if c.t.pending() {
			wm := c.watermarkLocked()
			c.inflight, c.inflightStart, c.inflightBytes = true, wm, 0
			c.mu.Unlock()
			return &block{start: wm}
		}
		done := c.closing
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-c.wake:
		case <-tick:
			c.mu.Lock()
			c.flushWanted = c.queuedBytes > 0
			c.mu.Unlock()
		case <-c.ctx.Done():
			return nil
		}
	}
}

// deliver sends b until it is delivered, permanently refused, or delivery
// is aborted by Close.
func (c *core) deliver(b *block) {
	lines := b.lines
	for attempt := 0; ; attempt++ {
		err := c.t.send(c.ctx, b)
		if err == nil {
			if attempt > 0 {
				c.log.Info("delivery recovered", "failed_attempts", attempt)
			}
			c.finish(lines, true)
			return
		}
		var se *statusError
		if errors.As(err, &se) && se.permanent {
			c.logs.error("rejected", "destination rejected a batch; dropping it",
				"lines", lines, "status", se.code, "body", se.body)
			c.release(b)
			c.finish(lines, false)
			return
		}
		if c.ctx.Err() != nil {
			c.release(b)
			c.finish(lines, false)
			return
		}
		c.m.retries.Inc()
		delay := c.backoff(attempt, err)
		c.logs.warn("send", "delivery failed; will retry", "err", err, "lines", lines, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-c.ctx.Done():
			timer.Stop()
			c.release(b)
			c.finish(lines, false)
			return
		}
	}
}

// finish accounts for the unit in flight. Counters move before Flush is
// woken, so a caller that flushed sees them up to date.
func (c *core) finish(lines int, ok bool) {
	if ok {
		c.m.sent.Add(float64(lines))
	} else {
		c.m.errors.Add(float64(lines))
	}
	c.mu.Lock()
	c.inflight, c.inflightBytes = false, 0
	if !ok {
		c.lost += int64(lines)
	}
	c.broadcastLocked()
	c.m.queueBytes.Set(float64(c.queuedBytes))
	c.mu.Unlock()
}

// backoff is MinBackoff·2^attempt capped at MaxBackoff, ±25 % jitter so
// many collectors do not reconnect in lockstep; the error's own retry hint
// (Retry-After) wins if longer, still capped.
func (c *core) backoff(attempt int, err error) time.Duration {
	d := c.opt.MaxBackoff
	if attempt < 30 {
		d = min(c.opt.MinBackoff<<attempt, c.opt.MaxBackoff)
	}
	d = d*3/4 + rand.N(d/2+1)
	var ra retryAfterer
	if errors.As(err, &ra) && ra.retryAfter() > d {
		d = min(ra.retryAfter(), c.opt.MaxBackoff)
	}
	return d
}

// Flush implements Writer.
func (c *core) Flush(ctx context.Context) error {
	c.mu.Lock()
	target, lost0 := c.enqueued, c.lost
	c.flushWanted = c.queuedBytes > 0
	c.mu.Unlock()
	c.signal()
	for {
		c.mu.Lock()
		wm, lost, ch := c.watermarkLocked(), c.lost, c.progress
		c.mu.Unlock()
		if wm >= target {
			if lost > lost0 {
				return fmt.Errorf("sink %s: %d lines dropped or rejected while flushing", c.opt.Name, lost-lost0)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("sink %s: flush: %w (%d bytes not delivered yet)", c.opt.Name, ctx.Err(), target-wm)
		}
	}
}

// Close implements Writer. Only the first call does anything; later calls
// return nil at once.
func (c *core) Close(ctx context.Context) error {
	var err error
	c.closed.Do(func() { err = c.close(ctx) })
	return err
}

func (c *core) close(ctx context.Context) error {
	c.mu.Lock()
	c.closing = true
	lost0 := c.lost
	c.mu.Unlock()
	c.signal()
	select {
	case <-c.exited:
	case <-ctx.Done():
		c.cancel() // abort retries and in-flight I/O
		<-c.exited
	}
	terr := c.t.close()
	c.cancel()

	c.mu.Lock()
	left := c.queuedLines
	for len(c.queue) > 0 {
		h := c.queue[0]
		c.consumeLocked(h, len(h.data()), h.lines)
	}
	c.m.errors.Add(float64(left))
	c.lost += int64(left)
	lost := c.lost - lost0
	c.broadcastLocked()
	c.m.queueBytes.Set(0)
	c.mu.Unlock()

	var err error
	if lost > 0 {
		err = fmt.Errorf("sink %s: closed with %d lines not delivered", c.opt.Name, lost)
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
		c.log.Error("closed with lines not delivered", "lines", lost, "err", err)
	}
	return errors.Join(err, terr)
}
