package wql

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

const min1 = 60000 // one minute in ms

// series builds a series with one value per minute starting at minute 0;
// NaN leaves the minute empty.
func series(name string, tags Tags, vals ...float64) Series {
	s := Series{Name: name, Source: "node1", Tags: tags}
	for i, v := range vals {
		if !math.IsNaN(v) {
			s.Points = append(s.Points, Point{T: int64(i) * min1, V: v})
		}
	}
	return s
}

func tg(kv ...string) Tags {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return TagsOf(m)
}

var nan = math.NaN()

// run evaluates q over minutes [from, to] and renders each result series as
// "name{tags} v@minute v@minute ...", sorted.
func run(t *testing.T, st Storage, q string, from, to int64) []string {
	t.Helper()
	e, err := Parse(q, map[string]string{"cluster": "prod", "all": "*"})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	res, err := Eval(context.Background(), e, st, Options{Start: from * min1, End: to * min1, Step: min1})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out []string
	for _, s := range res {
		var b strings.Builder
		b.WriteString(s.Name)
		b.WriteByte('{')
		for i, t := range s.Tags {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%s", t.Key, t.Value)
		}
		b.WriteByte('}')
		for _, p := range s.Points {
			fmt.Fprintf(&b, " %g@%d", math.Round(p.V*1e6)/1e6, p.T/min1)
		}
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out
}

func check(t *testing.T, st Storage, q string, from, to int64, want ...string) {
	t.Helper()
	got := run(t, st, q, from, to)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s\n got: %q\nwant: %q", q, got, want)
	}
}

func TestRateWithReset(t *testing.T) {
	st := NewMemStorage()
	// 60/min until a pod leaves the aggregated sum at minute 3.
	st.Add(series("c", nil, 0, 60, 120, 30, 90, 150))
	check(t, st, `rate(ts(c))`, 1, 5, "c{} 1@1 1@2 1@4 1@5")
	check(t, st, `deriv(ts(c))`, 1, 5, "c{} 1@1 1@2 -1.5@3 1@4 1@5")
	// On aligned input (rate of a sum) the reset is dropped too.
	check(t, st, `rate(sum(ts(c)))`, 1, 5, "c{} 1@1 1@2 1@4 1@5")
	// The look-back reads minute 0 so that minute 1 has a rate.
	check(t, st, `rate(ts(c))`, 1, 1, "c{} 1@1")
	// A gap in aligned input spreads the change over the elapsed time.
	st2 := NewMemStorage()
	st2.Add(series("g", nil, 0, nan, 120))
	check(t, st2, `rate(rawsum(ts(g)))`, 0, 2, "g{} 1@2")
}

func TestRateRawSubMinute(t *testing.T) {
	st := NewMemStorage()
	// Two samples per minute: rate is per sample pair, then averaged per bucket.
	st.Add(Series{Name: "c", Points: []Point{{0, 0}, {30000, 30}, {45000, 60}, {60000, 90}}})
	check(t, st, `rate(ts(c))`, 0, 1, "c{} 1.5@0 2@1")
}

func aggStore() *MemStorage {
	st := NewMemStorage()
	st.Add(series("m", tg("app", "a", "code", "200"), 1, 1, 1))
	st.Add(series("m", tg("app", "a", "code", "500"), 2, 2, 2))
	st.Add(series("m", tg("app", "b", "code", "200"), 4, 4, 4))
	st.Add(series("m", tg("code", "404"), 8, nan, nan))
	return st
}

