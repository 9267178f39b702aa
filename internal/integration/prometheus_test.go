//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Debian 12 (bookworm) ships "prometheus, version 2.42.0+ds": a 2.x, which
// keeps scraped `le` strings as the target wrote them ("1800000", "30")
// instead of 3.x's normalised "1.8e+06", "30.0" (istio.md §3). The test
// accepts either major version and checks the spelling that version implies.

const (
	// The manifest scrapes every 15s, evaluates every 1m and runs every rule
	// group every 10s. 1s everywhere makes the first aggregates appear within
	// seconds; irate(...[1m]) still sees the two samples it needs.
	interval = "1s"

	// federateSelector is the collector's match[] (istio.md §3).
	federateSelector = `{job=~"federate|kubernetes-pods"}`

	// manifestHost is the Prometheus address in the seed's source URL.
	manifestHost = "prometheus.istio-system.svc.cluster.local:9090"
)

// simShape is the smallest simulated mesh with a TCP edge (a second
// namespace needs five services for one), keeping 1s scrapes cheap.
var simShape = []string{"--namespaces", "2", "--services", "5", "--versions", "1"}

// controlPlaneNames are names of the seed's Metrics table that come from
// raw kubernetes-pods series of istiod and the istio-agents. The data-plane
// names are derived from the recording rules instead.
var controlPlaneNames = []string{
	"istio.build.value",
	"pilot.xds.pushes.value",
	"pilot.services.value",
	"pilot.virt.services.value",
	"pilot.proxy.convergence.time.bucket.value",
	"go.goroutines.value",
	"process.cpu.seconds.total.value",
	"galley.validation.passed.value",
	"citadel.server.csr.count.value",
}

