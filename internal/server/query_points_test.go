package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestChartMaxPoints: p caps the points per series by widening the bucket
// to a multiple of g; each point is the mean over its wider bucket.
func TestChartMaxPoints(t *testing.T) {
	s := start(t, Config{})
	t0 := base() - 9*60_000
	t0 -= t0 % 600_000 // buckets of 2, 5 and 10 min start at t0
	var body strings.Builder
	for i := range 10 {
		fmt.Fprintf(&body, "m %d %d source=a\n", i, (t0+int64(i)*60_000)/1000)
	}
	if code, res := post(t, s.url, "wavefront", body.String()); code != 202 || res.Accepted != 10 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "points stored", func() bool { return len(selectAll(t, s.Server, "m")) == 1 })
	sec := float64(t0 / 1000)
	for _, c := range []struct {
		p    string
		gran int64
		want [][2]float64
	}{
		{"", 60, nil},
		{"10", 60, nil},
		{"5", 120, [][2]float64{{sec, 0.5}, {sec + 120, 2.5}, {sec + 240, 4.5}, {sec + 360, 6.5}, {sec + 480, 8.5}}},
		{"2", 300, [][2]float64{{sec, 2}, {sec + 300, 7}}},
		{"1", 600, [][2]float64{{sec, 4.5}}},
	} {
		var chart ChartResponse
		path := chartPath(`ts(m)`, t0, t0+9*60_000, "m") + "&p=" + c.p
		if code := getJSON(t, s.url, path, &chart); code != 200 || len(chart.Timeseries) != 1 {
			t.Fatalf("p=%s: %d %+v", c.p, code, chart)
		}
		if c.want == nil {
			for i := range 10 {
				c.want = append(c.want, [2]float64{sec + float64(i*60), float64(i)})
			}
		}
		if chart.Granularity != c.gran || !slices.Equal(chart.Timeseries[0].Data, c.want) {
			t.Errorf("p=%s: granularity %d, data %v; want %d, %v", c.p, chart.Granularity, chart.Timeseries[0].Data, c.gran, c.want)
		}
	}
	var qe QueryError
	if code := getJSON(t, s.url, chartPath(`ts(m)`, t0, t0+60_000, "m")+"&p=-1", &qe); code != 400 {
		t.Errorf("p=-1: %d %+v", code, qe)
	}
}
