package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.etcd.io/bbolt"

	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/meshwave/meshwave/internal/wql"
)

// base is a whole minute ten minutes ago: inside every validation window.
func base() int64 { return time.Now().Add(-10 * time.Minute).Truncate(time.Minute).UnixMilli() }

func TestMetricsRoundTrip(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	body := fmt.Sprintf("cpu.load 0.75 %d source=web-1 env=prod\n", t0/1000) +
		fmt.Sprintf("cpu.load 1.5 %d source=web-1 env=prod\n", t0+1000) + // ms
		fmt.Sprintf("\"cpu.load\" 2.25 %d000 host=web-2 env=prod tag=x\n", t0/1000+2) + // µs; host→source, tag→_tag
		fmt.Sprintf("odd.tags 7 %d source=a __name__=n a.b-c/d,e=v\n", t0/1000) +
		fmt.Sprintf("∆jobs.done 3 %d source=w1\r\n", t0/1000)
	code, res := post(t, s.url, "wavefront", body)
	if code != http.StatusAccepted || res.Accepted != 5 || len(res.Rejected) != 0 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "points stored", func() bool { return len(selectAll(t, s.Server, "*")) == 4 })

	var chart ChartResponse
	if c := getJSON(t, s.url, chartPath(`ts("cpu.load", source="web-1")`, t0, t0+59_000, "s"), &chart); c != 200 {
		t.Fatalf("chart: %d", c)
	}
	if len(chart.Timeseries) != 1 {
		t.Fatalf("chart: %+v", chart)
	}
	got := chart.Timeseries[0]
	want := [][2]float64{{float64(t0 / 1000), 0.75}, {float64(t0/1000 + 1), 1.5}}
	if got.Label != "cpu.load" || got.Host != "web-1" || got.Tags["env"] != "prod" || !slices.Equal(got.Data, want) {
		t.Fatalf("chart series: %+v", got)
	}

	byName := map[string]int{}
	for i, ser := range selectAll(t, s.Server, "*") {
		byName[ser.Name+"|"+ser.Source] = i
	}
	all := selectAll(t, s.Server, "*")
	if i, ok := byName["cpu.load|web-2"]; !ok || all[i].Tags.Map()["_tag"] != "x" || all[i].Points[0].T != t0+2000 || all[i].Points[0].V != 2.25 {
		t.Fatalf("web-2: %+v", all)
	}
	i, ok := byName["odd.tags|a"]
	if !ok {
		t.Fatalf("odd.tags|a not stored: %+v", all)
	}
	if tags := all[i].Tags.Map(); tags["__name__"] != "n" || tags["a.b-c/d,e"] != "v" || len(tags) != 2 {
		t.Fatalf("tag keys not round-tripped: %+v", all[i])
	}
	if _, ok := byName["∆jobs.done|w1"]; !ok {
		t.Fatalf("delta counter missing: %+v", all)
	}

	// The metrics browser sees names, sources and tag values.
	var mr MetricsResponse
	getJSON(t, s.url, "/api/v2/metrics?match=cpu.*", &mr)
	if len(mr.Metrics) != 1 || mr.Metrics[0].Name != "cpu.load" || !slices.Equal(mr.Metrics[0].Sources, []string{"web-1", "web-2"}) ||
		!slices.Equal(mr.Metrics[0].Tags["env"], []string{"prod"}) {
		t.Fatalf("metrics browser: %+v", mr)
	}
}

