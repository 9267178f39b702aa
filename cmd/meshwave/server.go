package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshwave/meshwave/internal/export"
	"github.com/meshwave/meshwave/internal/server"
)

// tokenList is a repeatable --token flag.
type tokenList []string

func (t *tokenList) String() string     { return strings.Join(*t, ",") }
func (t *tokenList) Set(v string) error { *t = append(*t, v); return nil }

// headerFlag is a repeatable K=V flag of extra HTTP request headers.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string {
	if f.h == nil {
		return ""
	}
	var kv []string
	for k, vs := range f.h {
		for _, v := range vs {
			kv = append(kv, k+"="+v)
		}
	}
	return strings.Join(kv, ",")
}

func (f *headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(k, val)
	return nil
}

// runServer runs the backend (ingestion, storage, query API) until ctx ends.
func runServer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	data := fs.String("data", defaultDataDir(), "data directory (WAL, tsdb, spans)")
	var tokens tokenList
	fs.Var(&tokens, "token", "accepted API token (repeatable); none: no authentication")
	retention := fs.String("retention", "15d", "how long data is kept, e.g. 15d or 36h")
	ooo := fs.Duration("out-of-order-window", server.DefaultOOOWindow, "how late a metric sample may arrive")
	maxBody := fs.Int("max-body-bytes", server.DefaultMaxBodyBytes, "largest request body after decompression (413 above)")
	rwURL := fs.String("remote-write-url", "", "also forward metrics and histograms to this Prometheus remote-write URL (user:pass@ in it for basic auth)")
	rwToken := fs.String("remote-write-token", "", "bearer token for --remote-write-url")
	var rwHeader, otlpHeader headerFlag
	fs.Var(&rwHeader, "remote-write-header", "extra `NAME=VALUE` header for remote write (repeatable)")
	rwQueue := fs.Int64("remote-write-max-queue-bytes", export.DefaultMaxQueueBytes, "disk bound of the remote-write queue; the oldest data is dropped beyond it")
	otlpURL := fs.String("otlp-endpoint", "", "also forward spans to this OTLP/HTTP endpoint (POST <endpoint>/v1/traces)")
	fs.Var(&otlpHeader, "otlp-header", "extra `NAME=VALUE` header for OTLP (repeatable)")
	otlpQueue := fs.Int64("otlp-max-queue-bytes", export.DefaultMaxQueueBytes, "disk bound of the OTLP queue; the oldest data is dropped beyond it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rwToken != "" {
		if rwHeader.h == nil {
			rwHeader.h = http.Header{}
		}
		rwHeader.h.Set("Authorization", "Bearer "+*rwToken)
	}
	ret, err := parseRetention(*retention)
	if err != nil {
		return fmt.Errorf("--retention: %w", err)
	}
	s, err := server.Open(server.Config{
		DataDir: *data, Tokens: tokens, Retention: ret, OutOfOrderWindow: *ooo, MaxBodyBytes: *maxBody,
		RemoteWrite: export.Config{URL: *rwURL, Header: rwHeader.h, MaxQueueBytes: *rwQueue},
		OTLP:        export.Config{URL: *otlpURL, Header: otlpHeader.h, MaxQueueBytes: *otlpQueue},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		s.Close()
		return err
	}
	slog.Info("server listening", "addr", ln.Addr().String(), "data", *data, "retention", ret, "auth", len(tokens) > 0,
		"remote_write", redacted(*rwURL), "otlp", redacted(*otlpURL))
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	return errors.Join(s.Serve(ctx, ln), s.Close())
}

// redacted is u without a password, for logs; "" stays "".
func redacted(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(unparsable URL)"
}

// parseRetention accepts Go durations plus whole days ("15d").
func parseRetention(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("bad number of days %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("retention must be positive")
	}
	return d, err
}

// defaultDataDir is $XDG_DATA_HOME/meshwave, else ~/.local/share/meshwave,
// else the user config directory's meshwave.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "meshwave")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "meshwave")
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "meshwave")
	}
	return "meshwave-data"
}
