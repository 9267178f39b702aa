package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/meshwave/meshwave/internal/httpbody"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// pushListener serves one push port: plaintext lines and HTTP on the same
// port, told apart by a connection's first bytes (proxy.md §1.2).
type pushListener struct {
	p      *Proxy
	port   string
	ln     net.Listener
	httpLn *chanListener
	srv    *http.Server
	slots  chan struct{} // bounds concurrent connections
	wg     sync.WaitGroup

	mu      sync.Mutex // guards closing and conns
	closing bool
	conns   map[net.Conn]struct{} // sniffing and plaintext connections, to end their reads at shutdown
}

// httpMethodPrefixes are the first two bytes that mark an HTTP connection.
var httpMethodPrefixes = []string{"GE", "PO", "PU", "HE", "OP", "PA", "DE", "TR", "CO"}

func (p *Proxy) newPushListener(ln net.Listener, port string) *pushListener {
	l := &pushListener{p: p, port: port, ln: ln, slots: make(chan struct{}, p.cfg.MaxConnections), conns: map[net.Conn]struct{}{}}
	l.httpLn = newChanListener(ln.Addr())
	l.srv = &http.Server{Handler: p.surviveHTTP(port, http.HandlerFunc(l.serveHTTP)), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: p.cfg.IdleTimeout}
	return l
}

func (l *pushListener) serve() {
	l.wg.Go(func() { _ = l.srv.Serve(l.httpLn) })
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.p.log.Warn("accept failed", "port", l.port, "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			// A flood of connections must not exhaust memory or descriptors.
			l.p.m.refused.WithLabelValues(l.port).Inc()
			c.Close()
			continue
		}
		l.p.m.connections.WithLabelValues(l.port).Inc()
		l.wg.Go(func() {
			defer func() { <-l.slots; l.p.m.connections.WithLabelValues(l.port).Dec() }()
			l.serveConn(c)
		})
	}
}

// close stops accepting, lets HTTP requests in flight finish within ctx
// and waits for plaintext connections to end.
func (l *pushListener) close(ctx context.Context) {
	l.ln.Close()
	l.mu.Lock()
	l.closing = true
	for c := range l.conns {
		// Wake blocked reads; what was read is committed before the
		// connection closes.
		_ = c.SetReadDeadline(time.Now())
	}
	l.mu.Unlock()
	_ = l.srv.Shutdown(ctx) // also closes httpLn
	l.wg.Wait()
}

// arm sets c's idle deadline before a read that may block. It reports false
// once the listener is closing.
func (l *pushListener) arm(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(l.p.cfg.IdleTimeout))
	return true
}

func (l *pushListener) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

// serveConn serves one connection; a panic ends it alone (see survive).
func (l *pushListener) serveConn(c net.Conn) {
	defer l.p.survive(l.port, c)
	l.handle(c)
}

