package collector

// Bad targets and bad bodies: each gives an error naming its URL (parse
// errors: a log with URL and line), is counted in the self-metrics, and
// leaves every other target and every good sample of the same body alone
// (collector.md §2.3–2.4, defects §9.1, §9.2, §9.4, §9.7).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func handlerServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// badCase is one target of the shared scrape.
type badCase struct {
	name    string
	url     string
	timeout string   // collection.timeout; default 10s
	wantErr []string // substrings of the scrape error besides the URL; nil: no error
	// Points (by name) that must arrive, each exactly once.
	wantPoints []string
	// Parse errors per reason counted for this URL.
	wantParse map[string]float64
}

func TestBadInput(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	long := strings.Repeat("y", 100<<10)
	tlsSrv := quietTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tls_never 1\n")
	}), nil)

	cases := []badCase{
		{
			name: "good", url: textServer(t, []byte("# TYPE good_one gauge\ngood_one 1\n# TYPE good_two counter\ngood_two 2\n")).URL + "/good",
			wantPoints: []string{"good.one.gauge", "good.two.counter"},
		},
		{
			name: "unreachable", url: "http://" + closedPort(t) + "/metrics",
			wantErr: []string{"connection refused"},
		},
		{
			name: "tls", url: tlsSrv.URL + "/metrics",
			wantErr: []string{"certificate"},
		},
		{
			name: "404", url: handlerServer(t, http.NotFound).URL + "/missing",
			wantErr: []string{"404 Not Found"},
		},
		{
			name: "500", url: handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "oops", http.StatusInternalServerError)
			}).URL + "/metrics",
			wantErr: []string{"500 Internal Server Error"},
		},
		{
			// The body promises more bytes than it sends, then the
			// connection drops in the middle of line 3.
			name: "truncated", url: handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				body := "# TYPE trunc_ok gauge\ntrunc_ok 1\ntrunc_half{a=\"b"
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n%s", len(body)+1000, body)
				_ = buf.Flush()
			}).URL + "/metrics",
			wantErr:    []string{"line 2", "unexpected EOF"},
			wantPoints: []string{"trunc.ok.gauge"},
		},
		{
			name: "malformed", url: textServer(t, []byte(`# TYPE mal_a gauge
mal_a 1
mal_b{x="1" 2
# TYPE mal_c gauge
mal_c 3
mal_e{x=1} 5
not a number
mal_d{le="oops"} 4
`)).URL + "/metrics",
			wantPoints: []string{"mal.a.gauge", "mal.c.gauge", "mal.d.value"},
			wantParse:  map[string]float64{"syntax": 2, "invalid_value": 1},
		},
		{
			name: "huge line", url: textServer(t, []byte("before 1\nhuge{v=\""+huge+"\"} 1\nafter 2\n")).URL + "/metrics",
			wantPoints: []string{"before.value", "after.value"},
			wantParse:  map[string]float64{"line_too_long": 1},
		},
		{
			name: "long line", url: textServer(t, []byte("long_ok{v=\""+long+"\"} 7\nafter_long 8\n")).URL + "/metrics",
			wantPoints: []string{"long.ok.value", "after.long.value"},
		},
		{
			// Valid lines forever: the scrape ends at collection.timeout
			// and what was read before is kept.
			name: "endless", timeout: "1s", url: handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = io.WriteString(w, "# TYPE endless_total counter\n")
				for i := 0; r.Context().Err() == nil; i++ {
					if _, err := fmt.Fprintf(w, "endless_total{i=\"%d\"} %d\n", i, i); err != nil {
						return
					}
					if i%200 == 0 {
						w.(http.Flusher).Flush()
						time.Sleep(10 * time.Millisecond)
					}
				}
			}).URL + "/metrics",
			wantErr: []string{"context deadline exceeded"},
		},
	}

	out := sinkFile(t)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "sinks:\n- file: %s\nsources:\n  kubernetes_source: {}\n  prometheus_sources:\n", out)
	for _, tc := range cases {
		timeout := tc.timeout
		if timeout == "" {
			timeout = "10s"
		}
		// Named, so the errors must carry the URL themselves.
		fmt.Fprintf(&yaml, "  - url: %s\n    name: %s\n    collection: {timeout: %s}\n", yq(tc.url), yq(tc.name), timeout)
	}
	c, logs := newCollector(t, yaml.String(), Options{})

	start := time.Now()
	results, err := once(t, c)
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("Once took %v", elapsed)
	}
	if err == nil {
		t.Fatal("Once reported no error")
	}
	points := readWF(t, out)
	failures := 0
	for i, tc := range cases {
		r := results[i]
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == nil {
				if r.Err != nil {
					t.Errorf("scrape error: %v", r.Err)
				}
				if strings.Contains(err.Error(), tc.url) {
					t.Errorf("Once error mentions a good target: %v", err)
				}
			} else {
				failures++
				if r.Err == nil {
					t.Fatalf("no scrape error")
				}
				for _, want := range append([]string{tc.url}, tc.wantErr...) {
					if !strings.Contains(r.Err.Error(), want) {
						t.Errorf("error %q lacks %q", r.Err, want)
					}
				}
				if !strings.Contains(err.Error(), tc.url) {
					t.Errorf("Once error does not name %s", tc.url)
				}
				if got := gathered(t, c, "kubernetes_collector_target_collect_errors", "url", tc.url); got != 1 {
					t.Errorf("target_collect_errors{url} = %v, want 1", got)
				}
			}
			for _, name := range tc.wantPoints {
				findOne(t, points, name)
			}
			var parseErrors float64
			for reason, want := range tc.wantParse {
				if got := gathered(t, c, "kubernetes_collector_source_parse_errors", "reason", reason, "url", tc.url); got != want {
					t.Errorf("parse_errors{reason=%s} = %v, want %v", reason, got, want)
				}
				parseErrors += want
			}
			if got := gathered(t, c, "kubernetes_collector_source_parse_errors", "url", tc.url); got != parseErrors {
				t.Errorf("parse_errors{url} = %v, want %v", got, parseErrors)
			}
			if r.ParseErrors != int(parseErrors) {
				t.Errorf("ScrapeResult.ParseErrors = %d, want %v", r.ParseErrors, parseErrors)
			}
			if got := gathered(t, c, "kubernetes_collector_target_points_collected", "url", tc.url); got != float64(r.Points) {
				t.Errorf("target_points_collected = %v, ScrapeResult.Points = %d", got, r.Points)
			}
		})
	}
	if got := gathered(t, c, "kubernetes_collector_source_collect_errors", "type", "prometheus"); got != float64(failures) {
		t.Errorf("source_collect_errors = %v, want %d", got, failures)
	}
	if got := gathered(t, c, "kubernetes_collector_source_manager_scrape_errors"); got != float64(failures) {
		t.Errorf("scrape_errors = %v, want %d", got, failures)
	}
	if p := findOne(t, points, "kubernetes.collector.source.collect.errors", "type", "prometheus"); p.Value != fmt.Sprint(failures) {
		t.Errorf("collect.errors sent as %v", p)
	}

	// Malformed lines are logged with the URL and their line number.
	logText := logs.String()
	malURL := cases[6].url
	for _, line := range []string{"line=3", "line=6"} {
		if !strings.Contains(logText, "url="+malURL+" "+line+" reason=syntax") {
			t.Errorf("no log of the malformed %s of %s:\n%s", line, malURL, logText)
		}
	}
	if !strings.Contains(logText, "reason=line_too_long") {
		t.Errorf("the 10 MiB line was not logged")
	}

	// The endless body: what was read before the deadline is delivered,
	// point for point, and counted as a timeout.
	endless := results[len(cases)-1]
	if endless.Points == 0 || uint64(len(find(points, "endless.total.counter"))) != endless.Points {
		t.Errorf("endless body: %d points kept, %d delivered", endless.Points, len(find(points, "endless.total.counter")))
	}
	if got := gathered(t, c, "kubernetes_collector_source_manager_scrape_timeouts"); got < 1 {
		t.Errorf("scrape_timeouts = %v", got)
	}
	// The 100 KiB label value is accepted whole by the parser, then cut to
	// the Wavefront key+value limit at the sink and counted.
	if p := findOne(t, points, "long.ok.value"); p.Value != "7" || len(p.Tags["v"]) != 254-len("v") {
		t.Errorf("long line point: value %s, tag length %d", p.Value, len(p.Tags["v"]))
	}
	if got := gathered(t, c, "kubernetes_collector_wavefront_tags_truncated_count"); got != 1 {
		t.Errorf("tags_truncated = %v, want 1", got)
	}
}

