package red

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// istioSpans returns n spans shaped like Envoy's, one series each.
func istioSpans(n int) []Span {
	spans := make([]Span, n)
	for i := range spans {
		spans[i] = Span{
			Application: []byte("Zipkin"), Service: []byte("reviews-v" + strconv.Itoa(i%3) + ".default"),
			Operation: []byte("reviews.default.svc.cluster.local:9080/reviews/" + strconv.Itoa(i)),
			Component: []byte("proxy"), SpanKind: []byte("server"), Source: []byte("zipkin"), HTTPStatusCode: []byte("200"),
			CustomTags:     []wavefront.Tag{{Key: []byte("mesh"), Value: []byte("istio")}},
			DurationMicros: int64(1000 + i*37), DurationMillis: int64(1 + i*37/1000),
		}
	}
	return spans
}

// BenchmarkObserve measures the hot path over 64 already-seen series with
// the real clock.
func BenchmarkObserve(b *testing.B) {
	d := New(Options{})
	spans := istioSpans(64)
	for i := range spans {
		d.Observe(&spans[i])
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7))
		for pb.Next() {
			d.Observe(&spans[i%len(spans)])
			i++
		}
	})
}

type discard struct{}

func (discard) WritePoint(*wavefront.Point)               {}
func (discard) WriteDistribution(*wavefront.Distribution) {}

// BenchmarkObserveAndHeartbeat is the custom tracing port's per-span path.
func BenchmarkObserveAndHeartbeat(b *testing.B) {
	d := New(Options{Mode: CustomTracingMode})
	spans := istioSpans(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d.ObserveAndHeartbeat(&spans[i%len(spans)], discard{})
			i++
		}
	})
}

// BenchmarkObserveVaried gives every span a different duration, so each
// sample reaches the t-digest: its cost dominates.
func BenchmarkObserveVaried(b *testing.B) {
	d := New(Options{})
	spans := istioSpans(64)
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7))
		for pb.Next() {
			sp := spans[i%len(spans)]
			sp.DurationMicros = int64(i*7919%100000 + 1)
			d.Observe(&sp)
			i++
		}
	})
}