func TestChartErrors(t *testing.T) {
	s := start(t, Config{})
	var qe QueryError
	if c := getJSON(t, s.url, chartPath(`ts("a", source=)`, 0, 60_000, "m"), &qe); c != 400 || qe.Position == nil {
		t.Fatalf("malformed query: %d %+v", c, qe)
	}
	for _, p := range []string{
		chartPath(`ts("a")`, 60_000, 0, "m"),     // end before start
		chartPath(`ts("a")`, 0, 1<<50, "s"),      // too many buckets
		chartPath(`ts("a")`, 0, 60_000, "x"),     // bad granularity
		"/api/v2/chart/api?s=1&e=2",              // no query
		chartPath(`rate(ts("a"`, 0, 60_000, "m"), // unterminated
	} {
		if c := getJSON(t, s.url, p, &qe); c != 400 {
			t.Errorf("%s: %d %+v", p, c, qe)
		}
	}
	getJSON(t, s.url, chartPath(`ts("a")`, 0, 60_000, "m"), nil)
	wantMetrics(t, s.url,
		`meshwave_server_query_requests_total{code="400",endpoint="chart"} 6`,
		`meshwave_server_query_requests_total{code="200",endpoint="chart"} 1`)
}

func TestHistogramsRoundTrip(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	body := fmt.Sprintf("!M %d #2 1.5 #1 4 lat.ms source=a env=prod\n", t0/1000+59) +
		fmt.Sprintf("!M %d #3 2 lat.ms source=a env=prod\n", t0/1000+30) + // same bin, merged at query
		fmt.Sprintf("!H %d #1 9 lat.ms source=b\n", t0/1000)
	if code, res := post(t, s.url, "histogram", body); code != 202 || res.Accepted != 3 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	var ds []DistSeries
	eventually(t, "histograms stored", func() bool {
		var err error
		ds, err = s.kv.SelectDistributions(context.Background(), "lat.*", nil, t0-3_600_000, t0+60_000)
		return err == nil && len(ds) == 2
	})
	slices.SortFunc(ds, func(a, b DistSeries) int { return strings.Compare(a.Source, b.Source) })
	a := ds[0]
	if a.Name != "lat.ms" || a.Granularity != "!M" || a.Tags["env"] != "prod" || len(a.Points) != 1 || a.Points[0].T != t0 {
		t.Fatalf("series a: %+v", a)
	}
	cs := a.Points[0].Centroids
	slices.SortFunc(cs, func(x, y Centroid) int { return int(x.Mean*10 - y.Mean*10) })
	if !slices.Equal(cs, []Centroid{{1.5, 2}, {2, 3}, {4, 1}}) {
		t.Fatalf("centroids: %+v", cs)
	}
	hourStart := t0 / 3_600_000 * 3_600_000
	if b := ds[1]; b.Granularity != "!H" || b.Points[0].T != hourStart || !slices.Equal(b.Points[0].Centroids, []Centroid{{9, 1}}) {
		t.Fatalf("series b: %+v", b)
	}
	var mr MetricsResponse
	getJSON(t, s.url, "/api/v2/metrics?match=lat.ms", &mr)
	if len(mr.Metrics) != 1 || mr.Metrics[0].Kind != "histogram" || !slices.Equal(mr.Metrics[0].Sources, []string{"a", "b"}) {
		t.Fatalf("metrics browser: %+v", mr)
	}
}

const (
	traceA = "7b3bf470-9456-11e8-9eb6-529269fb1459"
	traceB = "0313bafe-9457-11e8-9eb6-529269fb1459"
	spanR  = "0313bafe-9457-11e8-9eb6-529269fb1451"
	spanC  = "0313bafe-9457-11e8-9eb6-529269fb1452"
	spanX  = "0313bafe-9457-11e8-9eb6-529269fb1453"
)