// TestFederationWithRealPrometheus runs the whole metrics path of istio.md
// §1 with a real Prometheus: simulator → Prometheus (the integration's
// scrape jobs, relabelling and recording rules) → /federate → meshwave
// collector with the seed's source → Wavefront lines in a file.
func TestFederationWithRealPrometheus(t *testing.T) {
	promBin := findPrometheus(t)
	major := prometheusMajor(t, promBin)
	dir := t.TempDir()
	meshwave := buildMeshwave(t, dir)
	cm := istioConfigMap(t)

	sim := startProc(t, meshwave, append([]string{"simulate", "--listen", "127.0.0.1:0"}, simShape...)...)
	var simAddr string
	waitFor(t, 30*time.Second, "the simulator's address", []*proc{sim}, func() (bool, string) {
		b, _ := os.ReadFile(sim.log)
		for line := range strings.Lines(string(b)) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "federate: http://"); ok {
				simAddr = strings.TrimSuffix(u, "/federate")
				return true, ""
			}
		}
		return false, "no \"federate:\" line in its output yet"
	})
	b, err := get(t.Context(), "http://"+simAddr+"/targets")
	if err != nil {
		t.Fatal(err)
	}
	var simTargets []sdGroup
	if err := json.Unmarshal(b, &simTargets); err != nil {
		t.Fatalf("/targets: %v", err)
	}
	sdFile := filepath.Join(dir, "targets.json")
	writeJSON(t, sdFile, podDiscovery(t, simTargets, simAddr))

	promAddr := "127.0.0.1:" + freePort(t)
	promURL := "http://" + promAddr
	cfgDir := filepath.Join(dir, "config")
	recorded := writePrometheusConfig(t, cm, cfgDir, promAddr, sdFile)
	prom := startProc(t, promBin,
		"--config.file="+filepath.Join(cfgDir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=2h",
		"--web.listen-address="+promAddr)
	procs := []*proc{sim, prom}
	waitFor(t, 30*time.Second, "Prometheus /-/ready", procs, func() (bool, string) {
		_, err := get(t.Context(), promURL+"/-/ready")
		return err == nil, errString(err)
	})

	// Wait until every recorded series has come back through the federate
	// job, quantiles included (NaN until two scrapes showed traffic). The
	// "out-of-order samples" warnings in Prometheus' log are the manifest's
	// doing: its second match[] hands the federate job back the series it
	// ingested itself.
	federate := promURL + "/federate?" + url.Values{"match[]": {federateSelector}}.Encode()
	var fams map[string]*dto.MetricFamily
	start := time.Now()
	waitFor(t, 90*time.Second, "aggregated job=\"federate\" series", procs, func() (bool, string) {
		b, err := get(t.Context(), federate)
		if err != nil {
			return false, err.Error()
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if fams, err = parser.TextToMetricFamilies(bytes.NewReader(b)); err != nil {
			return false, err.Error()
		}
		for _, name := range recorded {
			if !slices.ContainsFunc(fams[name].GetMetric(), func(m *dto.Metric) bool {
				return label(m, "job") == "federate" && !math.IsNaN(m.GetUntyped().GetValue())
			}) {
				return false, "no job=\"federate\" " + name + " yet"
			}
		}
		return true, ""
	})
	t.Logf("aggregates federated after %v", time.Since(start).Round(time.Millisecond))
	checkPodRelabelling(t, fams, simTargets)

	out := filepath.Join(dir, "out.wf")
	collectorCfg := filepath.Join(dir, "collector.yaml")
	allow := writeCollectorConfig(t, collectorCfg, promAddr, out, dir)
	o, err := run(t, meshwave, "check-config", collectorCfg)
	if err != nil {
		t.Fatalf("meshwave check-config: %v\n%s", err, o)
	}
	t.Logf("meshwave check-config:\n%s", o)
	if o, err := run(t, meshwave, "collector", "--config", collectorCfg, "--once"); err != nil {
		t.Fatalf("meshwave collector --once: %v\n%s", err, o)
	}
	points := readPoints(t, out)

	counts := map[string]int{}
	federated := map[string]bool{}
	bad := map[string][]point{} // broken rule → the lines breaking it
	for _, p := range points {
		counts[p.name]++
		if p.tags["job"] == "federate" {
			federated[p.name] = true
		}
		if p.tags["cluster"] != "integration-test" {
			bad["lack cluster=integration-test"] = append(bad["lack cluster=integration-test"], p)
		}
		if _, ok := p.tags["destination_principal"]; ok {
			bad["carry destination_principal"] = append(bad["carry destination_principal"], p)
		}
		// The collector's own stats and heartbeat do not pass the source's
		// filters; everything else must.
		own := strings.HasPrefix(p.name, "kubernetes.collector.") || strings.HasPrefix(p.name, "~")
		if !own && !slices.ContainsFunc(allow, func(pat string) bool { ok, _ := path.Match(pat, p.name); return ok }) {
			bad["are named outside the allow list"] = append(bad["are named outside the allow list"], p)
		}
		// Every per-pod request counter has a destination_principal, so
		// only the aggregates may remain.
		if p.name == "istio.requests.total.value" && p.tags["job"] != "federate" {
			bad["are per-pod request counters"] = append(bad["are per-pod request counters"], p)
		}
		// The labels the manifest's relabelling gives istiod's series.
		if p.name == "pilot.services.value" &&
			(p.tags["job"] != "kubernetes-pods" || p.tags["kubernetes_namespace"] != "istio-system" || p.tags["app"] != "istiod") {
			bad["lack istiod's job, namespace or app"] = append(bad["lack istiod's job, namespace or app"], p)
		}
	}
	for _, rule := range slices.Sorted(maps.Keys(bad)) {
		t.Errorf("%d lines %s, e.g. %s", len(bad[rule]), rule, bad[rule][0])
	}
	for _, name := range recorded {
		if wf := wavefrontName(name); !federated[wf] {
			t.Errorf("no job=\"federate\" %s (recorded as federate:%s)", wf, name)
		}
	}
	for _, wf := range controlPlaneNames {
		if counts[wf] == 0 {
			t.Errorf("no %s", wf)
		}
	}

	// `le` is whatever Prometheus stored, carried through verbatim.
	wantLe := map[int][2]string{2: {"1800000", "30"}, 3: {"1.8e+06", "30.0"}}[min(major, 3)]
	checkLe(t, fams, points, "istio_request_duration_milliseconds_bucket", "federate", wantLe[0])
	checkLe(t, fams, points, "pilot_proxy_convergence_time_bucket", "kubernetes-pods", wantLe[1])

	var summary strings.Builder
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&summary, "\n%6d %s", counts[name], name)
	}
	t.Logf("%d lines, %d names:%s", len(points), len(counts), summary.String())
}

