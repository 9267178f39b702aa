package server

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/meshwave/meshwave/internal/export"
)

// fastExport is an exporter config that retries quickly.
func fastExport(u string) export.Config {
	return export.Config{URL: u, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxQueueBytes: export.MinMaxQueueBytes}
}

// findVictoriaMetrics returns Debian's victoria-metrics binary; CI must
// have it (.ci/run installs it), elsewhere the test skips without it.
func findVictoriaMetrics(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("victoria-metrics")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/victoria-metrics"); serr == nil {
			return "/usr/bin/victoria-metrics"
		}
		if os.Getenv("CI") != "" {
			t.Fatal("victoria-metrics not installed; CI must run this test (apt-get install victoria-metrics)")
		}
		t.Skip("victoria-metrics not installed (apt-get install victoria-metrics)")
	}
	return bin
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startVictoriaMetrics runs VictoriaMetrics on loopback address addr ("" for
// a free one) and returns its base URL once it is healthy.
func startVictoriaMetrics(t *testing.T, addr string) string {
	t.Helper()
	bin := findVictoriaMetrics(t)
	if addr == "" {
		addr = freeAddr(t)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-storageDataPath", t.TempDir(), "-httpListenAddr", addr, "-retentionPeriod", "1y")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("victoria-metrics output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	eventually(t, "victoria-metrics healthy", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// vmSeries is one line of VictoriaMetrics' /api/v1/export.
type vmSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// vmExport makes recent writes searchable and exports the series matching
// match, keyed by their label set.
func vmExport(t *testing.T, base, match string) map[string]vmSeries {
	t.Helper()
	if resp, err := http.Get(base + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/api/v1/export?" + url.Values{"match[]": {match}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]vmSeries{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var s vmSeries
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out[labelText(s.Metric)] = s
	}
	return out
}

func labelText(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

// TestExportRemoteWriteVictoriaMetrics: what the server ingests through
// /report can be queried back from a real VictoriaMetrics.
func TestExportRemoteWriteVictoriaMetrics(t *testing.T) {
	vm := startVictoriaMetrics(t, "")
	s := start(t, Config{RemoteWrite: fastExport(vm + "/api/v1/write")})
	t0 := base()
	points := fmt.Sprintf("istio.requests.total.value 42 %d source=pod-a app=web response.code=200\n", t0) +
		fmt.Sprintf("istio.requests.total.value 43.5 %d source=pod-a app=web response.code=200\n", t0+15_000) +
		fmt.Sprintf("∆requests.count 3 %d source=pod-a\n", t0+1_000) +
		fmt.Sprintf("4xx.errors -1.25 %d source=pod-b\n", t0/1000) // seconds
	if code, res := post(t, s.url, "wavefront", points); code != 202 || res.Accepted != 4 {
		t.Fatalf("POST points: %d %+v", code, res)
	}
	hist := fmt.Sprintf("!M %d #2 10 #3 20 latency.ms source=pod-a app=web\n", t0/1000+30)
	if code, res := post(t, s.url, "histogram", hist); code != 202 || res.Accepted != 1 {
		t.Fatalf("POST histogram: %d %+v", code, res)
	}

	type want struct {
		values []float64
		ts     []int64
	}
	wants := map[string]want{
		`{__name__="istio_requests_total_value",app="web",response_code="200",source="pod-a"}`: {[]float64{42, 43.5}, []int64{t0, t0 + 15_000}},
		`{__name__="requests_count_delta",source="pod-a"}`:                                     {[]float64{3}, []int64{t0 + 1_000}},
		`{__name__="_4xx_errors",source="pod-b"}`:                                              {[]float64{-1.25}, []int64{t0}},
		`{__name__="latency_ms_count",app="web",granularity="minute",source="pod-a"}`:          {[]float64{5}, []int64{t0}},
		`{__name__="latency_ms_sum",app="web",granularity="minute",source="pod-a"}`:            {[]float64{80}, []int64{t0}},
	}
	for _, q := range []struct {
		q string
		v float64
	}{{"0.5", 16}, {"0.75", 20}, {"0.9", 20}, {"0.95", 20}, {"0.99", 20}} {
		wants[`{__name__="latency_ms",app="web",granularity="minute",quantile="`+q.q+`",source="pod-a"}`] = want{[]float64{q.v}, []int64{t0}}
	}
	const match = `{__name__=~"istio_.*|requests_.*|_4xx_.*|latency_.*"}`
	var got map[string]vmSeries
	eventually(t, "all series in VictoriaMetrics", func() bool {
		got = vmExport(t, vm, match)
		if len(got) < len(wants) {
			return false
		}
		for k, w := range wants {
			if len(got[k].Values) < len(w.values) {
				return false
			}
		}
		return true
	})
	for k, w := range wants {
		g, ok := got[k]
		if !ok || !slices.Equal(g.Values, w.values) || !slices.Equal(g.Timestamps, w.ts) {
			t.Errorf("%s: got %v at %v, want %v at %v", k, g.Values, g.Timestamps, w.values, w.ts)
		}
	}
	if len(got) != len(wants) {
		t.Errorf("VictoriaMetrics has %d series, want %d: %v", len(got), len(wants), got)
	}

	// And through PromQL, as a user of the distributed engine would ask.
	q := url.Values{"query": {`sum(istio_requests_total_value{source="pod-a"})`}, "time": {fmt.Sprint((t0 + 20_000) / 1000)}}
	var qr struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	resp, err := http.Get(vm + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&qr)
	resp.Body.Close()
	if err != nil || len(qr.Data.Result) != 1 || qr.Data.Result[0].Value[1] != "43.5" {
		t.Errorf("PromQL query: %+v, %v", qr, err)
	}
}

// TestExportRemoteWriteVictoriaMetricsLate: points ingested before
// VictoriaMetrics runs reach it once it is up.
func TestExportRemoteWriteVictoriaMetricsLate(t *testing.T) {
	findVictoriaMetrics(t)
	addr := freeAddr(t)
	s := start(t, Config{RemoteWrite: fastExport("http://" + addr + "/api/v1/write")})
	t0 := base()
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "late.points %d %d source=s%d\n", i, t0+int64(i)*1000, i%3)
	}
	if code, res := post(t, s.url, "wavefront", b.String()); code != 202 || res.Accepted != 300 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "a failed attempt", func() bool { return counterValue(t, s, "meshwave_export_retries_total") > 0 })
	vm := startVictoriaMetrics(t, addr)
	eventually(t, "every point in VictoriaMetrics", func() bool {
		n := 0
		for _, ser := range vmExport(t, vm, `{__name__="late_points"}`) {
			n += len(ser.Values)
		}
		return n == 300
	})
}

// rwSink is a loopback remote-write receiver that refuses everything with
// 503 until up is set, then records each sample it accepts.
type rwSink struct {
	up      atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	seen    map[string]int // name source ts value → times received
}

func (r *rwSink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !r.up.Load() {
		r.refused.Add(1)
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(req.Body)
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range wr.Timeseries {
		var id []string
		for _, l := range ts.Labels {
			id = append(id, l.Name+"="+l.Value)
		}
		for _, s := range ts.Samples {
			r.seen[fmt.Sprintf("%s %d %v", strings.Join(id, ","), s.Timestamp, s.Value)]++
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *rwSink) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// TestExportRemoteDownThenUp: points ingested while the remote refuses
// everything, across a server restart, all reach it once it is back.
func TestExportRemoteDownThenUp(t *testing.T) {
	sink := &rwSink{seen: map[string]int{}}
	remote := httptest.NewServer(sink)
	defer remote.Close()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, RemoteWrite: fastExport(remote.URL + "/api/v1/write")}
	t0 := base()
	const perPost, posts = 500, 4
	ingest := func(s *testServer, from int) {
		var b strings.Builder
		for i := from; i < from+perPost; i++ {
			fmt.Fprintf(&b, "down.up %d %d source=s%d\n", i, t0+int64(i), i%7)
		}
		if code, res := post(t, s.url, "wavefront", b.String()); code != 202 || res.Accepted != perPost {
			t.Fatalf("POST: %d %+v", code, res)
		}
	}

	s, stop := startStoppable(t, cfg)
	ingest(s, 0)
	ingest(s, perPost)
	eventually(t, "the remote to refuse", func() bool { return sink.refused.Load() >= 2 })
	// Restart while the remote is down: the export queue is on disk.
	stop()
	s = start(t, cfg)
	for i := 2; i < posts; i++ {
		ingest(s, i*perPost)
	}
	sink.up.Store(true)
	eventually(t, "every point at the remote", func() bool { return sink.count() == perPost*posts })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for k, n := range sink.seen {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
}

// TestExportOTLP: spans and span logs ingested through /report arrive at a
// loopback OTLP/HTTP receiver as one span with its event, fields mapped.
func TestExportOTLP(t *testing.T) {
	var mu sync.Mutex
	var spans []*tracepb.Span
	var resources []map[string]string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "wrong path or type", http.StatusNotFound)
			return
		}
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		raw, _ := io.ReadAll(rd)
		var td tracepb.TracesData // the wire format of ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &td); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range td.ResourceSpans {
			attrs := map[string]string{}
			for _, kv := range rs.Resource.Attributes {
				attrs[kv.Key] = kv.Value.GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					spans = append(spans, sp)
					resources = append(resources, attrs)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(nil) // an empty ExportTraceServiceResponse: full success
	}))
	defer recv.Close()

	cfg := fastExport(recv.URL)
	cfg.Linger = 2 * time.Second // the span logs come in a second request
	s := start(t, Config{OTLP: cfg})
	t0 := base()
	body := fmt.Sprintf("getAll source=web-1 traceId=%s spanId=%s application=shop service=front cluster=c1 span.kind=server http.method=GET %d %d\n", traceA, spanR, t0, t0+250) +
		fmt.Sprintf("\"db query\" source=db-1 traceId=%s spanId=%s parent=%s application=shop service=db error=true %d 40\n", traceA, spanC, spanR, t0+10)
	if code, res := post(t, s.url, "trace", body); code != 202 || res.Accepted != 2 {
		t.Fatalf("POST spans: %d %+v", code, res)
	}
	logs := fmt.Sprintf(`{"traceId":"%s","spanId":"%s","logs":[{"timestamp":%d,"fields":{"event":"retry","attempt":2}}]}`, traceA, spanC, (t0+15)*1000)
	if code, res := post(t, s.url, "spanLogs", logs); code != 202 || res.Accepted != 1 {
		t.Fatalf("POST span logs: %d %+v", code, res)
	}
	eventually(t, "two spans at the receiver", func() bool { mu.Lock(); defer mu.Unlock(); return len(spans) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 2 {
		t.Fatalf("received %d spans, want 2", len(spans))
	}
	hexID := func(b []byte) string { return hex.EncodeToString(b) }
	root, child := spans[0], spans[1]
	if root.Name != "getAll" || hexID(root.TraceId) != strings.ReplaceAll(traceA, "-", "") || hexID(root.SpanId) != strings.ReplaceAll(spanR, "-", "")[16:] ||
		root.Kind != tracepb.Span_SPAN_KIND_SERVER || root.StartTimeUnixNano != uint64(t0)*1e6 || root.EndTimeUnixNano != uint64(t0+250)*1e6 || len(root.ParentSpanId) != 0 {
		t.Errorf("root span: %v", root)
	}
	if r := resources[0]; r["service.name"] != "front" || r["application"] != "shop" || r["cluster"] != "c1" || r["host.name"] != "web-1" {
		t.Errorf("root resource: %v", r)
	}
	if child.Name != "db query" || !bytes.Equal(child.ParentSpanId, root.SpanId) || child.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		child.EndTimeUnixNano-child.StartTimeUnixNano != 40e6 || resources[1]["service.name"] != "db" {
		t.Errorf("child span: %v %v", child, resources[1])
	}
	if len(child.Events) != 1 || child.Events[0].Name != "retry" || child.Events[0].TimeUnixNano != uint64(t0+15)*1e6 ||
		len(child.Events[0].Attributes) != 1 || child.Events[0].Attributes[0].Value.GetStringValue() != "2" {
		t.Errorf("span log as event: %v", child.Events)
	}
}
