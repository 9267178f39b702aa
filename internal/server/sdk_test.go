package server

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/wavefronthq/wavefront-sdk-go/histogram"

	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/wavefronthq/wavefront-sdk-go/senders"
)

// The Go SDK's direct sender delivers to the server unchanged.
func TestWavefrontSDKDirectSender(t *testing.T) {
	s := start(t, Config{Tokens: []string{"sdk-token"}})
	sender, err := senders.NewSender("http://"+strings.TrimPrefix(s.url, "http://"), senders.APIToken("sdk-token"), senders.SendInternalMetrics(false))
	if err != nil {
		t.Fatal(err)
	}
	t0 := base()
	if err := sender.SendMetric("sdk.metric", 42.5, t0, "app-1", map[string]string{"env": "test"}); err != nil {
		t.Fatal(err)
	}
	err = sender.SendDistribution("sdk.latency", []histogram.Centroid{{Value: 1.5, Count: 3}, {Value: 7, Count: 1}},
		map[histogram.Granularity]bool{histogram.MINUTE: true}, t0, "app-1", map[string]string{"env": "test"})
	if err != nil {
		t.Fatal(err)
	}
	err = sender.SendSpan("sdk.op", t0, 12, "app-1", traceA, spanR, nil, nil,
		[]senders.SpanTag{{Key: "application", Value: "shop"}, {Key: "service", Value: "cart"}},
		[]senders.SpanLog{{Timestamp: t0 * 1000, Fields: map[string]string{"event": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Flush(); err != nil {
		t.Fatal(err)
	}
	sender.Close()
	eventually(t, "SDK data stored", func() bool {
		spans, _ := s.kv.trace(traceA, new(wavefront.Decoder))
		return len(selectAll(t, s.Server, "sdk.metric")) == 1 && len(spans) == 1 && len(spans[0].Logs) == 1
	})
	m := selectAll(t, s.Server, "sdk.metric")[0]
	if env, _ := m.Tags.Get("env"); m.Source != "app-1" || env != "test" || len(m.Points) != 1 || m.Points[0].T != t0 || m.Points[0].V != 42.5 {
		t.Fatalf("metric: %+v", m)
	}
	ds, err := s.kv.SelectDistributions(context.Background(), "sdk.latency", nil, t0-60_000, t0+60_000)
	if err != nil || len(ds) != 1 || ds[0].Source != "app-1" || !sameCentroids(ds[0].Points[0].Centroids, []Centroid{{1.5, 3}, {7, 1}}) {
		t.Fatalf("distribution: %+v %v", ds, err)
	}
	spans, _ := s.kv.trace(traceA, new(wavefront.Decoder))
	sp := spans[0]
	if sp.Name != "sdk.op" || sp.StartMs != t0 || sp.DurationMs != 12 || sp.Source != "app-1" || sp.Logs[0].Fields["event"] != "x" {
		t.Fatalf("span: %+v", sp)
	}
}

// sameCentroids compares centroid sets: the SDK's order is not fixed.
func sameCentroids(a, b []Centroid) bool {
	sorted := func(c []Centroid) []Centroid {
		c = slices.Clone(c)
		slices.SortFunc(c, func(x, y Centroid) int { return cmp.Compare(x.Mean, y.Mean) })
		return c
	}
	return slices.Equal(sorted(a), sorted(b))
}
