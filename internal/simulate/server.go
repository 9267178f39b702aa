package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ContentType is what every exposition endpoint answers with; Prometheus 3
// refuses a scrape without a valid one.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Target is one scrape target of the kubernetes-pods job: a sidecar, the
// ingress gateway or istiod.
type Target struct {
	Namespace, Pod string
	// Instance is what Prometheus' instance label holds: <podIP>:15020, or
	// <podIP>:15014 for istiod.
	Instance string
	// MetricsPath is the target's path on the simulator's listener.
	MetricsPath string
	// Labels are the pod labels (Prometheus-sanitised) plus
	// kubernetes_namespace and kubernetes_pod_name.
	Labels map[string]string
}

// Targets lists all pods, istiod last.
func (m *Mesh) Targets() []Target {
	ts := make([]Target, 0, len(m.pods)+1)
	for _, p := range append(m.pods[:len(m.pods):len(m.pods)], m.istiod) {
		t := Target{Namespace: p.ns, Pod: p.name, Instance: p.instance, MetricsPath: p.metricsPath,
			Labels: map[string]string{"kubernetes_namespace": p.ns, "kubernetes_pod_name": p.name}}
		for i, n := range podLabelNames(p.kind) {
			t.Labels[n] = p.labels[i]
		}
		ts = append(ts, t)
	}
	return ts
}

// Server serves a Mesh over HTTP:
//
//	GET /federate                               WriteFederate (match[] is ignored)
//	GET /istiod/metrics                         WriteIstiod
//	GET /pods/{namespace}/{pod}/stats/prometheus WritePod
//	GET /targets                                Prometheus file_sd JSON of every target
//
// Bodies are gzip-compressed when the client accepts it.
type Server struct {
	mesh *Mesh
	now  func() time.Time
	mux  *http.ServeMux
}

// NewServer serves m; now is the clock (nil: time.Now).
func NewServer(m *Mesh, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{mesh: m, now: now, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /federate", s.expose(func(w io.Writer, _ *http.Request, t time.Time) error {
		return WriteFederate(w, s.mesh, t)
	}))
	s.mux.HandleFunc("GET /istiod/metrics", s.expose(func(w io.Writer, _ *http.Request, t time.Time) error {
		return WriteIstiod(w, s.mesh, t)
	}))
	s.mux.HandleFunc("GET /pods/{ns}/{pod}/stats/prometheus", s.pod)
	s.mux.HandleFunc("GET /targets", s.targets)
	return s
}

// Handler returns the endpoints' handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx is done, then shuts down gracefully, giving
// in-flight scrapes five seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func (s *Server) pod(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("pod")
	p := s.mesh.byName[ns+"/"+name]
	if p == nil || p.kind == tkIstiod {
		http.NotFound(w, r)
		return
	}
	s.expose(func(w io.Writer, _ *http.Request, t time.Time) error {
		return WritePod(w, s.mesh, ns, name, t)
	})(w, r)
}

// expose wraps a body writer with content type and optional gzip. Errors
// after the first byte can only cut the body short, which is what a scraper
// sees from a real target too.
func (s *Server) expose(write func(io.Writer, *http.Request, time.Time) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		var out io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Add("Vary", "Accept-Encoding")
			gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			defer gz.Close()
			out = gz
		}
		_ = write(out, r, s.now())
	}
}

func acceptsGzip(h string) bool {
	for tok := range strings.SplitSeq(h, ",") {
		enc, params, _ := strings.Cut(tok, ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(params, " ", "") != "q=0"
		}
	}
	return false
}

// fileSD is one Prometheus file_sd_configs entry.
type fileSD struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targets answers a file_sd list that points a real Prometheus at this
// listener: __address__ is the host the client used, __metrics_path__ the
// pod's path, and `instance` the pod's own address so series match /federate.
func (s *Server) targets(w http.ResponseWriter, r *http.Request) {
	var list []fileSD
	for _, t := range s.mesh.Targets() {
		l := maps.Clone(t.Labels)
		l["__metrics_path__"] = t.MetricsPath
		l["instance"] = t.Instance
		list = append(list, fileSD{Targets: []string{r.Host}, Labels: l})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list) // only a gone client can fail it
}