func TestSpansRoundTrip(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	spans := fmt.Sprintf("getAll source=web traceId=%s spanId=%s application=shop service=front http.method=GET %d %d\n", traceA, spanR, t0, t0+250) +
		fmt.Sprintf("\"db query\" source=db traceId=%s spanId=%s parent=%s application=shop service=db error=true %d 40\n", traceA, spanC, spanR, t0+10) +
		fmt.Sprintf("checkout source=web traceId=%s spanId=%s application=shop service=front %d 5\n", traceB, spanX, t0+1000)
	if code, res := post(t, s.url, "trace", spans); code != 202 || res.Accepted != 3 {
		t.Fatalf("POST spans: %d %+v", code, res)
	}
	logs := fmt.Sprintf(`{"traceId":"%s","spanId":"%s","logs":[{"timestamp":%d,"fields":{"event":"retry","attempt":2}}],"span":"ignored"}`, traceA, spanC, (t0+15)*1000)
	if code, res := post(t, s.url, "spanLogs", logs); code != 202 || res.Accepted != 1 {
		t.Fatalf("POST logs: %d %+v", code, res)
	}
	var tr TraceResponse
	eventually(t, "trace stored", func() bool {
		tr = TraceResponse{}
		return getJSON(t, s.url, "/api/v2/traces/"+traceA, &tr) == 200 && len(tr.Spans) == 2 && len(tr.Spans[1].Logs) == 1
	})
	root, child := tr.Spans[0], tr.Spans[1]
	if root.Name != "getAll" || root.Source != "web" || root.StartMs != t0 || root.DurationMs != 250 || root.SpanID != spanR ||
		!slices.Equal(root.Annotations, []Annotation{{"application", "shop"}, {"service", "front"}, {"http.method", "GET"}}) {
		t.Fatalf("root span: %+v", root)
	}
	if child.Name != "db query" || child.DurationMs != 40 || child.Logs[0].Timestamp != (t0+15)*1000 ||
		child.Logs[0].Fields["event"] != "retry" || child.Logs[0].Fields["attempt"] != "2" {
		t.Fatalf("child span: %+v", child)
	}
	if c := getJSON(t, s.url, "/api/v2/traces/nope", nil); c != 404 {
		t.Fatalf("unknown trace: %d", c)
	}

	search := func(q string) []string {
		var r TraceSearchResponse
		if c := getJSON(t, s.url, "/api/v2/traces?"+q, &r); c != 200 {
			t.Fatalf("search %s: %d", q, c)
		}
		var ids []string
		for _, tr := range r.Traces {
			ids = append(ids, tr.TraceID)
		}
		return ids
	}
	for q, want := range map[string][]string{
		"service=front":                  {traceB, traceA}, // newest first
		"service=front&limit=1":          {traceB},
		"service=front&operation=getAll": {traceA},
		"service=db":                     {traceA},
		"minDuration=100":                {traceA},
		"maxDuration=10":                 {traceB},
		"error=true":                     {traceA},
		"error=false&service=front":      {traceB, traceA},
		fmt.Sprintf("start=%d&end=%d", t0+500, t0+2000): {traceB},
		"service=nope": nil,
	} {
		if got := search(q); !slices.Equal(got, want) {
			t.Errorf("search %s: got %v, want %v", q, got, want)
		}
	}
	var r TraceSearchResponse
	getJSON(t, s.url, "/api/v2/traces?service=db", &r)
	if sum := r.Traces[0]; sum.RootOperation != "getAll" || sum.RootService != "front" || sum.SpanCount != 2 || !sum.Error ||
		sum.DurationMs != 250 || !slices.Equal(sum.Services, []string{"db", "front"}) {
		t.Fatalf("summary: %+v", sum)
	}

	// A resent span replaces the old one and its index entries.
	resent := fmt.Sprintf("checkout source=web traceId=%s spanId=%s application=shop service=back %d 7\n", traceB, spanX, t0+1000)
	post(t, s.url, "trace", resent)
	eventually(t, "span replaced", func() bool { return slices.Equal(search("service=back"), []string{traceB}) })
	if got := search("service=front"); !slices.Equal(got, []string{traceA}) {
		t.Fatalf("stale index entry: %v", got)
	}
}

