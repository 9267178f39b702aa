package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/wql"
)

// TestWriteChartMatchesEncodingJSON: the hand-written encoder must produce
// exactly what encoding/json makes of the same ChartResponse.
func TestWriteChartMatchesEncodingJSON(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-7, -3.25e-9, 1e20, 1e21, 1.5e300, 123456789012345,
		1e15, 1e15 + 0.5, 2.5e15, -1e16, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		vals = append(vals, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)), float64(r.IntN(1e6)))
		// Short decimals (means of integers, rates of round counts), the
		// fast path's, and values a rounding step away from them.
		d := math.Pow(10, float64(r.IntN(9)))
		x := float64(r.IntN(2e9)-1e9) / d
		vals = append(vals, x, math.Nextafter(x, 0), math.Nextafter(x, math.Inf(1)), float64(r.IntN(500))/5, float64(r.IntN(1e6))/3, 0.1+0.2, 1e11-0.5, -0.0625)
	}
	// The grid starts at a negative time, so timestamps round toward zero
	// as encoding/json's integer division did.
	g := &wql.Grid{Start: -5 * 60_000, Step: 60_000, Series: []wql.GridSeries{
		{Name: "a.b", Source: `h"1<&>`, Tags: wql.Tags{{Key: "a", Value: "\x01é"}, {Key: "z", Value: "1"}}, Vals: vals},
		{Name: "", Source: "", Vals: []float64{math.NaN(), math.Inf(-1)}},
		{Name: "c", Vals: vals[:7]},
	}}
	want := ChartResponse{Query: `ts("a\b")`, Name: `ts("a\b")`, Granularity: 60}
	for _, s := range g.Series {
		cs := ChartSeries{Label: s.Name, Host: s.Source, Tags: s.Tags.Map(), Data: [][2]float64{}}
		if cs.Tags == nil {
			cs.Tags = map[string]string{}
		}
		for i, v := range s.Vals {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				cs.Data = append(cs.Data, [2]float64{float64((g.Start + int64(i)*g.Step) / 1000), v})
			}
		}
		want.Timeseries = append(want.Timeseries, cs)
	}
	var wb bytes.Buffer
	if err := json.NewEncoder(&wb).Encode(want); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	bw := bufio.NewWriter(&gb)
	writeChart(bw, want.Query, g)
	bw.Flush()
	if gb.String() != wb.String() {
		g, w := gb.Bytes(), wb.Bytes()
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Fatalf("%d/%d bytes, differs at byte %d:\n got %.120q\nwant %.120q", len(g), len(w), i, g[max(0, i-40):], w[max(0, i-40):])
	}
}

// FuzzAppendJSONFloat: every finite value prints as encoding/json prints it.
func FuzzAppendJSONFloat(f *testing.F) {
	for _, v := range []float64{0, 1.5, 0.1, 0.3, 23.4, -7.25, 1e-7, 123.456, 1e11 - 0.1, 99999999999.9999, 4.35, 2.675,
		0.0234, 1.5e-6, 0.0000099, 99999999.9999999, 1e8 - 0.5, 12345678.1234567, 0.0019999999, 1e-6, 4.6e-6} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want, _ := json.Marshal(v)
		if got := appendJSONFloat(nil, v); string(got) != string(want) {
			t.Fatalf("%v (%#x): %s, want %s", v, math.Float64bits(v), got, want)
		}
	})
}

// BenchmarkWriteChart: one percentile line chart's answer as the UI asks
// for it, 1 150 series of 288 points: means of five integer samples
// (x.2, x.4, ...), the same divided by 1000 (the response-time chart),
// and a few gaps.
func BenchmarkWriteChart(b *testing.B) {
	g := &wql.Grid{Start: 1_699_913_100_000, Step: 300_000}
	for i := range 1150 {
		tags := wql.Tags{{Key: "app", Value: fmt.Sprint("app", i%30)}, {Key: "cluster", Value: "prod"},
			{Key: "destination_workload", Value: fmt.Sprint("wl", i%30)}, {Key: "reporter", Value: "source"},
			{Key: "response_code", Value: "200"}, {Key: "source_workload", Value: fmt.Sprint("wl", i%40)}}
		vals := make([]float64, 288)
		for j := range vals {
			vals[j] = float64((i*j)%997) / 5
			if i%2 == 0 {
				vals[j] /= 1000
			}
			if (i+j)%50 == 0 {
				vals[j] = math.NaN()
			}
		}
		g.Series = append(g.Series, wql.GridSeries{Name: "istio.request.duration.milliseconds.bucket.p95.value", Source: "node-1", Tags: tags, Vals: vals})
	}
	var n int64
	cpu0 := cpuclock.Self()
	for b.Loop() {
		cw := countWriter{}
		writeChart(&cw, "q", g)
		n = cw.n
	}
	b.ReportMetric(float64((cpuclock.Self()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.SetBytes(n)
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
