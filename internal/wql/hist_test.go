package wql

import (
	"context"
	"errors"
	"testing"
)

// distStore holds minute histograms of "lat" for two series and an hour
// histogram that .m queries must not see.
func distStore() *MemStorage {
	st := NewMemStorage()
	st.AddDist('m', DistSeries{Name: "lat", Source: "a", Tags: tg("env", "prod", "svc", "x"), Points: []Dist{
		{T: 0, Centroids: []Centroid{{3, 1}, {1, 1}, {2, 1}}},
		{T: min1, Centroids: []Centroid{{10, 2}}},
	}})
	st.AddDist('m', DistSeries{Name: "lat", Source: "b", Tags: tg("env", "prod", "svc", "y"), Points: []Dist{
		{T: 0, Centroids: []Centroid{{4, 1}, {5, 1}}},
		{T: min1, Centroids: []Centroid{{20, 1}}},
	}})
	st.AddDist('h', DistSeries{Name: "lat", Source: "a", Tags: tg("env", "prod"), Points: []Dist{
		{T: 0, Centroids: []Centroid{{100, 1}}},
	}})
	st.Add(series("lat", tg("env", "prod"), 7, 7, 7)) // a ts() series of the same name
	return st
}

func TestHistogramFunctions(t *testing.T) {
	st := distStore()
	// Few centroids: the t-digest keeps them as they are and interpolates
	// between centroid ranks, so the answers are exact.
	check(t, st, `percentile(50, hs(lat.m))`, 0, 2, "lat{env=prod,svc=x} 2@0 10@1", "lat{env=prod,svc=y} 4.5@0 20@1")
	check(t, st, `percentile(25, hs(lat.m, svc=x))`, 0, 2, "lat{env=prod,svc=x} 1.5@0 10@1")
	// Merged per group: {1..5} and {10, 10, 20} (rank 1 of 0..2 lies a
	// third of the way from 10's centre at 0.5 to 20's at 2).
	check(t, st, `median(hs(lat.m), env)`, 0, 2, "lat{env=prod} 3@0 13.333333@1")
	check(t, st, `median(hs(lat.m)) by (svc)`, 0, 0, "lat{svc=x} 2@0", "lat{svc=y} 4.5@0")
	check(t, st, `count(hs(lat.m))`, 0, 2, "lat{env=prod,svc=x} 3@0 2@1", "lat{env=prod,svc=y} 2@0 1@1")
	check(t, st, `sum(hs(lat.m))`, 0, 2, "lat{env=prod,svc=x} 6@0 20@1", "lat{env=prod,svc=y} 9@0 20@1")
	check(t, st, `avg(hs(lat.m), env)`, 0, 2, "lat{env=prod} 3@0 13.333333@1")
	check(t, st, `min(hs(lat.m))`, 0, 2, "lat{env=prod,svc=x} 1@0 10@1", "lat{env=prod,svc=y} 4@0 20@1")
	check(t, st, `max(hs(lat.m, svc=y))`, 1, 2, "lat{env=prod,svc=y} 20@1")
	check(t, st, `percentile(99, hs(lat.h))`, 0, 2, "lat{env=prod} 100@0")
	check(t, st, `percentile(50, hs(nothing.m))`, 0, 2)
	// Histogram results are time series: they combine with everything else.
	check(t, st, `sum(count(hs(lat.m)))`, 0, 1, "lat{} 5@0 3@1")
	check(t, st, `max(hs(lat.m)) / 1000`, 1, 1, "lat{env=prod,svc=x} 0.01@1", "lat{env=prod,svc=y} 0.02@1")
}

// A 5-minute step merges five minute bins into one digest.
func TestHistogramCoarseStep(t *testing.T) {
	st := NewMemStorage()
	var pts []Dist
	for m := range 10 {
		pts = append(pts, Dist{T: int64(m) * min1, Centroids: []Centroid{{float64(m), 1}}})
	}
	st.AddDist('m', DistSeries{Name: "d", Source: "s", Points: pts})
	res, err := Eval(context.Background(), mustParse(t, `median(hs(d.m))`), st, Options{Start: 0, End: 9 * min1, Step: 5 * min1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Points) != 2 || res[0].Points[0] != (Point{0, 2}) || res[0].Points[1] != (Point{5 * min1, 7}) {
		t.Fatalf("got %+v", res)
	}
}

func mustParse(t *testing.T, q string) Expr {
	t.Helper()
	e, err := Parse(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHistogramErrors(t *testing.T) {
	for _, c := range []struct {
		q   string
		pos int
	}{
		{`percentile(50, hs(lat))`, 18},
		{`median(hs("lat.x"))`, 10},
		{`hs(lat.m)`, 0},
		{`rate(hs(lat.m))`, 5},
		{`1 + count(hs(lat.m)) * hs(lat.m)`, 23},
		{`rawsum(hs(lat.m))`, 0},
		{`median(ts(lat))`, 7},
	} {
		_, err := Parse(c.q, nil)
		var pe *Error
		if !errors.As(err, &pe) || pe.Pos != c.pos {
			t.Errorf("%s: got %v, want an error at %d", c.q, err, c.pos)
		}
	}
	// A store without histograms: an error at hs().
	_, err := Eval(context.Background(), mustParse(t, `median(hs(lat.m))`), sloppyStore{}, Options{0, min1, min1})
	var pe *Error
	if !errors.As(err, &pe) || pe.Pos != 7 {
		t.Errorf("store without histograms: %v", err)
	}
}

func TestHistogramRoundTrip(t *testing.T) {
	for _, q := range []string{
		`percentile(95, hs(tracing.derived.*.duration.micros.m, application=Zipkin and not error=true), service)`,
		`median(hs("a b.h")) by (x)`, `count(hs(x.d, source=s1))`, `sum(sum(hs(x.m)), env) / 60`,
	} {
		assertRoundTrip(t, mustParse(t, q))
	}
}
