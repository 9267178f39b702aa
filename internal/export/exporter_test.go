package export

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rwReceiver is a loopback remote-write endpoint that decodes what it gets
// and answers with the statuses queued in answers (then 204).
type rwReceiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	answers []int
	refuse  func(sample string) bool // a request with such a sample gets 400
	samples map[string]int           // series text → times received
	headers http.Header
	posts   int
}

func newRWReceiver(t testing.TB, answers ...int) *rwReceiver {
	r := &rwReceiver{t: t, answers: answers, samples: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rwReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	r.headers = req.Header.Clone()
	if len(r.answers) > 0 {
		code := r.answers[0]
		r.answers = r.answers[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		http.Error(w, "test answer", code)
		return
	}
	var texts []string
	for _, ts := range decodeRW(r.t, body).Timeseries {
		texts = append(texts, seriesText(ts)...)
	}
	// Like Prometheus, refuse the whole request for one bad sample.
	if r.refuse != nil && slices.ContainsFunc(texts, r.refuse) {
		http.Error(w, "refused sample", http.StatusBadRequest)
		return
	}
	for _, s := range texts {
		r.samples[s]++
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *rwReceiver) received() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.samples))
	for k, v := range r.samples {
		out[k] = v
	}
	return out, r.posts
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func fastConfig(url string) Config {
	return Config{URL: url, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 5 * time.Second, MaxQueueBytes: MinMaxQueueBytes}
}

// pointLines returns n canonical point lines of series x{i=...}.
func pointLines(from, n int) []byte {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "\"x\" %d %d source=\"s\" \"i\"=\"%d\"\n", i, 1700000000000+int64(i), i)
	}
	return []byte(b.String())
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExporterRetriesThenDelivers(t *testing.T) {
	r := newRWReceiver(t, 503, 429, 500)
	reg := prometheus.NewRegistry()
	cfg := fastConfig(r.srv.URL + "/api/v1/write")
	cfg.Header = http.Header{"X-Scope-Orgid": {"tenant-1"}}
	e, err := OpenRemoteWrite(t.TempDir(), cfg, reg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Add([]Record{{Kind: Points, Lines: pointLines(0, 10)}, {Kind: Spans, Lines: []byte("not for remote write\n")}})
	waitFor(t, "delivery", func() bool { return e.Pending() == 0 })
	got, posts := r.received()
	if len(got) != 10 || posts != 4 {
		t.Fatalf("got %d series in %d posts, want 10 in 4 (three refused)", len(got), posts)
	}
	for s, n := range got {
		if n != 1 {
			t.Errorf("%s received %d times: a retry re-sent accepted data", s, n)
		}
	}
	if n := testutil.ToFloat64(e.m.retries); n != 3 {
		t.Errorf("retries = %v, want 3", n)
	}
	if n := testutil.ToFloat64(e.m.sent); n != 10 {
		t.Errorf("sent = %v, want 10", n)
	}
	h := r.headers
	if h.Get("Content-Encoding") != "snappy" || h.Get("Content-Type") != "application/x-protobuf" ||
		h.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" || h.Get("X-Scope-OrgID") != "tenant-1" {
		t.Errorf("headers: %v", h)
	}
}

