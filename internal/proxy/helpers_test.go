package proxy

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/httpbody"
	"github.com/meshwave/meshwave/internal/testlog"
)

// backend is a loopback direct-ingestion endpoint that records every line
// it acknowledges, per ?f= format.
type backend struct {
	srv        *httptest.Server
	mu         sync.Mutex
	lines      map[string][]string
	status     func() int // answer to give; nil means 202
	tokens     []string
	accept     string              // its Accept-Encoding answer header, if any
	refuseZstd bool                // answers 415 to zstd bodies
	refuseS2   bool                // answers 415 to s2 bodies
	maxLines   int                 // answers 413 to bodies of more lines, if > 0
	encodings  []string            // the Content-Encoding of each request
	posts      map[string][]string // the Content-Encoding of each accepted request, per format
}

func newBackend(t *testing.T) *backend {
	b := &backend{lines: map[string][]string{}, posts: map[string][]string{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/report" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		b.mu.Lock()
		accept, refuseZstd, refuseS2, maxLines := b.accept, b.refuseZstd, b.refuseS2, b.maxLines
		b.encodings = append(b.encodings, r.Header.Get("Content-Encoding"))
		b.mu.Unlock()
		if accept != "" {
			w.Header().Set("Accept-Encoding", accept)
		}
		enc := r.Header.Get("Content-Encoding")
		if enc == "zstd" && refuseZstd || enc == "s2" && refuseS2 {
			http.Error(w, enc+" not supported here", http.StatusUnsupportedMediaType)
			return
		}
		data, code, err := httpbody.Read(r, 64<<20)
		if err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		if maxLines > 0 && bytes.Count(data, []byte{'\n'}) > maxLines {
			http.Error(w, "too many lines", http.StatusRequestEntityTooLarge)
			return
		}
		if b.status != nil {
			if code := b.status(); code/100 != 2 {
				http.Error(w, "unavailable", code)
				return
			}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.tokens = append(b.tokens, r.Header.Get("Authorization"))
		f := r.URL.Query().Get("f")
		b.posts[f] = append(b.posts[f], r.Header.Get("Content-Encoding"))
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				b.lines[f] = append(b.lines[f], l)
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) get(f string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines[f]...)
}

// refusedAddr returns a loopback address nothing listens on yet, so
// connections to it are refused until a test starts a backend there.
func refusedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProxy runs a proxy on loopback ports forwarding to server.
func startProxy(t *testing.T, server string, mutate func(*Config)) *Proxy {
	t.Helper()
	p, _ := startProxyLog(t, server, func(c *Config) {
		c.Token = "secret"
		if mutate != nil {
			mutate(c)
		}
	})
	return p
}

// startProxyLog runs a proxy on loopback ports forwarding to server, with
// its log captured.
func startProxyLog(t *testing.T, server string, mutate func(*Config)) (*Proxy, *testlog.Buffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Server = server
	cfg.PushListenerPorts = "0"
	cfg.TraceZipkinListenerPorts = "0"
	cfg.ListenerBindAddress = "127.0.0.1"
	cfg.Buffer = t.TempDir()
	cfg.MetricsAddr = ""
	cfg.Hostname = "test-proxy"
	if mutate != nil {
		mutate(&cfg)
	}
	lb := &testlog.Buffer{}
	p, err := New(cfg, slog.New(slog.NewTextHandler(lb, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, lb
}
