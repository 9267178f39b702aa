package simulate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

var testStart = time.Unix(1712000000, 0)

func testMesh(t testing.TB, mod func(*Options)) *Mesh {
	t.Helper()
	o := DefaultOptions()
	o.Start = testStart
	if mod != nil {
		mod(&o)
	}
	m, err := NewMesh(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(t testing.TB, write func(io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func parseExpfmt(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("expfmt: %v", err)
	}
	return fams
}

type sample struct {
	line string // the series text as written
	lset labels.Labels
	v    float64
	ts   *int64
	typ  pmodel.MetricType
}

// parseProm parses with Prometheus' own scrape parser, which also applies
// Prometheus 3's le/quantile normalisation to typed families.
func parseProm(t testing.TB, b []byte) []sample {
	t.Helper()
	p, err := textparse.New(b, ContentType, nil, textparse.ParserOptions{})
	if err != nil {
		t.Fatalf("textparse.New: %v", err)
	}
	types := map[string]pmodel.MetricType{}
	var out []sample
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("textparse: %v", err)
		}
		switch e {
		case textparse.EntryType:
			name, typ := p.Type()
			types[string(name)] = typ
		case textparse.EntrySeries:
			line, ts, v := p.Series()
			s := sample{line: string(line), v: v}
			if ts != nil {
				v := *ts
				s.ts = &v
			}
			p.Labels(&s.lset)
			s.typ = types[familyOf(s.lset.Get("__name__"), types)]
			out = append(out, s)
		}
	}
}

func familyOf(name string, types map[string]pmodel.MetricType) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if _, known := types[base]; known {
				return base
			}
		}
	}
	return name
}

// labelNames lists a series' label names in written order.
func labelNames(t testing.TB, line string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(line, "{")
	if !ok {
		return nil
	}
	var names []string
	for rest != "" && rest[0] != '}' {
		name, after, ok := strings.Cut(rest, `="`)
		if !ok {
			t.Fatalf("bad labels in %q", line)
		}
		names = append(names, strings.TrimPrefix(name, ","))
		_, rest, _ = strings.Cut(after, `"`) // values here never hold quotes
	}
	return names
}

func names(ls labels.Labels) []string {
	var n []string
	ls.Range(func(l labels.Label) {
		if l.Name != "__name__" {
			n = append(n, l.Name)
		}
	})
	return n
}

func istioLabelNames(ls []lbl) []string {
	var n []string
	for _, l := range ls {
		n = append(n, l.name)
	}
	slices.Sort(n)
	return n
}

// seedNames are the Prometheus names behind the seed's Metrics table (and
// its allow list), with the real istiod spellings where the page is wrong
// only added, never substituted.
func seedNames() []string {
	ns := []string{
		"istio_requests_total", "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
		"istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
	}
	for _, h := range []string{"istio_request_bytes", "istio_request_duration_milliseconds", "istio_response_bytes"} {
		ns = append(ns, h+"_bucket", h+"_sum", h+"_count")
		for _, q := range []string{"p50", "p75", "p90", "p95", "p99", "p999"} {
			ns = append(ns, h+"_bucket_"+q)
		}
	}
	return append(ns, seedIstiodNames()...)
}

func seedIstiodNames() []string {
	return []string{
		"pilot_services", "pilot_virt_services", "istio_build", "pilot_xds_pushes", "pilot_total_xds_rejects",
		"pilot_xds_cds_reject", "pilot_xds_eds_reject", "pilot_xds_lds_reject", "pilot_xds_rds_reject",
		"pilot_xds_write_timeout", "pilot_xds_push_context_errors", "pilot_conflict_inbound_listener",
		"pilot_total_xds_internal_errors", "pilot_conflict_outbound_listener_http_over_current_tcp",
		"pilot_conflict_outbound_listener_tcp_over_current_http", "pilot_conflict_outbound_listener_tcp_over_current_tcp",
		"pilot_proxy_convergence_time_bucket", "pilot_proxy_queue_time_bucket", "pilot_xds",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"galley_validation_http_error", "galley_validation_failed", "galley_validation_passed",
		"galley_validation_config_updates", "galley_validation_config_update_error", "galley_validation_config_load",
		"galley_validation_config_load_error", "galley_validation_config_delete_error",
		"citadel_server_csr_count", "citadel_server_success_cert_issuance_count", "citadel_server_csr_sign_error_count",
		"citadel_server_csr_sign_err_count", "citadel_server_root_cert_expiry_timestamp",
		"sidecar_injection_requests_total", "sidecar_injection_success_total", "sidecar_injection_failure_total",
		"sidecar_injection_skip_total",
		"go_goroutines", "go_memstats_alloc_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_heap_sys_bytes", "go_memstats_stack_inuse_bytes",
	}
}

