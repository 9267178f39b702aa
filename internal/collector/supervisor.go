package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshwave/meshwave/internal/config"
)

// Supervisor owns the running Collector across configuration reloads
// (collector.md §1.1). It polls the file, and on a valid change builds the
// new Collector before stopping the old one, so a file that parses but
// cannot be built (say, no usable sink) leaves the old one running, where
// the reference exits. An invalid file is rejected, logged and counted once
// per distinct content.
//
// State set from outside (discovered targets, leadership) is remembered and
// re-applied to every new Collector. The self-metrics listener is the
// Supervisor's, so its address survives reloads.
//
// Metrics: each Collector has its own registry, so its counters restart at
// zero on a reload, as after a restart. Collectors registered through
// Registerer (the reload counters, leader election, discovery) are instead
// carried over: registered into every new Collector's registry, they keep
// counting across reloads and appear both on /metrics and in the
// internal_stats_source points.
type Supervisor struct {
	path        string
	opts        Options // MetricsAddr cleared: the Supervisor serves it
	metricsAddr string
	interval    time.Duration
	log         *slog.Logger

	reloads      prometheus.Counter
	reloadErrors prometheus.Counter

	mu       sync.Mutex
	cur      *Collector
	groups   map[string][]Target
	leading  bool
	carried  []prometheus.Collector
	onReload func(*config.Config)

	// Only Run's goroutine touches these.
	applied  [sha256.Size]byte // content of the running configuration
	rejected string            // the last rejected content or read error, logged once
}

// NewSupervisor loads the configuration at path and builds the first
// Collector; an invalid file is an error. interval is the polling period of
// the file (0 disables reloading).
func NewSupervisor(path string, opts Options, interval time.Duration) (*Supervisor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Supervisor{
		path: path, opts: opts, metricsAddr: opts.MetricsAddr, interval: interval, log: opts.Logger,
		groups: map[string][]Target{}, leading: true,
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubernetes_collector_config_reloads",
			Help: "Configuration changes applied without a restart.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubernetes_collector_config_reload_errors",
			Help: "Changed configuration files rejected (invalid, unreadable or unbuildable); the previous configuration kept running.",
		}),
	}
	s.opts.MetricsAddr = ""
	data, sum, err := s.read()
	if err != nil {
		return nil, err
	}
	cfg, err := s.parse(data)
	if err != nil {
		return nil, err
	}
	if s.cur, err = New(cfg, s.opts); err != nil {
		return nil, err
	}
	s.applied = sum
	s.carried = []prometheus.Collector{s.reloads, s.reloadErrors}
	s.cur.m.reg.MustRegister(s.carried...)
	return s, nil
}

// SetTargets replaces a discovery group's targets in the current Collector
// and every later one.
func (s *Supervisor) SetTargets(group string, list []Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[group] = slices.Clone(list)
	s.cur.SetTargets(group, list)
}

// SetLeading sets leadership in the current Collector and every later one.
func (s *Supervisor) SetLeading(leading bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leading = leading
	s.cur.SetLeading(leading)
}

// Metrics returns the current Collector's self-metrics.
func (s *Supervisor) Metrics() *Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.m
}

// Config returns the configuration that is running.
func (s *Supervisor) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.cfg
}

// OnReload sets a function called with the new configuration after each
// applied reload, e.g. to restart discovery when its rules changed. It runs
// on Run's goroutine, after the new Collector has started.
func (s *Supervisor) OnReload(f func(*config.Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onReload = f
}

// Registerer returns a Registerer whose collectors are carried over to every
// new Collector's registry (see Supervisor).
func (s *Supervisor) Registerer() prometheus.Registerer { return carriedRegisterer{s} }

type carriedRegisterer struct{ s *Supervisor }

func (r carriedRegisterer) Register(c prometheus.Collector) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if err := r.s.cur.m.reg.Register(c); err != nil {
		return err
	}
	r.s.carried = append(r.s.carried, c)
	return nil
}

func (r carriedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r carriedRegisterer) Unregister(c prometheus.Collector) bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.s.carried = slices.DeleteFunc(r.s.carried, func(x prometheus.Collector) bool { return x == c })
	return r.s.cur.m.reg.Unregister(c)
}

// run is one Collector's Run in progress.
type run struct {
	cancel context.CancelFunc
	done   chan error
}