func TestAggregations(t *testing.T) {
	st := aggStore()
	check(t, st, `sum(ts(m, app=*))`, 0, 2, "m{} 7@0 7@1 7@2")
	check(t, st, `sum(ts(m))`, 0, 2, "m{} 15@0 15@1 7@2") // minute 1: the 404 series is carried one bucket
	check(t, st, `rawsum(ts(m))`, 0, 2, "m{} 15@0 7@1 7@2")
	check(t, st, `sum(ts(m, app=*), app)`, 0, 0, "m{app=a} 3@0", "m{app=b} 4@0")
	check(t, st, `sum(ts(m), app)`, 0, 0, "m{app=a} 3@0", "m{app=b} 4@0", "m{} 8@0")
	check(t, st, `sum(ts(m, app=*)) by (code)`, 0, 0, "m{code=200} 5@0", "m{code=500} 2@0")
	check(t, st, `sum(ts(m, app=*), app, code)`, 0, 0, "m{app=a,code=200} 1@0", "m{app=a,code=500} 2@0", "m{app=b,code=200} 4@0")
	check(t, st, `avg(ts(m, app=*))`, 0, 0, "m{} 2.333333@0")
	check(t, st, `min(ts(m))`, 0, 0, "m{} 1@0")
	check(t, st, `max(ts(m))`, 0, 0, "m{} 8@0")
	check(t, st, `count(ts(m))`, 0, 2, "m{} 4@0 4@1 3@2")
	check(t, st, `rawcount(ts(m))`, 0, 2, "m{} 4@0 3@1 3@2")
	check(t, st, `max(ts(m), app)`, 0, 0, "m{app=a} 2@0", "m{app=b} 4@0", "m{} 8@0")
	check(t, st, `sum(ts(m, app=*), sources)`, 0, 0, "m{} 7@0")
	check(t, st, `count(ts(m, app=*), pointTags)`, 0, 0, "m{app=a,code=200} 1@0", "m{app=a,code=500} 1@0", "m{app=b,code=200} 1@0")
	// Repeated group tags, and tags that pointTags covers too, are one tag.
	check(t, st, `sum(ts(m, app=*), code, app, code)`, 0, 0, "m{app=a,code=200} 1@0", "m{app=a,code=500} 2@0", "m{app=b,code=200} 4@0")
	check(t, st, `sum(ts(m, app=*), code, pointTags)`, 0, 0, "m{app=a,code=200} 1@0", "m{app=a,code=500} 2@0", "m{app=b,code=200} 4@0")
	// Different metrics in one group: the result has no name.
	st.Add(series("n", tg("app", "a"), 10))
	check(t, st, `sum(ts(*, app=a), app)`, 0, 0, "{app=a} 13@0")
	check(t, st, `sum(ts(*, app=a), metrics)`, 0, 0, "m{} 3@0", "n{} 10@0")
}

func TestSumOfRatesOverAPodLeaving(t *testing.T) {
	st := NewMemStorage()
	st.Add(series("r", tg("pod", "a"), 0, 60, 120, 180, nan, nan))
	st.Add(series("r", tg("pod", "b"), 0, 120, 240, 360, 480, 600))
	// pod a's rate (1/s) stays one bucket after it stops reporting.
	check(t, st, `sum(rate(ts(r)))`, 1, 5, "r{} 3@1 3@2 3@3 3@4 2@5")
}

// Buckets of one histogram: le -> cumulative per-second rate. Hand-computed
// with Prometheus' histogram_quantile (promql.BucketQuantile):
// total 50; p50: rank 25 falls in (1,5] holding 20, 15 into it -> 1+4*15/20 = 4;
// p10: rank 5 in (0.5,1] holding 6, 1 into it -> 0.5+0.5/6; p90: rank 45 > 40 falls in +Inf -> 10 (highest
// finite bound); p99.9 likewise 10.
func histStore(extraLe bool) *MemStorage {
	st := NewMemStorage()
	add := func(wl, le string, v float64) {
		st.Add(series("h.bucket.value", tg("destination_workload", wl, "le", le, "cluster", "prod"), v, v))
	}
	for _, b := range []struct {
		le string
		v  float64
	}{{"0.5", 4}, {"1", 10}, {"5", 30}, {"10", 40}, {"+Inf", 50}} {
		if extraLe && b.le == "5" {
			// Prometheus 2.x and 3.x spellings of one bound: compared numerically.
			add("w1", "5", 20)
			add("w1", "5.0", 10)
		} else {
			add("w1", b.le, b.v)
		}
		add("w2", b.le, b.v*2)
	}
	return st
}

