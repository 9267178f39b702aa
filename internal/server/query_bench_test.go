package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The Data Plane dashboard exactly as internal/server/web/app.js issues it:
// one entry per chart, with the queries the chart fetches together.
const (
	benchFDP = `cluster="${cluster}" and reporter="${reporter}" and source_workload_namespace="${src_ns}"` +
		` and source_workload="${src_wl}" and destination_workload_namespace="${dst_ns}" and destination_workload="${dst_wl}"`
	// benchVars is the UI's default selection: the first cluster, every
	// other variable "*".
	benchVars = "&var.cluster=prod&var.reporter=%2A&var.src_ns=%2A&var.src_wl=%2A&var.dst_ns=%2A&var.dst_wl=%2A"
)

type benchChart struct {
	title   string
	queries []string
}

func dataPlaneCharts() []benchChart {
	dp := func(qs ...string) []string {
		for i, q := range qs {
			qs[i] = strings.ReplaceAll(q, "F_dp", benchFDP)
		}
		return qs
	}
	pct := func(f string) []string {
		var qs []string
		for _, p := range []string{"p50", "p95", "p99"} {
			qs = append(qs, fmt.Sprintf(f, p))
		}
		return dp(qs...)
	}
	return []benchChart{
		{"Success Rate", dp(`100 * sum(rate(ts(istio.requests.total.value, F_dp and not response_code="5*" and not response_code="4*"))) / sum(rate(ts(istio.requests.total.value, F_dp)))`)},
		{"Operations per Sec", dp(`sum(rate(ts(istio.requests.total.value, F_dp)))`)},
		{"4xx's", dp(`sum(rate(ts(istio.requests.total.value, F_dp and response_code="4*")))`)},
		{"5xx's", dp(`sum(rate(ts(istio.requests.total.value, F_dp and response_code="5*")))`)},
		{"Avg. Request Size", dp(`sum(rate(ts(istio.request.bytes.sum.value, F_dp))) / sum(rate(ts(istio.request.bytes.count.value, F_dp)))`)},
		{"Avg. Response Size", dp(`sum(rate(ts(istio.response.bytes.sum.value, F_dp))) / sum(rate(ts(istio.response.bytes.count.value, F_dp)))`)},
		{"Avg. Response Time", dp(`(sum(rate(ts(istio.request.duration.milliseconds.sum.value, F_dp))) / sum(rate(ts(istio.request.duration.milliseconds.count.value, F_dp)))) / 1000`)},
		{"Request Size (P50/P95/P99)", pct(`ts(istio.request.bytes.bucket.%s.value, F_dp)`)},
		{"Response Size (P50/P95/P99)", pct(`ts(istio.response.bytes.bucket.%s.value, F_dp)`)},
		{"Response Time (P50/P95/P99)", pct(`ts(istio.request.duration.milliseconds.bucket.%s.value, F_dp) / 1000`)},
		{"Overview of Applications using HTTP", dp(`ts(istio.request.duration.milliseconds.bucket.value, F_dp)`)},
		{"Avg. TCP Sent Bytes", dp(`avg(rate(ts(istio.tcp.sent.bytes.total.value, F_dp)))`)},
		{"Avg. TCP Received Bytes", dp(`avg(rate(ts(istio.tcp.received.bytes.total.value, F_dp)))`)},
		{"Avg. TCP Connections Opened", dp(`avg(rate(ts(istio.tcp.connections.opened.total.value, F_dp)))`)},
		{"Avg. TCP Connections Closed", dp(`avg(rate(ts(istio.tcp.connections.closed.total.value, F_dp)))`)},
		{"Overview of Applications using TCP", dp(`rate(ts(istio.tcp.sent.bytes.total.value, F_dp))`, `rate(ts(istio.tcp.received.bytes.total.value, F_dp))`)},
	}
}

