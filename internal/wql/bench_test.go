//go:build unix

package wql

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/meshwave/meshwave/internal/cpuclock"
)

var envoyBuckets = []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
	"10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}

// meshStore builds a synthetic federated Istio mesh (istio.md §2.2, §5):
// 1150 HTTP label sets × 85 series (requests, and sum/count/20 buckets/6
// quantiles of three histograms) plus 560 TCP label sets × 4 counters =
// 99,990 series, one sample a minute for 24 h from t0 (plus 10 min before).
// Point slices are shared among series from pools of 256 patterns each, which
// keeps the store at ~12 MB of points instead of 2.3 GB; Eval reads every
// series' points all the same.
func meshStore(t0 int64) (*MemStorage, int) {
	const pool, n = 256, 24*60 + 10
	mk := func(counter bool, k int) []Point {
		pts := make([]Point, n)
		v := float64(k)
		for i := range pts {
			pts[i] = Point{T: t0 + int64(i-10)*min1 + int64(k%60)*1000, V: v}
			if counter {
				v += float64(1 + (k+i)%7)
				if (i+k)%500 == 0 {
					v /= 3 // a pod leaves the aggregated sum
				}
			} else {
				v = float64(k%50) + float64((i*k)%13)
			}
		}
		return pts
	}
	var counters, gauges [pool][]Point
	for k := range pool {
		counters[k], gauges[k] = mk(true, k), mk(false, k)
	}
	st := NewMemStorage()
	count := 0
	add := func(name string, tags map[string]string, counter bool) {
		p := gauges[count%pool]
		if counter {
			p = counters[count%pool]
		}
		st.Add(Series{Name: name, Source: "node-1", Tags: TagsOf(tags), Points: p})
		count++
	}
	codes := []string{"200", "200", "200", "404", "503"}
	labels := func(i int, http bool) map[string]string {
		m := map[string]string{
			"cluster": "prod", "job": "federate", "app": "app" + strconv.Itoa(i%30),
			"reporter":                       []string{"source", "destination"}[i%2],
			"source_workload":                "wl" + strconv.Itoa(i%40),
			"source_workload_namespace":      "ns" + strconv.Itoa(i%5),
			"destination_workload":           "wl" + strconv.Itoa((i/40)%30),
			"destination_workload_namespace": "ns" + strconv.Itoa((i/7)%5),
		}
		if http {
			m["response_code"] = codes[i%len(codes)]
		}
		return m
	}
	with := func(m map[string]string, k, v string) map[string]string {
		c := make(map[string]string, len(m)+1)
		for a, b := range m {
			c[a] = b
		}
		c[k] = v
		return c
	}
	for i := range 1150 {
		l := labels(i, true)
		add("istio.requests.total.value", l, true)
		for _, h := range []string{"istio.request.duration.milliseconds", "istio.request.bytes", "istio.response.bytes"} {
			add(h+".sum.value", l, true)
			add(h+".count.value", l, true)
			for _, le := range envoyBuckets {
				add(h+".bucket.value", with(l, "le", le), false)
			}
			for _, p := range []string{"p50", "p75", "p90", "p95", "p99", "p999"} {
				add(h+".bucket."+p+".value", l, false)
			}
		}
	}
	for i := range 560 {
		l := labels(i, false)
		for _, m := range []string{"sent.bytes", "received.bytes", "connections.opened", "connections.closed"} {
			add("istio.tcp."+m+".total.value", l, true)
		}
	}
	return st, count
}

// BenchmarkEvalDataPlane evaluates every query of the Data Plane dashboard
// (all variables "*") over 24 h of the synthetic mesh with EvalGrid, as the
// server does; one op is the whole dashboard. This is the engine alone, on
// points already in memory (and shared between series): the server's
// BenchmarkDataPlaneQueries measures the whole query path over a tsdb.
func BenchmarkEvalDataPlane(b *testing.B) {
	const t0 = 1_700_000_000_000 - 1_700_000_000_000%(5*min1)
	st, n := meshStore(t0)
	b.Logf("%d series", n)
	exprs := make([]Expr, len(dataPlaneQueries))
	for i, q := range dataPlaneQueries {
		e, err := Parse(q.query, dashVars)
		if err != nil {
			b.Fatal(err)
		}
		exprs[i] = e
	}
	for _, step := range []int64{5 * min1, min1} {
		b.Run(fmt.Sprintf("step=%dm", step/min1), func(b *testing.B) {
			o := Options{Start: t0, End: t0 + 24*60*min1, Step: step}
			b.ReportAllocs()
			cpu0 := cpuclock.Self()
			for b.Loop() {
				out := 0
				for _, e := range exprs {
					g, err := EvalGrid(context.Background(), e, st, o)
					if err != nil {
						b.Fatal(err)
					}
					out += len(g.Series)
				}
				if out == 0 {
					b.Fatal("no results")
				}
			}
			// The machine is shared, so wall time says little: report the
			// process CPU time (GC included) per dashboard as well.
			b.ReportMetric(float64((cpuclock.Self()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
