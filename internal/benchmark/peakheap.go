package benchmark

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/simulate"
)

// simulatorEnv, set to a series count, turns a process that links this
// package into a simulator child (see init). Any binary works — meshwave or
// a test binary — because PeakHeap re-executes itself.
const simulatorEnv = "MESHWAVE_BENCH_SIMULATOR"

// heapMetric counts the bytes of heap objects, live or not yet swept: the
// heap the collector actually occupies. Reading it does not stop the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// sampleEvery is the heap sampling period; a spike shorter than it can be
// missed.
const sampleEvery = 10 * time.Millisecond

func init() {
	if v, ok := os.LookupEnv(simulatorEnv); ok {
		if err := serveSimulator(v); err != nil {
			fmt.Fprintln(os.Stderr, "benchmark simulator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// serveSimulator serves a mesh of the given series count on a loopback
// port, prints the /federate URL as its first stdout line, and serves until
// stdin closes — so it also ends when the parent dies.
func serveSimulator(series string) error {
	n, err := strconv.Atoi(series)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s=%q: want a positive series count", simulatorEnv, series)
	}
	m := simulate.NewMeshForSeries(n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("http://%s/federate\n", ln.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := simulate.NewServer(m, nil).Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Result is one PeakHeap measurement.
type Result struct {
	Series       int           // samples the collector read
	Points       uint64        // points it kept after the seed filter
	Duration     time.Duration // the whole Once: scrape, convert, send, flush
	BaselineHeap uint64        // heap object bytes after a GC, before Once
	PeakHeap     uint64        // the largest heap object bytes seen during Once
	Readings     int           // heap readings taken
}

// PeakHeap runs the real collector once against a simulated /federate
// endpoint of about series samples and reports the largest heap it reached.
// The simulator runs in a child process so that only the collector's (and
// the caller's baseline) heap is counted.
func PeakHeap(ctx context.Context, series int) (Result, error) {
	url, stop, err := startSimulator(ctx, series)
	if err != nil {
		return Result{}, err
	}
	defer stop()

	cfg, err := seedConfig(url)
	if err != nil {
		return Result{}, err
	}
	// The points themselves are not measured; the file sink still encodes
	// and writes every one.
	// The demo's proxy sink is replaced: no proxy runs here.
	cfg.Sinks = []config.Sink{{File: os.DevNull}}
	// A million ~1 KB series over loopback can exceed the 30 s default
	// timeout on a small, busy machine; a timeout would cut the scrape short.
	cfg.Sources.PrometheusSources[0].Collection.Timeout = 10 * time.Minute
	c, err := collector.New(cfg, collector.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}

	runtime.GC()
	var res Result
	res.BaselineHeap = heapBytes()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			res.PeakHeap = max(res.PeakHeap, heapBytes())
			res.Readings++
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	results, err := c.Once(ctx)
	res.Duration = time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return res, err
	}
	for _, r := range results {
		res.Series += r.Samples
		res.Points += r.Points
	}
	return res, nil
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startSimulator re-executes this binary as a simulator child and returns
// its /federate URL and a function that stops it.
func startSimulator(ctx context.Context, series int) (url string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), simulatorEnv+"="+strconv.Itoa(series))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		stdin.Close()
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("simulator child: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}