func TestSidecarExposition(t *testing.T) {
	m := testMesh(t, nil)
	now := testStart.Add(time.Hour)
	seen := map[protocol]bool{}
	for _, p := range m.pods {
		b := render(t, func(w io.Writer) error { return WritePod(w, m, p.ns, p.name, now) })
		fams := parseExpfmt(t, b)
		samples := parseProm(t, b)
		if len(samples) != p.samples {
			t.Errorf("%s: %d samples, podSamples says %d", p.name, len(samples), p.samples)
		}
		if strings.Contains(string(b), "# HELP istio_") || strings.Contains(string(b), "# HELP envoy_") {
			t.Errorf("%s: Envoy families must have TYPE only", p.name)
		}
		if f := fams["istio_build"]; f == nil || f.GetType() != dto.MetricType_GAUGE ||
			labelValue(f.Metric[0], "component") != "proxy" || labelValue(f.Metric[0], "tag") != "1.14.6" {
			t.Errorf("%s: istio_build = %v", p.name, f)
		}
		if f := fams["go_goroutines"]; f == nil || f.GetHelp() == "" {
			t.Errorf("%s: istio-agent go_goroutines missing or without HELP", p.name)
		}
		for _, s := range samples {
			name := s.lset.Get("__name__")
			got := names(s.lset)
			var want []lbl
			switch {
			case name == "istio_requests_total" || strings.HasPrefix(name, "istio_re") && !strings.HasSuffix(name, "_bucket") && !strings.HasSuffix(name, "messages_total"):
				want = istioLabels()
			case strings.HasPrefix(name, "istio_") && strings.HasSuffix(name, "_bucket"):
				want = withLe(istioLabels(), "le")
			case strings.HasPrefix(name, "istio_tcp_"):
				want = tcpLabels()
			case strings.HasSuffix(name, "messages_total"):
				want = peerLabels()
			default:
				continue
			}
			if w := istioLabelNames(want); !slices.Equal(got, w) {
				t.Fatalf("%s: labels %v, want %v", s.line, got, w)
			}
			if n := labelNames(t, s.line); n[0] != "response_code" && n[0] != "reporter" {
				t.Errorf("%s: not in Envoy's label order", s.line)
			}
			seen[protocolOf(s.lset.Get("request_protocol"))] = true
			if s.lset.Get("reporter") == "source" && s.lset.Has("connection_security_policy") &&
				s.lset.Get("connection_security_policy") != "unknown" {
				t.Errorf("%s: source reports connection_security_policy unknown", s.line)
			}
			if !strings.HasPrefix(s.lset.Get("destination_principal"), "spiffe://cluster.local/ns/") {
				t.Errorf("%s: destination_principal", s.line)
			}
		}
		if f := fams["istio_request_duration_milliseconds"]; f != nil {
			h := f.Metric[0].GetHistogram()
			var les []string
			for _, b := range h.Bucket {
				les = append(les, formatLe(b.GetUpperBound()))
			}
			if want := envoyBuckets().native; !slices.Equal(les, want) {
				t.Errorf("buckets %v, want %v", les, want)
			}
		}
	}
	for _, pr := range []protocol{protoHTTP, protoGRPC, protoTCP} {
		if !seen[pr] {
			t.Errorf("default mesh has no %v traffic", pr)
		}
	}
}