// Bench mesh: the shape of wql's meshStore (istio.md §2.2, §5) — 1150 HTTP
// label sets × 85 series (requests; sum, count, 20 le buckets and 6
// quantiles of three histograms) plus 560 TCP label sets × 4 counters =
// 99 990 series — one sample a minute (the collector's default interval,
// with per-series jitter) for 24 h and 10 min before the window.
const (
	benchMinute = int64(60_000)
	// benchEnd is the window's end: fixed so the generated blocks can be
	// cached across runs.
	benchEnd     = int64(1_700_000_000_000) / benchMinute * benchMinute
	benchSamples = 24*60 + 10
	benchHTTP    = 1150
	benchTCP     = 560
	// benchBlock is the tsdb's largest compaction range with default
	// options and 15 d retention (2h, 6h, 18h): blocks aligned to it are
	// what the tsdb itself would hold, and it plans no compaction of them.
	benchBlock = 18 * 3_600_000
	// benchHead is what a running server still holds in its head block
	// (the tsdb persists 2-hour blocks once the head spans 3 hours):
	// samples from benchEnd-benchHead on are appended at start, the rest
	// comes from persisted blocks.
	benchHead = 2 * 3_600_000
)

var benchLE = []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
	"10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}

type benchSeries struct {
	lset    labels.Labels
	counter bool
}

func benchMesh(nHTTP, nTCP int) []benchSeries {
	var out []benchSeries
	codes := []string{"200", "200", "200", "404", "503"}
	base := func(i int, http bool) []string {
		l := []string{"source", "node-1", "cluster", "prod", "job", "federate", "app", "app" + strconv.Itoa(i%30),
			"reporter", []string{"source", "destination"}[i%2],
			"source_workload", "wl" + strconv.Itoa(i%40),
			"source_workload_namespace", "ns" + strconv.Itoa(i%5),
			"destination_workload", "wl" + strconv.Itoa((i/40)%30),
			"destination_workload_namespace", "ns" + strconv.Itoa((i/7)%5)}
		if http {
			l = append(l, "response_code", codes[i%len(codes)])
		}
		return l
	}
	add := func(name string, l []string, counter bool, extra ...string) {
		kv := append(append([]string{labelName, name}, l...), extra...)
		out = append(out, benchSeries{lset: labels.FromStrings(kv...), counter: counter})
	}
	for i := range nHTTP {
		l := base(i, true)
		add("istio.requests.total.value", l, true)
		for _, h := range []string{"istio.request.duration.milliseconds", "istio.request.bytes", "istio.response.bytes"} {
			add(h+".sum.value", l, true)
			add(h+".count.value", l, true)
			for _, le := range benchLE {
				add(h+".bucket.value", l, false, "le", le)
			}
			for _, p := range []string{"p50", "p75", "p90", "p95", "p99", "p999"} {
				add(h+".bucket."+p+".value", l, false)
			}
		}
	}
	for i := range nTCP {
		l := base(i, false)
		for _, m := range []string{"sent.bytes", "received.bytes", "connections.opened", "connections.closed"} {
			add("istio.tcp."+m+".total.value", l, true)
		}
	}
	return out
}

// benchSample is series k's i-th sample: counters rise by 1–8 a minute and
// reset every 700 minutes at a series-dependent phase; gauges vary.
func benchSample(k, i int, counter bool) (int64, float64) {
	t := benchEnd - int64(benchSamples-1-i)*benchMinute - 50_000 + int64(k%50)*1000
	if counter {
		return t, float64(7*((i+k)%700) + (i+k)%7 + k%100)
	}
	return t, float64(k%50) + float64((i*k)%13)
}

