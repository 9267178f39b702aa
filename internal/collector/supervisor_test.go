package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/testlog"
)

// Live-reload tests: a real Supervisor polls a real file every 50 ms while
// its collector scrapes a loopback server every 100 ms.

const reloadPoll = 50 * time.Millisecond

// pathCounter serves every path as a small untyped exposition and counts
// scrapes per path.
type pathCounter struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newPathCounter(t *testing.T) *pathCounter {
	p := &pathCounter{hits: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[r.URL.Path]++
		p.mu.Unlock()
		_, _ = io.WriteString(w, "keep_me 1\ndrop_me 2\n")
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pathCounter) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

// reloadConfig is a collector file scraping srv's paths into out, with an
// optional extra block for the first source (filters, say).
func reloadConfig(out string, srv *httptest.Server, extra string, paths ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "defaultCollectionInterval: 100ms\nsinks:\n- file: %s\nsources:\n  prometheus_sources:\n", yq(out))
	for i, p := range paths {
		fmt.Fprintf(&b, "  - url: %s\n", yq(srv.URL+p))
		if i == 0 && extra != "" {
			b.WriteString(extra)
		}
	}
	return b.String()
}

// writeAtomic replaces path's content as editors and kubectl cp do, so a
// poll never sees half a file.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runSupervisor starts a Supervisor on path; stop ends it and returns Run's
// error.
func runSupervisor(t *testing.T, path string, opts Options) (s *Supervisor, logs *testlog.Buffer, stop func() error) {
	t.Helper()
	logs = &testlog.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewSupervisor(path, opts, reloadPoll)
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Supervisor.Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return s, logs, stop
}

// TestSupervisorLiveReload: an edited file adds a source, removes another
// and changes a filter at the next interval, without a restart; discovered
// targets survive the reload and /metrics stays on the same listener.
func TestSupervisorLiveReload(t *testing.T) {
	srv := newPathCounter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "collector.yaml")
	out1, out2 := filepath.Join(dir, "out1.wf"), filepath.Join(dir, "out2.wf")
	writeAtomic(t, path, reloadConfig(out1, srv.srv, "", "/old"))
	s, logs, stop := runSupervisor(t, path, Options{MetricsAddr: "127.0.0.1:0"})

	disc := s.Config().Sources.PrometheusSources[0]
	disc.URL, disc.Prefix = srv.srv.URL+"/discovered", "disc."
	s.SetTargets("discovery", []Target{{Key: "pod-1:9100/metrics", Source: disc, Discovered: "annotation"}})

	var metricsURL string
	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)
	waitFor(t, 10*time.Second, "the metrics listener and two scrapes", func() bool {
		if m := urlRE.FindStringSubmatch(logs.String()); m != nil {
			metricsURL = m[1]
		}
		return metricsURL != "" && srv.count("/old") >= 2 && srv.count("/discovered") >= 2
	})
	first := s.Metrics()

	// Replace /old by /new, whose filter keeps only keep_me, into a new
	// sink file.
	allow := "    filters:\n      metricAllowList:\n      - 'keep.me.*'\n"
	writeAtomic(t, path, reloadConfig(out2, srv.srv, allow, "/new"))
	waitFor(t, 10*time.Second, "the new source to be scraped", func() bool { return srv.count("/new") >= 2 })
	if !strings.Contains(logs.String(), "configuration reloaded") {
		t.Errorf("no reload logged:\n%s", logs.String())
	}
	if s.Metrics() == first {
		t.Fatal("Metrics still returns the first collector's")
	}
	// The old collector was stopped before the new one started, so /old
	// gets no scrape from here on.
	oldCount, discCount := srv.count("/old"), srv.count("/discovered")
	waitFor(t, 10*time.Second, "three more scrapes of /new", func() bool { return srv.count("/new") >= 5 })
	if n := srv.count("/old"); n != oldCount {
		t.Errorf("removed source still scraped: %d → %d", oldCount, n)
	}
	waitFor(t, 10*time.Second, "the discovered target under the new collector", func() bool {
		return srv.count("/discovered") >= discCount+2
	})

	// Same listener, now serving the new collector with the reload counter
	// carried over.
	body := httpGet(t, metricsURL)
	if !strings.Contains(body, "kubernetes_collector_config_reloads 1") {
		t.Errorf("/metrics lacks kubernetes_collector_config_reloads 1:\n%s", body)
	}
	if !strings.Contains(body, "kubernetes_collector_config_reload_errors 0") {
		t.Errorf("/metrics lacks kubernetes_collector_config_reload_errors 0:\n%s", body)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The old collector flushed its sink when stopped: unfiltered data.
	old := readWF(t, out1)
	if len(find(old, "keep.me.value")) == 0 || len(find(old, "drop.me.value")) == 0 {
		t.Errorf("first configuration's sink lacks its points (%d lines)", len(old))
	}
	// The new filter applies to what the new collector scraped from /new;
	// the discovered target (prefix disc.) has no filter.
	cur := readWF(t, out2)
	if len(find(cur, "keep.me.value")) == 0 || len(find(cur, "disc.drop.me.value")) == 0 {
		t.Errorf("new configuration's sink lacks keep.me.value or disc.drop.me.value (%d lines)", len(cur))
	}
	if n := len(find(cur, "drop.me.value")); n != 0 {
		t.Errorf("new filter not applied: %d drop.me.value points", n)
	}
}