// Options.MaxLineBytes is the line cap of every scrape, not only the first.
func TestBadInputMaxLineBytesOption(t *testing.T) {
	long := strings.Repeat("z", 100<<10)
	srv := textServer(t, []byte("short 1\nlong{v=\""+long+"\"} 2\nshort_after 3\n"))
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, out, yq(srv.URL)), Options{MaxLineBytes: 64 << 10})
	for range 2 {
		if r := staticSource(c).scrape(context.Background()); r.Err != nil || r.ParseErrors != 1 || r.Points != 2 {
			t.Errorf("scrape: %+v, want the 100 KiB line skipped", r)
		}
	}
	if got := gathered(t, c, "kubernetes_collector_source_parse_errors", "reason", "line_too_long"); got != 2 {
		t.Errorf("line_too_long = %v, want 2", got)
	}
}

// A source whose TLS files cannot be loaded fails every scrape with an
// error naming the setting, without affecting the others (§1.6 notes).
func TestBadInputMissingCAFile(t *testing.T) {
	good := textServer(t, []byte("fine 1\n"))
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: https://127.0.0.1:1/metrics
    httpConfig: {tls_config: {ca_file: /nonexistent/ca.crt}}
  - url: %s
`, out, yq(good.URL)), Options{})
	results, err := once(t, c)
	if err == nil || !strings.Contains(err.Error(), "ca_file") || !strings.Contains(err.Error(), "https://127.0.0.1:1/metrics") {
		t.Errorf("err = %v", err)
	}
	if results[1].Err != nil {
		t.Errorf("good source: %v", results[1].Err)
	}
	findOne(t, readWF(t, out), "fine.value")
}
