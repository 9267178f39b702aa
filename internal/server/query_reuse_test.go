package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meshwave/meshwave/internal/wql"
)

// TestChartReusedMemoryDoesNotLeak: a chart request lends its values and
// tag lists to later requests once its answer is written. Different
// queries, back to back and from concurrent clients, must each answer
// exactly what an evaluation with memory of its own answers: no value or
// tag of one request may show up in another's response, and none may be
// overwritten while its own response is still being written.
func TestChartReusedMemoryDoesNotLeak(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	var body strings.Builder
	for i := range 300 {
		for j := range 8 {
			ts := t0/1000 + int64(j)*60
			fmt.Fprintf(&body, "m.a %d %d source=h%d k=a%d\n", i*10+j, ts, i%7, i)
			fmt.Fprintf(&body, "m.c %d %d source=h%d k=a%d\n", j+1, ts, i%7, i)
			if i < 40 {
				fmt.Fprintf(&body, "m.b %d %d source=g%d grp=b%d other=x%d\n", 1000*i+j*j, ts, i, i%3, i)
			}
		}
	}
	if code, res := post(t, s.url, "wavefront", body.String()); code != http.StatusAccepted || res.Accepted != 640*8 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "points stored", func() bool { return len(selectAll(t, s.Server, "m.*")) == 640 })

	queries := []string{
		`ts(m.a)`,
		`sum(ts(m.b), grp)`,
		`ts(m.a, k=a1*) / ts(m.c)`,
		`rate(ts(m.b, other=x3*))`,
		`ts(m.b) * 2`,
	}
	start, end := t0, t0+7*60_000
	want := make([][]byte, len(queries))
	for i, q := range queries {
		e, err := wql.Parse(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Memory of its own: a grid never released, tags never lent.
		g, err := wql.EvalGrid(context.Background(), e, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups}, wql.Options{Start: start, End: end, Step: 60_000})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(g.Series) == 0 {
			t.Fatalf("%s: no series", q)
		}
		var b bytes.Buffer
		writeChart(&b, q, g)
		want[i] = b.Bytes()
	}
	ask := func(i int) error {
		req := httptest.NewRequest(http.MethodGet, chartPath(queries[i], start, end, "m"), nil)
		w := httptest.NewRecorder()
		s.handleChart(w, req)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), want[i]) {
			return fmt.Errorf("%s: %d, answer differs from a fresh evaluation's:\n%.300s\nwant\n%.300s", queries[i], w.Code, w.Body.Bytes(), want[i])
		}
		return nil
	}
	// Back to back: each query after every other one.
	for i := range queries {
		for j := range queries {
			if err := ask(i); err != nil {
				t.Fatal(err)
			}
			if err := ask(j); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Concurrently: requests take memory others have just released.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for c := range 4 {
		wg.Go(func() {
			for n := range 20 {
				if err := ask((c + n) % len(queries)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
