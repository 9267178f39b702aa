package red

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// recorder keeps every emitted point and distribution as its canonical line.
type recorder struct {
	mu    sync.Mutex
	lines []string
	dists []wavefront.Distribution
}

func (r *recorder) WritePoint(p *wavefront.Point) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimSuffix(string(wavefront.AppendPoint(nil, p)), "\n"))
}

func (r *recorder) WriteDistribution(d *wavefront.Distribution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimSuffix(string(wavefront.AppendDistribution(nil, d)), "\n"))
	c := *d
	c.Centroids = slices.Clone(d.Centroids)
	r.dists = append(r.dists, c)
}

// take returns the lines recorded so far, sorted, and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lines
	slices.Sort(l)
	r.lines, r.dists = nil, nil
	return l
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// t0 is the start of a minute, near the §5.6 span's timestamp.
const t0 = 1711999980

func at(sec int64) time.Time { return time.Unix(sec, 0) }

// workedSpan is the span of proxy.md §5.6 as the Zipkin converter hands it over.
func workedSpan() *Span {
	return &Span{
		Application: []byte("Zipkin"), Service: []byte("ratings.default"), Operation: []byte("ratings.default.svc.cluster.local:9080/-"),
		Component: []byte("proxy"), SpanKind: []byte("server"), Source: []byte("zipkin"), HTTPStatusCode: []byte("503"),
		IsError: true, DurationMicros: 2500, DurationMillis: 2,
	}
}

func diff(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d lines:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}

// TestWorkedExample is proxy.md §6.2's example, with the one deliberate
// difference of §10 item 8: source = span source and no source tag.
func TestWorkedExample(t *testing.T) {
	clk := &clock{t: at(t0 + 20)}
	d := New(Options{Now: clk.now})
	d.Observe(workedSpan())
	var r recorder
	d.Flush(at(t0+60), &r)

	const (
		s    = "Zipkin.ratings.default.ratings.default.svc.cluster.local-9080--"
		tags = `source="zipkin" "application"="Zipkin" "service"="ratings.default" "cluster"="none" "shard"="none" "component"="proxy"`
		op   = ` "operationName"="ratings.default.svc.cluster.local:9080/-"`
		rest = ` "span.kind"="server" "http.status_code"="503"`
		ts   = " 1712000040 "
	)
	diff(t, r.take(), []string{
		`"∆tracing.derived.` + s + `.invocation.count" 1` + ts + tags + op + rest,
		`"∆tracing.derived.` + s + `.error.count" 1` + ts + tags + op + rest,
		`"∆tracing.derived.` + s + `.total_time.millis.count" 2` + ts + tags + op + rest,
		`!M 1711999980 #1 2500 "tracing.derived.` + s + `.duration.micros" ` + tags + op + rest + ` "error"="true"`,
		`"~component.heartbeat" 1` + ts + tags + rest,
		`"~component.heartbeat" 1` + ts + strings.Replace(tags, `"proxy"`, `"zipkin"`, 1) + rest,
		`"∆~sdk.java.internal_reporter.delta_counters.reported.count" 3` + ts + `source="zipkin"`,
		`"∆~sdk.java.internal_reporter.wavefront_histograms.reported.count" 1` + ts + `source="zipkin"`,
	})
}

func TestZeroCountersNotSent(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Now: clk.now})
	d.Observe(&Span{Application: []byte("a"), Service: []byte("s"), Operation: []byte("o"), Source: []byte("h"), DurationMicros: 999})
	var r recorder
	d.Flush(at(t0+30), &r)
	got := r.take()
	if len(got) != 4 { // invocation, 2 heartbeats, 1 reporter counter
		t.Fatalf("got %q", got)
	}
	for _, l := range got {
		if strings.Contains(l, "error.count") || strings.Contains(l, "total_time") || strings.HasPrefix(l, "!M") {
			t.Errorf("unexpected %s", l)
		}
	}
	// The histogram of the first minute is due; nothing else is.
	d.Flush(at(t0+60), &r)
	got = r.take()
	if len(got) != 2 || !strings.HasPrefix(got[0], "!M 1711999980 #1 999 ") ||
		!strings.Contains(got[1], `wavefront_histograms.reported.count" 1`) {
		t.Errorf("got %q", got)
	}
	d.Flush(at(t0+120), &r)
	if got := r.take(); len(got) != 0 {
		t.Errorf("idle flush sent %q", got)
	}
}