func protocolOf(s string) protocol {
	switch s {
	case "grpc":
		return protoGRPC
	case "tcp":
		return protoTCP
	}
	return protoHTTP
}

func formatLe(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return newBuckets(true, f).native[0]
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestSidecarMatchesFixtureFraming(t *testing.T) {
	m := testMesh(t, nil)
	p := m.pods[1]
	b := string(render(t, func(w io.Writer) error { return WritePod(w, m, p.ns, p.name, testStart.Add(time.Hour)) }))
	for _, want := range []string{
		"# TYPE istio_requests_total counter\nistio_requests_total{response_code=\"",
		`grpc_response_status="",connection_security_policy="mutual_tls",source_canonical_service="`,
		`,le="1800000"} `, `,le="+Inf"} `, "\n\n# TYPE ",
		"envoy_server_initialization_time_ms_sum{} ",
		"# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\n",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("sidecar output lacks %q", want)
		}
	}
}

func TestIstiodExposition(t *testing.T) {
	m := testMesh(t, nil)
	b := render(t, func(w io.Writer) error { return WriteIstiod(w, m, testStart.Add(time.Hour)) })
	fams := parseExpfmt(t, b)
	if n := len(parseProm(t, b)); n != m.istiod.samples {
		t.Errorf("%d samples, istiodSamples says %d", n, m.istiod.samples)
	}
	for _, n := range seedIstiodNames() {
		base := strings.TrimSuffix(n, "_bucket")
		if fams[base] == nil {
			t.Errorf("istiod lacks %s", n)
		}
	}
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s: Go client families have HELP", name)
		}
	}
	var types []string
	for _, mm := range fams["pilot_xds_pushes"].Metric {
		types = append(types, labelValue(mm, "type"))
	}
	if !slices.Equal(types[:4], []string{"cds", "eds", "lds", "rds"}) {
		t.Errorf("pilot_xds_pushes types %v", types)
	}
	if v := labelValue(fams["pilot_xds"].Metric[0], "version"); v != "1.14.6" {
		t.Errorf("pilot_xds version %q", v)
	}
	for _, h := range []string{"pilot_proxy_convergence_time", "pilot_proxy_queue_time"} {
		f := fams[h]
		if f.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("%s: %v", h, f.GetType())
		}
		var les []float64
		for _, b := range f.Metric[0].GetHistogram().Bucket {
			les = append(les, b.GetUpperBound())
		}
		if !slices.Equal(les, []float64{0.1, 0.5, 1, 3, 5, 10, 20, 30, math.Inf(1)}) {
			t.Errorf("%s buckets %v", h, les)
		}
	}
	if !strings.Contains(string(b), "pilot_proxy_convergence_time_bucket{le=\"1\"} ") ||
		!strings.Contains(string(b), "process_virtual_memory_max_bytes -1\n") ||
		!strings.Contains(string(b), "go_gc_duration_seconds{quantile=\"0.5\"} ") {
		t.Error("istiod output does not look like the Go client's")
	}
}

func TestDocumentedNamesOff(t *testing.T) {
	m := testMesh(t, func(o *Options) { o.DocumentedNames = false })
	fams := parseExpfmt(t, render(t, func(w io.Writer) error { return WriteIstiod(w, m, testStart) }))
	for _, n := range []string{"citadel_server_csr_sign_error_count", "galley_validation_config_load", "galley_validation_config_delete_error"} {
		if fams[n] != nil {
			t.Errorf("%s emitted although Istio 1.14 never does", n)
		}
	}
}

