package convert

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/promtext"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// collect renders points as "name value source {k=v,...}" with sorted tags.
type collect struct{ lines []string }

func render(name []byte, value string, source []byte, tags []wavefront.Tag) string {
	var kv []string
	for _, t := range tags {
		kv = append(kv, string(t.Key)+"="+string(t.Value))
	}
	slices.Sort(kv)
	return fmt.Sprintf("%s %s %s {%s}", name, value, source, strings.Join(kv, ","))
}

func (c *collect) WritePoint(p *wavefront.Point) {
	c.lines = append(c.lines, render(p.Name, string(wavefront.AppendValue(nil, p.Value)), p.Source, p.Tags))
}

func (c *collect) WriteDistribution(d *wavefront.Distribution) {
	c.lines = append(c.lines, strings.TrimSpace(string(wavefront.AppendDistribution(nil, d))))
}

func run(t *testing.T, opts Options, body string, ts int64, conv *Converter) []string {
	t.Helper()
	if conv == nil {
		conv = New(opts)
	}
	out := &collect{}
	p := promtext.NewParser(strings.NewReader(body), promtext.Options{})
	for {
		e := p.Next()
		if e == promtext.EntryEOF {
			break
		}
		if e == promtext.EntryError {
			t.Fatal(p.LineError())
		}
		conv.Convert(p.Sample(), ts, out)
	}
	conv.Flush(out)
	return out.lines
}