func TestHistogramOnlyCompletedMinutes(t *testing.T) {
	clk := &clock{t: at(t0 + 5)}
	d := New(Options{Now: clk.now})
	span := &Span{Application: []byte("a"), Service: []byte("s"), Operation: []byte("o"), DurationMicros: 1000}
	d.Observe(span)
	d.Observe(span)
	clk.set(at(t0 + 65))
	d.Observe(span)

	var r recorder
	d.Flush(at(t0+70), &r)
	if len(r.dists) != 1 || r.dists[0].Timestamp != t0 || r.dists[0].Centroids[0].Count != 2 {
		t.Fatalf("first flush: %+v", r.dists)
	}
	r.take()
	d.Flush(at(t0+119), &r)
	if len(r.dists) != 0 {
		t.Fatalf("current minute flushed early: %+v", r.dists)
	}
	d.Flush(at(t0+120), &r)
	if len(r.dists) != 1 || r.dists[0].Timestamp != t0+60 || r.dists[0].Centroids[0].Count != 1 {
		t.Fatalf("second minute: %+v", r.dists)
	}
}

func TestCentroidCountsSumToSamples(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Now: clk.now})
	const n = 20000
	for i := range n {
		d.Observe(&Span{Application: []byte("a"), Service: []byte("s"), Operation: []byte("o"), DurationMicros: int64(i*7919%100000 + 1)})
	}
	var r recorder
	d.Flush(at(t0+60), &r)
	if len(r.dists) != 1 {
		t.Fatalf("got %d distributions", len(r.dists))
	}
	sum := 0
	for _, c := range r.dists[0].Centroids {
		sum += c.Count
	}
	if sum != n {
		t.Errorf("centroid counts sum to %d, want %d", sum, n)
	}
	if c := len(r.dists[0].Centroids); c > 20*compression {
		t.Errorf("%d centroids: digest not compressed", c)
	}
}

// TestRepeatedValuesStayExact: a few distinct durations (millisecond
// resolution) are counted exactly, not spread over many digest centroids.
func TestRepeatedValuesStayExact(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Mode: CustomTracingMode, Now: clk.now})
	for i := range 1000 {
		ms := int64(1)
		switch {
		case i%10 >= 8:
			ms = 3
		case i%10 >= 5:
			ms = 2
		}
		d.Observe(&Span{Application: []byte("a"), Service: []byte("s"), Operation: []byte("o"), DurationMillis: ms})
	}
	var r recorder
	d.Flush(at(t0+60), &r)
	if len(r.dists) != 1 {
		t.Fatalf("got %d distributions", len(r.dists))
	}
	want := []wavefront.Centroid{{Count: 500, Mean: 1000}, {Count: 300, Mean: 2000}, {Count: 200, Mean: 3000}}
	if got := r.dists[0].Centroids; !slices.Equal(got, want) {
		t.Errorf("centroids %v, want %v", got, want)
	}
}

func TestHeartbeatsZipkin(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Now: clk.now})
	for _, sp := range []Span{
		{Operation: []byte("GET /a"), HTTPStatusCode: []byte("200")},
		{Operation: []byte("GET /b"), HTTPStatusCode: []byte("200")}, // same key: operation is not part of it
		{Operation: []byte("GET /a"), HTTPStatusCode: []byte("503")},
		{Operation: []byte("GET /a"), HTTPStatusCode: []byte("503"), IsError: true},
	} {
		sp.Application, sp.Service, sp.Component, sp.Source = []byte("app"), []byte("svc"), []byte("proxy"), []byte("pod-1")
		d.Observe(&sp)
	}
	var r recorder
	d.Flush(at(t0+60), &r)
	var hb []string
	for _, l := range r.take() {
		if strings.HasPrefix(l, `"~component.heartbeat"`) {
			hb = append(hb, l)
		}
	}
	const tags = `source="pod-1" "application"="app" "service"="svc" "cluster"="none" "shard"="none"`
	diff(t, hb, []string{
		`"~component.heartbeat" 1 1712000040 ` + tags + ` "component"="proxy" "span.kind"="none" "http.status_code"="200"`,
		`"~component.heartbeat" 1 1712000040 ` + tags + ` "component"="zipkin" "span.kind"="none" "http.status_code"="200"`,
		`"~component.heartbeat" 1 1712000040 ` + tags + ` "component"="proxy" "span.kind"="none" "http.status_code"="503"`,
		`"~component.heartbeat" 1 1712000040 ` + tags + ` "component"="zipkin" "span.kind"="none" "http.status_code"="503"`,
	})

	// Cleared after each flush; sent again once seen again.
	d.Flush(at(t0+120), &r)
	if got := r.take(); len(got) != 0 {
		t.Errorf("idle flush sent %q", got)
	}
	d.Observe(&Span{Application: []byte("app"), Service: []byte("svc"), Source: []byte("pod-1")})
	d.Flush(at(t0+180), &r)
	n := 0
	for _, l := range r.take() {
		if strings.HasPrefix(l, `"~component.heartbeat"`) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("got %d heartbeats, want 2", n)
	}
}

