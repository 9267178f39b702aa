package wql

import (
	"context"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, reports positions inside the
// query, prints a canonical form that parses back to itself, and that Eval
// of anything that parses never panics either.
func FuzzParse(f *testing.F) {
	for _, q := range append(append([]dashQuery(nil), dataPlaneQueries...), controlPlaneQueries...) {
		f.Add(q.query)
	}
	st := histStore(true)
	st.Add(series("c", tg("cluster", "prod"), 0, 60, 30, 90))
	st.AddDist('m', DistSeries{Name: "lat", Source: "a", Tags: tg("cluster", "prod"), Points: []Dist{
		{T: 0, Centroids: []Centroid{{1, 1}, {2, 3}}}, {T: 2 * min1, Centroids: []Centroid{{5, 1}}},
	}})
	f.Fuzz(func(t *testing.T, q string) {
		e, err := Parse(q, dashVars)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(q) {
				t.Fatalf("%q: bad error %v", q, err)
			}
			return
		}
		s := e.String()
		e2, err := Parse(s, nil)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", q, s, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("%q: round trip %q -> %q", q, s, s2)
		}
		_, _ = Eval(context.Background(), e, st, Options{Start: 0, End: 4 * min1, Step: min1})
	})
}