func check(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The typed example of collector.md §3.11.
func TestTypedExample(t *testing.T) {
	body := `# TYPE app_jobs_total counter
app_jobs_total{queue="email",status="ok",env="staging"} 512
# TYPE app_queue_depth gauge
app_queue_depth{queue="email",shard=""} 7
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="0.25"} 40
app_latency_seconds_bucket{le="2.5"} 55
app_latency_seconds_bucket{le="+Inf"} 58
app_latency_seconds_sum 31.2
app_latency_seconds_count 58
# TYPE app_rpc_seconds summary
app_rpc_seconds{quantile="0.5"} 0.012
app_rpc_seconds{quantile="0.99"} NaN
app_rpc_seconds_sum 44.1
app_rpc_seconds_count 900
# TYPE app_temp gauge
app_temp NaN
`
	got := run(t, Options{Prefix: "svc.", Source: "node-a", Tags: map[string]string{"env": "prod"}}, body, 1712000000, nil)
	check(t, got, []string{
		"svc.app.jobs.total.counter 512 node-a {env=staging,queue=email,status=ok}",
		"svc.app.queue.depth.gauge 7 node-a {env=prod,queue=email}",
		"svc.app.latency.seconds.bucket 40 node-a {env=prod,le=0.25}",
		"svc.app.latency.seconds.bucket 55 node-a {env=prod,le=2.5}",
		"svc.app.latency.seconds.bucket 58 node-a {env=prod,le=+Inf}",
		"svc.app.latency.seconds.sum 31.2 node-a {env=prod}",
		"svc.app.latency.seconds.count 58 node-a {env=prod}",
		"svc.app.rpc.seconds 0.012 node-a {env=prod,quantile=0.5}",
		"svc.app.rpc.seconds.sum 44.1 node-a {env=prod}",
		"svc.app.rpc.seconds.count 900 node-a {env=prod}",
	})
}

// The federated example of collector.md §3.11: untyped, le verbatim.
func TestFederatedExample(t *testing.T) {
	body := `# TYPE app_latency_seconds_bucket untyped
app_latency_seconds_bucket{instance="",job="federate",le="2500000"} 55 1712000000000
# TYPE ns:app_jobs:rate1m untyped
ns:app_jobs:rate1m{job="federate",namespace="shop"} 0.25 1712000000000
`
	got := run(t, Options{Source: "node-b"}, body, 1712000001, nil)
	check(t, got, []string{
		"app.latency.seconds.bucket.value 55 node-b {job=federate,le=2500000}",
		"ns:app.jobs:rate1m.value 0.25 node-b {job=federate,namespace=shop}",
	})
}

func TestBoundFormatting(t *testing.T) {
	for in, want := range map[string]string{
		"0.25": "0.25", "2.0": "2", "600000": "600000", "1800000": "1.8e+06",
		"0.0001": "0.0001", "0.00005": "5e-05", "+Inf": "+Inf",
	} {
		body := "# TYPE h histogram\nh_bucket{le=\"" + in + "\"} 1\n"
		got := run(t, Options{Source: "s"}, body, 1, nil)
		if len(got) != 1 || !strings.Contains(got[0], "le="+want+"}") {
			t.Errorf("le %s: got %v, want le=%s", in, got, want)
		}
	}
}

func TestNaNAndInf(t *testing.T) {
	body := `# TYPE s summary
s{quantile="0.5"} NaN
s_sum NaN
s_count +Inf
# TYPE h histogram
h_bucket{le="1"} NaN
# TYPE c counter
c -Inf
u NaN
`
	got := run(t, Options{Source: "x"}, body, 1, nil)
	check(t, got, []string{
		"s.sum NaN x {}",
		"s.count +Inf x {}",
		"h.bucket NaN x {le=1}",
		"c.counter -Inf x {}",
	})
}

func TestFilterSeesPrefixedName(t *testing.T) {
	f, err := filter.New(filter.Config{
		MetricAllowList:   []string{"prom.istio.*"},
		MetricTagDenyList: map[string][]string{"destination_principal": {"*"}},
		TagExclude:        []string{"job"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := "istio_requests_total{job=\"x\",a=\"1\"} 1\nistio_requests_total{destination_principal=\"spiffe://p\"} 2\nother 3\n"
	conv := New(Options{Prefix: "prom.", Source: "s", Filter: f})
	got := run(t, Options{}, body, 1, conv)
	check(t, got, []string{"prom.istio.requests.total.value 1 s {a=1}"})
	if conv.Stats.Filtered != 2 || conv.Stats.Collected != 1 {
		t.Errorf("stats %+v", conv.Stats)
	}
}

func TestOmitBucketSuffixAndEscapedLabels(t *testing.T) {
	body := "# TYPE h histogram\nh_bucket{path=\"a\\\"b\",le=\"1\"} 3\n"
	got := run(t, Options{Source: "s", OmitBucketSuffix: true}, body, 1, nil)
	check(t, got, []string{`h 3 s {le=1,path=a"b}`})
}

// The worked example of collector.md §3.9.
func TestConvertHistograms(t *testing.T) {
	conv := New(Options{Source: "s", ConvertHistograms: true})
	scrape := func(ts int64, a, b, c int) []string {
		body := fmt.Sprintf("# TYPE a_b histogram\na_b_bucket{le=\"0.5\"} %d\na_b_bucket{le=\"1\"} %d\na_b_bucket{le=\"+Inf\"} %d\na_b_sum 3\na_b_count %d\n", a, b, c, c)
		return run(t, Options{}, body, ts, conv)
	}
	if got := scrape(1000, 4, 10, 12); len(got) != 0 {
		t.Fatalf("first sighting emitted %v", got)
	}
	got := scrape(1060, 10, 22, 26)
	check(t, got, []string{`!M 1060 #1 0 #3 0.25 #3 0.5 #3 0.75 #4 1 "a.b" source="s"`})
	if got := scrape(1120, 1, 1, 1); len(got) != 0 {
		t.Errorf("a reset emitted %v", got)
	}
}

func BenchmarkConvertFederate(b *testing.B) {
	line := []byte(`istio_requests_total{app="details",connection_security_policy="mutual_tls",destination_app="details",destination_canonical_revision="v1",destination_canonical_service="details",destination_cluster="Kubernetes",destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-details",destination_service="details.default.svc.cluster.local",destination_service_name="details",destination_service_namespace="default",destination_version="v1",destination_workload="details-v1",destination_workload_namespace="default",instance="10.1.1.1:15020",job="kubernetes-pods",kubernetes_namespace="default",kubernetes_pod_name="details-v1-5498c86cf5-abcde",reporter="destination",request_protocol="http",response_code="200",response_flags="-",source_app="productpage",source_canonical_revision="v1",source_canonical_service="productpage",source_cluster="Kubernetes",source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",source_version="v1",source_workload="productpage-v1",source_workload_namespace="default"} 1234 1712000000123` + "\n")
	body := bytes.Repeat(line, 1000)
	conv := New(Options{Source: "s"})
	p := promtext.NewParser(bytes.NewReader(body), promtext.Options{})
	out := discard{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset(bytes.NewReader(body), promtext.Options{})
		for p.Next() == promtext.EntrySample {
			conv.Convert(p.Sample(), 1, out)
		}
	}
}

type discard struct{}

func (discard) WritePoint(*wavefront.Point)               {}
func (discard) WriteDistribution(*wavefront.Distribution) {}