func findPrometheus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/prometheus"); serr == nil {
			return "/usr/bin/prometheus"
		}
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus not installed; CI must run this test (apt-get install prometheus)")
		}
		t.Skip("prometheus not installed (apt-get install prometheus)")
	}
	return bin
}

var versionRE = regexp.MustCompile(`version (\d+)\.`)

func prometheusMajor(t *testing.T, bin string) int {
	t.Helper()
	out, err := run(t, bin, "--version")
	if err != nil {
		t.Fatalf("prometheus --version: %v\n%s", err, out)
	}
	t.Logf("prometheus --version:\n%s", out)
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no version in %q", out)
	}
	major, _ := strconv.Atoi(m[1])
	return major
}

// istioConfigMap returns the data of the ConfigMap "prometheus" in the
// integration's manifest.
func istioConfigMap(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/istio-prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
			Data     map[string]string
		}
		if err := dec.Decode(&obj); err != nil {
			t.Fatalf("no ConfigMap prometheus in the manifest: %v", err)
		}
		if obj.Kind == "ConfigMap" && obj.Metadata.Name == "prometheus" {
			return obj.Data
		}
	}
}

// sdGroup is one Prometheus file_sd entry.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// podDiscovery restates the simulator's targets as the meta labels
// kubernetes_sd_configs (role: pod) would attach, so the manifest's own
// relabel_configs decide the address, path and labels. Every simulated pod
// serves on the simulator's port, which therefore stands in for the
// prometheus.io/port annotation. Two extra pods must be dropped by those
// rules: one in phase Pending and one without the scrape annotation.
func podDiscovery(t *testing.T, sim []sdGroup, simAddr string) []sdGroup {
	t.Helper()
	_, simPort, err := net.SplitHostPort(simAddr)
	if err != nil {
		t.Fatal(err)
	}
	// The pod IP with a container port nothing listens on: only the
	// port-annotation rule makes a target reachable.
	podAddr := []string{"127.0.0.1:1"}
	var out []sdGroup
	for _, g := range sim {
		l := map[string]string{
			"__meta_kubernetes_namespace":                           g.Labels["kubernetes_namespace"],
			"__meta_kubernetes_pod_name":                            g.Labels["kubernetes_pod_name"],
			"__meta_kubernetes_pod_phase":                           "Running",
			"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
			"__meta_kubernetes_pod_annotation_prometheus_io_path":   g.Labels["__metrics_path__"],
			"__meta_kubernetes_pod_annotation_prometheus_io_port":   simPort,
			// The pod's own <podIP>:<port>, as the simulator's /federate
			// reports it; discovery would derive it from __address__.
			"instance": g.Labels["instance"],
		}
		for k, v := range g.Labels {
			switch k {
			case "kubernetes_namespace", "kubernetes_pod_name", "__metrics_path__", "instance":
			default:
				l["__meta_kubernetes_pod_label_"+k] = v
			}
		}
		out = append(out, sdGroup{Targets: podAddr, Labels: l})
	}
	for _, l := range []map[string]string{
		{"__meta_kubernetes_pod_name": "pending-pod", "__meta_kubernetes_pod_phase": "Pending",
			"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true"},
		{"__meta_kubernetes_pod_name": "unannotated-pod", "__meta_kubernetes_pod_phase": "Running"},
	} {
		l["__meta_kubernetes_namespace"] = "default"
		l["__meta_kubernetes_pod_annotation_prometheus_io_port"] = simPort
		out = append(out, sdGroup{Targets: podAddr, Labels: l})
	}
	return out
}

