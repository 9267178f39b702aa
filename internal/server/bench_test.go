package server

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngest measures /report → WAL (fsync) → tsdb end to end over
// loopback HTTP: each op is one 50 000-point body (1 000 series × 50
// timestamps, Istio-like tags), and the clock stops once every point is in
// the tsdb. points/cpu-s divides by the process's CPU time (user+system,
// client included), i.e. throughput per fully used core.
func BenchmarkIngest(b *testing.B) {
	s := start(b, Config{})
	const series, steps = 1000, 50
	t0 := base() - 30*60_000
	bodies := make([]string, 8)
	for i := range bodies {
		var sb strings.Builder
		for st := range steps {
			ts := t0 + int64(i*steps+st)*1000
			for k := range series {
				fmt.Fprintf(&sb, "\"istio.requests.total\" %d %d source=\"pod-%d\" \"destination_service\"=\"svc-%d.default.svc.cluster.local\" \"response_code\"=\"200\" \"reporter\"=\"destination\"\n", st+k, ts, k%50, k)
			}
		}
		bodies[i] = sb.String()
	}
	stored := func() float64 {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var n float64
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, `meshwave_server_lines_stored_total{format="wavefront"}`) {
				fmt.Sscan(strings.Fields(l)[1], &n)
			}
		}
		return n
	}
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := range b.N {
		code, res := post(b, s.url, "wavefront", bodies[i%len(bodies)])
		if code != 202 || res.Accepted != series*steps {
			b.Fatalf("POST: %d %+v", code, res.Rejected)
		}
	}
	want := float64(b.N * series * steps)
	for stored() < want {
		time.Sleep(time.Millisecond)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.StopTimer()
	b.ReportMetric(want/wall.Seconds(), "points/s")
	b.ReportMetric(want/cpu.Seconds(), "points/cpu-s")
}

// BenchmarkTraceLookup measures GET-by-ID in a store of 20 000 traces of
// 8 spans each, with span logs.
func BenchmarkTraceLookup(b *testing.B) {
	kv, err := openKV(b.TempDir() + "/kv.db")
	if err != nil {
		b.Fatal(err)
	}
	defer kv.close()
	var dec wavefront.Decoder
	t0 := base()
	const traces, spans = 20000, 8
	ids := make([]string, traces)
	var batch kvBatch
	var sp wavefront.Span
	for i := range traces {
		ids[i] = fmt.Sprintf("%08x-9456-11e8-9eb6-529269fb1459", rand.Uint32())
		for j := range spans {
			line := fmt.Sprintf("op%d source=web traceId=%s spanId=%08x-0000-0000-0000-%012d application=shop service=svc%d http.method=GET %d %d",
				j, ids[i], j, i, j%3, t0+int64(i), 10+j)
			if err := dec.DecodeSpan([]byte(line), &sp); err != nil {
				b.Fatal(err)
			}
			batch.spans = append(batch.spans, spanRecOf(&sp, []byte(line)))
		}
		batch.logs = append(batch.logs, logRec{key: []byte(ids[i] + "\x00x\x00hashhash"), received: t0, json: []byte(`{"traceId":"x","spanId":"x","logs":[]}`)})
		if len(batch.spans) >= 40000 {
			if err := kv.write(&batch, &dec); err != nil {
				b.Fatal(err)
			}
			batch.reset()
		}
	}
	if err := kv.write(&batch, &dec); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		got, err := kv.trace(ids[i%traces], &dec)
		if err != nil || len(got) != spans {
			b.Fatalf("trace: %d spans, %v", len(got), err)
		}
	}
}