func TestFederate(t *testing.T) {
	m := testMesh(t, nil)
	now := testStart.Add(time.Hour)
	b := render(t, func(w io.Writer) error { return WriteFederate(w, m, now) })
	fams := parseExpfmt(t, b)
	for name, f := range fams {
		if f.GetType() != dto.MetricType_UNTYPED {
			t.Errorf("%s: %v, want untyped", name, f.GetType())
		}
		for _, mm := range f.Metric {
			if mm.TimestampMs == nil || *mm.TimestampMs > now.UnixMilli() || *mm.TimestampMs < now.UnixMilli()-30000 {
				t.Fatalf("%s: timestamp %v", name, mm.TimestampMs)
			}
		}
	}
	for _, n := range seedNames() {
		if fams[n] == nil {
			t.Errorf("/federate lacks %s", n)
		}
	}
	samples := parseProm(t, b)
	if len(samples) != m.FederateSeries() {
		t.Errorf("%d samples, FederateSeries says %d", len(samples), m.FederateSeries())
	}
	setA := istioLabelNames(aggLabels(false))
	seen := map[uint64]bool{}
	jobs := map[string]int{}
	for _, s := range samples {
		if seen[s.lset.Hash()] {
			t.Fatalf("duplicate series %s", s.lset)
		}
		seen[s.lset.Hash()] = true
		name, job := s.lset.Get("__name__"), s.lset.Get("job")
		jobs[job]++
		order := labelNames(t, s.line)
		if s.lset.Get("instance") == "" {
			if order[len(order)-1] != "instance" {
				t.Fatalf("%s: instance=\"\" must come last", s.line)
			}
			order = order[:len(order)-1]
		}
		if !slices.IsSorted(order) {
			t.Fatalf("%s: labels not sorted", s.line)
		}
		switch job {
		case "federate":
			if name == "up" || strings.HasPrefix(name, "scrape_") {
				if s.lset.Get("instance") != federateSelf {
					t.Errorf("%s: federate job's own series", s.line)
				}
				continue
			}
			want := setA
			switch {
			case strings.HasPrefix(name, "istio_tcp_"):
				want = istioLabelNames(aggLabels(true))
			case strings.HasSuffix(name, "_bucket"):
				want = istioLabelNames(withLe(aggLabels(false), "le"))
			}
			got := slices.DeleteFunc(names(s.lset), func(n string) bool { return n == "instance" })
			if !slices.Equal(got, want) {
				t.Fatalf("%s: labels %v, want %v", s.line, got, want)
			}
		case "kubernetes-pods":
			for _, l := range []string{"instance", "kubernetes_namespace", "kubernetes_pod_name", "app"} {
				if s.lset.Get(l) == "" {
					t.Fatalf("%s: no %s", s.line, l)
				}
			}
			if strings.HasPrefix(name, "istio_") && name != "istio_build" && !s.lset.Has("destination_principal") {
				t.Fatalf("%s: raw Istio series carry destination_principal", s.line)
			}
		default:
			t.Fatalf("%s: job %q", s.line, job)
		}
	}
	if jobs["federate"] == 0 || jobs["kubernetes-pods"] == 0 {
		t.Errorf("jobs %v", jobs)
	}
	line := string(b)
	for _, want := range []string{
		"# TYPE istio_requests_total untyped\nistio_requests_total{app=\"",
		`,job="federate",reporter="destination",response_code="200",response_flags="-",source_workload="`,
		`,le="1800000",reporter=`, `,instance=""} `, `instance="10.63.0.2:15014"`,
		`istio_build{app="istiod",component="pilot",`, `security_istio_io_tlsMode="istio"`,
		`,le="30",operator_istio_io_component="Pilot",`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("/federate lacks %q", want)
		}
	}
}

func TestFederateAggregatesRaw(t *testing.T) {
	m := testMesh(t, nil)
	now := testStart.Add(2 * time.Hour)
	samples := parseProm(t, render(t, func(w io.Writer) error { return WriteFederate(w, m, now) }))
	raw := map[string]float64{}
	agg := map[string]float64{}
	key := func(s sample, app string) string {
		return strings.Join([]string{app, s.lset.Get("reporter"), s.lset.Get("response_code"), s.lset.Get("response_flags"),
			s.lset.Get("source_workload"), s.lset.Get("source_workload_namespace"),
			s.lset.Get("destination_workload"), s.lset.Get("destination_workload_namespace")}, "|")
	}
	for _, s := range samples {
		if s.lset.Get("__name__") != "istio_requests_total" {
			continue
		}
		if s.lset.Get("job") == "federate" {
			agg[key(s, s.lset.Get("app"))] = s.v
		} else {
			raw[key(s, s.lset.Get("app"))] += s.v
		}
	}
	if len(agg) != len(raw) || len(agg) == 0 {
		t.Fatalf("%d aggregated groups, %d raw groups", len(agg), len(raw))
	}
	for k, v := range agg {
		// The rule ran at most 25 s before the raw series' last scrapes.
		if r := raw[k]; v > r || v < r*0.98 {
			t.Errorf("%s: aggregated %v, raw sum %v", k, v, r)
		}
	}
}

