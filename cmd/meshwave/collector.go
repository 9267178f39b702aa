package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
)

// loadConfig loads a collector file and logs its warnings.
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config FILE is required")
	}
	cfg, warnings, err := config.Load(path)
	for _, w := range warnings {
		log.Warn(w.String())
	}
	return cfg, err
}

func runCollector(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var path string
	fs.StringVar(&path, "config", "", "collector configuration `file` (collector.yaml, or a ConfigMap manifest holding it)")
	fs.StringVar(&path, "config-file", "", "alias of --config, the reference collector's flag name")
	once := fs.Bool("once", false, "scrape every source once, flush every sink and exit (non-zero if a source failed)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9102", "serve self-metrics on `addr`/metrics; empty disables")
	maxLine := fs.Int("max-line-bytes", 0, "skip exposition lines longer than this (default 1 MiB)")
	timeout := fs.Duration("once-timeout", 2*time.Minute, "with --once, give up delivering after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.Default()
	cfg, err := loadConfig(path, log)
	if err != nil {
		return err
	}
	opts := collector.Options{MetricsAddr: *metricsAddr, MaxLineBytes: *maxLine, Logger: log}
	if *once {
		opts.MetricsAddr = ""
	}
	c, err := collector.New(cfg, opts)
	if err != nil {
		return err
	}
	if !*once {
		return c.Run(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	results, err := c.Once(ctx)
	for _, r := range results {
		log.Info("scraped", "source", r.Source, "samples", r.Samples, "points", r.Points,
			"filtered", r.Filtered, "malformed_lines", r.ParseErrors, "duration", r.Duration.Round(time.Millisecond), "err", r.Err)
	}
	if err != nil {
		return fmt.Errorf("collection cycle incomplete: %w", err)
	}
	return nil
}

func runCheckConfig(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: meshwave check-config FILE")
	}
	path := fs.Arg(0)
	cfg, warnings, err := config.Load(path)
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w.String())
	}
	if err != nil {
		fmt.Fprintln(stdout, "error:", err)
		return exitError{code: 1}
	}
	for _, w := range config.Lint(cfg) {
		fmt.Fprintln(stdout, "lint:", w.String())
	}
	fmt.Fprintf(stdout, "%s: valid (%d prometheus sources, %d sinks)\n", path, len(cfg.Sources.PrometheusSources), len(cfg.Sinks))
	return nil
}

func runExplain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("config", "", "collector configuration `file`")
	name := fs.String("source", "", "explain only the prometheus source with this name or URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.Default()
	cfg, err := loadConfig(*path, log)
	if err != nil {
		return err
	}
	return collector.Explain(ctx, cfg, *name, stdout, log)
}
