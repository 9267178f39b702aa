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
	reload := fs.Duration("reload-interval", 10*time.Second, "check the configuration file for changes this often and apply them without a restart; 0 disables")
	var ks kubeSettings
	fs.StringVar(&ks.agent, "agent", "all", "agent `type`: all (every pod; static sources while leader), node (own node's pods only), cluster (services and static sources while leader), legacy (own node's pods; static sources while leader)")
	daemon := fs.Bool("daemon", false, "the reference's flag: same as --agent legacy")
	fs.StringVar(&ks.kubeconfig, "kubeconfig", "", "kubeconfig `file` for discovery and leader election (default: in-cluster config when in a pod)")
	fs.IntVar(&ks.shards, "shards", 0, "split discovered pod targets over `N` collectors (a StatefulSet)")
	fs.IntVar(&ks.shardIndex, "shard-index", -1, "this collector's shard, 0..N-1 (default: the StatefulSet ordinal at the end of $HOSTNAME)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *daemon {
		ks.agent = "legacy"
	}
	log := slog.Default()
	opts := collector.Options{MetricsAddr: *metricsAddr, MaxLineBytes: *maxLine, Logger: log}
	if !*once {
		if path == "" {
			return errors.New("--config FILE is required")
		}
		sup, err := collector.NewSupervisor(path, opts, *reload)
		if err != nil {
			return err
		}
		return runKubeCollector(ctx, sup, ks, log)
	}
	cfg, err := loadConfig(path, log)
	if err != nil {
		return err
	}
	opts.MetricsAddr = ""
	c, err := collector.New(cfg, opts)
	if err != nil {
		return err
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