func TestQuantiles(t *testing.T) {
	bounds := []float64{1, 2, 4}
	for _, c := range []struct {
		q    float64
		cum  []float64
		want float64
	}{
		{0.5, []float64{0, 0, 0, 0}, math.NaN()},
		{0.5, []float64{2, 4, 4, 4}, 1},
		{0.75, []float64{2, 4, 4, 4}, 1.5},
		{0.99, []float64{0, 0, 1, 2}, 4}, // in +Inf: highest finite bound
	} {
		got := histogramQuantile(c.q, bounds, c.cum)
		if got != c.want && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("q%v of %v = %v, want %v", c.q, c.cum, got, c.want)
		}
	}
	idle := testMesh(t, func(o *Options) { o.RPS = 0 })
	for _, s := range parseProm(t, render(t, func(w io.Writer) error { return WriteFederate(w, idle, testStart.Add(time.Hour)) })) {
		if strings.Contains(s.lset.Get("__name__"), "_bucket_p") && !math.IsNaN(s.v) {
			t.Fatalf("%s: %v without traffic, want NaN", s.line, s.v)
		}
	}
	busy := testMesh(t, func(o *Options) { o.RPS = 50 })
	for _, s := range parseProm(t, render(t, func(w io.Writer) error { return WriteFederate(w, busy, testStart.Add(time.Hour)) })) {
		if strings.HasPrefix(s.lset.Get("__name__"), "istio_request_duration_milliseconds_bucket_p") &&
			s.lset.Get("response_code") == "200" && !(s.v > 0 && s.v < 10000) {
			t.Fatalf("%s: %v", s.line, s.v)
		}
	}
}

// TestMonotonic scrapes twice and checks that no counter went down.
func TestMonotonic(t *testing.T) {
	m := testMesh(t, nil)
	t1 := testStart.Add(30 * time.Minute)
	scrape := func(at time.Time) map[string]float64 {
		vals := map[string]float64{}
		add := func(b []byte) {
			for _, s := range parseProm(t, b) {
				vals[s.lset.String()] = s.v
			}
		}
		add(render(t, func(w io.Writer) error { return WriteFederate(w, m, at) }))
		add(render(t, func(w io.Writer) error { return WriteIstiod(w, m, at) }))
		for _, p := range m.pods[:4] {
			add(render(t, func(w io.Writer) error { return WritePod(w, m, p.ns, p.name, at) }))
		}
		return vals
	}
	a, b := scrape(t1), scrape(t1.Add(time.Minute))
	if len(a) != len(b) {
		t.Fatalf("series sets differ: %d vs %d", len(a), len(b))
	}
	grew := 0
	for k, v := range a {
		cumulative := strings.Contains(k, `_total"`) || strings.Contains(k, `_count"`) || strings.Contains(k, `_sum"`) ||
			strings.Contains(k, `_bucket"`) && !strings.Contains(k, `job="federate"`)
		if !cumulative {
			continue
		}
		w, ok := b[k]
		if !ok || w < v {
			t.Fatalf("%s: %v then %v", k, v, w)
		}
		if w > v {
			grew++
		}
	}
	if grew < len(a)/4 {
		t.Errorf("only %d of %d series grew in a minute", grew, len(a))
	}
}