func TestPercentile(t *testing.T) {
	st := histStore(false)
	check(t, st, `percentile(50, ts(h.bucket.value))`, 0, 1,
		"h.bucket.value{cluster=prod,destination_workload=w1} 4@0 4@1",
		"h.bucket.value{cluster=prod,destination_workload=w2} 4@0 4@1")
	check(t, st, `percentile(10, ts(h.bucket.value, destination_workload=w1))`, 0, 0,
		"h.bucket.value{cluster=prod,destination_workload=w1} 0.583333@0")
	check(t, st, `percentile(90, ts(h.bucket.value, destination_workload=w1))`, 0, 0,
		"h.bucket.value{cluster=prod,destination_workload=w1} 10@0")
	check(t, st, `percentile(99.9, ts(h.bucket.value, destination_workload=w1))`, 0, 0,
		"h.bucket.value{cluster=prod,destination_workload=w1} 10@0")
	// p75 of w1: rank 37.5 in (5,10] holding 10: 5 + 5*7.5/10 = 8.75.
	check(t, st, `percentile(75, ts(h.bucket.value, destination_workload=w1))`, 0, 0,
		"h.bucket.value{cluster=prod,destination_workload=w1} 8.75@0")
	// Grouped: w1+w2 summed per le = 3x w1, same quantiles.
	check(t, st, `percentile(50, ts(h.bucket.value), cluster)`, 0, 0, "h.bucket.value{cluster=prod} 4@0")
	// "5" and "5.0" are one bucket.
	check(t, histStore(true), `percentile(50, ts(h.bucket.value, destination_workload=w1))`, 0, 0,
		"h.bucket.value{cluster=prod,destination_workload=w1} 4@0")
	// No +Inf bucket: no answer (Prometheus returns NaN).
	st2 := NewMemStorage()
	st2.Add(series("x", tg("le", "1"), 1))
	st2.Add(series("x", tg("le", "2"), 2))
	check(t, st2, `percentile(50, ts(x))`, 0, 0)
	// Cumulative counters: percentile of the rate of the buckets.
	st3 := NewMemStorage()
	st3.Add(series("conv", tg("le", "1"), 0, 60))
	st3.Add(series("conv", tg("le", "3"), 0, 120))
	st3.Add(series("conv", tg("le", "+Inf"), 0, 120))
	check(t, st3, `percentile(50, rate(ts(conv)))`, 1, 1, "conv{} 1@1")
	check(t, st3, `percentile(75, rate(ts(conv)))`, 1, 1, "conv{} 2@1")
}

func TestBucketQuantileEdges(t *testing.T) {
	for _, c := range []struct {
		q    float64
		bs   []bucket
		want float64
	}{
		{0.5, []bucket{{math.Inf(1), 10}}, nan},
		{0.5, []bucket{{1, 0}, {math.Inf(1), 0}}, nan},
		{0.5, []bucket{{-1, 10}, {math.Inf(1), 10}}, -1},
		// Non-monotonic input (rates jitter) is forced monotonic.
		{0.5, []bucket{{1, 10}, {2, 8}, {math.Inf(1), 20}}, 1},
		{0, []bucket{{1, 10}, {math.Inf(1), 20}}, 0},
		{1, []bucket{{1, 10}, {math.Inf(1), 20}}, 1},
	} {
		got := bucketQuantile(c.q, c.bs)
		if !(got == c.want || math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("q=%v %v: got %v, want %v", c.q, c.bs, got, c.want)
		}
	}
}