func TestCustomTracingMode(t *testing.T) {
	clk := &clock{t: at(t0 + 1)}
	d := New(Options{Mode: CustomTracingMode, Now: clk.now})
	span := &Span{
		Application: []byte("app"), Service: []byte("svc"), Operation: []byte("op"), Source: []byte("host"), SpanKind: []byte("client"),
		CustomTags:     []wavefront.Tag{{Key: []byte("env"), Value: []byte("prod")}},
		DurationMicros: 12345, DurationMillis: 12,
	}
	var r recorder
	d.ObserveAndHeartbeat(span, &r)
	const tags = `source="host" "application"="app" "service"="svc" "cluster"="none" "shard"="none"`
	diff(t, r.take(), []string{
		`"~component.heartbeat" 1 1711999981 ` + tags + ` "component"="none" "span.kind"="client" "env"="prod"`,
		`"~component.heartbeat" 1 1711999981 ` + tags + ` "component"="wavefront-generated" "span.kind"="client" "env"="prod"`,
	})
	d.Observe(span) // counted, no heartbeat
	if got := r.take(); len(got) != 0 {
		t.Errorf("Observe sent %q", got)
	}

	d.Flush(at(t0+60), &r)
	const series = tags + ` "component"="none" "operationName"="op" "span.kind"="client" "env"="prod"`
	diff(t, r.take(), []string{
		`"∆tracing.derived.app.svc.op.invocation.count" 2 1712000040 ` + series,
		`"∆tracing.derived.app.svc.op.total_time.millis.count" 24 1712000040 ` + series,
		`!M 1711999980 #2 12000 "tracing.derived.app.svc.op.duration.micros" ` + series,
		`"∆~sdk.java.internal_reporter.delta_counters.reported.count" 2 1712000040 source="custom_tracing"`,
		`"∆~sdk.java.internal_reporter.wavefront_histograms.reported.count" 1 1712000040 source="custom_tracing"`,
	})
}

func TestNamesAndTags(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Now: clk.now, ReporterSource: "rep"})
	d.Observe(&Span{
		Application: []byte("a,b"), Service: []byte("s/é"), Operation: []byte("op 😀:x"),
		CustomTags: []wavefront.Tag{{Key: []byte("cluster"), Value: []byte("c1")}, {Key: []byte("error"), Value: []byte("no")}},
		IsError:    true, DurationMicros: 5,
	})
	var r recorder
	d.Flush(at(t0+60), &r)
	const tags = `source="unknown_source" "application"="a,b" "service"="s/é" "cluster"="c1" "shard"="none" "component"="none" "operationName"="op 😀:x" "span.kind"="none"`
	diff(t, r.take(), []string{
		`"∆tracing.derived.a_b.s--.op----x.invocation.count" 1 1712000040 ` + tags + ` "error"="no"`,
		`"∆tracing.derived.a_b.s--.op----x.error.count" 1 1712000040 ` + tags + ` "error"="no"`,
		`!M 1711999980 #1 5 "tracing.derived.a_b.s--.op----x.duration.micros" ` + tags + ` "error"="true"`,
		`"~component.heartbeat" 1 1712000040 source="unknown_source" "application"="a,b" "service"="s/é" "cluster"="c1" "shard"="none" "component"="none" "span.kind"="none" "error"="no"`,
		`"~component.heartbeat" 1 1712000040 source="unknown_source" "application"="a,b" "service"="s/é" "cluster"="c1" "shard"="none" "component"="zipkin" "span.kind"="none" "error"="no"`,
		`"∆~sdk.java.internal_reporter.delta_counters.reported.count" 2 1712000040 source="rep"`,
		`"∆~sdk.java.internal_reporter.wavefront_histograms.reported.count" 1 1712000040 source="rep"`,
	})
	// Defaults for absent values, raw (empty) values in the name.
	d.Observe(&Span{})
	d.Flush(at(t0+120), &r)
	got := r.take()
	want := `"∆tracing.derived....invocation.count" 1 1712000100 source="unknown_source" "application"="unknown_application" "service"="unknown_service" "cluster"="none" "shard"="none" "component"="none" "operationName"="unknown_operation" "span.kind"="none"`
	if !slices.Contains(got, want) {
		t.Errorf("missing %s in\n%s", want, strings.Join(got, "\n"))
	}
}

