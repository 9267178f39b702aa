package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/zipkin"
	zmodel "github.com/openzipkin/zipkin-go/model"
)

var traceT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func traceMesh(t *testing.T) *Mesh {
	t.Helper()
	o := DefaultOptions()
	o.Start = traceT0.Add(-time.Hour)
	m, err := NewMesh(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var istioTags = []string{"istio.canonical_service", "istio.canonical_revision", "istio.mesh_id", "istio.namespace",
	"node_id", "guid:x-request-id", "http.url", "http.method", "http.status_code", "http.protocol",
	"upstream_cluster", "upstream_cluster.name", "response_flags", "response_size", "request_size",
	"peer.address", "downstream_cluster", "user_agent", "component"}

func decodeModel(t *testing.T, body []byte) []zmodel.SpanModel {
	t.Helper()
	var spans []zmodel.SpanModel
	if err := json.Unmarshal(body, &spans); err != nil {
		t.Fatalf("zipkin-go model: %v\n%.400s", err, body)
	}
	return spans
}

func TestTracerBatch(t *testing.T) {
	m := traceMesh(t)
	for _, shared := range []bool{false, true} {
		tr := NewTracer(m, TraceOptions{Seed: 7, SharedSpanContext: shared})
		const n = 500
		body := tr.AppendBatch(nil, n, traceT0)
		if again := tr.AppendBatch(nil, n, traceT0); !bytes.Equal(body, again) {
			t.Fatal("AppendBatch is not deterministic")
		}
		if other := NewTracer(m, TraceOptions{Seed: 8}).AppendBatch(nil, n, traceT0); bytes.Equal(body, other) {
			t.Fatal("seed has no effect")
		}
		spans := decodeModel(t, body)

		// meshwave's own decoder agrees on the span count and kinds.
		enc, err := zipkin.Detect(body)
		if err != nil || enc != zipkin.JSONV2 {
			t.Fatalf("Detect = %v, %v", enc, err)
		}
		var d zipkin.Decoder
		i := 0
		if err := d.Decode(body, enc, func(s *zipkin.Span) error {
			if len(s.TraceID) != 32 || s.Kind.String() != string(spans[i].Kind) || s.Shared != spans[i].Shared {
				t.Errorf("span %d: traceId %q kind %v shared %v vs %+v", i, s.TraceID, s.Kind, s.Shared, spans[i])
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != len(spans) {
			t.Fatalf("decoder saw %d spans, zipkin-go %d", i, len(spans))
		}

		byTrace := map[zmodel.TraceID][]*zmodel.SpanModel{}
		var order []zmodel.TraceID
		for i := range spans {
			s := &spans[i]
			if byTrace[s.TraceID] == nil {
				order = append(order, s.TraceID)
			}
			byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		}
		if len(order) != n {
			t.Fatalf("%d traces, want %d", len(order), n)
		}
		services := map[string]bool{}
		errTraces := 0
		for _, tid := range order {
			ts := byTrace[tid]
			if tid.High == 0 {
				t.Errorf("trace %s: not 128-bit", tid)
			}
			var root *zmodel.SpanModel
			clients := map[zmodel.ID]*zmodel.SpanModel{}
			ids := map[zmodel.ID]bool{}
			for _, s := range ts {
				ids[s.ID] = true
				if s.Kind == zmodel.Client {
					clients[s.ID] = s
				}
				services[s.LocalEndpoint.ServiceName] = true
				for _, k := range istioTags {
					if s.Tags[k] == "" {
						t.Fatalf("trace %s span %s: no tag %s: %v", tid, s.ID, k, s.Tags)
					}
				}
				if s.Tags["component"] != "proxy" || s.Tags["istio.mesh_id"] != "cluster.local" {
					t.Errorf("span %s tags %v", s.ID, s.Tags)
				}
				if len(s.Annotations) != 1 || s.Duration <= 0 {
					t.Errorf("span %s: annotations %v duration %v", s.ID, s.Annotations, s.Duration)
				}
				if s.ParentID == nil {
					if root != nil {
						t.Fatalf("trace %s: two roots", tid)
					}
					root = s
				}
			}
			if root == nil || root.Kind != zmodel.Server || root.LocalEndpoint.ServiceName != "istio-ingressgateway.istio-system" ||
				!strings.HasPrefix(root.Tags["node_id"], "router~") {
				t.Fatalf("trace %s: root %+v", tid, root)
			}
			served := map[zmodel.ID]bool{}
			for _, s := range ts {
				if s.ParentID != nil && !ids[*s.ParentID] {
					t.Errorf("trace %s span %s: parent %s not in trace", tid, s.ID, s.ParentID)
				}
				if s.Kind != zmodel.Server || s == root {
					continue
				}
				var c *zmodel.SpanModel
				if shared {
					c = clients[s.ID]
					if c == nil || !s.Shared || *c.ParentID != *s.ParentID {
						t.Fatalf("trace %s: shared SERVER %s without its CLIENT", tid, s.ID)
					}
				} else {
					c = clients[*s.ParentID]
					if c == nil || s.Shared || s.ID == c.ID {
						t.Fatalf("trace %s: SERVER %s's parent is not a CLIENT", tid, s.ID)
					}
				}
				served[c.ID] = true
				if s.Timestamp.Before(c.Timestamp) || s.Timestamp.Add(s.Duration).After(c.Timestamp.Add(c.Duration)) {
					t.Errorf("trace %s: SERVER %s outside its CLIENT", tid, s.ID)
				}
				if s.Tags["upstream_cluster"] != s.Tags["upstream_cluster.name"] || !strings.HasPrefix(s.Tags["upstream_cluster"], "inbound|") {
					t.Errorf("SERVER upstream_cluster %q", s.Tags["upstream_cluster"])
				}
			}
			for id, c := range clients {
				if !served[id] && c.Tags["response_flags"] != "UF" {
					t.Errorf("trace %s: CLIENT %s has no SERVER", tid, id)
				}
				if !strings.HasPrefix(c.Tags["upstream_cluster"], "outbound|") {
					t.Errorf("CLIENT upstream_cluster %q", c.Tags["upstream_cluster"])
				}
			}
			if root.Tags["error"] != "" {
				errTraces++
				if root.Tags["error"] != "true" || root.Tags["http.status_code"] != "503" {
					t.Errorf("error trace %s root tags %v", tid, root.Tags)
				}
			} else {
				for _, s := range ts {
					if s.Tags["error"] != "" || s.Tags["http.status_code"] != "200" {
						t.Errorf("trace %s: failed span in an ok trace: %v", tid, s.Tags)
					}
				}
			}
		}
		if errTraces < 2 || errTraces > 30 {
			t.Errorf("%d error traces of %d, want ~2%%", errTraces, n)
		}
		for _, s := range []string{"productpage.default", "details.default", "reviews.default", "ratings.default", "frontend.shop"} {
			if !services[s] {
				t.Errorf("no spans from %s (have %v)", s, services)
			}
		}
	}
}

func TestTracerRun(t *testing.T) {
	m := traceMesh(t)
	var mu sync.Mutex
	posts, traces := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var spans []zmodel.SpanModel
		if err := json.Unmarshal(body, &spans); err != nil {
			// The post in flight when Run's context ends is cut short by
			// the client; bodies themselves are checked in TestTracerBatch.
			return
		}
		mu.Lock()
		posts++
		for _, s := range spans {
			if s.ParentID == nil {
				traces++
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	tr := NewTracer(m, TraceOptions{Rate: 200, Interval: 50 * time.Millisecond, Seed: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := tr.Run(ctx, srv.URL+"/api/v2/spans", srv.Client(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// ~12 posts of ~10 traces; leave room for a slow, shared machine.
	if posts < 3 || traces < 20 || traces > 200 {
		t.Errorf("%d posts, %d traces in 0.6 s at 200/s", posts, traces)
	}
}

func TestTracerRunErrors(t *testing.T) {
	m := traceMesh(t)
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var lmu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &lmu}, nil))
	tr := NewTracer(m, TraceOptions{Rate: 100, Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := tr.Run(ctx, srv.URL, nil, log); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	lmu.Lock()
	defer lmu.Unlock()
	if n := strings.Count(logs.String(), "posting traces"); posts < 2 || n != 1 {
		t.Errorf("%d posts, %d log lines (want one, rate-limited):\n%s", posts, n, logs.String())
	}
	if err := tr.Run(context.Background(), "", nil, nil); err == nil {
		t.Error("empty URL accepted")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func BenchmarkTracerBatch(b *testing.B) {
	o := DefaultOptions()
	m, err := NewMesh(o)
	if err != nil {
		b.Fatal(err)
	}
	tr := NewTracer(m, TraceOptions{Seed: 1})
	var buf []byte
	for i := 0; b.Loop(); i++ {
		buf = tr.AppendBatch(buf[:0], 10, traceT0.Add(time.Duration(i)*time.Second))
	}
	b.SetBytes(int64(len(buf)))
}