func (s *Supervisor) start(ctx context.Context, c *Collector) *run {
	ctx, cancel := context.WithCancel(ctx)
	r := &run{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	return r
}

// stop ends the run and waits for it to flush and close its sinks.
func (r *run) stop() error {
	r.cancel()
	return <-r.done
}

// Run runs the current Collector and applies configuration changes until
// ctx ends, then returns once the last Collector has flushed its sinks.
func (s *Supervisor) Run(ctx context.Context) error {
	if s.metricsAddr != "" {
		srv, err := s.serveMetrics()
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	r := s.start(ctx, s.currentCollector())
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
		s.log.Info("watching the configuration file for changes", "file", s.path, "interval", s.interval)
	}
	for {
		select {
		case <-ctx.Done():
			return r.stop()
		case err := <-r.done: // ended on its own: only a start-up failure does
			r.cancel()
			return err
		case <-tick:
			next := s.check()
			if next == nil {
				continue
			}
			// The new Collector already holds the targets and leadership;
			// stop the old one (flushing what it scraped) before starting it,
			// so no target is scraped twice.
			if err := r.stop(); err != nil {
				s.log.Warn("previous configuration's sinks did not flush cleanly", "err", err)
			}
			r = s.start(ctx, next)
			s.mu.Lock()
			f := s.onReload
			s.mu.Unlock()
			if f != nil {
				f(next.cfg)
			}
		}
	}
}

func (s *Supervisor) currentCollector() *Collector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// check reads the file and, if its content changed to a valid
// configuration, builds the new Collector, makes it current and returns it.
//
// The path is read afresh on every poll rather than watched: a mounted
// ConfigMap changes by swapping its `..data` symlink, which inotify on the
// file never reports, and reading follows the new link. Change is decided by
// a content hash, not the modification time the reference uses: mtime has
// only jiffy resolution, so a quick same-size edit could go unseen, and an
// unchanged file that is touched or re-projected is not rebuilt. Reading a
// configuration file every few seconds costs microseconds.
func (s *Supervisor) check() *Collector {
	data, sum, err := s.read()
	if err != nil {
		s.reject("read:"+err.Error(), err)
		return nil
	}
	if sum == s.applied {
		s.rejected = "" // reverted to the running configuration
		return nil
	}
	key := "sum:" + hex.EncodeToString(sum[:])
	if key == s.rejected {
		return nil
	}
	cfg, err := s.parse(data)
	if err != nil {
		s.reject(key, err)
		return nil
	}
	c, err := New(cfg, s.opts)
	if err != nil {
		s.reject(key, fmt.Errorf("%s: %w", s.path, err))
		return nil
	}
	s.applied, s.rejected = sum, ""

	s.mu.Lock()
	for _, x := range s.carried {
		if err := c.m.reg.Register(x); err != nil {
			s.log.Warn("self-metric not carried over to the new configuration", "err", err)
		}
	}
	for g, list := range s.groups {
		c.SetTargets(g, list)
	}
	c.SetLeading(s.leading)
	old := s.cur
	s.cur = c
	s.mu.Unlock()

	s.reloads.Inc()
	s.log.Info("configuration reloaded", "file", s.path,
		"sources", len(cfg.Sources.PrometheusSources), "sinks", len(c.exporters),
		"previous_sources", len(old.cfg.Sources.PrometheusSources), "discovery", cfg.EnableDiscovery)
	return c
}

// reject logs and counts a rejected change once per distinct key.
func (s *Supervisor) reject(key string, err error) {
	if key == s.rejected {
		return
	}
	s.rejected = key
	s.reloadErrors.Inc()
	s.log.Error("config reload rejected: "+err.Error(), "file", s.path, "action", "keeping the running configuration")
}

func (s *Supervisor) read() ([]byte, [sha256.Size]byte, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	return data, sha256.Sum256(data), nil
}

func (s *Supervisor) parse(data []byte) (*config.Config, error) {
	cfg, warnings, err := config.Parse(data, s.path)
	for _, w := range warnings {
		s.log.Warn(w.String())
	}
	return cfg, err
}

// serveMetrics serves /metrics from whichever Collector is current, so
// scrapers see one stable endpoint across reloads.
func (s *Supervisor) serveMetrics() (*http.Server, error) {
	ln, err := net.Listen("tcp", s.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	current := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return s.Metrics().reg.Gather() })
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(current, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.log.Info("serving self-metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv, nil
}
