package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/convert"
	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/promtext"
	"github.com/meshwave/meshwave/internal/sink"
)

// Version is meshwave's version, reported by the heartbeat as X.YZ.
const Version = "0.1.0"

// Options are the collector's settings that do not come from its file.
type Options struct {
	// MetricsAddr serves the self-metrics in Prometheus format; empty
	// disables the listener.
	MetricsAddr string
	// MaxLineBytes caps one exposition line (0: promtext's default).
	MaxLineBytes int
	Logger       *slog.Logger
}

// Collector runs the collector role for one configuration.
type Collector struct {
	cfg       *config.Config
	opts      Options
	log       *slog.Logger
	m         *Metrics
	exporters []*exporter
	writers   []sink.Writer
	targets   *targets
	stats     *statsSource
}

// New builds the collector: one exporter and writer per sink, one source per
// prometheus_sources entry. A sink that cannot be built is an error.
func New(cfg *config.Config, opts Options) (*Collector, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Collector{cfg: cfg, opts: opts, log: log, m: NewMetrics()}
	c.m.version.Set(versionValue(Version))
	for i := range cfg.Sinks {
		if err := c.addSink(&cfg.Sinks[i], i); err != nil {
			c.closeWriters(context.Background())
			return nil, err
		}
	}
	if len(c.exporters) == 0 {
		return nil, errors.New("no usable sink configured")
	}
	c.targets = newTargets(c)
	static := make([]Target, 0, len(cfg.Sources.PrometheusSources))
	for _, p := range cfg.Sources.PrometheusSources {
		static = append(static, Target{Key: p.Key(), Source: p, Discovered: "static"})
	}
	c.targets.set(staticGroup, static)
	c.stats = newStatsSource(cfg, c.m, c.newFanout())
	c.stats.leading = c.targets.isLeading
	return c, nil
}

func (c *Collector) addSink(s *config.Sink, i int) error {
	opt := sink.Options{FlushInterval: min(c.cfg.FlushInterval, time.Second)}
	var w, hw sink.Writer
	var name string
	switch s.Kind() {
	case config.SinkProxy:
		addr := net.JoinHostPort(s.ProxyHost, strconv.Itoa(s.ProxyPort))
		name = "proxy:" + addr
		opt.Name = name
		w = sink.NewTCP(addr, opt, c.m.sink, c.log)
		hw = w
	case config.SinkDirect:
		name = "direct:" + s.Server
		opt.Name, opt.BatchLines, opt.MaxBufferLines = name, s.BatchSize, s.MaxBufferSize
		w = sink.NewHTTP(s.Server, s.Token, opt, c.m.sink, c.log)
		opt.Format, opt.Name = "histogram", name+":histogram"
		hw = sink.NewHTTP(s.Server, s.Token, opt, c.m.sink, c.log)
		c.writers = append(c.writers, hw)
	case config.SinkFile:
		name = "file:" + s.File
		opt.Name = name
		fw, err := sink.NewFile(s.File, opt, c.m.sink, c.log)
		if err != nil {
			return fmt.Errorf("sinks[%d] (line %d): %w", i, s.Line, err)
		}
		w, hw = fw, fw
	default:
		c.log.Warn("sink type accepted but not implemented; skipped", "sink", i, "kind", s.Kind(), "line", s.Line)
		return nil
	}
	c.writers = append(c.writers, w)
	c.exporters = append(c.exporters, newExporter(name, clusterName(c.cfg), s.Prefix, s.Tags, s.Filter,
		s.Filters.TagGuaranteeList, w, hw, c.m))
	return nil
}

func clusterName(cfg *config.Config) string {
	if cfg.ClusterName == "" {
		return config.DefaultClusterName
	}
	return cfg.ClusterName
}

func (c *Collector) newFanout() fanout {
	f := make(fanout, len(c.exporters))
	for i, e := range c.exporters {
		f[i] = e.newBatch()
	}
	return f
}

// SetTargets replaces the targets of a discovery group; loops of unchanged
// targets keep running, new ones start, removed ones stop. Safe to call at
// any time, before or during Run.
func (c *Collector) SetTargets(group string, list []Target) {
	if group == staticGroup {
		group = "discovered:" + group
	}
	c.targets.set(group, list)
}

