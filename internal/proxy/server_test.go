package proxy

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

	"github.com/meshwave/meshwave/internal/server"
)

// TestForwardsToMeshwaveServer: Zipkin bodies accepted while meshwave's
// server is down reach it once it is up, through posts that join the
// queue's S2 blocks, and the server stores every span with its span logs.
func TestForwardsToMeshwaveServer(t *testing.T) {
	t.Parallel()
	addr := refusedAddr(t) // the backlog builds up until the server starts there
	p := startProxy(t, "http://"+addr, func(c *Config) { c.Token = "" })

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

	srv, err := server.Open(server.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the backend's address was taken meanwhile: %v", err)
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
		var got server.TraceResponse
		waitFor(t, fmt.Sprint("trace ", i), 30*time.Second, func() bool {
			resp, err := http.Get(fmt.Sprintf("http://%s/api/v2/traces/%s", addr, uuid(traceID(i))))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			got = server.TraceResponse{}
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil {
				return false
			}
			logs := 0
			for _, s := range got.Spans {
				logs += len(s.Logs)
			}
			return len(got.Spans) == perBody && logs == perBody
		})
	}
	if n := value(p.m.delivered.WithLabelValues(entitySpans, portOf(p.Addr("zipkin", "0").String()))); n != bodies*perBody {
		t.Errorf("proxy_delivered spans = %v, want %d", n, bodies*perBody)
	}
	// The backlog's 40 records (spans and span logs of 20 bodies) went in
	// a post per format, give or take a batch read while the server came up.
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
	if posts < 2 || posts > 4 {
		t.Errorf("the server took %v posts, want 2 to 4\n%s", posts, metrics)
	}
}
