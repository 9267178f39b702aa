package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// panicConn hands out its lines, then panics in Read as a bug in the read
// path would.
type panicConn struct {
	net.Conn
	lines string
}

func (c *panicConn) Read(b []byte) (int, error) {
	if c.lines == "" {
		panic("injected read-path bug")
	}
	n := copy(b, c.lines)
	c.lines = c.lines[n:]
	return n, nil
}

// A panic while serving one TCP connection ends that connection, is
// counted and logged with its stack, and the proxy goes on taking lines
// from other clients.
func TestPanicEndsOneConnection(t *testing.T) {
	be := newBackend(t)
	p, lb := startProxyLog(t, be.srv.URL, nil)
	l := p.push[0]
	a, b := net.Pipe()
	defer b.Close()
	c := &panicConn{Conn: a, lines: "bug.before 1 source=s\n"}
	l.serveConn(c) // returns instead of crashing the test binary

	if got := value(p.m.internalErrors.WithLabelValues(l.port)); got != 1 {
		t.Fatalf("proxy_internal_errors = %v, want 1", got)
	}
	log := lb.String()
	if !strings.Contains(log, "injected read-path bug") || !strings.Contains(log, "recover_test.go") {
		t.Fatalf("log lacks the panic and its stack:\n%s", log)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("the panicking connection was left open")
	}

	conn, err := net.Dial("tcp", p.Addr("push", "0").String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "after.panic 1 %d source=s\n", time.Now().Unix())
	conn.Close()
	waitFor(t, "the next client's line", 10*time.Second, func() bool {
		return strings.Contains(strings.Join(be.get("wavefront"), "\n"), `"after.panic"`)
	})
}

// A panic in an HTTP handler is answered 500, counted and logged.
func TestPanicAnswers500(t *testing.T) {
	p, lb := startProxyLog(t, "http://127.0.0.1:1", nil)
	h := p.surviveHTTP("9411", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("injected handler bug") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/spans", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if got := value(p.m.internalErrors.WithLabelValues("9411")); got != 1 {
		t.Fatalf("proxy_internal_errors = %v, want 1", got)
	}
	if s := lb.String(); !strings.Contains(s, "injected handler bug") {
		t.Fatalf("log lacks the panic:\n%s", s)
	}
}
