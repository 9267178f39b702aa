package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/meshwave/meshwave/internal/proxy"
)

// runProxy runs the proxy role until ctx ends.
func runProxy(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := proxy.ParseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		proxy.Usage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg, slog.Default())
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	slog.Info("proxy stopping; undelivered data stays in the buffer")
	return p.Close()
}
