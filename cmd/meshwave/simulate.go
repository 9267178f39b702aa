package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/meshwave/meshwave/internal/simulate"
)

// runSimulate serves a simulated mesh until ctx is done.
func runSimulate(ctx context.Context, args []string, stdout io.Writer) error {
	d := simulate.DefaultOptions()
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:9901", "address to serve on")
	ns := fs.Int("namespaces", d.Namespaces, "application namespaces (the first, \"default\", hosts Bookinfo)")
	svcs := fs.Int("services", d.Services, "services per namespace")
	vers := fs.Int("versions", d.Versions, "workloads (versions) per service")
	pods := fs.Int("pods", d.Pods, "pods per workload")
	rps := fs.Float64("rps", d.RPS, "requests per second each client pod sends along each edge")
	seed := fs.Int64("seed", d.Seed, "seed for names, addresses, latencies and sizes")
	series := fs.Int("series", 0, "approximate /federate series count; overrides the shape flags")
	leFormat := fs.String("le-format", d.LeFormat.String(), "federated le spelling: prom2 (\"1800000\") or prom3 (\"1.8e+06\")")
	tracesURL := fs.String("traces-url", "", "post Istio-style Zipkin v2 traces to this URL (e.g. http://127.0.0.1:9411/api/v2/spans); empty: off")
	tracesRate := fs.Float64("traces-rate", 5, "traces per second across the mesh, with --traces-url")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected arguments %q", fs.Args())
	}
	o := d
	o.Namespaces, o.Services, o.Versions, o.Pods, o.RPS, o.Seed = *ns, *svcs, *vers, *pods, *rps, *seed
	var err error
	if o.LeFormat, err = simulate.ParseLeFormat(*leFormat); err != nil {
		return err
	}
	if *series > 0 {
		o = simulate.ShapeForSeries(*series, o)
	}
	m, err := simulate.NewMesh(o)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	targets := m.Targets()
	fmt.Fprintf(stdout, "simulating %d namespaces × %d services × %d versions × %d pods (%d targets, %d /federate series, le %s)\n",
		o.Namespaces, o.Services, o.Versions, o.Pods, len(targets), m.FederateSeries(), o.LeFormat)
	fmt.Fprintf(stdout, "federate: %s/federate\n", base)
	fmt.Fprintf(stdout, "istiod:   %s/istiod/metrics\n", base)
	fmt.Fprintf(stdout, "pods:     %s%s (and %d more)\n", base, targets[0].MetricsPath, len(targets)-2)
	fmt.Fprintf(stdout, "targets:  %s/targets (Prometheus file_sd JSON)\n", base)
	if *tracesURL != "" {
		fmt.Fprintf(stdout, "traces:   posting %g/s to %s\n", *tracesRate, *tracesURL)
		tr := simulate.NewTracer(m, simulate.TraceOptions{Rate: *tracesRate, Seed: o.Seed})
		go func() { _ = tr.Run(ctx, *tracesURL, nil, slog.Default()) }() // fails only on an empty URL
	}
	return simulate.NewServer(m, nil).Serve(ctx, ln)
}
