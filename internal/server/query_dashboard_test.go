package server

import (
	"context"
	"reflect"
	"testing"

	"github.com/meshwave/meshwave/internal/wql"
)

// TestDataPlaneQueriesAgreeWithMemStorage: every Data Plane query, with the
// UI's variables, gives over the server's store (index push-down, block
// reads, streaming) exactly what wql gives over MemStorage holding the same
// samples.
func TestDataPlaneQueriesAgreeWithMemStorage(t *testing.T) {
	s := start(t, Config{})
	mesh := benchMesh(30, 12)
	const samples = 40
	t0 := base() - samples*benchMinute
	mem := wql.NewMemStorage()
	app := s.metrics.db.Appender(context.Background())
	for k, ms := range mesh {
		ser := seriesOf(ms.lset, new(tagArena))
		for i := range samples {
			_, v := benchSample(k, i, ms.counter)
			// Jitter within the minute, and a gap, as scrapes have.
			ts := t0 + int64(i)*benchMinute + int64(k%50)*1000
			if (i+k)%17 == 0 {
				continue
			}
			if _, err := app.Append(0, ms.lset, ts, v); err != nil {
				t.Fatal(err)
			}
			ser.Points = append(ser.Points, wql.Point{T: ts, V: v})
		}
		mem.Add(ser)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"cluster": "prod", "reporter": "*", "src_ns": "*", "src_wl": "*", "dst_ns": "*", "dst_wl": "*"}
	n := 0
	for _, c := range dataPlaneCharts() {
		for _, q := range c.queries {
			for j, v := range []map[string]string{vars, with(vars, "src_ns", "ns1"), with(vars, "reporter", "source")} {
				e, err := wql.Parse(q, v)
				if err != nil {
					t.Fatal(err)
				}
				o := wql.Options{Start: t0 + 5*benchMinute, End: t0 + samples*benchMinute, Step: benchMinute}
				want, err := wql.Eval(context.Background(), e, mem, o)
				if err != nil {
					t.Fatal(err)
				}
				got, err := wql.Eval(context.Background(), e, queryStore{m: s.metrics, kv: s.kv}, o)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) || (j == 0 && len(want) == 0) {
					t.Errorf("%s %v: server store gave %d series, MemStorage %d (or they differ)", c.title, v, len(got), len(want))
				}
				n += len(want)
			}
		}
	}
	t.Logf("%d result series compared", n)
}

func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for a, b := range m {
		if a != k {
			c[a] = b
		}
	}
	return c
}
