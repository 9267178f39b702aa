package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// NewTCP returns a Writer that sends lines to a Wavefront proxy over one
// persistent TCP connection (proxyAddress mode). addr is host:port,
// [v6]:port, or a host alone for port 2878 (collector.md §9.11); a bad
// address shows up as connection errors in the logs and metrics.
//
// The connection is dialed when there is first something to send and
// re-dialed with exponential backoff after any failure; data queues in
// memory meanwhile and is sent in order once connected. A block that failed
// mid-write is re-sent whole on the next connection, preceded by the bytes
// written within ReplayWindow before the connection died (at-least-once, see
// the package doc). A nil m or log means unregistered metrics and
// slog.Default().
func NewTCP(addr string, opt Options, m *Metrics, log *slog.Logger) Writer {
	opt = opt.withDefaults(false)
	addr = proxyAddr(addr)
	c := newCore(opt, m, log, addr)
	return c.start(&tcpTransport{
		c:      c,
		addr:   addr,
		dialer: net.Dialer{Timeout: opt.DialTimeout},
	})
}

// proxyAddr normalises a proxy address, defaulting the port.
func proxyAddr(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		return net.JoinHostPort(host, port)
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), DefaultProxyPort)
}

type tcpTransport struct {
	c      *core
	addr   string
	dialer net.Dialer

	conn *tcpConn
	// lostAt is when the previous connection was found dead; replay starts
	// from bytes written ReplayWindow before it.
	lostAt time.Time
	// flaps counts consecutive connections the proxy closed within
	// ReplayWindow of accepting them (e.g. a load balancer without
	// backends), so reconnecting backs off instead of spinning.
	flaps       int
	replay      []*block // recently written blocks, oldest first
	replayBytes int
}

// tcpConn watches for the peer going away. The proxy never writes on this
// connection, so a read returning at all (EOF or reset) means it is gone —
// noticed before the next write rather than one write too late.
type tcpConn struct {
	net.Conn
	since   time.Time
	gone    chan struct{}
	goneAt  atomic.Int64 // UnixNano
	unwatch func() bool  // stops closing the conn on writer abort
}

func (t *tcpTransport) read(tc *tcpConn) {
	var buf [512]byte
	for {
		if _, err := tc.Read(buf[:]); err != nil {
			tc.goneAt.Store(time.Now().UnixNano())
			close(tc.gone)
			t.c.signal() // so replay happens even if nothing new is written
			return
		}
	}
}

// flapError reports a connection the proxy closed soon after accepting it.
type flapError struct {
	lived time.Duration
	after time.Duration
}

func (e *flapError) Error() string {
	return fmt.Sprintf("proxy closed the connection %v after accepting it", e.lived.Round(time.Millisecond))
}

func (e *flapError) retryAfter() time.Duration { return e.after }

func (t *tcpTransport) pending() bool {
	if t.conn == nil || len(t.replay) == 0 {
		return false
	}
	select {
	case <-t.conn.gone:
		return true
	default:
		return false
	}
}

func (t *tcpTransport) send(ctx context.Context, b *block) error {
	if t.conn != nil {
		select {
		case <-t.conn.gone:
			lived := time.Duration(t.conn.goneAt.Load() - t.conn.since.UnixNano())
			t.disconnect()
			if lived < t.c.opt.ReplayWindow {
				t.flaps++
				return &flapError{lived: lived, after: t.c.backoff(t.flaps-1, nil)}
			}
			t.flaps = 0
			t.c.logs.warn("peer-closed", "proxy closed the connection; reconnecting")
		default:
		}
	}
	if t.conn == nil {
		if err := t.connect(ctx); err != nil {
			return err
		}
	}
	if len(b.data()) == 0 {
		return nil // only the replay was wanted
	}
	if err := t.write(b); err != nil {
		t.disconnect()
		return err
	}
	t.keep(b)
	return nil
}

func (t *tcpTransport) connect(ctx context.Context) error {
	conn, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return err
	}
	tc := &tcpConn{Conn: conn, since: time.Now(), gone: make(chan struct{})}
	// Close interrupts a write stuck on a slow proxy.
	tc.unwatch = context.AfterFunc(ctx, func() { conn.Close() })
	go t.read(tc)
	t.conn = tc

	t.pruneReplay()
	var n int
	for _, r := range t.replay {
		n += len(r.data())
		if err := t.write(r); err != nil {
			t.disconnect()
			return err
		}
	}
	t.c.log.Info("connected to proxy", "replayed_bytes", n)
	return nil
}

func (t *tcpTransport) write(b *block) error {
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.c.opt.WriteTimeout)); err != nil {
		return err
	}
	_, err := t.conn.Write(b.data())
	b.sentAt = time.Now()
	return err
}

// disconnect closes the connection and remembers when it died.
func (t *tcpTransport) disconnect() {
	tc := t.conn
	t.conn = nil
	tc.unwatch()
	tc.Close()
	<-tc.gone
	t.lostAt = time.Now()
	if at := tc.goneAt.Load(); at < t.lostAt.UnixNano() {
		t.lostAt = time.Unix(0, at)
	}
}

// keep adds a written block to the replay window, evicting the oldest
// beyond ReplayBytes.
func (t *tcpTransport) keep(b *block) {
	if t.c.opt.ReplayBytes < 0 {
		t.c.release(b)
		return
	}
	t.replay = append(t.replay, b)
	t.replayBytes += len(b.data())
	for t.replayBytes > t.c.opt.ReplayBytes {
		t.evict()
	}
}

// pruneReplay drops blocks written long enough before the connection died
// that the proxy must have read them.
func (t *tcpTransport) pruneReplay() {
	horizon := t.lostAt.Add(-t.c.opt.ReplayWindow)
	for len(t.replay) > 0 && t.replay[0].sentAt.Before(horizon) {
		t.evict()
	}
}

func (t *tcpTransport) evict() {
	r := t.replay[0]
	t.replay[0] = nil
	t.replay = t.replay[1:]
	t.replayBytes -= len(r.data())
	t.c.release(r)
}

func (t *tcpTransport) close() error {
	var err error
	if t.conn != nil {
		tc := t.conn
		t.conn = nil
		tc.unwatch()
		err = tc.Close()
		<-tc.gone
		if errors.Is(err, net.ErrClosed) {
			err = nil // already closed by an aborted Close
		}
	}
	for len(t.replay) > 0 {
		t.evict()
	}
	return err
}
