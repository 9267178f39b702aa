package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshwave/meshwave/internal/preprocessor"
	"github.com/meshwave/meshwave/internal/queue"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// Proxy is a running proxy: its listeners, queue and forwarder.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	queue   *queue.Queue
	limits  wavefront.Limits
	srcTags []string // --customSourceTags, split once for every ingester
	blocked *blockedLog
	rules   atomic.Pointer[preprocessor.Rules]

	addrs     map[string]net.Addr // "push:<port>", "zipkin:<port>" → bound address
	push      []*pushListener
	servers   []*http.Server
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New opens the durable queue; listeners start with Start.
func New(cfg Config, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: log, m: newMetrics(), limits: wavefront.DefaultLimits(), addrs: map[string]net.Addr{}}
	p.limits.MaxSpanAnnotations = wavefront.MeshSpanAnnotations
	p.srcTags = splitList(cfg.CustomSourceTags)
	p.blocked = &blockedLog{logger: log.With("logger", "RawBlockedPoints"), perTen: max(cfg.PushBlockedSamples, 1)}
	q, err := queue.Open(cfg.Buffer, queue.Options{MaxBytes: cfg.BufferMaxBytes, Logger: log, Metrics: queue.NewMetrics(p.m.reg, "proxy")})
	if err != nil {
		return nil, fmt.Errorf("opening the buffer %s: %w", cfg.Buffer, err)
	}
	p.queue = q
	return p, nil
}

// Metrics returns the proxy's self-metrics.
func (p *Proxy) Metrics() *Metrics { return p.m }

// Addr returns the address a listener is bound to, by kind ("push",
// "zipkin") and configured port.
func (p *Proxy) Addr(kind, port string) net.Addr { return p.addrs[kind+":"+port] }

// Start binds every listener and starts forwarding. It returns once the
// listeners accept connections.
func (p *Proxy) Start(ctx context.Context) error {
	ctx, p.cancel = context.WithCancel(ctx)
	if path := p.cfg.PreprocessorConfigFile; path != "" {
		// The watcher applies the file before returning, so a broken file
		// at start-up is an error, and later breakage keeps the old rules.
		if _, err := preprocessor.Watch(ctx, path, 10*time.Second, p.log, p.rules.Store); err != nil {
			return fmt.Errorf("--preprocessorConfigFile: %w", err)
		}
	}
	for _, port := range splitList(p.cfg.PushListenerPorts) {
		ln, label, err := p.listen("push", port)
		if err != nil {
			p.Close()
			return err
		}
		l := p.newPushListener(ln, label)
		p.push = append(p.push, l)
		p.wg.Go(l.serve)
	}
	for _, port := range splitList(p.cfg.TraceZipkinListenerPorts) {
		ln, label, err := p.listen("zipkin", port)
		if err != nil {
			p.Close()
			return err
		}
		p.serveHTTP(ln, p.surviveHTTP(label, p.zipkinHandler(ctx, label)))
	}
	if p.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", p.cfg.MetricsAddr)
		if err != nil {
			p.Close()
			return fmt.Errorf("metrics listener %s: %w", p.cfg.MetricsAddr, err)
		}
		p.addrs["metrics"] = ln.Addr()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(p.m.reg, promhttp.HandlerOpts{}))
		p.serveHTTP(ln, mux)
	}
	fwd := newForwarder(p)
	p.wg.Go(func() { fwd.run(ctx) })
	p.wg.Go(func() { p.reportSelf(ctx) })
	p.log.Info("proxy started", "push", p.cfg.PushListenerPorts, "zipkin", p.cfg.TraceZipkinListenerPorts,
		"server", p.cfg.Server, "buffer", p.cfg.Buffer, "queued_bytes", p.queue.Bytes())
	return nil
}

func (p *Proxy) listen(kind, port string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(p.cfg.ListenerBindAddress, port))
	if err != nil {
		return nil, "", fmt.Errorf("%s listener on port %s: %w", kind, port, err)
	}
	p.addrs[kind+":"+port] = ln.Addr()
	// Port 0 (tests) is labelled with the port actually bound.
	return ln, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

func (p *Proxy) serveHTTP(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: p.cfg.IdleTimeout}
	p.servers = append(p.servers, srv)
	p.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
}

// reportSelf sends the ~proxy self-metrics upstream once a minute, as the
// reference's check-in does.
func (p *Proxy) reportSelf(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	in := p.newIngester("internal", []byte(p.cfg.Hostname))
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.m.upstreamPoints(p.cfg.Hostname, now, func(pt *wavefront.Point) {
				in.stage(fmtWavefront, func(b []byte) []byte { return wavefront.AppendPoint(b, pt) })
			})
			if err := in.commit(); err != nil {
				p.log.Warn("queueing self-metrics failed", "err", err)
			}
		}
	}
}

// portRules returns the preprocessor rules of a port; nil keeps everything.
func (p *Proxy) portRules(port string) *preprocessor.PortRules {
	return p.rules.Load().ForPort(port)
}

// Close stops accepting, lets in-flight requests finish, stops the
// forwarder and closes the queue. Data not yet delivered stays on disk.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, srv := range p.servers {
			_ = srv.Shutdown(ctx)
		}
		for _, l := range p.push {
			l.close(ctx)
		}
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		err = p.queue.Close()
	})
	return err
}