func TestWindows(t *testing.T) {
	st := NewMemStorage()
	st.Add(series("g", nil, 1, 2, 3, 4, 5, nan, nan, nan, 9))
	check(t, st, `mavg(3m, ts(g))`, 2, 8, "g{} 2@2 3@3 4@4 4.5@5 5@6 9@8")
	check(t, st, `last(ts(g))`, 3, 8, "g{} 4@3 5@4 5@5 5@6 5@7 9@8")
	check(t, st, `last(2m, ts(g))`, 3, 8, "g{} 4@3 5@4 5@5 5@6 9@8")
	check(t, st, `default(0, ts(g))`, 3, 8, "g{} 4@3 5@4 0@5 0@6 0@7 9@8")
	check(t, st, `default(1m, -1, ts(g))`, 3, 8, "g{} 4@3 5@4 -1@5 9@8")
	check(t, st, `align(3m, ts(g))`, 0, 8, "g{} 2@0 4.5@3 9@6")
	check(t, st, `align(3m, sum, ts(g))`, 0, 8, "g{} 6@0 9@3 9@6")
	check(t, st, `align(3m, max, ts(g))`, 0, 8, "g{} 3@0 5@3 9@6")
	check(t, st, `align(3m, count, ts(g))`, 0, 8, "g{} 3@0 2@3 1@6")
	check(t, st, `align(3m, first, ts(g))`, 0, 8, "g{} 1@0 4@3 9@6")
	check(t, st, `align(3m, last, ts(g))`, 0, 8, "g{} 3@0 5@3 9@6")
	check(t, st, `align(1m, ts(g))`, 0, 2, "g{} 1@0 2@1 3@2")
	check(t, st, `sum(ts(nothing)).orElse(0)`, 0, 1, "{} 0@0 0@1")
	check(t, st, `sum(ts(g)).orElse(0)`, 0, 1, "g{} 1@0 2@1")
	check(t, st, `ts(nothing).orElse(ts(g)).orElse(7)`, 0, 0, "g{} 1@0")
}

func TestArithmetic(t *testing.T) {
	st := NewMemStorage()
	st.Add(series("a", tg("k", "1"), 10, 20))
	st.Add(series("a", tg("k", "2"), 30, 40))
	st.Add(series("b", tg("k", "1"), 2, 0))
	st.Add(series("b", tg("k", "2"), 3, 4))
	st.Add(series("b", tg("k", "3"), 5, 5))
	st.Add(series("one", nil, 5, 10))
	check(t, st, `ts(a) * 100`, 0, 1, "a{k=1} 1000@0 2000@1", "a{k=2} 3000@0 4000@1")
	check(t, st, `100 - ts(a, k=1)`, 0, 1, "a{k=1} 90@0 80@1")
	check(t, st, `-ts(a, k=1) / 2 + 1`, 0, 1, "a{k=1} -4@0 -9@1")
	// Matched on tags; k=3 has no partner; x/0 has no point.
	check(t, st, `ts(a) / ts(b)`, 0, 1, "a{k=1} 5@0", "a{k=2} 10@0 10@1")
	// A single series applies to every series of the other side.
	check(t, st, `ts(a) - ts(one)`, 0, 1, "a{k=1} 5@0 10@1", "a{k=2} 25@0 30@1")
	check(t, st, `ts(one) * ts(a)`, 0, 1, "a{k=1} 50@0 200@1", "a{k=2} 150@0 400@1")
	check(t, st, `sum(ts(a)) / sum(ts(b, k=1 or k=2))`, 0, 1, "a{} 8@0 15@1")
	check(t, st, `(2 + 3) * 4`, 0, 1, "{} 20@0 20@1")
	check(t, st, `1 / 0`, 0, 1)
	// time() is in seconds at the bucket start.
	st.Add(series("expiry", nil, 600, 600))
	check(t, st, `ts(expiry) - time()`, 0, 1, "expiry{} 600@0 540@1")
}

