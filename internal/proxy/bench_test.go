package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/httpbody"
)

// discardBackend acknowledges every post without looking at it, and offers
// zstd as meshwave's server does.
func discardBackend(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Accept-Encoding", httpbody.Encodings)
		w.WriteHeader(http.StatusAccepted)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func benchProxy(tb testing.TB, server string) *Proxy {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Server = server
	cfg.PushListenerPorts = "0"
	cfg.TraceZipkinListenerPorts = "0"
	cfg.ListenerBindAddress = "127.0.0.1"
	cfg.Buffer = tb.TempDir()
	cfg.MetricsAddr = ""
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// istioLines returns n realistic Istio request-metric lines (~300 bytes,
// 13 tags plus source) as Envoy sidecars produce them through the
// collector, with varying workloads, codes and values.
func istioLines(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	apps := []string{"productpage", "reviews", "ratings", "details", "frontend", "cart", "checkout", "payments"}
	codes := []string{"200", "200", "200", "201", "204", "404", "503"}
	ts := time.Now().Unix()
	var b bytes.Buffer
	for i := range n {
		src, dst := apps[r.IntN(len(apps))], apps[r.IntN(len(apps))]
		fmt.Fprintf(&b, "istio_requests_total %d %d source=%s-v1-%06x.default reporter=destination source_workload=%s-v1 source_workload_namespace=default source_app=%s "+
			"destination_workload=%s-v2 destination_workload_namespace=default destination_service=%s.default.svc.cluster.local destination_app=%s "+
			"request_protocol=http response_code=%s response_flags=- connection_security_policy=mutual_tls grpc_response_status=%d\n",
			r.IntN(100000), ts, src, i%4096, src, src, dst, dst, dst, codes[r.IntN(len(codes))], r.IntN(17))
	}
	return b.Bytes()
}

// BenchmarkTCPIngest: client goroutines write Istio-like lines over
// loopback TCP to a real proxy; an op is one point, counted once the
// proxy has made it durable (proxy_received). The forwarder runs too,
// posting to a discarding backend.
func BenchmarkTCPIngest(b *testing.B) {
	const clients = 4
	srv := discardBackend(b)
	p := benchProxy(b, srv.URL)
	addr := p.Addr("push", "0").String()
	received := p.m.received.WithLabelValues(entityPoints, portOf(addr))
	var chunks [clients][]byte
	for c := range chunks {
		chunks[c] = istioLines(2000, uint64(c))
	}
	lineLen := float64(len(chunks[0])) / 2000
	b.SetBytes(int64(lineLen))
	b.ResetTimer()
	cpu0 := cpuclock.Self()
	var wg sync.WaitGroup
	for c := range clients {
		share := b.N / clients
		if c == 0 {
			share += b.N % clients
		}
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			lines := chunks[c]
			for share > 0 {
				n, data := 2000, lines
				if share < n {
					n = share
					data = lines[:lineOffset(lines, n)]
				}
				if _, err := conn.Write(data); err != nil {
					b.Error(err)
					return
				}
				share -= n
			}
		})
	}
	wg.Wait()
	for value(received) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "points/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "points/s/core")
	b.ReportMetric(float64(b.N)/(cpuclock.Self()-cpu0).Seconds(), "points/cpu-s")
}

// lineOffset is the end of the first n lines of b.
func lineOffset(b []byte, n int) int {
	off := 0
	for range n {
		off += bytes.IndexByte(b[off:], '\n') + 1
	}
	return off
}

// TestBacklogMemory checks "memory under a 10-minute backlog stays under
// 256 MiB" on a real proxy process: with the backend unreachable, clients
// push 10 minutes' worth of lines at an assumed MESHWAVE_BACKLOG_RATE
// (default 2 000 points/s, so 1.2 M lines), as fast as the proxy takes
// them; then the backend comes back and the proxy drains for up to
// 20 s. The child's VmRSS is sampled every 20 ms throughout.
func TestBacklogMemory(t *testing.T) {
	if os.Getenv("MESHWAVE_LONG") != "1" {
		t.Skip("set MESHWAVE_LONG=1: pushes ~400 MB through a child proxy")
	}
	rate := 2000
	if s := os.Getenv("MESHWAVE_BACKLOG_RATE"); s != "" {
		fmt.Sscan(s, &rate)
	}
	total := rate * 600
	backendAddr := refusedAddr(t) // unreachable until the drain phase

	dir := t.TempDir()
	ch := startChild(t, childConfig{Buffer: filepath.Join(dir, "buffer"), Server: "http://" + backendAddr,
		PortFile: filepath.Join(dir, "ports.json"), PushPorts: "0"})
	base, _ := ch.rssKiB()
	var peak, peakPush int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	var pmu sync.Mutex
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if v, err := ch.rssKiB(); err == nil {
				pmu.Lock()
				peak = max(peak, v)
				pmu.Unlock()
			}
		}
	}()

	const clients = 4
	chunk := istioLines(5000, 9)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			conn, err := net.Dial("tcp", ch.ports.Push[0])
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			for sent := c * 5000; sent < total; sent += clients * 5000 {
				if _, err := conn.Write(chunk); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	hc := &http.Client{Timeout: 5 * time.Second}
	recv := func() float64 {
		v, _ := ch.metric(hc, "proxy_received", `{entity="points",port="`+portOf(ch.ports.Push[0])+`"}`)
		return v
	}
	waitFor(t, "the backlog to be queued", 60*time.Second, func() bool { return recv() >= float64(total/(clients*5000)*clients*5000) })
	pushTime := time.Since(start)
	pmu.Lock()
	peakPush = peak
	pmu.Unlock()
	queued, _ := ch.metric(hc, "meshwave_queue_bytes", `{queue="proxy"}`)

	// The backend returns: drain for a while, discarding.
	ln, err := net.Listen("tcp", backendAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}}
	srv.Start()
	defer srv.Close()
	drainStart := time.Now()
	var left float64
	for time.Since(drainStart) < 20*time.Second {
		left, _ = ch.metric(hc, "meshwave_queue_bytes", `{queue="proxy"}`)
		if left == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopSampling)
	<-sampled
	t.Logf("backlog: %d lines (%d points/s × 600 s) queued in %v (%.0f MB on disk); drained %.0f MB in %v, %.0f MB left",
		total, rate, pushTime.Round(time.Millisecond), queued/1e6, (queued-left)/1e6, time.Since(drainStart).Round(time.Millisecond), left/1e6)
	t.Logf("child VmRSS: %d MiB at start, peak %d MiB while queueing, peak %d MiB overall (limit 256 MiB)", base>>10, peakPush>>10, peak>>10)
	if peak>>10 >= 256 {
		t.Errorf("peak RSS %d MiB ≥ 256 MiB", peak>>10)
	}
}
