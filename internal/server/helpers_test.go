package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/wql"
)

// testServer is a Server on a real loopback listener and a real data dir.
type testServer struct {
	*Server
	url string
}

func start(t testing.TB, cfg Config) *testServer {
	t.Helper()
	s, _ := startStoppable(t, cfg)
	return s
}

// startStoppable is start with a stop function, for restarts; the stop
// also runs at cleanup, once.
func startStoppable(t testing.TB, cfg Config) (*testServer, func()) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{Server: s, url: "http://" + ln.Addr().String()}, stop
}

// post sends body to /report?f=format and returns the status and decoded
// result.
func post(t testing.TB, base, format, body string, hdr ...string) (int, ReportResult) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/report?f="+format, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, ReportResult) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res ReportResult
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("bad 202 body %q: %v", b, err)
		}
	}
	return resp.StatusCode, res
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// getJSON GETs path and decodes the JSON answer into v.
func getJSON(t testing.TB, base, path string, v any) int {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %d %q: %v", path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func chartPath(q string, s, e int64, g string) string {
	return "/api/v2/chart/api?" + url.Values{"q": {q}, "s": {itoa(s)}, "e": {itoa(e)}, "g": {g}}.Encode()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// eventually polls cond until it holds or 20 s pass: the applier stores
// data asynchronously after the 202.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// selectAll reads the raw series of glob straight from the metric store.
func selectAll(t testing.TB, s *Server, glob string) []wql.Series {
	t.Helper()
	ss, err := s.metrics.Select(context.Background(), glob, nil, 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// quietLogger keeps the tsdb's start-up chatter out of test output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
