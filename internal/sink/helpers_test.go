package sink

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testOptions keeps retries and flushes fast so the tests stay quick.
func testOptions(t *testing.T) Options {
	return Options{
		Name:          t.Name(),
		FlushInterval: 10 * time.Millisecond,
		MinBackoff:    5 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
		DialTimeout:   time.Second,
		WriteTimeout:  2 * time.Second,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testMetrics returns metrics on a private registry.
func testMetrics() *Metrics { return NewMetrics(prometheus.NewRegistry()) }

func counter(v *prometheus.CounterVec, t *testing.T) float64 {
	return counterValue(v, t.Name())
}

// counterValue reads a counter the way a scrape would. (It does what
// prometheus/testutil.ToFloat64 does without that package's extra module.)
func counterValue(v *prometheus.CounterVec, sink string) float64 {
	var m dto.Metric
	if err := v.WithLabelValues(sink).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// checkLeaks fails the test if goroutines started during it outlive it.
// Register it first so its cleanup runs last.
func checkLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustClose(t *testing.T, w Writer) {
	t.Helper()
	if err := w.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// testLines returns n distinct lines of equal length in the canonical format.
func testLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("\"test.metric\" 1 1700000000 source=\"src\" \"seq\"=\"%06d\"\n", i)
	}
	return out
}

// lineServer is a loopback Wavefront proxy stand-in that records lines.
type lineServer struct {
	ln net.Listener
	// closeAfter, if > 0, makes the server drop the first connection
	// after reading that many lines from it.
	closeAfter int

	wg    sync.WaitGroup
	mu    sync.Mutex
	lines []string
	conns []net.Conn
	nconn int
}

func startLineServer(t *testing.T, addr string, closeAfter int) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, closeAfter: closeAfter}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }

func (s *lineServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.nconn++
		first := s.nconn == 1
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c, first)
	}
}

func (s *lineServer) serve(c net.Conn, first bool) {
	defer s.wg.Done()
	defer c.Close()
	sc := bufio.NewScanner(c)
	n := 0
	for sc.Scan() {
		s.mu.Lock()
		s.lines = append(s.lines, sc.Text()+"\n")
		s.mu.Unlock()
		n++
		if first && n == s.closeAfter {
			return
		}
	}
}

func (s *lineServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *lineServer) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *lineServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconn
}

// firstArrivals drops repeats, keeping the order in which lines first came.
func firstArrivals(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func diffLines(got, want []string) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d lines, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i, strings.TrimSpace(got[i]), strings.TrimSpace(want[i]))
		}
	}
	return ""
}
