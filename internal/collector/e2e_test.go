package collector

// End-to-end tests: YAML through config.Parse, real loopback servers and
// listeners, real sink files. They check what leaves the collector on the
// wire, as the reference would send it (collector.md §3, §6, §7).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/testlog"
)

const fixtureDir = "../../testdata/fixtures/exposition/"

// fixture reads a shared exposition fixture, skipping the test when the
// shared checkout is not there.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if os.IsNotExist(err) {
		t.Skipf("fixture %s not available: %v", name, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yq quotes s as a YAML single-quoted scalar, so URLs with {, " and [] go
// through the parser untouched.
func yq(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// newCollector parses yaml with config.Parse, as the command does, and
// builds a collector whose logs go to the returned buffer. The sinks are
// closed at cleanup in case the test did not run Once or Run.
func newCollector(t *testing.T, yaml string, opts Options) (*Collector, *testlog.Buffer) {
	t.Helper()
	cfg, _, err := config.Parse([]byte(yaml), "e2e.yaml")
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	logs := &testlog.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.closeWriters(ctx)
	})
	return c, logs
}

// wfPoint is one parsed Wavefront line. TS is "" when the line has none.
type wfPoint struct {
	Name, Value, TS, Source string
	Tags                    map[string]string
}

func (p wfPoint) String() string {
	kv := make([]string, 0, len(p.Tags))
	for k, v := range p.Tags {
		kv = append(kv, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(kv)
	return fmt.Sprintf("%s %s %s source=%s %s", p.Name, p.Value, p.TS, p.Source, strings.Join(kv, " "))
}

// wfTokens splits a line on spaces outside quotes and unquotes quoted parts,
// so `"k"="v"` becomes `k=v` (sanitised keys never hold '=').
func wfTokens(line string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ':
			if in {
				toks = append(toks, cur.String())
				cur.Reset()
				in = false
			}
		case '"':
			in = true
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
					if line[j] == 'n' {
						cur.WriteByte('\n')
					} else {
						cur.WriteByte(line[j])
					}
					continue
				}
				cur.WriteByte(line[j])
			}
			if j == len(line) {
				return nil, fmt.Errorf("unterminated quote")
			}
			i = j
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

func parseWF(line string) (wfPoint, error) {
	toks, err := wfTokens(line)
	if err != nil || len(toks) < 3 {
		return wfPoint{}, fmt.Errorf("malformed line %q: %v", line, err)
	}
	p := wfPoint{Name: toks[0], Value: toks[1], Tags: map[string]string{}}
	rest := toks[2:]
	if !strings.HasPrefix(rest[0], "source=") {
		p.TS, rest = rest[0], rest[1:]
	}
	if len(rest) == 0 || !strings.HasPrefix(rest[0], "source=") {
		return wfPoint{}, fmt.Errorf("no source in %q", line)
	}
	p.Source = strings.TrimPrefix(rest[0], "source=")
	for _, kv := range rest[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return wfPoint{}, fmt.Errorf("bad tag %q in %q", kv, line)
		}
		if _, dup := p.Tags[k]; dup {
			return wfPoint{}, fmt.Errorf("duplicate tag %q in %q", k, line)
		}
		p.Tags[k] = v
	}
	return p, nil
}

// parseWFData parses every line of a Wavefront data stream; any line that
// is not well-formed fails the test.
func parseWFData(t *testing.T, data []byte) []wfPoint {
	t.Helper()
	var out []wfPoint
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sc.Text() == "" {
			t.Errorf("empty line in sink output")
			continue
		}
		p, err := parseWF(sc.Text())
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readWF(t *testing.T, path string) []wfPoint {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseWFData(t, data)
}

// find returns the points named name whose tags include every k=v pair.
func find(points []wfPoint, name string, kv ...string) []wfPoint {
	var out []wfPoint
	for _, p := range points {
		if p.Name != name {
			continue
		}
		ok := true
		for i := 0; i < len(kv); i += 2 {
			if p.Tags[kv[i]] != kv[i+1] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// findOne is find that expects exactly one match.
func findOne(t *testing.T, points []wfPoint, name string, kv ...string) wfPoint {
	t.Helper()
	got := find(points, name, kv...)
	if len(got) != 1 {
		t.Fatalf("%d points named %s with %v, want 1: %v", len(got), name, kv, got)
	}
	return got[0]
}

// isSelfMetric tells the collector's own points and heartbeats apart from
// scraped data.
func isSelfMetric(p wfPoint) bool {
	return strings.Contains(p.Name, "kubernetes.collector.") || strings.HasPrefix(p.Name, "~")
}

// gathered sums the registry's samples of one metric whose labels include
// every k=v pair (0 when there are none).
func gathered(t *testing.T, c *Collector, name string, kv ...string) float64 {
	t.Helper()
	mfs, err := c.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(kv); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == kv[i] && l.GetValue() == kv[i+1]
				}) {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// textServer serves body as Prometheus text format 0.0.4.
func textServer(t *testing.T, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// sinkFile returns a fresh path for a file sink.
func sinkFile(t *testing.T) string { return filepath.Join(t.TempDir(), "out.wf") }

// once runs Once with a generous deadline: tests assert on outcomes, not
// on timing.
func once(t *testing.T, c *Collector) ([]ScrapeResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Once(ctx)
}

// The Istio fixtures, scraped once, give exactly the reference's points:
// names and suffixes per family type, %v-formatted le/quantile, dropped
// empty and "-" values, the forced cluster tag and one scrape timestamp.
func TestE2EIstioFixtures(t *testing.T) {
	envoy := fixture(t, "envoy-sidecar-istio-1.7.1-excerpt.prom")
	istiod := fixture(t, "istiod-1.7.1-metrics-excerpt.prom")
	envoySrv, istiodSrv := textServer(t, envoy), textServer(t, istiod)
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
clusterName: e2e
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    source: node-a
  - url: %s
    name: istiod
    source: node-b
`, out, yq(envoySrv.URL+"/stats/prometheus"), yq(istiodSrv.URL+"/metrics")), Options{})

	before := time.Now().Unix()
	results, err := once(t, c)
	after := time.Now().Unix()
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	// 95 and 151 samples; none is NaN, so every sample is one point.
	for i, want := range []int{95, 151} {
		r := results[i]
		if r.Err != nil || r.Samples != want || r.Points != uint64(want) || r.ParseErrors != 0 {
			t.Errorf("result %d = %+v, want %d samples and points, no errors", i, r, want)
		}
	}

	points := readWF(t, out)
	var data []wfPoint
	ts := map[string]map[string]bool{}
	for _, p := range points {
		if isSelfMetric(p) {
			continue
		}
		data = append(data, p)
		if ts[p.Source] == nil {
			ts[p.Source] = map[string]bool{}
		}
		ts[p.Source][p.TS] = true
		if p.Tags["cluster"] != "e2e" {
			t.Errorf("cluster tag not forced: %v", p)
		}
		for k, v := range p.Tags {
			if v == "" || v == "-" {
				t.Errorf("tag %s=%q should have been dropped: %v", k, v, p)
			}
		}
		if _, ok := p.Tags["grpc_response_status"]; ok {
			t.Errorf("empty label kept: %v", p)
		}
	}
	if len(data) != 95+151 {
		t.Errorf("got %d data points, want %d", len(data), 95+151)
	}
	// Every point of one scrape carries that scrape's second (§3.8).
	for src, set := range ts {
		if len(set) != 1 {
			t.Errorf("source %s: %d distinct timestamps, want 1", src, len(set))
		}
		for s := range set {
			var n int64
			if _, err := fmt.Sscan(s, &n); err != nil || n < before || n > after {
				t.Errorf("source %s: timestamp %q not within [%d, %d]", src, s, before, after)
			}
		}
	}
	var envoyTS, istiodTS string
	for s := range ts["node-a"] {
		envoyTS = s
	}
	for s := range ts["node-b"] {
		istiodTS = s
	}

	// One line compared whole: a histogram _sum with an empty label set.
	if got, want := findOne(t, data, "envoy.server.initialization.time.ms.sum"),
		(wfPoint{Name: "envoy.server.initialization.time.ms.sum", Value: "6650", TS: envoyTS, Source: "node-a",
			Tags: map[string]string{"cluster": "e2e"}}); got.String() != want.String() {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// A counter series with response_flags="UF" (kept) and
	// grpc_response_status="" (dropped), compared whole.
	uf := findOne(t, data, "istio.requests.total.counter", "response_flags", "UF")
	wantUF := wfPoint{Name: "istio.requests.total.counter", Value: "5", TS: envoyTS, Source: "node-a", Tags: map[string]string{
		"cluster": "e2e", "response_code": "503", "reporter": "destination", "source_workload": "unknown",
		"source_workload_namespace": "unknown", "source_principal": "unknown", "source_app": "unknown",
		"source_version": "unknown", "destination_workload": "productpage-v1", "destination_workload_namespace": "default",
		"destination_principal": "unknown", "destination_app": "productpage", "destination_version": "v1",
		"destination_service": "172.17.0.12:15000", "destination_service_name": "InboundPassthroughClusterIpv4",
		"destination_service_namespace": "default", "request_protocol": "http", "response_flags": "UF",
		"connection_security_policy": "none", "source_canonical_service": "unknown",
		"destination_canonical_service": "productpage", "source_canonical_revision": "latest",
		"destination_canonical_revision": "v1",
	}}
	if uf.String() != wantUF.String() {
		t.Errorf("got  %v\nwant %v", uf, wantUF)
	}
	if n := len(find(data, "istio.requests.total.counter")); n != 7 {
		t.Errorf("%d istio.requests.total.counter points, want 7", n)
	}
	// The other six carry response_flags="-", which never arrives (§6.2).
	if n := len(find(data, "istio.requests.total.counter", "response_flags", "")); n != 6 {
		t.Errorf("%d istio.requests.total.counter points without response_flags, want 6", n)
	}

	// Typed histograms: le re-formatted with %v (§3.4).
	for le, v := range map[string]string{"0.5": "0", "600000": "1", "1.8e+06": "1", "3.6e+06": "1", "+Inf": "1"} {
		if p := findOne(t, data, "istio.response.bytes.bucket", "le", le, "destination_workload", "reviews-v3"); p.Value != v {
			t.Errorf("istio.response.bytes.bucket le=%s = %s, want %s", le, p.Value, v)
		}
	}
	for _, bad := range []string{"1800000", "3600000", "0.50"} {
		if len(find(data, "istio.response.bytes.bucket", "le", bad)) > 0 {
			t.Errorf("le=%s not re-formatted", bad)
		}
	}
	if p := findOne(t, data, "istio.response.bytes.sum"); p.Value != "545" || p.Tags["le"] != "" {
		t.Errorf("istio.response.bytes.sum: %v", p)
	}
	if p := findOne(t, data, "envoy.cluster.upstream.cx.connect.ms.sum", "cluster_name", "xds-grpc"); p.Value != "30.85" {
		t.Errorf("31-digit float: %v", p)
	}
	if p := findOne(t, data, "envoy.cluster.upstream.cx.length.ms.bucket", "le", "1.8e+06"); p.Value != "4" {
		t.Errorf("envoy bucket: %v", p)
	}

	// istiod: gauges, counters, a summary, values without exponents.
	for _, c := range []struct{ name, value string }{
		{"go.goroutines.gauge", "345"},
		{"process.virtual.memory.max.bytes.gauge", "-1"},
		{"citadel.server.root.cert.expiry.timestamp.gauge", "1916309303"},
		{"go.memstats.gc.cpu.fraction.gauge", "0.00006904294960464036"},
		{"process.cpu.seconds.total.counter", "2.35"},
		{"go.memstats.alloc.bytes.total.counter", "110660400"},
		{"go.gc.duration.seconds.count", "13"},
		{"go.gc.duration.seconds.sum", "0.013316174"},
	} {
		if p := findOne(t, data, c.name); p.Value != c.value || p.Source != "node-b" || p.TS != istiodTS {
			t.Errorf("%s: got %v, want value %s from node-b", c.name, p, c.value)
		}
	}
	for q, v := range map[string]string{"0": "0.000008969", "0.25": "0.000087539", "1": "0.005515511"} {
		if p := findOne(t, data, "go.gc.duration.seconds", "quantile", q); p.Value != v {
			t.Errorf("summary quantile %s = %v, want %s", q, p, v)
		}
	}
	if p := findOne(t, data, "pilot.xds.pushes.counter", "type", "eds"); p.Value != "49" {
		t.Errorf("pilot.xds.pushes: %v", p)
	}
	if p := findOne(t, data, "istio.build.gauge"); p.Tags["component"] != "pilot" || p.Tags["tag"] != "1.7.1" {
		t.Errorf("istio.build: %v", p)
	}
	if p := findOne(t, data, "pilot.proxy.convergence.time.bucket", "le", "0.1"); p.Value != "1" {
		t.Errorf("pilot bucket: %v", p)
	}

	// Self-metrics through the sink (§7), counted per source type and per
	// target, and the heartbeat (§6.5).
	if p := findOne(t, points, "kubernetes.collector.source.points.collected", "type", "prometheus"); p.Value != "246" ||
		p.Tags["cluster"] != "e2e" || p.Tags["leading"] != "true" {
		t.Errorf("source.points.collected: %v", p)
	}
	for url, n := range map[string]string{envoySrv.URL + "/stats/prometheus": "95", istiodSrv.URL + "/metrics": "151"} {
		if p := findOne(t, points, "kubernetes.collector.target.points.collected", "url", url); p.Value != n ||
			p.Tags["type"] != "prometheus" || p.Tags["discovered"] != "static" {
			t.Errorf("target.points.collected: %v, want %s", p, n)
		}
	}
	if p := findOne(t, points, "kubernetes.collector.source.manager.providers"); p.Value != "2" {
		t.Errorf("providers: %v", p)
	}
	hb := findOne(t, points, "~wavefront.kubernetes.collector.version")
	if hb.Tags["cluster"] != "e2e" || hb.Tags["stats_prefix"] != "kubernetes." || hb.TS != "" || hb.Value != "0.1" {
		t.Errorf("heartbeat: %v", hb)
	}
	findOne(t, points, "~wavefront.kubernetes.collector.config.events.enabled")
	// Zero suppression: these counters exist at zero but are not sent.
	for _, p := range points {
		for _, suffix := range zeroSuppressed {
			if strings.HasSuffix(p.Name, suffix) && p.Value == "0" {
				t.Errorf("zero-valued %s sent: %v", suffix, p)
			}
		}
	}
	if gathered(t, c, "kubernetes_collector_source_points_filtered", "type", "prometheus") != 0 ||
		len(find(points, "kubernetes.collector.source.points.filtered")) != 0 ||
		len(find(points, "kubernetes.collector.wavefront.points.filtered.count")) != 0 ||
		len(find(points, "kubernetes.collector.source.collect.errors")) != 0 {
		t.Errorf("zero-valued points.filtered / collect.errors sent")
	}
}

// A federate URL's query string reaches the server untouched, and
// federated (untyped) series keep .value and their verbatim le (§3.3).
func TestE2EFederateQueryUntouched(t *testing.T) {
	const body = `# TYPE istio_request_duration_milliseconds_bucket untyped
istio_request_duration_milliseconds_bucket{instance="",job="federate",le="1800000"} 55 1712000000000
# TYPE ns:app_jobs:rate1m untyped
ns:app_jobs:rate1m{job="federate",namespace="shop"} 0.25 1712000000000
`
	var rawQuery, match atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rawQuery.Store(r.URL.RawQuery)
		match.Store(strings.Join(r.URL.Query()["match[]"], "|"))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	const query = `match[]={job=~"federate|kubernetes-pods"}`
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    source: node-b
`, out, yq(srv.URL+"/federate?"+query)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	if got := rawQuery.Load(); got != query {
		t.Errorf("server got raw query %q, want %q", got, query)
	}
	if got := match.Load(); got != `{job=~"federate|kubernetes-pods"}` {
		t.Errorf("server decoded match[] = %q", got)
	}
	points := readWF(t, out)
	b := findOne(t, points, "istio.request.duration.milliseconds.bucket.value")
	if b.Tags["le"] != "1800000" || b.Value != "55" || b.Tags["cluster"] != config.DefaultClusterName || b.TS == "1712000000" {
		t.Errorf("federated bucket: %v", b)
	}
	if _, ok := b.Tags["instance"]; ok {
		t.Errorf("empty instance kept: %v", b)
	}
	// ':' becomes '-' on the wire (§6.3).
	if p := findOne(t, points, "ns-app.jobs-rate1m.value"); p.Value != "0.25" || p.Tags["namespace"] != "shop" {
		t.Errorf("recording rule: %v", p)
	}
}

// recorder is a handler that remembers every request's headers.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	body    string
	ctype   string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.headers = append(rec.headers, r.Header.Clone())
	rec.mu.Unlock()
	ct := rec.ctype
	if ct == "" {
		ct = "text/plain; version=0.0.4"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = io.WriteString(w, rec.body)
}

func (rec *recorder) seen() []http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.headers)
}

func TestE2EBearerToken(t *testing.T) {
	rec := &recorder{body: "up 1\n"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	// bearer_token wins over bearer_token_file (§1.6).
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    httpConfig:
      bearer_token: s3cret
      bearer_token_file: %s
`, sinkFile(t), yq(srv.URL+"/metrics"), tokenFile), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	if h := rec.seen(); len(h) != 1 || h[0].Get("Authorization") != "Bearer s3cret" {
		t.Errorf("headers: %v", h)
	}
}

// The token file is re-read on every scrape, so a rotated token is used by
// the next scrape without a restart.
func TestE2EBearerTokenFileRotation(t *testing.T) {
	rec := &recorder{body: "up 1\n"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    httpConfig: {bearer_token_file: %s}
`, sinkFile(t), yq(srv.URL+"/metrics"), tokenFile), Options{})
	ctx := context.Background()
	if r := staticSource(c).scrape(ctx); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := os.WriteFile(tokenFile, []byte("  second \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := staticSource(c).scrape(ctx); r.Err != nil {
		t.Fatal(r.Err)
	}
	// A token file that disappears fails that scrape, naming the key.
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	if r := staticSource(c).scrape(ctx); r.Err == nil || !strings.Contains(r.Err.Error(), "bearer_token_file") {
		t.Errorf("scrape without token file: err = %v", r.Err)
	}
	var got []string
	for _, h := range rec.seen() {
		got = append(got, h.Get("Authorization"))
	}
	if want := []string{"Bearer first", "Bearer second"}; !slices.Equal(got, want) {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
}

// quietTLSServer starts an HTTPS test server whose handshake-failure logs
// are discarded (several tests fail handshakes on purpose).
func quietTLSServer(t *testing.T, h http.Handler, conf *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = conf
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// writePEM writes one PEM block to a new file in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCert makes a self-signed client certificate and returns its pool
// (for the server) and its PEM files (for the collector).
func clientCert(t *testing.T, dir string) (pool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshwave-e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pool, writePEM(t, dir, "client.crt", "CERTIFICATE", der), writePEM(t, dir, "client.key", "EC PRIVATE KEY", keyDER)
}

func TestE2ETLS(t *testing.T) {
	dir := t.TempDir()
	pool, certFile, keyFile := clientCert(t, dir)
	var sni, peer atomic.Value
	sni.Store("")
	peer.Store("")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			peer.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		_, _ = io.WriteString(w, "# TYPE up gauge\nup 1\n")
	})
	recordSNI := func(c *tls.Config) *tls.Config {
		c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			sni.Store(hi.ServerName)
			return nil, nil
		}
		return c
	}
	plain := quietTLSServer(t, h, recordSNI(&tls.Config{}))
	mutual := quietTLSServer(t, h, recordSNI(&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}))
	// httptest's certificate is valid for example.com and 127.0.0.1.
	caFile := writePEM(t, dir, "ca.crt", "CERTIFICATE", plain.Certificate().Raw)

	for _, tc := range []struct {
		name, url, tlsConfig string
		wantErr, wantSNI     string
		wantPeer             string
	}{
		{name: "ca_file", url: plain.URL, tlsConfig: "{ca_file: " + caFile + "}"},
		{name: "no ca_file", url: plain.URL, tlsConfig: "{}", wantErr: "certificate"},
		{name: "insecure_skip_verify", url: plain.URL, tlsConfig: "{insecure_skip_verify: true}"},
		{name: "server_name", url: plain.URL, tlsConfig: "{ca_file: " + caFile + ", server_name: example.com}", wantSNI: "example.com"},
		{name: "wrong server_name", url: plain.URL, tlsConfig: "{ca_file: " + caFile + ", server_name: other.test}", wantErr: "other.test"},
		{name: "client cert", url: mutual.URL, tlsConfig: fmt.Sprintf("{ca_file: %s, cert_file: %s, key_file: %s}", caFile, certFile, keyFile), wantPeer: "meshwave-e2e"},
		{name: "client cert missing", url: mutual.URL, tlsConfig: "{ca_file: " + caFile + "}", wantErr: "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sni.Store("")
			peer.Store("")
			out := sinkFile(t)
			c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    name: tls-target
    httpConfig:
      tls_config: %s
`, out, yq(tc.url+"/metrics"), tc.tlsConfig), Options{})
			results, err := once(t, c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.url) {
					t.Errorf("err = %v, want one naming %s and %q", err, tc.url, tc.wantErr)
				}
				if got := gathered(t, c, "kubernetes_collector_target_collect_errors", "url", tc.url+"/metrics"); got != 1 {
					t.Errorf("target_collect_errors = %v, want 1", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if results[0].Points != 1 {
				t.Errorf("points = %d", results[0].Points)
			}
			findOne(t, readWF(t, out), "up.gauge")
			if tc.wantSNI != "" && sni.Load() != tc.wantSNI {
				t.Errorf("SNI %q, want %q", sni.Load(), tc.wantSNI)
			}
			if tc.wantPeer != "" && peer.Load() != tc.wantPeer {
				t.Errorf("client certificate %q, want %q", peer.Load(), tc.wantPeer)
			}
		})
	}
}

// The request prefers text format 0.0.4 (defect §9.10) and accepts gzip,
// which is decoded transparently.
func TestE2EAcceptAndGzip(t *testing.T) {
	var accept, encoding, agent atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		encoding.Store(r.Header.Get("Accept-Encoding"))
		agent.Store(r.Header.Get("User-Agent"))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		_, _ = io.WriteString(gz, "# TYPE zipped_total counter\nzipped_total{a=\"b\"} 42\n")
		_ = gz.Close()
	}))
	defer srv.Close()
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, out, yq(srv.URL)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	a, _ := accept.Load().(string)
	if !strings.HasPrefix(a, "text/plain;version=0.0.4") || !strings.Contains(a, "*/*;q=0.1") {
		t.Errorf("Accept %q does not prefer text/plain 0.0.4", a)
	}
	if e, _ := encoding.Load().(string); !strings.Contains(e, "gzip") {
		t.Errorf("Accept-Encoding %q", e)
	}
	if ua, _ := agent.Load().(string); !strings.HasPrefix(ua, "meshwave/") {
		t.Errorf("User-Agent %q", ua)
	}
	if p := findOne(t, readWF(t, out), "zipped.total.counter"); p.Value != "42" || p.Tags["a"] != "b" {
		t.Errorf("gzip body: %v", p)
	}
}

// An OpenMetrics response converts to exactly what the same counter gives
// in text format; _created and # EOF produce nothing.
func TestE2EOpenMetrics(t *testing.T) {
	om := &recorder{ctype: "application/openmetrics-text; version=1.0.0; charset=utf-8", body: `# HELP foo Foos.
# TYPE foo counter
foo_total{a="b"} 17.0
foo_created{a="b"} 1520879607.789
# EOF
`}
	text := &recorder{body: "# HELP foo_total Foos.\n# TYPE foo_total counter\nfoo_total{a=\"b\"} 17\n"}
	omSrv, textSrv := httptest.NewServer(om), httptest.NewServer(text)
	defer omSrv.Close()
	defer textSrv.Close()
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    source: om
  - url: %s
    source: text
`, out, yq(omSrv.URL), yq(textSrv.URL)), Options{})
	results, err := once(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if results[0].ParseErrors != 0 || results[0].Points != 1 {
		t.Errorf("openmetrics result %+v", results[0])
	}
	points := readWF(t, out)
	got := find(points, "foo.total.counter")
	if len(got) != 2 {
		t.Fatalf("foo.total.counter points: %v", got)
	}
	a, b := got[0], got[1]
	a.Source, b.Source = "", ""
	if a.String() != b.String() || a.Value != "17" {
		t.Errorf("openmetrics and text differ:\n%v\n%v", a, b)
	}
	for _, p := range points {
		if strings.Contains(p.Name, "created") || strings.Contains(p.Name, "EOF") {
			t.Errorf("unexpected point %v", p)
		}
	}
}

// Two scrapes of one source share one keep-alive connection (defect §9.5).
func TestE2EConnectionReuse(t *testing.T) {
	var conns, reqs atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		// Big enough to need several reads, so the body is streamed.
		for i := range 2000 {
			fmt.Fprintf(w, "reuse_metric{i=\"%d\"} %d\n", i, i)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, sinkFile(t), yq(srv.URL)), Options{})
	for range 3 {
		if r := staticSource(c).scrape(context.Background()); r.Err != nil || r.Points != 2000 {
			t.Fatalf("scrape: %+v", r)
		}
	}
	if reqs.Load() != 3 || conns.Load() != 1 {
		t.Errorf("%d requests over %d connections, want 3 over 1", reqs.Load(), conns.Load())
	}
}

// Sources are scraped concurrently and fail independently (defect §9.4);
// collection.timeout is the request deadline (defect §9.7).
func TestE2EConcurrentSourcesFailIndependently(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release) // runs before hang.Close, so no handler outlives it
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer fail.Close()
	var body strings.Builder
	body.WriteString("# TYPE good_metric gauge\n")
	for i := range 500 {
		fmt.Fprintf(&body, "good_metric{i=\"%d\"} %d\n", i, i)
	}
	good := textServer(t, []byte(body.String()))
	out := sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
    name: hanging
    collection: {timeout: 1s}
  - url: %s
    name: failing
  - url: %s
    name: good
`, out, yq(hang.URL+"/slow"), yq(fail.URL+"/err"), yq(good.URL+"/ok")), Options{})
	start := time.Now()
	results, err := once(t, c)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Once took %v; a hanging target should cost only its timeout", elapsed)
	}
	if err == nil {
		t.Fatal("Once succeeded with two failing sources")
	}
	msg := err.Error()
	for _, s := range []string{"hanging", hang.URL + "/slow", "failing", fail.URL + "/err", "500 Internal Server Error"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
	if strings.Contains(msg, good.URL) {
		t.Errorf("error %q mentions the good source", msg)
	}
	if results[2].Err != nil || results[2].Points != 500 {
		t.Errorf("good source: %+v", results[2])
	}
	if n := len(find(readWF(t, out), "good.metric.gauge")); n != 500 {
		t.Errorf("%d good points delivered, want 500", n)
	}
	if got := gathered(t, c, "kubernetes_collector_source_manager_scrape_timeouts"); got < 1 {
		t.Errorf("scrape_timeouts = %v, want ≥ 1", got)
	}
	if got := gathered(t, c, "kubernetes_collector_source_collect_errors", "type", "prometheus"); got != 2 {
		t.Errorf("source_collect_errors = %v, want 2", got)
	}
}

// The self-metrics registry served with promhttp shows the counters.
func TestE2ESelfMetricsPromhttp(t *testing.T) {
	src := textServer(t, []byte("a 1\nb 2\n"))
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, sinkFile(t), yq(src.URL)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	ms := httptest.NewServer(promhttp.HandlerFor(c.Metrics().Registry(), promhttp.HandlerOpts{}))
	defer ms.Close()
	body := httpGet(t, ms.URL)
	for _, want := range []string{
		`kubernetes_collector_source_points_collected{type="prometheus"} 2`,
		`kubernetes_collector_target_points_collected{discovered="static",type="prometheus",url="` + src.URL + `"} 2`,
		`kubernetes_collector_version 0.1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// A proxyAddress sink delivers the lines over a real TCP connection.
func TestE2EProxySink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		var all []byte
		defer func() { received <- all }()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		all, _ = io.ReadAll(conn)
	}()
	src := textServer(t, []byte("# TYPE proxied gauge\nproxied{x=\"y\"} 3\n"))
	c, _ := newCollector(t, fmt.Sprintf(`
clusterName: viaproxy
sinks:
- proxyAddress: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, ln.Addr().String(), yq(src.URL)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	// Once closed the sink, so the proxy side sees EOF.
	select {
	case data := <-received:
		points := parseWFData(t, data)
		if p := findOne(t, points, "proxied.gauge"); p.Value != "3" || p.Tags["x"] != "y" || p.Tags["cluster"] != "viaproxy" {
			t.Errorf("proxied point: %v", p)
		}
		findOne(t, points, "~wavefront.kubernetes.collector.version")
	case <-time.After(10 * time.Second):
		t.Fatal("proxy listener received nothing")
	}
}

// A server+token sink posts gzip batches to /report?f=wavefront with the
// token as a bearer token (§6.4).
func TestE2EDirectSink(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	var problems []string
	ingest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		check := func(what, got, want string) {
			if got != want {
				problems = append(problems, fmt.Sprintf("%s = %q, want %q", what, got, want))
			}
		}
		check("method", r.Method, http.MethodPost)
		check("path", r.URL.Path, "/report")
		check("f", r.URL.Query().Get("f"), "wavefront")
		check("Content-Encoding", r.Header.Get("Content-Encoding"), "gzip")
		check("Authorization", r.Header.Get("Authorization"), "Bearer t")
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			problems = append(problems, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			problems = append(problems, err.Error())
		}
		got = append(got, b...)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ingest.Close()
	src := textServer(t, []byte("# TYPE direct_total counter\ndirect_total 9\n"))
	c, _ := newCollector(t, fmt.Sprintf(`
sinks:
- server: %s
  token: t
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, yq(ingest.URL), yq(src.URL)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	points := parseWFData(t, got)
	if p := findOne(t, points, "direct.total.counter"); p.Value != "9" {
		t.Errorf("direct point: %v", p)
	}
	findOne(t, points, "kubernetes.collector.source.points.collected", "type", "prometheus")
}

// Sink prefix, tags and filter apply per sink (§6.1); the heartbeat
// bypasses them and carries the internal-stats prefix (defect §9.14).
func TestE2ESinkFilterTagsPrefix(t *testing.T) {
	src := textServer(t, []byte(`# TYPE keep_me gauge
keep_me{job="app"} 1
# TYPE drop_me gauge
drop_me 2
`))
	shaped, plain := sinkFile(t), sinkFile(t)
	c, _ := newCollector(t, fmt.Sprintf(`
clusterName: c1
sinks:
- file: %s
  prefix: .k8s.
  tags: {env: prod, job: ignored}
  filters:
    metricDenyList: ['drop.*']
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, shaped, plain, yq(src.URL)), Options{})
	if _, err := once(t, c); err != nil {
		t.Fatal(err)
	}
	sp := readWF(t, shaped)
	if p := findOne(t, sp, "k8s.keep.me.gauge"); p.Tags["env"] != "prod" || p.Tags["job"] != "app" || p.Tags["cluster"] != "c1" {
		t.Errorf("shaped point: %v", p)
	}
	for _, p := range sp {
		if strings.Contains(p.Name, "drop.me") {
			t.Errorf("sink filter let through %v", p)
		}
		if !strings.HasPrefix(p.Name, "k8s.") && !strings.HasPrefix(p.Name, "~") {
			t.Errorf("sink prefix missing: %v", p)
		}
	}
	if p := findOne(t, sp, "k8s.kubernetes.collector.wavefront.points.filtered.count"); p.Value != "1" {
		t.Errorf("filtered count: %v", p)
	}
	hb := findOne(t, sp, "~wavefront.kubernetes.collector.version")
	if hb.Tags["stats_prefix"] != "kubernetes." || hb.Tags["env"] != "" {
		t.Errorf("heartbeat took sink transforms: %v", hb)
	}
	// The other sink is untouched by the first one's transforms.
	pp := readWF(t, plain)
	findOne(t, pp, "keep.me.gauge")
	if p := findOne(t, pp, "drop.me.gauge"); p.Tags["env"] != "" {
		t.Errorf("plain sink got sink tags: %v", p)
	}
}

// Run scrapes on schedule, serves /metrics, and on cancel returns promptly
// with every point delivered.
func TestE2ERunAndShutdown(t *testing.T) {
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		_, _ = io.WriteString(w, "# TYPE ticks gauge\nticks 1\n")
	}))
	defer srv.Close()
	out := sinkFile(t)
	c, logs := newCollector(t, fmt.Sprintf(`
defaultCollectionInterval: 200ms
sinks:
- file: %s
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: %s
`, out, yq(srv.URL)), Options{MetricsAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// The listener's port is only in the log.
	var metricsURL string
	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)
	waitFor(t, 10*time.Second, "the metrics listener", func() bool {
		m := urlRE.FindStringSubmatch(logs.String())
		if m != nil {
			metricsURL = m[1]
		}
		return m != nil
	})
	waitFor(t, 10*time.Second, "three scrapes", func() bool { return reqs.Load() >= 3 })
	if body := httpGet(t, metricsURL); !strings.Contains(body, `kubernetes_collector_source_points_collected{type="prometheus"}`) {
		t.Errorf("/metrics lacks source_points_collected:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	points := readWF(t, out)
	// A scrape cut short by the cancel may not deliver; the others must.
	if n := len(find(points, "ticks.gauge")); n < 2 {
		t.Errorf("%d ticks.gauge points after %d scrapes", n, reqs.Load())
	}
	if len(find(points, "~wavefront.kubernetes.collector.version")) == 0 {
		t.Errorf("no heartbeat during Run")
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