// handle sniffs a connection and serves it as HTTP or as plaintext lines.
func (l *pushListener) handle(c net.Conn) {
	l.track(c, true)
	defer l.track(c, false)
	if !l.arm(c) {
		c.Close()
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	head, err := br.Peek(2)
	if err != nil {
		c.Close()
		return
	}
	for _, m := range httpMethodPrefixes {
		if string(head) == m {
			// http.Server owns the connection (and its deadlines) from here.
			_ = c.SetReadDeadline(time.Time{})
			if !l.httpLn.deliver(&peekedConn{Conn: c, r: br}) {
				c.Close()
			}
			return
		}
	}
	defer c.Close()
	var r io.Reader = br
	if head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			l.p.log.Warn("bad gzip stream", "port", l.port, "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		r = zr
	}
	l.plaintext(c, r)
}

// plaintext ingests newline-delimited lines. Lines are committed to the
// queue whenever the client pauses (nothing more buffered) or a batch fills,
// and a line is counted only once it is written to the queue's file (see
// asyncCommitter).
//
// The connection is read in chunks into one buffer, and its complete lines
// are taken where they lie: runs of them that the decoder's single-pass
// path accepts in one call (see fastLines), the others one by one through
// the ingester. The last, partial line moves to the buffer's front before
// the next read.
func (l *pushListener) plaintext(c net.Conn, r io.Reader) {
	in := l.p.newIngester(l.port, remoteHost(c))
	defer func() {
		if err := in.finish(); err != nil {
			l.p.log.Error("queue append failed; lines of this connection were not counted", "port", l.port, "err", err)
		}
	}()
	// The clock is read once per read from the socket, not per line: lines
	// that arrived together share their arrival time (for the WF-402 window
	// and missing timestamps), and a clock read costs as much as a tenth of
	// validating a line.
	arrived := time.Now()
	in.dec.Now = func() time.Time { return arrived }
	// The decoder's scans read up to 16 bytes past a line: the spare
	// capacity lets them run to the buffer's end.
	buf := make([]byte, 0, lineWindow+16)
	if br, ok := r.(*bufio.Reader); ok {
		// What the sniffing reader holds comes first; then the socket
		// is read straight into buf.
		n, _ := br.Read(buf[:lineWindow])
		buf = buf[:n]
		if br.Buffered() == 0 {
			r = c
		}
	}
	var long bool // dropping a line longer than lineWindow
	for {
		used, ok := l.lines(in, buf, &long)
		if !ok {
			return
		}
		// The partial line, if any, moves to the front.
		buf = buf[:copy(buf, buf[used:])]
		if len(buf) == lineWindow {
			// No newline in lineWindow bytes: drop the line up to its end.
			long, buf = true, buf[:0]
		}
		if len(buf) == 0 && !l.arm(c) {
			return // shutting down; everything read so far is being committed
		}
		n, err := r.Read(buf[len(buf):lineWindow])
		if n > 0 {
			arrived = time.Now()
			buf = buf[:len(buf)+n]
		}
		if err != nil {
			// The lines just read, then whatever follows the last
			// newline as a line of its own.
			if used, ok := l.lines(in, buf, &long); ok {
				l.oneLine(in, buf[used:], long)
				if cerr := in.commitAsync(); cerr != nil {
					l.p.log.Error("queue append failed; closing connection so the client resends", "port", l.port, "err", cerr)
				}
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				l.p.log.Debug("connection ended", "port", l.port, "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
	}
}

// lineWindow is how much of a connection's input is read at once, and so
// the longest line it may send, with its newline; a longer one is dropped
// whole, counted TOO_LONG and logged without its text.
const lineWindow = 64 << 10

// lines ingests the complete lines of buf and returns the bytes they fill;
// long says the first is the end of a line longer than lineWindow. Runs
// of lines the decoder's single-pass path takes are staged in one call
// (see fastLines), the others go one by one through the ingester. It
// commits the staged lines once a batch is full, or when buf ends with a
// complete line (the client has paused, or its writes end at a line). It
// reports false if the queue failed: the connection must close so the
// client resends.
func (l *pushListener) lines(in *ingester, buf []byte, long *bool) (used int, ok bool) {
	// Whether the single-pass path applies (see ingester.fastPoint) is
	// decided once per read, so a rules reload applies from the next one.
	fast := in.p.cfg.Prefix == "" && in.p.portRules(in.port).Empty()
	for partial := false; used < len(buf) && !partial; {
		if fast && !*long {
			used += l.fastLines(in, buf[used:])
		}
		if used < len(buf) {
			if nl := bytes.IndexByte(buf[used:], '\n'); nl >= 0 {
				l.oneLine(in, buf[used:used+nl+1], *long)
				*long = false
				used += nl + 1
			} else {
				partial = true
			}
		}
		if used == len(buf) || in.full() {
			if err := in.commitAsync(); err != nil {
				l.p.log.Error("queue append failed; closing connection so the client resends", "port", l.port, "err", err)
				return used, false
			}
		}
	}
	return used, true
}

// fastLines stages the run of lines at the front of buf that the
// decoder's single-pass path takes, up to one it declines or one over the
// length limit, and returns the bytes they fill.
func (l *pushListener) fastLines(in *ingester, buf []byte) int {
	maxLine := l.p.cfg.PushListenerMaxReceivedLength + 1 // with the newline
	s := &in.staged.recs[formatIndex(fmtWavefront)]
	before := len(s.buf)
	out, n, used := in.dec.AppendCanonicalLines(s.buf, buf, maxLine)
	s.buf = out
	s.lines += n
	in.staging += len(out) - before
	return used
}

// oneLine ingests one line, with its newline if it has one; long says it
// is the end of a line longer than lineWindow.
func (l *pushListener) oneLine(in *ingester, line []byte, long bool) {
	maxLen := l.p.cfg.PushListenerMaxReceivedLength
	switch {
	case long:
		// The tail of a line over the buffer: drop it whole.
		l.p.m.rejected.WithLabelValues(entityPoints, l.port, "TOO_LONG").Inc()
		l.p.blocked.log(l.port, nil, errLineTooLong(maxLen))
	case len(line) > maxLen+1:
		l.p.m.rejected.WithLabelValues(entityPoints, l.port, "TOO_LONG").Inc()
		// The head of the line names it; a small limit can make the
		// line itself shorter than that.
		l.p.blocked.log(l.port, line[:min(64, len(line))], errLineTooLong(maxLen))
	default:
		in.line(line, 0)
	}
}

type lineTooLongError int

func (e lineTooLongError) Error() string {
	return "line longer than " + strconv.Itoa(int(e)) + " bytes (pushListenerMaxReceivedLength) dropped"
}

func errLineTooLong(n int) error { return lineTooLongError(n) }

// remoteHost is the default source of lines without one: the client's IP
// (meshwave does no reverse DNS).
func remoteHost(c net.Conn) []byte {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return []byte(c.RemoteAddr().String())
	}
	return []byte(host)
}

// httpBodies holds *[]byte buffers for push-port HTTP bodies.
var httpBodies sync.Pool

// serveHTTP handles any method and path on the push port, as the reference
// does: the body's lines are ingested with ?f= or auto-detection.
func (l *pushListener) serveHTTP(w http.ResponseWriter, r *http.Request) {
	code := l.serveHTTPCode(w, r)
	l.p.m.httpStatus.WithLabelValues(l.port, strconv.Itoa(code)).Inc()
}

func (l *pushListener) serveHTTPCode(w http.ResponseWriter, r *http.Request) int {
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	buf, _ := httpBodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	// The ingester copies what it keeps (staged lines, blocked-log text),
	// so the body's buffer can serve the next request.
	defer httpBodies.Put(buf)
	body, code, err := httpbody.ReadInto(*buf, r, l.p.cfg.PushListenerHTTPBufferSize)
	*buf = body
	if err != nil {
		httpbody.Error(w, err.Error(), code)
		return code
	}
	f, _ := formatOf(r.URL.Query().Get("f"))
	if f == 0 {
		f, _ = formatOf(r.URL.Query().Get("format"))
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	in := l.p.newIngester(l.port, []byte(host))
	for line := range wavefront.Lines(body) {
		in.line(line, f)
		if in.full() {
			if err := in.commit(); err != nil {
				return l.unavailable(w, err)
			}
		}
	}
	// The 2xx goes out only once every accepted line is durable.
	if err := in.commit(); err != nil {
		return l.unavailable(w, err)
	}
	w.WriteHeader(http.StatusAccepted)
	return http.StatusAccepted
}

func (l *pushListener) unavailable(w http.ResponseWriter, err error) int {
	l.p.log.Error("queue append failed", "port", l.port, "err", err)
	http.Error(w, "cannot queue data: "+err.Error(), http.StatusServiceUnavailable)
	return http.StatusServiceUnavailable
}

// peekedConn is a connection whose first bytes were already read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// chanListener hands sniffed connections to an http.Server.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