func TestFilters(t *testing.T) {
	st := NewMemStorage()
	add := func(name, src string, tags Tags) {
		st.Add(Series{Name: name, Source: src, Tags: tags, Points: []Point{{0, 1}}})
	}
	add("istio.requests.total.value", "n1", tg("cluster", "prod", "response_code", "200", "app", "details"))
	add("istio.requests.total.value", "n1", tg("cluster", "prod", "response_code", "503", "app", "details"))
	add("istio.requests.total.value", "n2", tg("cluster", "prod", "response_code", "404", "app", "reviews v2"))
	add("istio.requests.total.value", "n2", tg("cluster", "dev", "response_code", "200"))
	add("istio.tcp.sent.bytes.total.value", "n1", tg("cluster", "prod"))
	n := func(q string) string {
		return fmt.Sprint(len(run(t, st, q, 0, 0)))
	}
	for q, want := range map[string]string{
		`ts(istio.requests.total.value)`: "4",
		`ts(istio.*.total.value)`:        "5",
		`ts(istio.*)`:                    "5",
		`ts(*.tcp.*)`:                    "1",
		`ts(istio.requests.total.value, cluster="${cluster}")`:                                   "3",
		`ts(istio.requests.total.value, cluster=${all})`:                                         "4",
		`ts(istio.requests.total.value, response_code="5*")`:                                     "1",
		`ts(istio.requests.total.value, not response_code="5*")`:                                 "3",
		`ts(istio.requests.total.value, cluster=prod and not response_code="5*")`:                "2",
		`ts(istio.requests.total.value, response_code=5* or response_code=4*)`:                   "2",
		`ts(istio.requests.total.value, (response_code=5* or response_code=4*) and app=details)`: "1",
		`ts(istio.requests.total.value, response_code!=200)`:                                     "2",
		`ts(istio.requests.total.value, app=*)`:                                                  "3",
		`ts(istio.requests.total.value, not app=*)`:                                              "1",
		`ts(istio.requests.total.value, app="reviews v2")`:                                       "1",
		`ts(istio.requests.total.value, app="*s v*")`:                                            "1",
		`ts(istio.requests.total.value, source=n2)`:                                              "2",
		`ts(istio.requests.total.value, host=n*)`:                                                "4",
		`ts(istio.requests.total.value, source=n1 and response_code=2*0)`:                        "1",
	} {
		if got := n(q); got != want {
			t.Errorf("%s: %s series, want %s", q, got, want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"a.b", "a.b", true}, {"a.b", "a.bc", false}, {"*", "", true}, {"a*", "a.b.c", true},
		{"*c", "a.b.c", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
		{"*.err*.count.value", "x.err.count.value", true}, {"*.err*.count.value", "x.error.count.value", true},
		{"a**b", "ab", true}, {"*a*", "bbb", false},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestVariablesSelect(t *testing.T) {
	st := NewMemStorage()
	st.Add(series("istio.requests.total.value", tg("cluster", "prod", "reporter", "source"), 0, 60))
	st.Add(series("istio.requests.total.value", tg("cluster", "dev", "reporter", "source"), 0, 600))
	e, err := Parse(`sum(rate(ts(istio.requests.total.value, cluster="${cluster}" and reporter="${reporter}")))`,
		map[string]string{"cluster": "dev", "reporter": "*"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Eval(context.Background(), e, st, Options{Start: min1, End: min1, Step: min1})
	if err != nil || len(res) != 1 || res[0].Points[0].V != 10 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestEvalErrors(t *testing.T) {
	st := NewMemStorage()
	e, _ := Parse(`ts(m)`, nil)
	for _, o := range []Options{{0, 10, 0}, {10, 0, 1}, {0, math.MaxInt64, 1}, {math.MinInt64, math.MaxInt64, 1000}} {
		if _, err := Eval(context.Background(), e, st, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	big, _ := Parse(`mavg(1000w, ts(m))`, nil)
	if _, err := Eval(context.Background(), big, st, Options{0, min1, min1}); err == nil {
		t.Error("huge window: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st.Add(series("m", nil, 1))
	if _, err := Eval(ctx, e, st, Options{0, min1, min1}); err == nil {
		t.Error("cancelled context: no error")
	}
}

// A store that ignores the filter and returns points out of range: Eval
// re-checks and clips.
type sloppyStore struct{ s []Series }

func (st sloppyStore) Select(_ context.Context, _ string, _ Matcher, _, _ int64, fn func(*Series) error) error {
	for i := range st.s {
		if err := fn(&st.s[i]); err != nil {
			return err
		}
	}
	return nil
}

func TestEvalRechecksFilter(t *testing.T) {
	st := sloppyStore{[]Series{
		series("m", tg("a", "1"), 1, 2, 3),
		series("m", tg("a", "2"), 10, 20, 30),
		series("other", tg("a", "1"), 100),
	}}
	check(t, st, `ts(m, a=1)`, 1, 1, "m{a=1} 2@1")
}
