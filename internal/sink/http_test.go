package sink

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ingest is a direct-ingestion endpoint stand-in. It checks every request
// and answers with the queued statuses first, then 202.
type ingest struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	requests int
	batches  [][]string // accepted bodies, split into lines
}

func startIngest(t *testing.T, statuses ...int) *ingest {
	in := &ingest{t: t, statuses: statuses}
	in.srv = httptest.NewServer(http.HandlerFunc(in.handle))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *ingest) handle(w http.ResponseWriter, r *http.Request) {
	t := in.t
	if r.Method != http.MethodPost || r.URL.Path != "/report" || r.URL.RawQuery != "f=wavefront" {
		t.Errorf("request %s %s, want POST /report?f=wavefront", r.Method, r.URL)
	}
	for k, want := range map[string]string{
		"Content-Type":     "application/octet-stream",
		"Content-Encoding": "gzip",
		"Authorization":    "Bearer s3cret",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Errorf("body is not gzip: %v", err)
		http.Error(w, "bad gzip", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Errorf("reading gzip body: %v", err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requests++
	if len(in.statuses) > 0 {
		code := in.statuses[0]
		in.statuses = in.statuses[1:]
		w.Header().Set("Retry-After", "0")
		http.Error(w, "nope: "+http.StatusText(code), code)
		return
	}
	in.batches = append(in.batches, strings.SplitAfter(strings.TrimSuffix(string(body), "\n"), "\n"))
	w.WriteHeader(http.StatusAccepted)
}

func (in *ingest) snapshot() (requests int, batches [][]string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.requests, append([][]string(nil), in.batches...)
}

func (in *ingest) lines() []string {
	_, bs := in.snapshot()
	var out []string
	for _, b := range bs {
		for _, l := range b {
			if !strings.HasSuffix(l, "\n") {
				l += "\n" // the body's final newline was trimmed for splitting
			}
			out = append(out, l)
		}
	}
	return out
}

func TestHTTPDeliversGzippedBatches(t *testing.T) {
	checkLeaks(t)
	in := startIngest(t)
	m := testMetrics()
	opt := testOptions(t)
	opt.BatchLines = 3
	w := NewHTTP(in.srv.URL+"/", "s3cret", opt, m, testLogger(t))
	defer mustClose(t, w)

	want := testLines(10)
	writeAll(w, want, 10)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, batches := in.snapshot()
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, len(b))
	}
	if len(sizes) != 4 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 3 || sizes[3] != 1 {
		t.Errorf("batch sizes %v, want [3 3 3 1]", sizes)
	}
	if d := diffLines(in.lines(), want); d != "" {
		t.Error(d)
	}
	if got := counter(m.sent, t); got != 10 {
		t.Errorf("sent = %v, want 10", got)
	}
}

func TestHTTPRetriesThrottlingAndServerErrors(t *testing.T) {
	checkLeaks(t)
	in := startIngest(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable,
		http.StatusTooManyRequests, http.StatusNotAcceptable)
	m := testMetrics()
	w := NewHTTP(in.srv.URL, "s3cret", testOptions(t), m, testLogger(t))
	defer mustClose(t, w)

	want := testLines(5)
	writeAll(w, want, 5)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	requests, batches := in.snapshot()
	if requests != 5 || len(batches) != 1 {
		t.Errorf("%d requests, %d accepted, want 5 and 1", requests, len(batches))
	}
	if d := diffLines(in.lines(), want); d != "" {
		t.Error(d)
	}
	if got := counter(m.retries, t); got != 4 {
		t.Errorf("retries = %v, want 4", got)
	}
	if got := counter(m.sent, t); got != 5 {
		t.Errorf("sent = %v, want 5", got)
	}
}

func TestHTTPPermanentRejectionDropsBatch(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			checkLeaks(t)
			in := startIngest(t, code)
			m := testMetrics()
			var logs bytes.Buffer
			w := NewHTTP(in.srv.URL, "s3cret", testOptions(t), m, slogTo(&logs))
			defer mustClose(t, w)

			w.Write([]byte(strings.Join(testLines(4), "")))
			if err := w.Flush(ctxTimeout(t, 5*time.Second)); err == nil {
				t.Error("Flush succeeded although the batch was rejected")
			}
			// A later batch still goes through: the writer did not wedge.
			w.Write([]byte(testLines(1)[0]))
			if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if requests, _ := in.snapshot(); requests != 2 {
				t.Errorf("%d requests, want 2 (no retry of the rejected batch)", requests)
			}
			if got := counter(m.errors, t); got != 4 {
				t.Errorf("errors = %v, want 4", got)
			}
			if got := counter(m.retries, t); got != 0 {
				t.Errorf("retries = %v, want 0", got)
			}
			if s := logs.String(); !strings.Contains(s, "nope: "+http.StatusText(code)) || strings.Contains(s, "s3cret") {
				t.Errorf("log should carry the body snippet and not the token:\n%s", s)
			}
		})
	}
}

func TestHTTPOverflowDropsOldestLines(t *testing.T) {
	checkLeaks(t)
	in := startIngest(t)
	m := testMetrics()
	opt := testOptions(t)
	opt.FlushInterval = time.Hour
	opt.MaxBufferLines = 50
	opt.BatchLines = 1000 // so nothing is sent before Flush
	w := NewHTTP(in.srv.URL, "s3cret", opt, m, testLogger(t))
	defer mustClose(t, w)

	all := testLines(120)
	writeAll(w, all, 7)
	if got := counter(m.dropped, t); got != 70 {
		t.Errorf("dropped = %v, want 70", got)
	}
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := diffLines(in.lines(), all[70:]); d != "" {
		t.Error(d)
	}
}

func TestHTTPFlushTimesOutWhileDown(t *testing.T) {
	checkLeaks(t)
	in := startIngest(t)
	url := in.srv.URL
	in.srv.Close() // connection refused from now on
	m := testMetrics()
	w := NewHTTP(url, "s3cret", testOptions(t), m, testLogger(t))
	w.Write([]byte(testLines(1)[0]))
	start := time.Now()
	if err := w.Flush(ctxTimeout(t, 100*time.Millisecond)); err == nil {
		t.Fatal("Flush succeeded with the server down")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Flush took %v past its deadline", d)
	}
	if counter(m.retries, t) == 0 {
		t.Error("no retries counted")
	}
	if err := w.Close(ctxTimeout(t, 50*time.Millisecond)); err == nil {
		t.Error("Close succeeded with a line undelivered")
	}
}