func TestMaxSeries(t *testing.T) {
	clk := &clock{t: at(t0)}
	d := New(Options{Mode: CustomTracingMode, Now: clk.now, MaxSeries: 2})
	var r recorder
	for _, op := range []string{"a", "b", "c", "c", "a"} {
		d.ObserveAndHeartbeat(&Span{Operation: []byte(op)}, &r)
	}
	if got := d.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2", got)
	}
	if got := r.take(); len(got) != 10 {
		t.Errorf("dropped spans must still heartbeat: %d points", len(got))
	}
	// a and b are released once idle for a window with nothing left to send.
	d.Flush(at(t0+60), &r)
	d.Flush(at(t0+120), &r)
	r.take()
	d.Observe(&Span{Operation: []byte("c")})
	d.Flush(at(t0+180), &r)
	if got := r.take(); !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, ".c.invocation.count") }) {
		t.Errorf("c not admitted after release: %q", got)
	}
	if got := d.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2", got)
	}
}

// TestConcurrentObserve runs under -race with flushes (that release idle
// series) racing the observers: the totals over all flushes must be exact.
func TestConcurrentObserve(t *testing.T) {
	clk := &clock{t: at(t0 + 1)}
	d := New(Options{Now: clk.now})
	const goroutines, perG, series = 8, 10000, 16
	var r recorder
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				d.flush(at(t0+30), &r, true)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				d.Observe(&Span{
					Application: []byte("app"), Service: []byte("svc"), Operation: []byte("op" + strconv.Itoa((g+i)%series)),
					IsError: i%10 == 0, DurationMicros: int64(1000 + i%3000),
				})
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flushed
	d.Flush(at(t0+60), &r)

	total := map[string]float64{}
	for _, l := range r.lines {
		f := strings.Fields(l)
		if strings.HasPrefix(l, `"∆tracing`) {
			name := strings.TrimSuffix(f[0], `.count"`)
			v, _ := strconv.ParseFloat(f[1], 64)
			total[name[strings.LastIndex(name, ".")+1:]] += v
		}
	}
	for _, dist := range r.dists {
		kind := "samples"
		if string(dist.Tags[len(dist.Tags)-1].Value) == "true" {
			kind = "error samples"
		}
		for _, c := range dist.Centroids {
			total[kind] += float64(c.Count)
		}
	}
	wantMillis := 0.0
	for i := range perG {
		wantMillis += float64((1000 + i%3000) / 1000)
	}
	want := map[string]float64{
		"invocation":    goroutines * perG,
		"error":         goroutines * perG / 10,
		"millis":        goroutines * wantMillis,
		"samples":       goroutines * perG * 9 / 10,
		"error samples": goroutines * perG / 10,
	}
	if fmt.Sprint(total) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", total, want)
	}
	// Everything is released once idle: the bookkeeping balances.
	d.Flush(at(t0+120), &r)
	if n, hb := d.series.Load(), len(d.heartbeats); n != 0 || hb != 0 {
		t.Errorf("%d series and %d heartbeats held after an idle window", n, hb)
	}
}

func TestRunFlushesCurrentMinuteAtShutdown(t *testing.T) {
	clk := &clock{t: at(t0 + 10)}
	d := New(Options{Now: clk.now})
	ctx, cancel := context.WithCancel(context.Background())
	var r recorder
	done := make(chan struct{})
	go func() { d.Run(ctx, &r); close(done) }()
	d.Observe(&Span{Application: []byte("a"), Service: []byte("s"), Operation: []byte("o"), DurationMicros: 42})
	clk.set(at(t0 + 20))
	cancel()
	<-done
	got := r.take()
	if !slices.Contains(got, `!M 1711999980 #1 42 "tracing.derived.a.s.o.duration.micros" source="unknown_source" "application"="a" "service"="s" "cluster"="none" "shard"="none" "component"="none" "operationName"="o" "span.kind"="none"`) {
		t.Errorf("current minute not flushed at shutdown:\n%s", strings.Join(got, "\n"))
	}
	if !slices.ContainsFunc(got, func(l string) bool {
		return strings.HasPrefix(l, `"∆tracing.derived.a.s.o.invocation.count" 1 1712000000 `)
	}) {
		t.Errorf("counter missing or not stamped with the shutdown time:\n%s", strings.Join(got, "\n"))
	}
}
