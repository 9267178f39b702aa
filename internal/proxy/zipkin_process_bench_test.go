package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/openzipkin/zipkin-go/model"
)

// BenchmarkZipkinProcess checks the Zipkin ingest target (spans per core at
// least 10× encoding/json decoding the same bodies into zipkin-go's model)
// on what the proxy itself spends: the proxy runs as a child process, the
// benchmark's clients POST from this process over loopback, and the rate is
// spans per CPU-second of the child (utime+stime from /proc), so neither the
// clients nor the backend are charged to it. The baseline runs in this
// process, on one goroutine, around and between slices of the load; its
// rate is spans per CPU-second too. An op is one body of 100 spans
// answered 202.
//
//   - queue: the forwarder's backend is unreachable, so the child only
//     ingests: HTTP, decode, convert, RED, span logs, fsync'd queue append.
//     The target is checked with this one.
//   - forward: the child also drains the queue to a discarding backend
//     (zstd, which it offers as meshwave's server does, and HTTP posts),
//     i.e. its steady state when the backend keeps up.
//
// Each runs with 4 and with 64 clients (keep-alive connections, each
// waiting for its 202 before the next POST). The CPU a span costs depends
// on that: a 202 waits for its fsync, so with 4 clients a group commit
// gathers about 2 bodies and each body pays for half an fsync, while 64
// clients, like a mesh's many sidecars, saturate this 2-core machine and
// an fsync covers many bodies. clients=64 is the proxy's capacity per
// core; clients=4 is a lightly loaded proxy's cost per span.
//
// MESHWAVE_PROXY_CHILD_BIN and MESHWAVE_PROXY_CHILD_CPUPROFILE work as for
// BenchmarkTCPIngestChild (profiles go to <prefix>zipkin-<mode>-<clients>.prof).
func BenchmarkZipkinProcess(b *testing.B) {
	bodies := envoyBodies(b, 64)
	for _, clients := range []int{4, 64} {
		name := fmt.Sprintf("clients=%d", clients)
		b.Run("queue/"+name, func(b *testing.B) {
			benchZipkinChild(b, bodies, "http://"+refusedAddr(b), "queue", clients)
		})
		b.Run("forward/"+name, func(b *testing.B) {
			benchZipkinChild(b, bodies, discardBackend(b).URL, "forward", clients)
		})
	}
}

func benchZipkinChild(b *testing.B, bodies [][]byte, server, mode string, clients int) {
	dir := b.TempDir()
	cc := childConfig{Buffer: filepath.Join(dir, "buffer"), Server: server, PortFile: filepath.Join(dir, "ports.json")}
	if prefix := os.Getenv(childProfileEnv); prefix != "" {
		cc.CPUProfile = fmt.Sprintf("%szipkin-%s-%d.prof", prefix, mode, clients)
	}
	bin := os.Getenv(childBinEnv)
	if bin == "" {
		bin = os.Args[0]
	}
	ch := startChildBinary(b, bin, cc)
	url := "http://" + ch.ports.Zipkin + "/api/v2/spans"
	hcs := make([]*http.Client, clients)
	for i := range hcs {
		hcs[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	}
	// Warm-up: connections, pools and RED series exist before measuring.
	for i, hc := range hcs {
		if err := postZipkin(hc, url, bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	// send has the clients POST n bodies between them.
	send := func(n int) {
		var wg sync.WaitGroup
		var next sync.Mutex
		sent := 0
		for c := range clients {
			wg.Go(func() {
				for i := c; ; i += clients {
					next.Lock()
					if sent == n {
						next.Unlock()
						return
					}
					sent++
					next.Unlock()
					if err := postZipkin(hcs[c], url, bodies[i%len(bodies)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	metric := func(name, selector string) float64 {
		v, err := ch.metric(hc, name, selector)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	// drained waits until a forwarding child has delivered everything, so
	// that the discarding backend in this process is quiet while the
	// baseline runs. Polling costs the child a little CPU, charged to it.
	drained := func() {
		deadline := time.Now().Add(30 * time.Second)
		for mode == "forward" && metric("meshwave_queue_records", `{queue="proxy"}`) > 0 {
			if time.Now().After(deadline) {
				b.Fatal("the child's queue did not drain in 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The baseline runs before, between and after slices of the load, so
	// that the host's quick and slow spells (seconds long here) weigh on
	// both alike. The child's CPU is taken over the whole, so a forwarder
	// catching up before a baseline slice is charged too.
	const slices = 4
	baseSpans, baseCPU := encodingJSONBaseline(b, bodies)
	syncs0 := metric("meshwave_queue_fsyncs_total", `{queue="proxy"}`)
	cpu0 := childCPU(b, ch)
	b.ResetTimer()
	for i := range slices {
		b.StartTimer()
		send(b.N*(i+1)/slices - b.N*i/slices)
		b.StopTimer()
		drained()
		n, c := encodingJSONBaseline(b, bodies)
		baseSpans, baseCPU = baseSpans+n, baseCPU+c
	}
	cpu := childCPU(b, ch) - cpu0
	syncs := metric("meshwave_queue_fsyncs_total", `{queue="proxy"}`) - syncs0
	baseline := float64(baseSpans) / baseCPU.Seconds()
	spans := float64(b.N * zipkinSpansPerBody)
	b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(spans/cpu.Seconds(), "spans/child-cpu-s")
	b.ReportMetric(baseline, "baseline-spans/cpu-s")
	b.ReportMetric(spans/cpu.Seconds()/baseline, "x-baseline")
	b.ReportMetric(syncs/float64(b.N), "fsyncs/body")

	// Every span must have been counted as durable, plus the warm-up's.
	got := metric("proxy_received", `{entity="spans",port="`+portOf(ch.ports.Zipkin)+`"}`)
	if want := spans + float64(clients*zipkinSpansPerBody); got != want {
		b.Fatalf("proxy_received spans = %v, want %v", got, want)
	}
	ch.stop() // lets a profiling child write its profile
}

func postZipkin(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d: %s", resp.StatusCode, msg)
	}
	return nil
}

// encodingJSONBaseline decodes bodies with encoding/json into zipkin-go's
// model on one goroutine until it has used 200 ms of CPU, and returns the
// spans decoded and the CPU time used. Nothing else runs in this process
// meanwhile, so the process's CPU time is the baseline's.
func encodingJSONBaseline(b *testing.B, bodies [][]byte) (int, time.Duration) {
	cpu0 := cpuclock.Self()
	n := 0
	for i := 0; cpuclock.Self()-cpu0 < 200*time.Millisecond; i++ {
		var spans []model.SpanModel
		if err := json.Unmarshal(bodies[i%len(bodies)], &spans); err != nil {
			b.Fatal(err)
		}
		n += len(spans)
	}
	return n, cpuclock.Self() - cpu0
}

// childCPU is the child's user plus system CPU time.
func childCPU(b *testing.B, ch *child) time.Duration {
	cpu, err := cpuclock.Process(ch.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}