func TestLeFormats(t *testing.T) {
	m2 := testMesh(t, nil)
	m3 := testMesh(t, func(o *Options) { o.LeFormat = LePrometheus3 })
	now := testStart.Add(time.Hour)
	les := func(m *Mesh, b []byte, name string, job string) []string {
		var out []string
		for _, s := range parseProm(t, b) {
			if s.lset.Get("__name__") == name && s.lset.Get("job") == job && !slices.Contains(out, s.lset.Get("le")) {
				out = append(out, s.lset.Get("le"))
			}
		}
		return out
	}
	f2 := render(t, func(w io.Writer) error { return WriteFederate(w, m2, now) })
	f3 := render(t, func(w io.Writer) error { return WriteFederate(w, m3, now) })
	check := func(got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("le values %v lack %q", got, w)
			}
		}
	}
	dur := "istio_request_duration_milliseconds_bucket"
	check(les(m2, f2, dur, "federate"), "0.5", "1", "500", "1800000", "+Inf")
	check(les(m2, f2, dur, "kubernetes-pods"), "1800000")
	check(les(m3, f3, dur, "federate"), "0.5", "1.0", "500.0", "300000.0", "1.8e+06", "3.6e+06", "+Inf")
	check(les(m2, f2, "pilot_proxy_convergence_time_bucket", "kubernetes-pods"), "0.1", "1", "30")
	check(les(m3, f3, "pilot_proxy_convergence_time_bucket", "kubernetes-pods"), "0.1", "1.0", "30.0")

	// Prometheus 3's own parser normalises typed histograms; our prom3
	// strings must be exactly what it stores.
	p := m2.pods[1]
	native := parseProm(t, render(t, func(w io.Writer) error { return WritePod(w, m2, p.ns, p.name, now) }))
	istiod := parseProm(t, render(t, func(w io.Writer) error { return WriteIstiod(w, m2, now) }))
	var want []string
	for _, s := range append(native, istiod...) {
		if le := s.lset.Get("le"); le != "" && !slices.Contains(want, le) {
			want = append(want, le)
		}
	}
	var got []string
	for _, s := range parseProm(t, f3) {
		if le := s.lset.Get("le"); le != "" && !slices.Contains(got, le) {
			got = append(got, le)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("prom3 le set %v, Prometheus parser gives %v", got, want)
	}
}

func TestDeterministic(t *testing.T) {
	now := testStart.Add(time.Hour)
	a := render(t, func(w io.Writer) error { return WriteFederate(w, testMesh(t, nil), now) })
	b := render(t, func(w io.Writer) error { return WriteFederate(w, testMesh(t, nil), now) })
	if !bytes.Equal(a, b) {
		t.Error("same options, different output")
	}
	other := testMesh(t, func(o *Options) { o.Seed = 42 })
	if other.FederateSeries() != testMesh(t, nil).FederateSeries() {
		t.Error("the seed changed the series count")
	}
}

func TestSeriesScaling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100k-series mesh")
	}
	for _, n := range []int{2000, 100000} {
		m := NewMeshForSeries(n)
		var cw countWriter
		got, err := m.writeFederate(&cw, testStart)
		if err != nil {
			t.Fatal(err)
		}
		if got != m.FederateSeries() {
			t.Errorf("wrote %d series, FederateSeries says %d", got, m.FederateSeries())
		}
		if math.Abs(float64(got-n)) > 0.1*float64(n) {
			t.Errorf("NewMeshForSeries(%d): %d series", n, got)
		}
		if avg := cw.n / int64(got); n >= 100000 && (avg < 700 || avg > 1300) {
			t.Errorf("average line %d bytes, want ~1 KB", avg)
		}
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestWriteFederateAllocations(t *testing.T) {
	m := NewMeshForSeries(20000)
	now := testStart.Add(time.Hour)
	allocs := testing.AllocsPerRun(3, func() { _ = WriteFederate(io.Discard, m, now) })
	if per := allocs / float64(m.FederateSeries()); per > 0.001 {
		t.Errorf("%.0f allocations for %d series", allocs, m.FederateSeries())
	}
}

func BenchmarkWriteFederate(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			m := NewMeshForSeries(n)
			now := testStart.Add(time.Hour)
			var cw countWriter
			if err := WriteFederate(&cw, m, now); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(cw.n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := WriteFederate(io.Discard, m, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m.FederateSeries()), "ns/series")
		})
	}
}
