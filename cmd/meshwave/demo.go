package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/demo"
	"github.com/meshwave/meshwave/internal/simulate"
)

// runDemo runs the simulator and the collector with the integration's
// configuration in one process, printing the converted points.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("simulate-listen", "127.0.0.1:0", "address for the simulated mesh")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.Default()
	mesh, err := simulate.NewMesh(simulate.DefaultOptions())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	federate := "http://" + ln.Addr().String() + "/federate"
	simDone := make(chan error, 1)
	go func() { simDone <- simulate.NewServer(mesh, nil).Serve(ctx, ln) }()

	dir, err := os.MkdirTemp("", "meshwave-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(path, demo.CollectorConfig(federate), 0o600); err != nil {
		return err
	}
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	for _, w := range warnings {
		log.Warn(w.String())
	}
	log.Info("demo running: simulated mesh scraped through its /federate endpoint; Ctrl-C stops", "federate", federate)
	c, err := collector.New(cfg, collector.Options{Logger: log})
	if err != nil {
		return err
	}
	runErr := c.Run(ctx)
	if err := <-simDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return runErr
}
