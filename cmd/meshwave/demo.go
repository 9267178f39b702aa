package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshwave/meshwave/internal/demo"
)

// runDemo runs the whole stack in one process: the mesh simulator, the
// collector with the Istio integration's configuration, a proxy and the
// server with its web UI.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", demo.DefaultListen, "server (dashboards and API) listen address")
	data := fs.String("data", demo.DefaultDataDir(), "data directory (server stores and proxy buffer)")
	printPoints := fs.Bool("print-points", false, "also print the collector's points to stdout")
	retention := fs.String("retention", "1d", "how long the server keeps data, e.g. 1d or 36h (the simulated mesh's traces take ~3 GB a day)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ret, err := parseRetention(*retention)
	if err != nil {
		return fmt.Errorf("--retention: %w", err)
	}
	err = demo.Run(ctx, demo.Options{
		Listen: *listen, DataDir: *data, PrintPoints: *printPoints, Retention: ret,
		Ready: func(a demo.Addrs) {
			fmt.Fprintf(stdout, "meshwave demo: dashboards at %s (data within a minute); Ctrl-C stops\n", a.URL())
		},
	})
	if err == nil {
		slog.Info("demo stopped; data kept", "data", *data)
	}
	return err
}
