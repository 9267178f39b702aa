package server

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// TestChartHistogramQueries: hs() over histograms received at /report, as
// the proxy derives them from spans (RED duration.micros, minute bins).
func TestChartHistogramQueries(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	const name = `"tracing.derived.Zipkin.ratings.default.get.duration.micros"`
	tags := `source=zipkin application=Zipkin service=ratings.default`
	body := fmt.Sprintf("!M %d #1 1000 #1 2000 #1 3000 %s %s\n", t0/1000, name, tags) +
		fmt.Sprintf("!M %d #2 4000 %s %s\n", t0/1000+20, name, tags) + // same bin: merged
		fmt.Sprintf("!M %d #1 500 %s %s\n", t0/1000+60, name, tags) +
		fmt.Sprintf("!M %d #5 90000 %s %s error=true\n", t0/1000, name, tags) +
		fmt.Sprintf("!H %d #1 7 %s %s\n", t0/1000, name, tags)
	if code, res := post(t, s.url, "histogram", body); code != 202 || res.Accepted != 5 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "histograms stored", func() bool {
		ds, err := s.kv.SelectDistributions(context.Background(), "*", nil, t0-3_600_000, t0+120_000)
		return err == nil && len(ds) == 3
	})
	filter := `application=Zipkin and not error=true`
	for _, c := range []struct {
		q    string
		want [][2]float64
	}{
		// {1000, 2000, 3000, 4000×2}, the two lines of the first bin merged.
		{`percentile(50, hs(tracing.derived.*.duration.micros.m, ` + filter + `))`, [][2]float64{{0, 3000}, {60, 500}}},
		// Rank 3.6 of 0..4 lies past the last centroid's centre (3.5): the
		// t-digest extends the slope from 3000 (rank 2) to rank 4, where it
		// puts 4333⅓, and interpolates: 4000 + 0.1/0.5 × 333⅓.
		{`percentile(90, hs(tracing.derived.*.duration.micros.m, ` + filter + `))`, [][2]float64{{0, 4000 + 200.0/3}, {60, 500}}},
		{`median(hs(tracing.derived.*.duration.micros.m, ` + filter + `)) / 1000`, [][2]float64{{0, 3}, {60, 0.5}}},
		{`count(hs(tracing.derived.*.duration.micros.m, ` + filter + `))`, [][2]float64{{0, 5}, {60, 1}}},
		// sum() carries a series one empty bucket forward, as for ts().
		{`sum(count(hs(tracing.derived.*.duration.micros.m)), service)`, [][2]float64{{0, 10}, {60, 6}, {120, 1}}},
		{`max(hs(tracing.derived.*.duration.micros.m, error=true))`, [][2]float64{{0, 90000}}},
	} {
		var chart ChartResponse
		if code := getJSON(t, s.url, chartPath(c.q, t0, t0+120_000, "m"), &chart); code != 200 || len(chart.Timeseries) != 1 {
			t.Errorf("%s: %d %+v", c.q, code, chart)
			continue
		}
		got := chart.Timeseries[0].Data
		ok := len(got) == len(c.want)
		for i := 0; ok && i < len(got); i++ {
			ok = got[i][0] == float64(t0/1000)+c.want[i][0] && math.Abs(got[i][1]-c.want[i][1]) < 1e-9
		}
		if !ok {
			t.Errorf("%s: got %v, want %v at t0+", c.q, got, c.want)
		}
	}
	var qe QueryError
	if code := getJSON(t, s.url, chartPath(`hs(tracing.derived.x.m)`, t0, t0+60_000, "m"), &qe); code != 400 || qe.Position == nil || *qe.Position != 0 {
		t.Errorf("bare hs(): %d %+v", code, qe)
	}
}