func TestGzipAuthAndLimits(t *testing.T) {
	s := start(t, Config{Tokens: []string{"secret", "other"}, MaxBodyBytes: 4096})
	t0 := base() / 1000
	line := func(name string) string { return fmt.Sprintf("%s 1 %d source=a\n", name, t0) }

	req, _ := http.NewRequest("POST", s.url+"/report?f=wavefront", bytes.NewReader(gz(line("zipped"))))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer secret")
	if code, res := do(t, req); code != 202 || res.Accepted != 1 {
		t.Fatalf("gzip: %d %+v", code, res)
	}
	// zstd and an unknown coding: every answer names the codings the
	// server reads (RFC 7694), which is how the proxy learns it may use zstd.
	zenc, _ := zstd.NewWriter(nil)
	for _, c := range []struct {
		encoding string
		body     []byte
		code     int
	}{
		{"zstd", zenc.EncodeAll([]byte(line("zstd.zipped")), nil), 202},
		{"br", []byte(line("brotli")), 415},
	} {
		req, _ = http.NewRequest("POST", s.url+"/report?f=wavefront", bytes.NewReader(c.body))
		req.Header.Set("Content-Encoding", c.encoding)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(resp.Header.Get("Accept-Encoding"), "zstd") {
			t.Fatalf("%s: %d, Accept-Encoding %q", c.encoding, resp.StatusCode, resp.Header.Get("Accept-Encoding"))
		}
	}
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"X-AUTH-TOKEN", "wrong"}, {"Authorization", "secret"}} {
		if code, _ := post(t, s.url, "wavefront", line("denied"), hdr...); code != 401 {
			t.Fatalf("token %v: %d", hdr, code)
		}
	}
	if code, _ := post(t, s.url, "wavefront", line("other.token"), "X-AUTH-TOKEN", "other"); code != 202 {
		t.Fatalf("X-AUTH-TOKEN: %d", code)
	}
	req, _ = http.NewRequest("POST", s.url+"/report?f=wavefront&api_key=secret", strings.NewReader(line("query.token")))
	if code, _ := do(t, req); code != 202 {
		t.Fatalf("api_key: %d", code)
	}
	if c := getJSON(t, s.url, "/api/v2/metrics", nil); c != 401 {
		t.Fatalf("query without token: %d", c)
	}

	big := strings.Repeat(line("big"), 4096/len(line("big"))+1)
	if code, _ := post(t, s.url, "wavefront", big, "Authorization", "Bearer secret"); code != 413 {
		t.Fatalf("oversized: %d", code)
	}
	// Small on the wire, over the cap once decompressed.
	req, _ = http.NewRequest("POST", s.url+"/report?f=wavefront", bytes.NewReader(gz(big)))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer secret")
	if code, _ := do(t, req); code != 413 {
		t.Fatalf("gzip bomb: %d", code)
	}
	req, _ = http.NewRequest("POST", s.url+"/report?f=wavefront", strings.NewReader("not gzip"))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer secret")
	if code, _ := do(t, req); code != 400 {
		t.Fatalf("bad gzip: %d", code)
	}

	eventually(t, "accepted points", func() bool { return len(selectAll(t, s.Server, "*")) == 4 })
	var names []string
	for _, ser := range selectAll(t, s.Server, "*") {
		names = append(names, ser.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"other.token", "query.token", "zipped", "zstd.zipped"}) {
		t.Fatalf("stored: %v (401, 413 and 415 must store nothing)", names)
	}
}