// TestExporterIsolatesRefusedSamples: a remote that refuses a whole
// request for one sample (Prometheus does, with 400, for an out-of-order
// one) costs that sample only.
func TestExporterIsolatesRefusedSamples(t *testing.T) {
	r := newRWReceiver(t)
	r.refuse = func(s string) bool { return strings.HasSuffix(s, " 7") } // the sample of value 7
	e, err := OpenRemoteWrite(t.TempDir(), fastConfig(r.srv.URL), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Add([]Record{{Kind: Points, Lines: pointLines(0, 100)}})
	waitFor(t, "the batch to leave the queue", func() bool { return e.Pending() == 0 })
	got, posts := r.received()
	if len(got) != 99 {
		t.Errorf("received %d samples, want the 99 good ones", len(got))
	}
	if n := testutil.ToFloat64(e.m.dropped.WithLabelValues("http_400")); n != 1 {
		t.Errorf("dropped{http_400} = %v, want 1", n)
	}
	// Halving 100 down to one sample: 7 levels, two posts each, plus the first.
	if posts > 1+2*7 {
		t.Errorf("%d posts to isolate one sample", posts)
	}
}

// TestExporterDropsRefusedBatch: a remote that refuses everything with a
// 4xx gets a bounded number of attempts per request, then the data is
// dropped, counted, and the queue moves on.
func TestExporterDropsRefusedBatch(t *testing.T) {
	r := newRWReceiver(t)
	r.refuse = func(string) bool { return true }
	e, err := OpenRemoteWrite(t.TempDir(), fastConfig(r.srv.URL), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Add([]Record{{Kind: Points, Lines: pointLines(0, 1000)}})
	waitFor(t, "the refused batch to leave the queue", func() bool { return e.Pending() == 0 })
	if _, posts := r.received(); posts > 1+maxSplitRequests {
		t.Errorf("%d posts for one refused request, budget %d", posts, 1+maxSplitRequests)
	}
	if n := testutil.ToFloat64(e.m.dropped.WithLabelValues("http_400")); n != 1000 {
		t.Errorf("dropped{http_400} = %v, want 1000", n)
	}
	if n := testutil.ToFloat64(e.m.retries); n != 0 {
		t.Errorf("a 400 was retried %v times", n)
	}

	r.mu.Lock()
	r.refuse = nil
	r.mu.Unlock()
	e.Add([]Record{{Kind: Points, Lines: pointLines(1000, 2)}})
	waitFor(t, "the next batch", func() bool { return e.Pending() == 0 })
	if got, _ := r.received(); len(got) != 2 {
		t.Errorf("got %d samples after the refusals, want 2", len(got))
	}
}

// TestExporterKeepsQueueAcrossRestart: data queued while the remote is
// down survives Close and is delivered, once, after a restart.
func TestExporterKeepsQueueAcrossRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused
	dir := t.TempDir()
	e, err := OpenRemoteWrite(dir, fastConfig("http://"+addr+"/api/v1/write"), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e.Add([]Record{{Kind: Points, Lines: pointLines(0, 50)}})
	e.Add([]Record{{Kind: Histograms, Lines: []byte("!M 1700000040000 #1 5 \"h\" source=\"s\"\n")}})
	waitFor(t, "retries", func() bool { return testutil.ToFloat64(e.m.retries) >= 2 })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	r := newRWReceiver(t)
	e, err = OpenRemoteWrite(dir, fastConfig(r.srv.URL), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waitFor(t, "the backlog", func() bool { return e.Pending() == 0 })
	got, _ := r.received()
	if len(got) != 50+histogramSeries {
		t.Fatalf("received %d series, want %d", len(got), 50+histogramSeries)
	}
	for s, n := range got {
		if n != 1 {
			t.Errorf("%s received %d times", s, n)
		}
	}
}

func TestExporterConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "ftp://host/x"},
		{URL: "localhost:9090"},
		{URL: "http://127.0.0.1:1/", MaxQueueBytes: 1 << 20},
	} {
		if e, err := OpenRemoteWrite(t.TempDir(), cfg, nil, quiet()); err == nil {
			e.Close()
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestExporterQueueBound: with the remote down, the queue stays within
// MaxQueueBytes by dropping its oldest data, counted, and Add never waits
// for the remote.
func TestExporterQueueBound(t *testing.T) {
	r := newRWReceiver(t)
	r.answers = slices.Repeat([]int{503}, 1<<14) // down for the whole test
	reg := prometheus.NewRegistry()
	e, err := OpenRemoteWrite(t.TempDir(), fastConfig(r.srv.URL), reg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	chunk := pointLines(0, 5000) // ~250 KiB
	added := 0
	for added < 4*MinMaxQueueBytes {
		e.Add([]Record{{Kind: Points, Lines: chunk}})
		added += len(chunk)
	}
	if b := e.q.Bytes(); b > MinMaxQueueBytes {
		t.Errorf("queue holds %d bytes, bound %d", b, MinMaxQueueBytes)
	}
	var dropped float64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "meshwave_queue_dropped_records_total" {
			dropped = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if dropped == 0 {
		t.Errorf("%d bytes added to a %d-byte queue and nothing counted as dropped", added, MinMaxQueueBytes)
	}
}
