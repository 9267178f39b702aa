package export

import (
	"fmt"
	"io"
	"testing"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// istioRecord is a queue record of n canonical Istio-like point lines.
func istioRecord(n int) []byte {
	rec := []byte{byte(Points)}
	for i := range n {
		rec = fmt.Appendf(rec, "\"istio.requests.total.value\" %d %d source=\"reviews-v%d-7d8f9c-x%d\" \"app\"=\"reviews\" \"destination_service\"=\"reviews.default.svc.cluster.local\" \"response_code\"=\"%d\" \"reporter\"=\"destination\" \"cluster\"=\"k8s-cluster\"\n",
			i, 1700000000000+int64(i%60)*1000, i%3, i%50, 200+i%4)
	}
	return rec
}

// BenchmarkRemoteWriteConvert measures the exporter's CPU per sample: the
// remote-write conversion (decode, name mapping, protobuf, snappy) against
// the decode alone (ParsePoint of the same lines), its in-run baseline.
// cpu-ns/sample is process CPU time (getrusage), steadier than wall time
// on a shared machine.
func BenchmarkRemoteWriteConvert(b *testing.B) {
	const samples = 10000
	rec := istioRecord(samples)
	report := func(b *testing.B, run func()) { reportCPU(b, len(rec), samples, "cpu-ns/sample", run) }
	b.Run("decode-only", func(b *testing.B) {
		var dec wavefront.Decoder
		lim := decodeLimits()
		dec.Limits, dec.LenientNonFinite = &lim, true
		var p wavefront.Point
		report(b, func() {
			for line := range lines(rec[1:]) {
				if err := dec.ParsePoint(line, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("remote-write", func(b *testing.B) {
		c := newRWConverter(0, newMetrics(nil, "bench"))
		report(b, func() {
			err := c.convert([][]byte{rec}, whole(b, func(body []byte, n int) error {
				_, err := io.Discard.Write(body)
				return err
			}))
			if err != nil {
				b.Fatal(err)
			}
		})
	})
}

// spanRecord is a queue record of n Envoy-like canonical span lines.
func spanRecord(n int) []byte {
	rec := []byte{byte(Spans)}
	for i := range n {
		rec = fmt.Appendf(rec, "\"reviews.default.svc.cluster.local:9080/*\" source=\"reviews-v%d\" spanId=\"00000000-0000-0000-%04x-%012x\" traceId=\"%08x-0000-0000-0000-%012x\" \"parent\"=\"00000000-0000-0000-0000-%012x\" \"application\"=\"bookinfo\" \"service\"=\"reviews\" \"cluster\"=\"k8s-cluster\" \"shard\"=\"none\" \"span.kind\"=\"server\" \"http.method\"=\"GET\" \"http.status_code\"=\"200\" \"component\"=\"proxy\" \"upstream_cluster\"=\"inbound|9080||\" 1700000000000 %d\n",
			i%3, i>>16, i, i/4, i/4, i+1, 1+i%100)
	}
	return rec
}

// BenchmarkOTLPConvert is BenchmarkRemoteWriteConvert for spans: OTLP
// conversion (decode, protobuf, gzip) against DecodeSpan of the same lines.
func BenchmarkOTLPConvert(b *testing.B) {
	const spans = 5000
	rec := spanRecord(spans)
	report := func(b *testing.B, run func()) { reportCPU(b, len(rec), spans, "cpu-ns/span", run) }
	b.Run("decode-only", func(b *testing.B) {
		var dec wavefront.Decoder
		lim := decodeLimits()
		dec.Limits = &lim
		var s wavefront.Span
		report(b, func() {
			for line := range lines(rec[1:]) {
				if err := dec.DecodeSpan(line, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("otlp", func(b *testing.B) {
		c := newOTLPConverter(0, newMetrics(nil, "bench"))
		report(b, func() {
			err := c.convert([][]byte{rec}, whole(b, func(body []byte, n int) error {
				_, err := io.Discard.Write(body)
				return err
			}))
			if err != nil {
				b.Fatal(err)
			}
		})
	})
}

// reportCPU runs run per op over a record of size bytes holding items, and
// reports process CPU per item under unit.
func reportCPU(b *testing.B, size, items int, unit string, run func()) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuclock.Self()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64((cpuclock.Self()-cpu).Nanoseconds())/float64(b.N*items), unit)
}
