package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserE2E renders the UI's pages in headless Chromium against a
// running demo and checks the dashboards show data. It is opt-in
// (MESHWAVE_E2E=1, Debian's chromium on PATH) because a browser start
// costs seconds; MESHWAVE_E2E_DIR keeps a screenshot of each page.
func TestBrowserE2E(t *testing.T) {
	if os.Getenv("MESHWAVE_E2E") != "1" {
		t.Skip("set MESHWAVE_E2E=1 (needs chromium) to run the browser test")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), CollectionInterval: 2 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(a Addrs) { ready <- a }})
	}()
	a := <-ready
	q := url.Values{"q": {"ts(istio.build.value)"}, "s": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "g": {"m"}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if n, _, err := chart(a.URL() + "api/v2/chart/api?" + q.Encode()); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no data after 30s")
		}
	}
	time.Sleep(5 * time.Second) // a few collections, so rates have two points
	shots := os.Getenv("MESHWAVE_E2E_DIR")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		page string
		want []string
	}{
		{"data-plane", []string{"Success Rate", "uplot", "Overview of Applications using TCP", "meshwave-demo"}},
		{"control-plane", []string{"Component Build Info", "uplot", "istiod", "Heap Memstats"}},
		{"metrics-browser", []string{"istio.requests.total.value"}},
		{"traces", []string{"Traces"}},
	} {
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1600,2400",
			"--virtual-time-budget=15000", "--user-data-dir=" + t.TempDir()}
		dom, err := exec.CommandContext(ctx, browser, append(args, "--dump-dom", a.URL()+c.page)...).Output()
		if err != nil {
			t.Fatalf("%s: chromium: %v", c.page, err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(dom), w) {
				t.Errorf("%s: page lacks %q", c.page, w)
			}
		}
		if c.page == "data-plane" && strings.Contains(string(dom), "NO DATA") {
			t.Errorf("data-plane: a chart shows NO DATA")
		}
		if shots != "" {
			shot := filepath.Join(shots, c.page+".png")
			if out, err := exec.CommandContext(ctx, browser, append(args, "--screenshot="+shot, a.URL()+c.page)...).CombinedOutput(); err != nil {
				t.Errorf("%s: screenshot: %v\n%s", c.page, err, out)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