// benchTSDB returns a directory of tsdb blocks holding the bench mesh,
// generated on first use into os.TempDir and reused afterwards (keyed by
// the shape's parameters).
func benchTSDB(b *testing.B) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("meshwave-querybench-v2-%d-%d-%d-%d-%d", benchHTTP, benchTCP, benchSamples, benchEnd, benchHead))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	b.Logf("generating %s (once)", dir)
	t0 := time.Now()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	mesh := benchMesh(benchHTTP, benchTCP)
	first, _ := benchSample(0, 0, false)
	last, _ := benchSample(49, benchSamples-1, false)
	for lo := first / benchBlock * benchBlock; lo <= last; lo += benchBlock {
		w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), tmp, benchBlock)
		if err != nil {
			b.Fatal(err)
		}
		// Time-major order: the head refuses samples older than half a
		// block behind its newest one.
		refs := make([]storage.SeriesRef, len(mesh))
		app := w.Appender(context.Background())
		for i := range benchSamples {
			for k, s := range mesh {
				t, v := benchSample(k, i, s.counter)
				if t < lo || t >= lo+benchBlock || t >= benchEnd-benchHead {
					continue
				}
				if refs[k], err = app.Append(refs[k], s.lset, t, v); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = w.Appender(context.Background())
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d series in %v", len(mesh), time.Since(t0).Round(time.Second))
	return dir
}

// benchServer starts a server whose tsdb holds hard links to the cached
// blocks, so every run starts from the same files and the cache stays
// untouched by the tsdb.
func benchServer(b *testing.B, cfg Config) *testServer {
	src := benchTSDB(b)
	data := b.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "complete" {
			return nil
		}
		dst := filepath.Join(data, "tsdb", rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		return os.Link(p, dst)
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg.DataDir = data
	s := start(b, cfg)
	// The head: the last two hours, appended as scrapes arrive.
	t0 := time.Now()
	mesh := benchMesh(benchHTTP, benchTCP)
	refs := make([]storage.SeriesRef, len(mesh))
	for i := range benchSamples {
		app := s.metrics.db.Appender(context.Background())
		for k, ser := range mesh {
			t, v := benchSample(k, i, ser.counter)
			if t < benchEnd-benchHead {
				continue
			}
			if refs[k], err = app.Append(refs[k], ser.lset, t, v); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("head: %d series, %v..%v in %v", s.metrics.db.Head().NumSeries(), time.UnixMilli(s.metrics.db.Head().MinTime()).UTC(), time.UnixMilli(s.metrics.db.Head().MaxTime()).UTC(), time.Since(t0).Round(time.Millisecond))
	if s.rollups != nil {
		// As a server does within a minute of the tsdb writing a block.
		t0, cpu0 := time.Now(), cpuclock.Self()
		s.rollups.sync(context.Background(), s.metrics.db.Blocks())
		b.Logf("rolled up %d blocks in %v (%v cpu)", len(s.rollups.files), time.Since(t0).Round(time.Millisecond), (cpuclock.Self() - cpu0).Round(time.Millisecond))
	}
	return s
}

type benchRequest struct {
	chart, query, url string
}

func benchRequests(base string) [][]benchRequest {
	s, e := strconv.FormatInt(benchEnd/1000-86400, 10), strconv.FormatInt(benchEnd/1000, 10)
	var charts [][]benchRequest
	for _, c := range dataPlaneCharts() {
		var rs []benchRequest
		for _, q := range c.queries {
			rs = append(rs, benchRequest{c.title, q, base + "/api/v2/chart/api?q=" + url.QueryEscape(q) + "&s=" + s + "&e=" + e + "&g=m" + benchVars})
		}
		charts = append(charts, rs)
	}
	return charts
}

// fetch GETs r and reads the whole body, as a browser would.
func fetch(b *testing.B, r benchRequest) int64 {
	resp, err := http.Get(r.url)
	if err != nil {
		b.Error(err)
		return 0
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("%s: %d %v", r.chart, resp.StatusCode, err)
	}
	return n
}

// BenchmarkDataPlaneQueries loads the Data Plane dashboard from a server
// whose tsdb (on disk) holds 24 h of a 100 k-series mesh: every query over
// the UI's 24 h window at g=m with the UI's default variables, over HTTP.
// One op is the whole dashboard.
//
//   - sequential: one request after the other;
//   - parallel6: as app.js loads a dashboard, every request at once, which
//     a browser sends through its 6 connections per host;
//   - parallel6-p300: the same with p=300 (at most ~300 points a series,
//     about a chart's width in pixels);
//   - parallel6-ui: the requests app.js sends now: tables (which show
//     last values) over the last 10 minutes, every other chart with p=300;
//   - parallel6-ui-samples: the same from a server without rollups
//     (NoRollups), which reads every sample;
//   - handler: the query handler called directly, one request after the
//     other, without HTTP (the server's own cost);
//   - handler-ui: the same with parallel6-ui's requests;
//   - tsdb-scan: the baseline, no query engine: select each query's metric
//     names by name alone and decode every sample.
func BenchmarkDataPlaneQueries(b *testing.B) {
	s := benchServer(b, Config{})
	var all, allRaw []benchRequest
	for _, c := range benchRequests(s.url) {
		all = append(all, c...)
	}
	// The baseline for rollups: the same blocks, read sample by sample.
	raw := benchServer(b, Config{NoRollups: true})
	for _, c := range benchRequests(raw.url) {
		allRaw = append(allRaw, c...)
	}
	// One untimed pass, as the UI loads the dashboard, warms the page
	// cache and the tsdb's postings, and tells where the time goes.
	for _, r := range all {
		r = uiRequest(r, s.url)
		t0, cpu0 := time.Now(), cpuclock.Self()
		n := fetch(b, r)
		b.Logf("%-36s %8.1f ms %8.1f cpu-ms %10d B  %.60s", r.chart, float64(time.Since(t0).Microseconds())/1000,
			float64((cpuclock.Self()-cpu0).Microseconds())/1000, n, r.query)
	}
	run := func(name string, load func()) {
		b.Run(name, func(b *testing.B) {
			cpu0 := cpuclock.Self()
			for b.Loop() {
				load()
			}
			b.ReportMetric(float64((cpuclock.Self()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
	run("sequential", func() {
		for _, r := range all {
			fetch(b, r)
		}
	})
	suffix := func(sfx string) func(benchRequest) benchRequest {
		return func(r benchRequest) benchRequest { r.url += sfx; return r }
	}
	run("parallel6", parallel6(b, all, suffix("")))
	run("parallel6-p300", parallel6(b, all, suffix("&p=300")))
	run("parallel6-ui", parallel6(b, all, func(r benchRequest) benchRequest { return uiRequest(r, s.url) }))
	run("parallel6-ui-samples", parallel6(b, allRaw, func(r benchRequest) benchRequest { return uiRequest(r, raw.url) }))
	handler := func(rewrite func(benchRequest) benchRequest) func() {
		return func() {
			for _, r := range all {
				r = rewrite(r)
				req := httptest.NewRequest(http.MethodGet, r.url, nil)
				w := &discardResponse{header: http.Header{}}
				s.handleChart(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("%s: %d", r.chart, w.code)
				}
			}
		}
	}
	run("handler", handler(suffix("")))
	run("handler-ui", handler(func(r benchRequest) benchRequest { return uiRequest(r, s.url) }))
	names := benchMetricNames(all)
	run("tsdb-scan", func() {
		start := benchEnd - 86400_000 - benchMinute
		q, err := s.metrics.db.Querier(start, benchEnd)
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		var it chunkenc.Iterator
		for _, name := range names {
			set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labelName, name))
			for set.Next() {
				it = set.At().Iterator(it)
				for it.Next() != chunkenc.ValNone {
				}
			}
			if err := set.Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchMetricNames lists the metric of every ts() in the requests, once
// per occurrence, as the query engine selects them.
func benchMetricNames(rs []benchRequest) []string {
	var names []string
	for _, r := range rs {
		rest := r.query
		for {
			i := strings.Index(rest, "ts(")
			if i < 0 {
				break
			}
			rest = rest[i+3:]
			names = append(names, rest[:strings.IndexByte(rest, ',')])
		}
	}
	return names
}

// discardResponse is an http.ResponseWriter that keeps only the status.
type discardResponse struct {
	header http.Header
	code   int
}

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) WriteHeader(code int)        { d.code = code }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

// uiRequest rewrites a 24 h request as app.js sends it (rangeParams):
// tables ask for the last 10 minutes, charts for about 300 points.
func uiRequest(r benchRequest, base string) benchRequest {
	if strings.HasPrefix(r.chart, "Overview of Applications") {
		s, e := strconv.FormatInt(benchEnd/1000-600, 10), strconv.FormatInt(benchEnd/1000, 10)
		r.url = base + "/api/v2/chart/api?q=" + url.QueryEscape(r.query) + "&s=" + s + "&e=" + e + "&g=m" + benchVars
		return r
	}
	r.url += "&p=300"
	return r
}

// parallel6 loads every request, each rewritten by rewrite, through 6
// concurrent clients, as a browser loads a dashboard.
func parallel6(b *testing.B, all []benchRequest, rewrite func(benchRequest) benchRequest) func() {
	return func() {
		reqs := make(chan benchRequest)
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for r := range reqs {
					fetch(b, rewrite(r))
				}
			})
		}
		for _, r := range all {
			reqs <- r
		}
		close(reqs)
		wg.Wait()
	}
}
