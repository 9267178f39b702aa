package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshwave/meshwave/internal/export"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	DataDir string   // required
	Tokens  []string // accepted API tokens; none means no authentication
	// Retention is how long data is kept (default 15 days).
	Retention time.Duration
	// OutOfOrderWindow is how far behind the newest sample a metric sample
	// may arrive and still be stored (default 24h; Wavefront senders
	// routinely deliver late after an outage).
	OutOfOrderWindow time.Duration
	// MaxBodyBytes caps a request body after decompression (default 16 MiB).
	MaxBodyBytes int
	// CleanupInterval is the period of the span/distribution retention
	// sweep (default 10 minutes); the tsdb enforces its own retention.
	CleanupInterval time.Duration
	// RollupInterval is how often new tsdb blocks get their 5-minute
	// rollups (default 1 minute); until then queries read their samples.
	RollupInterval time.Duration
	// NoRollups turns rollups off: no disk for them, and every query
	// reads samples.
	NoRollups bool
	// RemoteWrite forwards stored metric points and histograms to a
	// Prometheus remote-write endpoint, OTLP stored spans and span logs to
	// an OTLP/HTTP endpoint (internal/export); an empty URL disables
	// either. Their queues live under DataDir/export/<name>.
	RemoteWrite export.Config
	OTLP        export.Config
	Logger      *slog.Logger // default slog.Default()
}

// Defaults.
const (
	DefaultRetention    = 15 * 24 * time.Hour
	DefaultOOOWindow    = 24 * time.Hour
	DefaultMaxBodyBytes = 16 << 20
)

// Server is the meshwave backend: ingestion, storage and query API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *selfMetrics
	wal     *walLog
	metrics *metricStore
	rollups *rollupSet
	kv      *kvStore
	decs    sync.Pool // *wavefront.Decoder for handlers
	bodies  sync.Pool // *[]byte request bodies for handlers
	frames  freeList[byte]
	hints   freeList[pointHint]
	known   *knownSeries // point series the decoder accepted as written
	limits  wavefront.Limits
	mux     *http.ServeMux
	// exporters get what the applier has stored (export); only the
	// applier calls them.
	exporters []*export.Exporter

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Open opens (or creates) the stores under cfg.DataDir and starts the
// applier, which first re-applies WAL records left unacknowledged by a
// crash, and the retention sweep.
func Open(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: no data directory")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.OutOfOrderWindow <= 0 {
		cfg.OutOfOrderWindow = DefaultOOOWindow
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.CleanupInterval <= 0 {
		cfg.CleanupInterval = 10 * time.Minute
	}
	if cfg.RollupInterval <= 0 {
		cfg.RollupInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), known: newKnownSeries()}
	s.frames.maxBytes, s.hints.maxBytes = maxFrameBuffers, maxFrameBuffers/4
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.m = newSelfMetrics(s.reg)
	s.limits = wavefront.DefaultLimits()
	s.limits.MaxSpanAnnotations = wavefront.MeshSpanAnnotations
	s.decs.New = func() any { return &wavefront.Decoder{Limits: &s.limits} }

	var err error
	if s.metrics, err = openMetricStore(filepath.Join(cfg.DataDir, "tsdb"), cfg.Retention.Milliseconds(), cfg.OutOfOrderWindow.Milliseconds(), s.log, s.reg); err != nil {
		return nil, err
	}
	if !cfg.NoRollups {
		if s.rollups, err = newRollupSet(filepath.Join(cfg.DataDir, "rollup"), s.log.With("component", "rollup"), s.reg); err != nil {
			s.metrics.close()
			return nil, err
		}
	}
	if s.kv, err = openKV(filepath.Join(cfg.DataDir, "spans.db")); err != nil {
		s.metrics.close()
		return nil, err
	}
	walDir := filepath.Join(cfg.DataDir, "wal")
	if s.wal, err = openWAL(walDir, walSegmentBytes, walHandoffBytes, s.frames.put, s.log, s.reg); err != nil {
		s.kv.close()
		s.metrics.close()
		return nil, err
	}
	if s.exporters, err = openExporters(cfg, s.reg, s.log); err != nil {
		s.wal.close()
		s.kv.close()
		s.metrics.close()
		return nil, err
	}
	a := &applier{s: s}
	a.dec.Limits = &s.limits
	// AppendValue writes +Inf/-Inf, which only the lenient decoder reads.
	a.dec.LenientNonFinite = true
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if err := a.drainQueue(walDir); err != nil {
		s.Close()
		return nil, fmt.Errorf("applying the WAL of the previous layout: %w", err)
	}
	s.mux = s.routes()
	s.wg.Add(2)
	go func() { defer s.wg.Done(); a.run(ctx) }()
	go func() { defer s.wg.Done(); s.cleanupLoop(ctx) }()
	if s.rollups != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.rollupLoop(ctx) }()
	}
	return s, nil
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /report", s.auth(s.handleReport))
	mux.HandleFunc("POST /report/", s.auth(s.handleReport))
	mux.HandleFunc("GET /api/v2/chart/api", s.auth(s.countQuery("chart", s.handleChart)))
	mux.HandleFunc("GET /api/v2/traces/{traceId}", s.auth(s.countQuery("trace", s.handleTrace)))
	mux.HandleFunc("GET /api/v2/traces", s.auth(s.countQuery("trace_search", s.handleTraceSearch)))
	mux.HandleFunc("GET /api/v2/metrics", s.auth(s.countQuery("metrics_browser", s.handleMetrics)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.uiRoutes(mux) // ui.go
	return mux
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully:
// in-flight requests finish, so each gets its 202 only if durable.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// Close stops the applier (after it has applied and acknowledged what it
// holds) and closes the stores. Unapplied WAL records are applied on the
// next Open.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	if s.rollups != nil {
		s.rollups.close()
	}
	errs := []error{s.wal.close(), s.kv.close(), s.metrics.close()}
	for _, e := range s.exporters {
		errs = append(errs, e.Close())
	}
	return errors.Join(errs...)
}

