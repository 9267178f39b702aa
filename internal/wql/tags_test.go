package wql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestMatchOverTags: a filter over a series' sorted tags decides as
// Wavefront's semantics say over the same tags as a map (a missing tag
// matches neither key=v nor key=*), for every kind of filter node.
func TestMatchOverTags(t *testing.T) {
	filters := []string{`a=x`, `a!=x`, `not a=x`, `a=*`, `not a=*`, `a=x* and b=y`, `a=x or (b!=y and source=h1)`,
		`not (a=x or b=*)`, `source=h*`, `c="" or a=*x`}
	r := rand.New(rand.NewPCG(5, 6))
	vals := []string{"x", "xx", "y", "", "ax"}
	for _, fs := range filters {
		e, err := Parse("ts(m, "+fs+")", nil)
		if err != nil {
			t.Fatal(err)
		}
		f := e.(*TSExpr).Filter
		for range 200 {
			m := map[string]string{}
			for _, k := range []string{"a", "b", "c", "d"} {
				if r.IntN(2) == 0 {
					m[k] = vals[r.IntN(len(vals))]
				}
			}
			src := []string{"h1", "h2", "x"}[r.IntN(3)]
			tags := TagsOf(m)
			if !tags.IsSorted() || len(tags) != len(m) || len(m) > 0 && !reflect.DeepEqual(tags.Map(), m) {
				t.Fatalf("TagsOf(%v) = %v", m, tags)
			}
			if got, want := f.Match(src, tags), matchMap(f, src, m); got != want {
				t.Errorf("%s on %s %v: Match %v, want %v", fs, src, m, got, want)
			}
		}
	}
}

// matchMap is the filter's meaning over a map, written out for the test.
func matchMap(f Matcher, src string, m map[string]string) bool {
	switch f := f.(type) {
	case *FilterTerm:
		v, ok := m[f.Key]
		if f.Key == "source" {
			v, ok = src, true
		}
		return (ok && globMatch(f.Value, v)) != f.Neg
	case *FilterAnd:
		return matchMap(f.L, src, m) && matchMap(f.R, src, m)
	case *FilterOr:
		return matchMap(f.L, src, m) || matchMap(f.R, src, m)
	case *FilterNot:
		return !matchMap(f.X, src, m)
	}
	panic(fmt.Sprintf("filter node %T", f))
}

// TestEvalGridOrder: results come sorted by name, source and tag
// encoding, whatever order the store hands them in; a key that is a
// prefix of another ("a" and "a1") sorts by the encoding ("a=" after
// "a1="), as it always did.
func TestEvalGridOrder(t *testing.T) {
	st := NewMemStorage()
	st.Add(series("m", tg("a", "1"), 1))
	st.Add(series("m", tg("a1", "0"), 2))
	st.Add(series("m", tg("a", "0", "b", "x"), 3))
	st.Add(series("m", nil, 4))
	e, _ := Parse("ts(m)", nil)
	g, err := EvalGrid(context.Background(), e, st, Options{Start: 0, End: 0, Step: min1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range g.Series {
		got = append(got, string(s.Tags.appendKey(nil, "")))
	}
	want := []string{"", "a1=0\x00", "a=0\x00b=x\x00", "a=1\x00"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
}

// TestBucketCursor: the cursor's bucket is the division's, for ascending
// times that stay in a bucket, step to the next, skip ahead or leave the
// grid.
func TestBucketCursor(t *testing.T) {
	ev := &evaluator{g0: -7 * min1, step: 5 * min1, n: 12}
	r := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		c := bucketCursor{i: -1}
		tm := ev.g0 - 3*min1
		for range 40 {
			tm += int64(r.IntN(3)) * int64(r.IntN(4)) * min1 / int64(1+r.IntN(3))
			want := -1
			if d := tm - ev.g0; d >= 0 && d < int64(ev.n)*ev.step {
				want = int(d / ev.step)
			}
			if got := c.at(ev, tm); got != want {
				t.Fatalf("t=%d: bucket %d, want %d", tm, got, want)
			}
		}
	}
}