// SetLeading tells the collector whether it holds the leader lease: only the
// leader scrapes the file's static prometheus_sources (collector.md §2.1).
// Without leader election a collector always leads.
func (c *Collector) SetLeading(leading bool) { c.targets.setLeading(leading) }

// sourceFor builds a target's scrape state with its own sink batches.
func (c *Collector) sourceFor(x Target) *source {
	s := newSource(c.cfg, &x.Source, x.Source.Filter, c.newFanout(), c.m, c.log, c.opts.MaxLineBytes)
	s.labels[1] = x.Discovered
	return s
}

// newSource builds the scrape state of one prometheus_sources entry; f is
// its filter (explain passes nil to see every series).
func newSource(cfg *config.Config, p *config.PrometheusSource, f *filter.Filter, out pointSink, m *Metrics, log *slog.Logger, maxLine int) *source {
	key := p.Key()
	interval := p.Collection.Interval
	if interval <= 0 {
		interval = cfg.DefaultCollectionInterval
	}
	timeout := p.Collection.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCollectionTimeout
	}
	src := p.Source
	if src == "" {
		src = os.Getenv("POD_NODE_NAME")
	}
	if src == "" {
		src = "prom_source"
	}
	client, err := newHTTPClient(p)
	if err != nil {
		log.Error("error creating source; every scrape of it will fail until the configuration is fixed",
			"source", key, "line", p.Line, "err", err)
	}
	return &source{
		name:      "prometheus_metrics_provider: " + key,
		cfg:       p,
		interval:  interval,
		timeout:   timeout,
		client:    client,
		clientErr: err,
		conv: convert.New(convert.Options{
			Prefix: p.Prefix, Source: src, Tags: p.Tags, Filter: f,
			OmitBucketSuffix:  cfg.OmitBucketSuffix,
			ConvertHistograms: p.ConvertHistograms || hasExperimental(cfg, config.ExperimentalHistogramConversion),
		}),
		parser:    promtext.NewParser(strings.NewReader(""), promtext.Options{MaxLineBytes: maxLine}),
		maxLine:   maxLine,
		out:       out,
		m:         m,
		log:       log,
		labels:    []string{"prometheus", "static", p.URL},
		userAgent: "meshwave/" + Version,
	}
}

func hasExperimental(cfg *config.Config, v string) bool {
	for _, e := range cfg.Experimental {
		if e == v {
			return true
		}
	}
	return false
}

// Metrics returns the collector's self-metrics.
func (c *Collector) Metrics() *Metrics { return c.m }

// Run scrapes every source on its schedule and sends self-metrics until ctx
// ends, then flushes and closes the sinks.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if c.opts.MetricsAddr != "" {
		srv, err := c.serveMetrics()
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	c.log.Info("collector started", "sources", len(c.cfg.Sources.PrometheusSources), "sinks", len(c.exporters),
		"cluster", clusterName(c.cfg), "discovery", c.cfg.EnableDiscovery)
	c.targets.start(ctx)
	wg.Go(func() { c.stats.run(ctx, c.cfg.DefaultCollectionInterval) })
	wg.Wait()
	c.targets.wait()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.closeWriters(shutdown)
}

// Once scrapes every source once, concurrently, sends self-metrics and the
// heartbeat, and flushes every sink. It returns the per-source results and an
// error if any source failed or any sink could not deliver.
func (c *Collector) Once(ctx context.Context) ([]ScrapeResult, error) {
	list := c.targets.current()
	results := make([]ScrapeResult, len(list))
	var wg sync.WaitGroup
	for i, x := range list {
		wg.Go(func() { results[i] = c.sourceFor(x).scrape(ctx) })
	}
	wg.Wait()
	c.stats.send()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Source, r.Err))
		}
	}
	if err := c.closeWriters(ctx); err != nil {
		errs = append(errs, err)
	}
	return results, errors.Join(errs...)
}

func (c *Collector) closeWriters(ctx context.Context) error {
	var errs []error
	for _, w := range c.writers {
		if err := w.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Collector) serveMetrics() (*http.Server, error) {
	ln, err := net.Listen("tcp", c.opts.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	c.log.Info("serving self-metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv, nil
}

// versionValue encodes X.Y.Z as the float X.YZ, as the reference does.
func versionValue(v string) float64 {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0
	}
	f, err := strconv.ParseFloat(parts[0]+"."+parts[1]+parts[2], 64)
	if err != nil {
		return 0
	}
	return f
}