// openExporters starts the configured exits.
func openExporters(cfg Config, reg prometheus.Registerer, log *slog.Logger) ([]*export.Exporter, error) {
	var exps []*export.Exporter
	for _, x := range []struct {
		name string
		cfg  export.Config
		open func(string, export.Config, prometheus.Registerer, *slog.Logger) (*export.Exporter, error)
	}{
		{export.RemoteWriteName, cfg.RemoteWrite, export.OpenRemoteWrite},
		{export.OTLPName, cfg.OTLP, export.OpenOTLP},
	} {
		if x.cfg.URL == "" {
			continue
		}
		e, err := x.open(filepath.Join(cfg.DataDir, "export", x.name), x.cfg, reg, log)
		if err != nil {
			for _, e := range exps {
				e.Close()
			}
			return nil, err
		}
		exps = append(exps, e)
	}
	return exps, nil
}

// export hands the WAL records the stores have just committed to every
// exporter. It runs on the applier before the records are acknowledged,
// so a crash in between re-applies and re-exports them: at-least-once.
func (s *Server) export(recs [][]byte) {
	if len(s.exporters) == 0 {
		return
	}
	out := make([]export.Record, 0, len(recs))
	for _, rec := range recs {
		if len(rec) < recHeader {
			continue
		}
		if k, ok := exportKind(format(rec[0])); ok {
			out = append(out, export.Record{Kind: k, Lines: rec[recHeader:]})
		}
	}
	for _, e := range s.exporters {
		e.Add(out)
	}
}

func exportKind(f format) (export.Kind, bool) {
	switch f {
	case fmtPoint:
		return export.Points, true
	case fmtHistogram:
		return export.Histograms, true
	case fmtSpan:
		return export.Spans, true
	case fmtSpanLogs:
		return export.SpanLogs, true
	}
	return 0, false
}

// auth wraps h with the token check: with tokens configured a request must
// present one as "Authorization: Bearer <t>", "X-AUTH-TOKEN: <t>" or a
// t, token or api_key query parameter, else it gets 401 before its body
// is read.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if len(s.cfg.Tokens) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.validToken(tokenOf(r)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="meshwave"`)
			http.Error(w, "missing or invalid API token", http.StatusUnauthorized)
			s.m.requests.WithLabelValues("401").Inc()
			return
		}
		h(w, r)
	}
}

func tokenOf(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if t := r.Header.Get("X-AUTH-TOKEN"); t != "" {
		return t
	}
	q := r.URL.Query()
	for _, k := range []string{"t", "token", "api_key"} {
		if t := q.Get(k); t != "" {
			return t
		}
	}
	return ""
}

func (s *Server) validToken(t string) bool {
	ok := false
	for _, want := range s.cfg.Tokens {
		// Compare with every token in constant time, so timing tells
		// nothing about which prefix matched.
		ok = subtle.ConstantTimeCompare([]byte(t), []byte(want)) == 1 || ok
	}
	return ok && t != ""
}

// cleanupLoop enforces retention on spans, span logs and distributions;
// the tsdb enforces it on metrics by dropping whole blocks.
func (s *Server) cleanupLoop(ctx context.Context) {
	var dec wavefront.Decoder
	for {
		cutoff := time.Now().Add(-s.cfg.Retention).UnixMilli()
		n, err := s.kv.cleanup(ctx, cutoff, &dec)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention cleanup failed", "err", err)
		case n > 0:
			s.log.Info("retention cleanup", "deleted", n)
		}
		s.m.cleaned.Add(float64(n))
		sleep(ctx, s.cfg.CleanupInterval)
		if ctx.Err() != nil {
			return
		}
	}
}

// rollupLoop rolls up the tsdb's new blocks, which it writes every two
// hours and merges into larger ones later.
func (s *Server) rollupLoop(ctx context.Context) {
	for ctx.Err() == nil {
		s.rollups.sync(ctx, s.metrics.db.Blocks())
		sleep(ctx, s.cfg.RollupInterval)
	}
}