func TestBadLines(t *testing.T) {
	s := start(t, Config{})
	t0 := base() / 1000
	body := strings.Join([]string{
		fmt.Sprintf("good.one 1 %d source=a", t0),
		"disk used 12 source=a",                         // WF-300
		fmt.Sprintf("\"disk used\" 12 %d source=a", t0), // WF-400
		fmt.Sprintf("jobs 1 %d source=a team=\"\"", t0), // WF-414
		fmt.Sprintf("∆jobs.done 0 %d source=w1", t0),    // WF-404
		"old 1 100000000 source=a",                      // WF-402
		"temp +Inf source=a",                            // WF-300
		fmt.Sprintf("good.two 2 %d source=a", t0),
	}, "\n")
	code, res := post(t, s.url, "wavefront", body)
	want := map[string]int{"WF-300": 2, "WF-400": 1, "WF-414": 1, "WF-404": 1, "WF-402": 1}
	if code != 202 || res.Accepted != 2 || fmt.Sprint(res.Rejected) != fmt.Sprint(want) || len(res.Errors) != 6 ||
		!strings.HasPrefix(res.Errors[0], "line 2: WF-300") {
		t.Fatalf("POST: %d %+v", code, res)
	}
	span := fmt.Sprintf("op source=a traceId=%s spanId=%s bad:key=1 %d 5", traceA, spanR, base())
	if code, res := post(t, s.url, "trace", span+"\n{not json"); code != 202 || res.Rejected["WF-416"] != 1 {
		t.Fatalf("span: %d %+v", code, res)
	}
	if code, res := post(t, s.url, "spanLogs", "{not json}"); code != 202 || res.Rejected["WF-300"] != 1 {
		t.Fatalf("span logs: %d %+v", code, res)
	}
	if code, _ := post(t, s.url, "nope", "x 1"); code != 400 {
		t.Fatalf("unknown format: %d", code)
	}
	eventually(t, "good lines stored", func() bool { return len(selectAll(t, s.Server, "good.*")) == 2 })
	if n := len(selectAll(t, s.Server, "*")); n != 2 {
		t.Fatalf("%d series stored, want 2", n)
	}
	wantMetrics(t, s.url,
		`meshwave_server_lines_rejected_total{code="WF-300",format="wavefront"} 2`,
		`meshwave_server_lines_received_total{format="wavefront"} 8`,
		`meshwave_server_lines_stored_total{format="wavefront"} 2`,
		`meshwave_server_wal_bytes`,
		`meshwave_server_apply_lag_seconds`)
}

