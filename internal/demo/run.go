package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/proxy"
	"github.com/meshwave/meshwave/internal/server"
	"github.com/meshwave/meshwave/internal/simulate"
)

// DefaultListen is the demo server's default address.
const DefaultListen = "127.0.0.1:8080"

// Options configure Run. Zero values take the defaults noted.
type Options struct {
	Listen  string // server address (DefaultListen); port 0 picks one
	DataDir string // server data and proxy buffer (DefaultDataDir())
	// CollectionInterval overrides the collector's 15s (tests shorten it).
	CollectionInterval time.Duration
	PrintPoints        bool // also print the converted points to stdout
	// Retention is how long the server keeps data (the server's default,
	// 15 days, if zero).
	Retention time.Duration
	Logger    *slog.Logger // default slog.Default()
	// Ready, if set, is called once every part is running.
	Ready func(Addrs)
}

// Addrs are the demo's listening addresses.
type Addrs struct {
	Server, ProxyPush, ProxyZipkin, Simulator string
}

// URL is the dashboard URL.
func (a Addrs) URL() string { return "http://" + a.Server + "/" }

// DefaultDataDir is <user cache dir>/meshwave/demo.
func DefaultDataDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "meshwave", "demo")
}

// Run starts, in this process and on loopback, the server, the mesh
// simulator, a proxy forwarding to the server and the collector scraping
// the simulator's /federate into the proxy. It returns when ctx ends, after
// stopping the parts in data-flow order: collector, proxy, server,
// simulator.
func Run(ctx context.Context, o Options) (err error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger
	// The parts downstream of the collector outlive ctx until it has
	// stopped, so nothing in flight is lost on the way out.
	bg := context.WithoutCancel(ctx)

	// Server.
	srvLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("--listen %s is already in use (another meshwave demo or server?); stop it or pick another address, e.g. --listen 127.0.0.1:8081", o.Listen)
		}
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	srv, err := server.Open(server.Config{DataDir: filepath.Join(o.DataDir, "server"), Retention: o.Retention, Logger: log.With("role", "server")})
	if err != nil {
		srvLn.Close()
		return err
	}
	srvCtx, stopSrv := context.WithCancel(bg)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(srvCtx, srvLn) }()
	defer func() {
		stopSrv()
		err = errors.Join(err, <-srvDone, srv.Close())
	}()

	// Simulator.
	mesh, err := simulate.NewMesh(simulate.DefaultOptions())
	if err != nil {
		return err
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simCtx, stopSim := context.WithCancel(bg)
	simDone := make(chan error, 1)
	go func() { simDone <- simulate.NewServer(mesh, nil).Serve(simCtx, simLn) }()
	defer func() {
		stopSim()
		if e := <-simDone; e != nil && !errors.Is(e, context.Canceled) && !errors.Is(e, net.ErrClosed) {
			err = errors.Join(err, e)
		}
	}()

	// Proxy.
	pc := proxy.DefaultConfig()
	pc.PushListenerPorts = "0"
	pc.TraceZipkinListenerPorts = "0"
	pc.ListenerBindAddress = "127.0.0.1"
	pc.Server = "http://" + srvLn.Addr().String()
	pc.Buffer = filepath.Join(o.DataDir, "proxy-buffer")
	pc.BufferMaxBytes = 1 << 30
	pc.MetricsAddr = ""
	px, err := proxy.New(pc, log.With("role", "proxy"))
	if err != nil {
		return err
	}
	if err := px.Start(bg); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, px.Close()) }()
	addrs := Addrs{
		Server:      srvLn.Addr().String(),
		ProxyPush:   px.Addr("push", "0").String(),
		ProxyZipkin: px.Addr("zipkin", "0").String(),
		Simulator:   simLn.Addr().String(),
	}

	// Collector.
	federate := "http://" + addrs.Simulator + "/federate"
	yml := CollectorConfigWith(federate, ConfigOptions{
		ProxyAddress: addrs.ProxyPush, CollectionInterval: o.CollectionInterval, PrintPoints: o.PrintPoints,
	})
	cfg, warnings, err := config.Parse(yml, "demo/collector.yaml")
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	for _, w := range warnings {
		log.Warn(w.String())
	}
	c, err := collector.New(cfg, collector.Options{Logger: log.With("role", "collector")})
	if err != nil {
		return err
	}
	// Envoy-style Zipkin traces from the simulated mesh, posted to the
	// proxy's Zipkin port as Istio's sidecars would.
	tracer := simulate.NewTracer(mesh, simulate.TraceOptions{Rate: 5, Seed: 1})
	traceCtx, stopTraces := context.WithCancel(ctx)
	traceDone := make(chan struct{})
	go func() {
		defer close(traceDone)
		_ = tracer.Run(traceCtx, "http://"+addrs.ProxyZipkin+"/api/v2/spans", nil, log.With("role", "envoy-tracer"))
	}()
	defer func() { stopTraces(); <-traceDone }()
	log.Info("demo running; Ctrl-C stops", "dashboards", addrs.URL(), "data", o.DataDir,
		"proxy_push", addrs.ProxyPush, "proxy_zipkin", addrs.ProxyZipkin, "federate", federate)
	if o.Ready != nil {
		o.Ready(addrs)
	}
	if e := c.Run(ctx); e != nil && !errors.Is(e, context.Canceled) {
		return e
	}
	// The deferred stops run next: the tracer, then the proxy (its queue
	// stays on disk for the next run) and the server's stores.
	log.Info("demo stopping")
	return nil
}