// TestSupervisorRejectsBrokenFile: a file with a bad glob, then one with an
// unknown key, are each logged once with file and line, and counted; the
// old collector keeps scraping; fixing the file applies it.
func TestSupervisorRejectsBrokenFile(t *testing.T) {
	srv := newPathCounter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "collector.yaml")
	out := filepath.Join(dir, "out.wf")
	good := reloadConfig(out, srv.srv, "", "/a")
	writeAtomic(t, path, good)
	s, logs, _ := runSupervisor(t, path, Options{})
	waitFor(t, 10*time.Second, "the first scrapes", func() bool { return srv.count("/a") >= 2 })
	first := s.Metrics()
	errs := func() float64 { return gathered(t, s.currentCollector(), "kubernetes_collector_config_reload_errors") }

	cases := []struct{ name, extra, want string }{
		// Defect §9.8: the reference silently drops the whole list.
		{"bad glob", "    filters:\n      metricAllowList:\n      - 'istio.[requests'\n", `collector\.yaml:\d+`},
		{"unknown key", "    filters:\n      metricDenylist:\n      - 'x'\n", `collector\.yaml:\d+.*metricDenylist`},
	}
	for i, tc := range cases {
		writeAtomic(t, path, reloadConfig(out, srv.srv, tc.extra, "/a", "/b"))
		want := regexp.MustCompile(`level=ERROR msg="config reload rejected: [^"]*` + tc.want)
		waitFor(t, 10*time.Second, tc.name+" to be rejected", func() bool { return want.MatchString(logs.String()) })
		before := srv.count("/a")
		waitFor(t, 10*time.Second, "the old collector to keep scraping", func() bool { return srv.count("/a") >= before+3 })
		if n := strings.Count(logs.String(), "config reload rejected"); n != i+1 {
			t.Errorf("%s: %d rejection lines after several polls, want %d (one per bad content)", tc.name, n, i+1)
		}
		if got := errs(); got != float64(i+1) {
			t.Errorf("%s: config_reload_errors = %v, want %d", tc.name, got, i+1)
		}
		if srv.count("/b") != 0 || s.Metrics() != first {
			t.Fatalf("%s: the broken configuration was applied", tc.name)
		}
	}

	writeAtomic(t, path, reloadConfig(out, srv.srv, "", "/a", "/b"))
	waitFor(t, 10*time.Second, "the fixed file to apply", func() bool { return srv.count("/b") >= 2 })
	if got := errs(); got != 2 {
		t.Errorf("config_reload_errors = %v after the fix, want 2 (carried over)", got)
	}
}

// TestSupervisorConfigMapSymlinkSwap: kubelet updates a mounted ConfigMap by
// writing a new timestamped directory and renaming the `..data` symlink
// over the old one; config.yaml itself is a symlink that never changes.
func TestSupervisorConfigMapSymlinkSwap(t *testing.T) {
	srv := newPathCounter(t)
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.wf")
	project := func(version, content string) {
		t.Helper()
		ts := "..2026_11_25_" + version
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "config.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	project("10_00_00.1", reloadConfig(out, srv.srv, "", "/v1"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	runSupervisor(t, path, Options{})
	waitFor(t, 10*time.Second, "v1 to be scraped", func() bool { return srv.count("/v1") >= 2 })

	project("10_01_00.2", reloadConfig(out, srv.srv, "", "/v2"))
	// kubelet removes the old version after the swap.
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_25_10_00_00.1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "v2 to be scraped after the swap", func() bool { return srv.count("/v2") >= 2 })
	v1 := srv.count("/v1")
	waitFor(t, 10*time.Second, "more v2 scrapes", func() bool { return srv.count("/v2") >= 5 })
	if n := srv.count("/v1"); n != v1 {
		t.Errorf("v1 still scraped after the swap: %d → %d", v1, n)
	}
}

// TestSupervisorLeadingSurvivesReload: a follower stays a follower under
// the new configuration.
func TestSupervisorLeadingSurvivesReload(t *testing.T) {
	srv := newPathCounter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "collector.yaml")
	out := filepath.Join(dir, "out.wf")
	writeAtomic(t, path, reloadConfig(out, srv.srv, "", "/a"))
	s, logs, _ := runSupervisor(t, path, Options{})
	s.SetLeading(false)
	writeAtomic(t, path, reloadConfig(out, srv.srv, "", "/a", "/b"))
	waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(logs.String(), "configuration reloaded") })
	time.Sleep(500 * time.Millisecond) // five scrape intervals
	if a, b := srv.count("/a"), srv.count("/b"); b != 0 || a > 1 {
		// /a may have had one scrape before SetLeading(false).
		t.Errorf("static sources scraped by a follower after reload: /a %d, /b %d", a, b)
	}
	s.SetLeading(true)
	waitFor(t, 10*time.Second, "the new leader to scrape both", func() bool { return srv.count("/a") >= 2 && srv.count("/b") >= 2 })
}

func TestNewSupervisorRejectsInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collector.yaml")
	writeAtomic(t, path, "sinks:\n- file: x\nsources:\n  prometheus_sources:\n  - url: http://x\n    bogus: 1\n")
	if _, err := NewSupervisor(path, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, 0); err == nil ||
		!strings.Contains(err.Error(), "collector.yaml:6") {
		t.Errorf("NewSupervisor: err = %v, want one naming collector.yaml:6", err)
	}
}