// writePrometheusConfig writes the ConfigMap's files into dir, adapted to
// run outside Kubernetes, and returns the names the recording rules record,
// without the "federate:" prefix. Changes to the manifest: shorter intervals,
// rule file paths under dir, file_sd instead of pod discovery, and this
// Prometheus' address for the prometheus and federate jobs' targets. The
// relabel rules, federate params and rule expressions are kept verbatim.
func writePrometheusConfig(t *testing.T, cm map[string]string, dir, promAddr, sdFile string) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range cm {
		switch name {
		case "prometheus.yml":
			data = string(adaptScrapeConfig(t, data, dir, promAddr, sdFile))
		case "recording_rules.yml":
			data = adaptRules(t, data)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rules struct {
		Groups []struct{ Rules []struct{ Record string } }
	}
	if err := yaml.Unmarshal([]byte(cm["recording_rules.yml"]), &rules); err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			name, ok := strings.CutPrefix(r.Record, "federate:")
			if !ok {
				t.Fatalf("recording rule %q lacks the federate: prefix", r.Record)
			}
			recorded = append(recorded, name)
		}
	}
	return recorded
}

func adaptScrapeConfig(t *testing.T, src, dir, promAddr, sdFile string) []byte {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	g := cfg["global"].(map[string]any)
	g["scrape_interval"], g["scrape_timeout"], g["evaluation_interval"] = interval, interval, interval
	files := cfg["rule_files"].([]any)
	for i, f := range files {
		files[i] = filepath.Join(dir, strings.TrimPrefix(f.(string), "/etc/config/"))
	}
	selfTarget := []any{map[string]any{"targets": []any{promAddr}}}
	var jobs []string
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		name := job["job_name"].(string)
		jobs = append(jobs, name)
		switch name {
		case "prometheus":
			job["static_configs"] = selfTarget
		case "kubernetes-pods":
			delete(job, "kubernetes_sd_configs")
			job["file_sd_configs"] = []any{map[string]any{"files": []any{sdFile}}}
		case "federate":
			job["scrape_interval"] = interval
			job["static_configs"] = selfTarget
		}
	}
	if !slices.Equal(jobs, []string{"prometheus", "kubernetes-pods", "federate"}) {
		t.Fatalf("manifest scrape jobs %q: the test adapts prometheus, kubernetes-pods and federate", jobs)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// adaptRules shortens every group's interval and changes nothing else, so
// the expressions stay byte for byte the manifest's.
func adaptRules(t *testing.T, src string) string {
	t.Helper()
	const from = "\n  interval: 10s\n"
	groups := strings.Count(src, "\n- name: ")
	if n := strings.Count(src, from); n != groups || n == 0 {
		t.Fatalf("recording rules: %d groups but %d %q lines", groups, n, strings.TrimSpace(from))
	}
	return strings.ReplaceAll(src, from, "\n  interval: "+interval+"\n")
}

// checkPodRelabelling checks, on Prometheus' side, that the manifest's
// relabel rules made exactly the simulated pods scrapeable.
func checkPodRelabelling(t *testing.T, fams map[string]*dto.MetricFamily, sim []sdGroup) {
	t.Helper()
	up := 0
	for _, m := range fams["up"].GetMetric() {
		if label(m, "job") != "kubernetes-pods" {
			continue
		}
		switch pod := label(m, "kubernetes_pod_name"); {
		case pod == "pending-pod" || pod == "unannotated-pod":
			t.Errorf("%s was scraped; the manifest's relabel rules drop it", pod)
		case m.GetUntyped().GetValue() != 1:
			t.Errorf("pod %s: up=%v", pod, m.GetUntyped().GetValue())
		default:
			up++
		}
	}
	if up != len(sim) {
		t.Errorf("%d kubernetes-pods targets up, want the simulator's %d", up, len(sim))
	}
}

// checkLe compares the `le` values of family (job=job) in Prometheus'
// /federate with the collector's output, and checks Prometheus' spelling
// of one bound.
func checkLe(t *testing.T, fams map[string]*dto.MetricFamily, points []point, family, job, want string) {
	t.Helper()
	fromProm := map[string]bool{}
	for _, m := range fams[family].GetMetric() {
		if label(m, "job") == job {
			fromProm[label(m, "le")] = true
		}
	}
	fromWF := map[string]bool{}
	wf := wavefrontName(family)
	for _, p := range points {
		if p.name == wf && p.tags["job"] == job {
			fromWF[p.tags["le"]] = true
		}
	}
	promLe, wfLe := slices.Sorted(maps.Keys(fromProm)), slices.Sorted(maps.Keys(fromWF))
	if !slices.Equal(promLe, wfLe) {
		t.Errorf("%s le: Prometheus federates %q, the collector wrote %q", wf, promLe, wfLe)
	}
	if !fromProm[want] {
		t.Errorf("%s le: %q lacks %q, this Prometheus version's spelling", family, promLe, want)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// writeCollectorConfig writes a collector.yaml whose source is the seed's
// snippet with only the Prometheus address and the two service-account files
// replaced, and returns the snippet's allow list.
func writeCollectorConfig(t *testing.T, file, promAddr, out, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/seed-prometheus-sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snippet := string(b)
	var seed struct {
		Sources []struct {
			Filters struct {
				MetricAllowList []string `yaml:"metricAllowList"`
			}
		} `yaml:"prometheus_sources"`
	}
	if err := yaml.Unmarshal(b, &seed); err != nil || len(seed.Sources) != 1 {
		t.Fatalf("seed snippet: %v, %d sources", err, len(seed.Sources))
	}
	token, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(token, []byte("integration-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, selfSignedCA(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{
		manifestHost: promAddr,
		"/var/run/secrets/kubernetes.io/serviceaccount/token":  token,
		"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt": ca,
	} {
		if n := strings.Count(snippet, from); n != 1 {
			t.Fatalf("seed snippet has %q %d times, want once", from, n)
		}
		snippet = strings.Replace(snippet, from, to, 1)
	}
	cfg := fmt.Sprintf("clusterName: integration-test\nsinks:\n- file: %q\nsources:\n%s", out, snippet)
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return seed.Sources[0].Filters.MetricAllowList
}

// selfSignedCA returns a CA certificate in PEM, standing in for the
// service account's ca.crt; the source URL is http, so it is only loaded.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshwave integration-test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// point is one parsed line of the collector's file sink.
type point struct {
	name  string
	value float64
	tags  map[string]string
}

func (p point) String() string { return fmt.Sprintf("%s %v %v", p.name, p.value, p.tags) }

// readPoints parses the file sink's lines with the proxy-side decoder.
func readPoints(t *testing.T, file string) []point {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		dec wavefront.Decoder
		wp  wavefront.Point
		out []point
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if err := dec.ParsePoint(sc.Bytes(), &wp); err != nil {
			t.Fatalf("%s: %v: %q", file, err, sc.Text())
		}
		p := point{name: string(wp.Name), value: wp.Value, tags: map[string]string{}}
		for _, tag := range wp.Tags {
			p.tags[string(tag.Key)] = string(tag.Value)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", file)
	}
	return out
}

// wavefrontName is the collector's name for an untyped federated family.
func wavefrontName(prom string) string {
	return strings.ReplaceAll(prom, "_", ".") + ".value"
}

func writeJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
