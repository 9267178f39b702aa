package red

import (
	"math/rand/v2"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

func randomSpan(r *rand.Rand) Span {
	pick := func(vs ...string) []byte { return []byte(vs[r.IntN(len(vs))]) }
	s := Span{
		Application: pick("a", "b"), Service: pick("s1", "s2"), Operation: pick("o1", "o2", "o3"),
		Source: pick("", "pod-1"), SpanKind: pick("", "server"), HTTPStatusCode: pick("", "200", "503"),
		IsError: r.IntN(4) == 0, DurationMicros: []int64{999, 1000, 2500, 7000}[r.IntN(4)],
		DurationMillis: []int64{0, 1, 2, 7}[r.IntN(4)],
	}
	if r.IntN(3) == 0 {
		s.CustomTags = []wavefront.Tag{{Key: pick("env", "cluster"), Value: pick("prod", "")}}
	}
	return s
}

// scribble overwrites s's bytes, as a caller reusing its buffers would.
func scribble(s *Span) {
	for _, f := range [][]byte{s.Application, s.Service, s.Operation, s.Source, s.SpanKind, s.HTTPStatusCode} {
		for i := range f {
			f[i] = 'x'
		}
	}
	for _, t := range s.CustomTags {
		for i := range t.Key {
			t.Key[i] = 'x'
		}
	}
}

// A Batch counts exactly what Observe counts, span by span, including
// which series MaxSeries admits and how many spans it drops.
func TestBatchMatchesObserve(t *testing.T) {
	for _, mode := range []Mode{ZipkinMode, CustomTracingMode} {
		clk := &clock{t: at(t0 + 10)}
		opts := Options{Mode: mode, Now: clk.now, MaxSeries: 40}
		perSpan, batched := New(opts), New(opts)
		batch := batched.NewBatch()
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 2*batchLimit + 500 { // crosses the automatic commit
			// Runs of one series, as a service's spans come, and
			// enough series per commit to grow Add's table.
			series := uint64(r.IntN(1 << 30))
			for range 1 + r.IntN(3) {
				s := randomSpan(rand.New(rand.NewPCG(series, 3)))
				s.IsError, s.DurationMicros = r.IntN(4) == 0, []int64{999, 1000, 2500, 7000}[r.IntN(4)]
				perSpan.Observe(&s)
				batch.Add(&s)
				scribble(&s)
			}
			if i%300 == 299 {
				batch.Commit()
			}
		}
		batch.Commit()
		var want, got recorder
		perSpan.Flush(at(t0+60), &want)
		batched.Flush(at(t0+60), &got)
		diff(t, got.take(), want.take())
		if d, want := batched.Dropped(), perSpan.Dropped(); d != want || want == 0 {
			t.Errorf("mode %d: dropped %d, want %d (> 0)", mode, d, want)
		}
	}
}

// BenchmarkBatch is BenchmarkObserve's spans through a Batch of 100 spans
// per commit, as the Zipkin port sends one body's spans.
func BenchmarkBatch(b *testing.B) {
	d := New(Options{})
	spans := istioSpans(64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		batch := d.NewBatch()
		i := 0
		for pb.Next() {
			batch.Add(&spans[i%len(spans)])
			if i++; i%100 == 0 {
				batch.Commit()
			}
		}
		batch.Commit()
	})
}

// BenchmarkBatchFewSeries is a body as the Zipkin benchmark's Envoy
// bodies make it: 100 spans cycling through 3 series, so hardly a span
// repeats the one before it.
func BenchmarkBatchFewSeries(b *testing.B) {
	d := New(Options{})
	spans := istioSpans(3)
	batch := d.NewBatch()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		batch.Add(&spans[i%len(spans)])
		if i%100 == 99 {
			batch.Commit()
		}
	}
}
