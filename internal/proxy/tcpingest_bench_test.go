package proxy

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
)

// childBinEnv names another test binary to run as the proxy child of
// BenchmarkTCPIngestChild, e.g. one built from an earlier commit, so a
// before/after ratio can be measured in the same run with the same load
// generator. It must speak the same childEnv protocol.
const childBinEnv = "MESHWAVE_PROXY_CHILD_BIN"

// childProfileEnv, if set, is a path prefix: each BenchmarkTCPIngestChild
// mode's child writes its CPU profile to <prefix><mode>.prof.
const childProfileEnv = "MESHWAVE_PROXY_CHILD_CPUPROFILE"

// BenchmarkTCPIngestChild measures what the speed target names: TCP line
// ingest with validation into the durable queue, per CPU-second of the
// proxy alone. The proxy runs as a child process; the parent's clients
// write pre-built Istio lines (~300 B, 13 tags plus source) over 4 loopback
// connections, and an op is a point counted in the child's proxy_received
// (validated, encoded and fsync'd). points/proxy-cpu-s is points ÷ the
// child's utime+stime (/proc/<pid>/stat), i.e. points per second per core.
//
//   - pure-ingest: the backend is unreachable, so the forwarder only backs
//     off; this is the ingest path the target is checked with.
//   - forwarding: the forwarder also reads the queue, gzips and posts every
//     line to a discarding backend in the parent.
func BenchmarkTCPIngestChild(b *testing.B) {
	bin := os.Getenv(childBinEnv)
	if bin == "" {
		bin = os.Args[0]
	}
	const clients = 4
	var chunks [clients][]byte
	for c := range chunks {
		chunks[c] = istioLines(5000, uint64(c))
	}
	for _, mode := range []string{"pure-ingest", "forwarding"} {
		b.Run(mode, func(b *testing.B) {
			server := "http://" + refusedAddr(b)
			if mode == "forwarding" {
				server = discardBackend(b).URL
			}
			dir := b.TempDir()
			cc := childConfig{Buffer: filepath.Join(dir, "buffer"), Server: server,
				PortFile: filepath.Join(dir, "ports.json"), PushPorts: "0"}
			if prefix := os.Getenv(childProfileEnv); prefix != "" {
				cc.CPUProfile = prefix + mode + ".prof"
			}
			ch := startChildBinary(b, bin, cc)
			addr := ch.ports.Push[0]
			hc := &http.Client{Timeout: 5 * time.Second}
			received := func() float64 {
				v, _ := ch.metric(hc, "proxy_received", `{entity="points",port="`+portOf(addr)+`"}`)
				return v
			}
			b.SetBytes(int64(len(chunks[0]) / 5000))
			cpu0, err := cpuclock.Process(ch.cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range clients {
				share := b.N / clients
				if c == 0 {
					share += b.N % clients
				}
				wg.Go(func() { writeLines(b, addr, chunks[c], 5000, share) })
			}
			wg.Wait()
			deadline := time.Now().Add(2 * time.Minute)
			for received() < float64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("the child counted %v of %d points", received(), b.N)
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.StopTimer()
			cpu1, err := cpuclock.Process(ch.cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			cpu := (cpu1 - cpu0).Seconds()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(b.N)/cpu, "points/proxy-cpu-s")
			b.ReportMetric(cpu*1e9/float64(b.N), "proxy-cpu-ns/point")
			ch.stop()
		})
	}
}

// writeLines writes n lines over one connection, cycling through chunk,
// which holds perChunk lines.
func writeLines(b *testing.B, addr string, chunk []byte, perChunk, n int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer conn.Close()
	for n > 0 {
		data := chunk
		if n < perChunk {
			data = chunk[:lineOffset(chunk, n)]
		}
		if _, err := conn.Write(data); err != nil {
			b.Error(err)
			return
		}
		n -= perChunk
	}
}
