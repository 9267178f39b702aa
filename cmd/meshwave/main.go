// Command meshwave runs one role of the meshwave stack per subcommand. It only
// parses flags and wires packages together; the work lives in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `meshwave: Istio metrics and traces, collected and stored.

Usage: meshwave <command> [flags]

Commands:
  demo          run the whole stack on loopback: simulated mesh, collector, proxy, server and dashboards
  collector     scrape Prometheus sources and send Wavefront points to sinks
  proxy         accept Wavefront lines and Zipkin spans, queue them on disk, forward them
  server        store Wavefront metrics, histograms and spans; serve the query API
  check-config  validate and lint a collector configuration file
  explain       scrape once and show what happens to every series
  simulate      serve simulated Istio sidecar, istiod and /federate metrics
  bench         benchmark the scrape path against textparse and expfmt; measure peak heap

Run "meshwave <command> -h" for a command's flags.
`

// exitError carries a specific exit status up to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	err := run(ctx, os.Args[1], os.Args[2:], os.Stdout)
	var ee exitError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "meshwave:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "simulate":
		return runSimulate(ctx, args, stdout)
	case "proxy":
		return runProxy(ctx, args, stdout)
	case "server":
		return runServer(ctx, args, stdout)
	case "collector":
		return runCollector(ctx, args, stdout)
	case "check-config":
		return runCheckConfig(ctx, args, stdout)
	case "explain":
		return runExplain(ctx, args, stdout)
	case "demo":
		return runDemo(ctx, args, stdout)
	case "bench":
		return runBench(ctx, args, stdout)
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}
