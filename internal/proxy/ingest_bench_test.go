package proxy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// BenchmarkIngestLine measures validation and canonical encoding of one
// realistic Istio line, without I/O: the CPU cost per point of the push port.
var errDiscarded = errors.New("discarded by the benchmark")

func BenchmarkIngestLine(b *testing.B) {
	p := &Proxy{cfg: DefaultConfig(), m: newMetrics()}
	p.limits = wavefront.DefaultLimits()
	in := p.newIngester("2878", []byte("10.0.0.1"))
	line := []byte(fmt.Sprintf(`istio.requests.total.value 1234 %d source="node-a" "app"="details" "destination_workload"="details-v1" "destination_workload_namespace"="default" "job"="federate" "reporter"="destination" "response_code"="200" "source_workload"="productpage-v1" "source_workload_namespace"="default" "cluster"="prod" "destination_service"="details.default.svc.cluster.local" "request_protocol"="http"`, time.Now().Unix()))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	cpu0 := cpuclock.Self()
	for b.Loop() {
		in.line(line, fmtWavefront)
		if in.full() {
			in.staged.appended(in.port, errDiscarded) // not counted as received
			in.staging = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N), "cpu-ns/point")
}
