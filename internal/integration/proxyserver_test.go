package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/proxy"
	"github.com/meshwave/meshwave/internal/server"
)

// TestProxyToServer: Zipkin bodies a proxy accepted while meshwave's server
// was down reach the server once it is up, through posts that join the
// proxy queue's S2 blocks, and the server stores every span with its span
// logs.
func TestProxyToServer(t *testing.T) {
	t.Parallel()
	// An address nothing listens on until the server starts there: the
	// proxy's backlog builds up meanwhile.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := proxy.DefaultConfig()
	cfg.Server = "http://" + addr
	cfg.PushListenerPorts, cfg.TraceZipkinListenerPorts = "0", "0"
	cfg.ListenerBindAddress, cfg.MetricsAddr = "127.0.0.1", ""
	cfg.Buffer = t.TempDir()
	p, err := proxy.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	const bodies, perBody = 20, 5 // Envoy's default flush: 5 spans
	now := time.Now().UnixMicro()
	traceID := func(i int) string { return fmt.Sprintf("463ac35c9f6413ad48485a39%08x", i) }
	for i := range bodies {
		var spans []string
		for j := range perBody {
			spans = append(spans, fmt.Sprintf(`{"traceId":%q,"id":"%016x","name":"get /%d","timestamp":%d,"duration":1500,"kind":"SERVER",`+
				`"localEndpoint":{"serviceName":"reviews"},"annotations":[{"timestamp":%d,"value":"ss"}],"tags":{"http.status_code":"200"}}`,
				traceID(i), i*perBody+j+1, j, now, now+1500))
		}
		resp, err := http.Post(fmt.Sprintf("http://%s/api/v2/spans", p.Addr("zipkin", "0")), "application/json", strings.NewReader("["+strings.Join(spans, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("body %d: %d", i, resp.StatusCode)
		}
	}

	srv, err := server.Open(server.Config{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("the server's address was taken meanwhile: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})

	uuid := func(hex string) string {
		return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:]
	}
	for i := range bodies {
		deadline := time.Now().Add(30 * time.Second)
		for {
			spans, logs := storedTrace(addr, uuid(traceID(i)))
			if spans == perBody && logs == perBody {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("trace %d: %d spans and %d span logs stored, want %d of each", i, spans, logs, perBody)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The backlog's 40 records (spans and span logs of 20 bodies) went in
	// a post per format, give or take a batch read as the server came up.
	if posts := reportPosts(t, addr); posts < 2 || posts > 4 {
		t.Errorf("the server took %v posts, want 2 to 4", posts)
	}
}

// storedTrace returns how many spans, and span logs, the server at addr
// holds for a trace.
func storedTrace(addr, id string) (spans, logs int) {
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v2/traces/%s", addr, id))
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var tr server.TraceResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		return 0, 0
	}
	for _, s := range tr.Spans {
		logs += len(s.Logs)
	}
	return len(tr.Spans), logs
}

// reportPosts returns how many /report posts the server at addr answered 202.
func reportPosts(t *testing.T, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	var posts float64
	for l := range strings.Lines(string(metrics)) {
		if v, ok := strings.CutPrefix(l, `meshwave_server_report_requests_total{code="202"} `); ok {
			fmt.Sscan(v, &posts)
		}
	}
	return posts
}