// wantMetrics checks that the server's /metrics has every line in wants.
func wantMetrics(t *testing.T, url string, wants ...string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range wants {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Duplicate deliveries (client retries, WAL replays) store one sample.
func TestIdempotentReplay(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	var body strings.Builder
	for i := range 10 {
		fmt.Fprintf(&body, "dup %d %d source=a\n", i, t0+int64(i)*1000)
	}
	// The second copy arrives after a newer sample, so it lands in the
	// tsdb's out-of-order head: the harder case.
	post(t, s.url, "wavefront", body.String())
	post(t, s.url, "wavefront", fmt.Sprintf("dup 99 %d source=a\n", t0+60_000))
	post(t, s.url, "wavefront", body.String())
	eventually(t, "all applied", func() bool {
		ss := selectAll(t, s.Server, "dup")
		return len(ss) == 1 && len(ss[0].Points) >= 11 && s.wal.idle()
	})
	if pts := selectAll(t, s.Server, "dup")[0].Points; len(pts) != 11 {
		t.Fatalf("%d points, want 11: %v", len(pts), pts)
	}
}

func TestRetentionCleanup(t *testing.T) {
	kv, err := openKV(t.TempDir() + "/kv.db")
	if err != nil {
		t.Fatal(err)
	}
	defer kv.close()
	var dec wavefront.Decoder
	old, recent := base()-48*3_600_000, base()
	var b kvBatch
	for i, st := range []int64{old, recent} {
		line := fmt.Sprintf("op source=a traceId=t%d spanId=s service=svc %d 5", i, st)
		var sp wavefront.Span
		if err := dec.DecodeSpan([]byte(line), &sp); err != nil {
			t.Fatal(err)
		}
		b.spans = append(b.spans, spanRecOf(&sp, []byte(line)))
		b.logs = append(b.logs, logRec{key: []byte(fmt.Sprintf("t%d\x00s\x00hash", i)), received: st, json: []byte(`{"traceId":"t","spanId":"s","logs":[]}`)})
		var h wavefront.Distribution
		if err := dec.DecodeDistribution(fmt.Appendf(nil, "!M %d #1 2 d source=a", st), &h); err != nil {
			t.Fatal(err)
		}
		b.dists = append(b.dists, distRecOf(&h, dec.TimestampMillis(), []byte(line)))
	}
	if err := kv.write(&b, &dec); err != nil {
		t.Fatal(err)
	}
	n, err := kv.cleanup(context.Background(), recent-3_600_000, &dec)
	if err != nil || n != 3 {
		t.Fatalf("cleanup: %d %v", n, err)
	}
	if sp, _ := kv.trace("t0", &dec); len(sp) != 0 {
		t.Fatalf("old trace kept: %+v", sp)
	}
	if sp, _ := kv.trace("t1", &dec); len(sp) != 1 {
		t.Fatalf("recent trace lost: %+v", sp)
	}
	ts, _ := kv.searchTraces(context.Background(), TraceQuery{Service: "svc", End: 1 << 62, Limit: 10}, &dec)
	if len(ts) != 1 || ts[0].TraceID != "t1" {
		t.Fatalf("index after cleanup: %+v", ts)
	}
	ds, _ := kv.SelectDistributions(context.Background(), "d", nil, 0, 1<<62)
	if len(ds) != 1 || len(ds[0].Points) != 1 || ds[0].Points[0].T != recent {
		t.Fatalf("distributions after cleanup: %+v", ds)
	}
}

// TestKnownSeries checks which lines knownSeries learns and takes without
// the decoder: those of a series the one pass wrote as it came, with a
// canonical value and a timestamp in the window; everything else is left
// to the decoder.
func TestKnownSeries(t *testing.T) {
	lim := wavefront.DefaultLimits()
	now := time.Now()
	dec := &wavefront.Decoder{Limits: &lim, Now: func() time.Time { return now }, DefaultSource: []byte("10.0.0.1")}
	sec := now.Add(-time.Hour).Unix()
	series := ` source="pod-1" "code"="200"`
	known := newKnownSeries()
	learn := func(line string) {
		r := known.reader(new(freeList[pointHint]))
		if out, ok := appendCanonicalPoint(nil, dec, []byte(line)); ok {
			r.learn([]byte(line), out)
		}
		r.close()
	}
	learn(fmt.Sprintf(`"req" 1 %d`, sec) + series)
	learn(fmt.Sprintf(`req 1 %d source=pod-2`, sec))              // not canonical: not learned
	learn(fmt.Sprintf(`"req" 1 %d source="pod-3" host="h"`, sec)) // the decoder's other way
	if len(known.entries) != 1 {
		t.Fatalf("learned %d series, want 1", len(known.entries))
	}
	for _, c := range []struct {
		line  string
		taken bool
	}{
		{fmt.Sprintf(`"req" 42 %d`, sec) + series, true},
		{fmt.Sprintf(`"req" -7.25 %d123`, sec) + series, true},
		{fmt.Sprintf(`"req" 0.000125 %d`, sec) + series, true},
		{fmt.Sprintf(`"req" 1.50 %d`, sec) + series, false},    // AppendValue writes 1.5
		{fmt.Sprintf(`"req" 1e3 %d`, sec) + series, false},     // and 1000
		{fmt.Sprintf(`"req" 007 %d`, sec) + series, false},     // and 7
		{fmt.Sprintf(`"req" nope %d`, sec) + series, false},    // rejected by the decoder
		{fmt.Sprintf(`"req" 1 0%d`, sec) + series, false},      // a leading zero
		{fmt.Sprintf(`"req" 1 %d000000`, sec) + series, false}, // ns
		{fmt.Sprintf(`"req" 1 %d`, sec+2*86400) + series, false},
		{`"req" 1` + series, false}, // the clock's time
		{fmt.Sprintf(`"req" 1  %d`, sec) + series, false},
		{fmt.Sprintf(`"req" 1 %d`, sec) + series + ` `, false},
		{fmt.Sprintf(`"req" 1 %d`, sec) + series + ` "k"="v"`, false},
		{fmt.Sprintf(`"reqs" 1 %d`, sec) + series, false},
	} {
		r := known.reader(new(freeList[pointHint]))
		got, ok := r.appendPoint([]byte("x"), dec, []byte(c.line))
		r.close()
		if ok != c.taken {
			t.Errorf("%q: taken %t, want %t", c.line, ok, c.taken)
			continue
		}
		if !ok {
			continue
		}
		var p wavefront.Point
		want, err := appendPoint([]byte("x"), dec, []byte(c.line), &p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: wrote %q, the decoder %q (%v)", c.line, got, want, err)
		}
	}

	// Full: emptied, then the new series added.
	known.maxEntries = 1
	learn(fmt.Sprintf(`"other" 1 %d`, sec) + series)
	if r := known.reader(new(freeList[pointHint])); len(known.entries) != 1 || known.find([]byte(`"other"`), []byte(series), known.hash([]byte(`"other"`), []byte(series))) != 0 {
		t.Errorf("after the bound: %d entries", len(known.entries))
		r.close()
	} else {
		r.close()
	}
}

// TestKnownSeriesSameAnswers posts the same bodies to a server that knows
// their series and one that does not, and checks that both answer and
// store the same: good lines, bad values, timestamps out of the window.
func TestKnownSeriesSameAnswers(t *testing.T) {
	warm, cold := start(t, Config{}), start(t, Config{})
	sec := base() / 1000
	var first strings.Builder
	for i := range 20 {
		fmt.Fprintf(&first, "\"kn.a\" %d %d source=\"pod-%d\" \"k\"=\"v\"\n", i, sec-20+int64(i), i%5)
	}
	if code, res := post(t, warm.url, "wavefront", first.String()); code != 202 || res.Accepted != 20 {
		t.Fatalf("warm-up: %d %+v", code, res)
	}
	body := strings.Join([]string{
		fmt.Sprintf(`"kn.a" 1.5 %d source="pod-0" "k"="v"`, sec+1),
		fmt.Sprintf(`"kn.a" 1.50 %d source="pod-1" "k"="v"`, sec+1),
		fmt.Sprintf(`"kn.a" x %d source="pod-2" "k"="v"`, sec+1),
		fmt.Sprintf(`"kn.a" 3 %d source="pod-3" "k"="v"`, sec+2*86400),
		fmt.Sprintf(`"kn.a" 4 %d000 source="pod-4" "k"="v"`, sec+1),
		fmt.Sprintf(`"kn.a" 5 %d source="pod-5" "k"="v"`, sec+1),
		fmt.Sprintf(`"kn.a" 6 %d source="pod-0" "k"=""`, sec+2),
	}, "\n")
	_, wantRes := post(t, cold.url, "wavefront", body)
	code, res := post(t, warm.url, "wavefront", body)
	if code != 202 || fmt.Sprintf("%+v", res) != fmt.Sprintf("%+v", wantRes) || res.Accepted != 4 || res.Rejected["WF-402"] != 1 {
		t.Fatalf("known series: %d %+v; unknown: %+v", code, res, wantRes)
	}
	eventually(t, "stored", func() bool {
		n := 0
		for _, ser := range selectAll(t, warm.Server, "kn.a") {
			n += len(ser.Points)
		}
		return n == 24
	})
	eventually(t, "stored", func() bool { return len(selectAll(t, cold.Server, "kn.a")) == 4 })
	last := func(s *Server) map[string]wql.Point {
		m := map[string]wql.Point{}
		for _, ser := range selectAll(t, s, "kn.a") {
			m[ser.Source] = ser.Points[len(ser.Points)-1]
		}
		return m
	}
	got, want := last(warm.Server), last(cold.Server)
	for src, p := range want {
		if got[src] != p {
			t.Errorf("%s: newest point %+v, want %+v", src, got[src], p)
		}
	}
}

// FuzzKnownSeries checks that a line knownSeries takes without the
// decoder is written exactly as appendPoint writes it, and that the
// decoder accepts it: after learning from line learned, for learned's
// series with value and timestamp tokens value and ts, and for line.
// Any input must not panic.
func FuzzKnownSeries(f *testing.F) {
	lim := wavefront.DefaultLimits()
	// A fixed clock, an hour after the seeds' timestamps, keeps them in
	// the window.
	now := time.Unix(1712003600, 0)
	clock := func() time.Time { return now }
	newDec := func() *wavefront.Decoder {
		return &wavefront.Decoder{Limits: &lim, Now: clock, DefaultSource: []byte("10.1.2.3")}
	}
	handler, reference := newDec(), newDec()
	var p wavefront.Point
	f.Fuzz(func(t *testing.T, learned []byte, value, ts string, line []byte) {
		known := newKnownSeries()
		r := known.reader(new(freeList[pointHint]))
		if out, ok := appendCanonicalPoint(nil, handler, learned); ok {
			r.learn(learned, out)
		}
		r.close()
		head := make([]byte, walFrameHeader+recHeader)
		check := func(line []byte) {
			r := known.reader(new(freeList[pointHint]))
			got, ok := r.appendPoint(head, handler, line)
			hints := r.takeHints()
			r.close()
			if !ok {
				return
			}
			want, err := appendPoint(head, reference, line, &p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("learned %q; %q: wrote %q, appendPoint %q (%v)", learned, line, got, want, err)
			}
			// The hint says what the applier would read from the line.
			body := got[len(head):]
			_, _, v, ms, ok := splitCanonicalPoint(nil, bytes.TrimSuffix(body, []byte("\n")))
			if h := hints[0]; len(hints) != 1 || h.off != 0 || int(h.n) != len(body)-1 || !ok || !sameFloat(h.v, v) || h.ms != ms {
				t.Fatalf("%q: hints %+v; the line reads %v %d %t", body, hints, v, ms, ok)
			}
		}
		if l, ok := splitKnownLine(learned); ok {
			check(fmt.Appendf(nil, "%s %s %s%s", learned[:l.nameEnd], value, ts, learned[l.tsEnd:]))
		}
		check(line)
	})
}

// The time indexes, written near their end, fill their pages: 20 000
// spans up to 2 s late (as from many sidecars) leave spantime, spansvc and
// logtime pages at least three quarters full, where bbolt's default split
// leaves them half full.
func TestTimeIndexesFillPages(t *testing.T) {
	kv, err := openKV(t.TempDir() + "/kv.db")
	if err != nil {
		t.Fatal(err)
	}
	defer kv.close()
	var dec wavefront.Decoder
	rng := rand.New(rand.NewPCG(1, 2))
	start := base()
	for batch := range 100 {
		var b kvBatch
		for i := range 200 {
			n := batch*200 + i
			st := start + int64(n)*10 - rng.Int64N(2000) // up to 2 s late
			line := fmt.Sprintf("op source=a traceId=%016x spanId=%08x service=svc%d %d 5", rng.Uint64(), n, n%7, st)
			var sp wavefront.Span
			if err := dec.DecodeSpan([]byte(line), &sp); err != nil {
				t.Fatal(err)
			}
			b.spans = append(b.spans, spanRecOf(&sp, []byte(line)))
			b.logs = append(b.logs, logRec{key: fmt.Appendf(nil, "%s\x00%s\x00hash", sp.TraceID, sp.SpanID), received: start + int64(n)*10, json: []byte(`{"logs":[]}`)})
		}
		if err := kv.write(&b, &dec); err != nil {
			t.Fatal(err)
		}
	}
	err = kv.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bSpanTime, bSpanSvc, bLogTime} {
			s := tx.Bucket(name).Stats()
			fill := float64(s.LeafInuse) / float64(s.LeafAlloc)
			t.Logf("%s: %d keys in %d leaf pages, %.0f %% full", name, s.KeyN, s.LeafPageN, 100*fill)
			if fill < 0.75 {
				t.Errorf("%s leaf pages %.0f %% full, want at least 75 %%", name, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
