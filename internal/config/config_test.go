package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

const fixtures = "../../testdata/fixtures/configmap/"

// minimal is the smallest valid configuration; tests append keys to it.
const minimal = "sinks: [{proxyAddress: 'wavefront-proxy:2878'}]\nsources: {}\n"

func parse(t *testing.T, src string) (*Config, []Warning, error) {
	t.Helper()
	return Parse([]byte(src), "test.yaml")
}

func mustParse(t *testing.T, src string) (*Config, []Warning) {
	t.Helper()
	c, w, err := parse(t, src)
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", src, err)
	}
	return c, w
}

func wantErr(t *testing.T, src string, parts ...string) {
	t.Helper()
	_, _, err := parse(t, src)
	if err == nil {
		t.Fatalf("Parse:\n%s\nsucceeded, want error containing %q", src, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func hasWarning(ws []Warning, parts ...string) bool {
next:
	for _, w := range ws {
		for _, p := range parts {
			if !strings.Contains(w.String(), p) {
				continue next
			}
		}
		return true
	}
	return false
}

func TestFixtureGood(t *testing.T) {
	c, ws, err := Load(fixtures + "existing-configmap-with-istio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range c.Sources.PrometheusSources {
		keys = append(keys, s.Key())
		if s.Filter == nil {
			t.Errorf("source %q: filter not compiled", s.Key())
		}
	}
	want := []string{
		`http://prometheus.istio-system.svc.cluster.local:9090/federate?match[]={job=~"federate|kubernetes-pods"}`,
		"etcd-workqueue", "apiserver",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("sources = %q, want %q", keys, want)
	}
	if !hasWarning(ws, "existing-configmap-with-istio.yaml:127:", "prometheus_sources", "67", "127") {
		t.Errorf("no duplicate-key warning naming lines 67 and 127 in %v", ws)
	}
	for _, key := range []string{"kubernetes_source", "kubernetes_state_source", "enable_runtime_plugins"} {
		n := 0
		for _, w := range ws {
			if strings.Contains(w.Message, key+": accepted, not implemented") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d not-implemented warnings for %s, want 1", n, key)
		}
	}
	if c.ClusterName != "istio-prod-eu1" || !c.EnableDiscovery || c.DefaultCollectionInterval != time.Minute ||
		c.FlushInterval != DefaultFlushInterval || c.SinkExportDataTimeout != DefaultSinkExportDataTimeout {
		t.Errorf("top level = %+v", c)
	}
	s := c.Sinks[0]
	if s.ProxyHost != "wavefront-proxy" || s.ProxyPort != 2878 || s.Kind() != SinkProxy || s.Filter == nil {
		t.Errorf("sink = %+v", s)
	}
	istio := c.Sources.PrometheusSources[0]
	if istio.Line != 68 || !istio.HTTPConfig.TLSConfig.InsecureSkipVerify || istio.Collection.Interval != time.Minute ||
		istio.Collection.Timeout != DefaultCollectionTimeout || len(istio.Filters.MetricAllowList) != 28 {
		t.Errorf("istio source = %+v", istio)
	}
	if !istio.Filter.Keep([]byte("istio.requests.total.value"), nil) || istio.Filter.Keep([]byte("envoy.x.value"), nil) {
		t.Error("istio filter does not behave")
	}
	if !c.Sources.PrometheusSources[1].ConvertHistograms || c.Sources.PrometheusSources[1].Prefix != "kubernetes.controlplane." {
		t.Errorf("etcd source = %+v", c.Sources.PrometheusSources[1])
	}
	d := c.Discovery
	if len(d.Plugins) != 2 || d.Plugins[0].Port != "10054" || d.Plugins[1].Port != "9153" || d.Plugins[0].Scheme != "http" ||
		len(d.AnnotationExcludes) != 1 || d.AnnotationExcludes[0].Namespaces[0] != "istio-system" ||
		d.DiscoveryInterval != DefaultDiscoveryInterval || d.AnnotationPrefix != "prometheus.io" || !d.EnableRuntimePlugins {
		t.Errorf("discovery = %+v", d)
	}
}

func TestFixtureBadGlob(t *testing.T) {
	_, _, err := Load(fixtures + "existing-configmap-with-istio-bad-glob.yaml")
	if err == nil {
		t.Fatal("bad glob loaded")
	}
	for _, p := range []string{"existing-configmap-with-istio-bad-glob.yaml:81:", "istio.[requests", "metricAllowList[0]"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestFixtureUnknownKey(t *testing.T) {
	_, _, err := Load(fixtures + "existing-configmap-with-istio-unknown-key.yaml")
	if err == nil {
		t.Fatal("unknown key loaded")
	}
	for _, p := range []string{"existing-configmap-with-istio-unknown-key.yaml:80:11:", "metricAlowList", "did you mean metricAllowList?"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestLintSeed(t *testing.T) {
	c, _, err := Load(fixtures + "existing-configmap-with-istio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ws := Lint(c)
	if len(ws) != 1 || !hasWarning(ws, "existing-configmap-with-istio.yaml:68:", "pilot.proxy.queue.time.bucket.value") {
		t.Errorf("Lint = %v, want exactly the Proxy Queue Time warning", ws)
	}
}

func TestLint(t *testing.T) {
	c, _ := mustParse(t, `
sinks:
- proxyAddress: p
  filters: {metricDenyList: ['a', '*']}
sources:
  prometheus_sources:
  - url: http://prom:9090/federate
    filters:
      metricAllowList: ['istio.*']
      metricTagAllowList: {env: []}
discovery:
  plugins:
  - name: r
    type: prometheus
    selectors: {namespaces: [x]}
    filters: {metricDenyList: ['**']}
`)
	ws := Lint(c)
	for _, want := range [][]string{
		{"test.yaml:3:", "sinks[0]", `"*"`, "drops every series"},
		{"test.yaml:7:", "metricTagAllowList", "can never match"},
		{"test.yaml:13:", `plugins "r"`, `"**"`, "drops every series"},
		{"test.yaml:7:", "pilot.services.value"},
		{"test.yaml:7:", "go.goroutines.value"},
	} {
		if !hasWarning(ws, want...) {
			t.Errorf("no warning with %q in:\n%v", want, ws)
		}
	}
	if hasWarning(ws, "istio.requests.total.value") {
		t.Error("istio.requests.total.value passes istio.*")
	}
}

// TestExample is the §1.9 example.
func TestExample(t *testing.T) {
	c, ws := mustParse(t, `
clusterName: prod-east
enableDiscovery: true        # without this the discovery section below has no effect
flushInterval: 30s
defaultCollectionInterval: 60s
sinks:
- proxyAddress: wavefront-proxy.observability.svc:2878
  tags: {env: prod}
sources:
  kubernetes_source: {}
  prometheus_sources:
  - url: 'http://prometheus.monitoring.svc:9090/federate?match[]={__name__=~"app_.*"}'
    name: app-federation
    prefix: 'fed.'
    tags: {team: payments}
    collection: {interval: 30s, timeout: 20s}
    httpConfig:
      bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
      tls_config: {insecure_skip_verify: true}
    filters:
      metricAllowList: ['fed.app.*']
      metricTagDenyList: {stage: ['canary*']}
discovery:
  annotation_excludes:
  - namespaces: [kube-system]    # pods only; services need resourceType: service
`)
	if !hasWarning(ws, "test.yaml:10:", "kubernetes_source: accepted, not implemented") {
		t.Errorf("warnings = %v", ws)
	}
	s := c.Sources.PrometheusSources[0]
	if c.ClusterName != "prod-east" || !c.EnableDiscovery || s.Name != "app-federation" || s.Prefix != "fed." ||
		s.Tags["team"] != "payments" || s.Collection != (Collection{30 * time.Second, 20 * time.Second}) ||
		s.HTTPConfig.BearerTokenFile == "" || !s.HTTPConfig.TLSConfig.InsecureSkipVerify ||
		c.Sinks[0].Tags["env"] != "prod" || c.Sinks[0].ProxyPort != 2878 {
		t.Errorf("config = %+v\nsource = %+v", c, s)
	}
	if !s.Filter.Keep([]byte("fed.app.jobs.total"), nil) || s.Filter.Keep([]byte("fed.app.x"), tagsOf("stage", "canary-1")) {
		t.Error("filter does not behave")
	}
	if c.Sources.KubernetesSource == nil {
		t.Error("kubernetes_source: {} not recorded")
	}
}

func TestNoKubernetesSourceNeeded(t *testing.T) {
	c, ws := mustParse(t, minimal)
	if len(ws) != 0 || c.Sources.KubernetesSource != nil {
		t.Errorf("minimal config: %v %+v", ws, c.Sources)
	}
}

func TestDurations(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want time.Duration
		err  string
	}{
		{"30s", 30 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"'5m'", 5 * time.Minute, ""},
		{"1500ms", 1500 * time.Millisecond, ""},
		{"10000000000", 10 * time.Second, ""}, // bare integer: nanoseconds
		{"1e10", 10 * time.Second, ""},
		{"", DefaultCollectionInterval, ""}, // empty resets to zero, then the default
		{"0s", DefaultCollectionInterval, ""},
		{"1d", 0, `unit "d" is not supported`},
		{"2w", 0, `unit "w" is not supported`},
		{"1y", 0, `unit "y" is not supported`},
		{"'60'", 0, "invalid duration"},
		{"soon", 0, "invalid duration"},
		{"[1s]", 0, "expected a duration, got a list"},
		{"-1s", 0, "must be positive"},
	} {
		src := minimal + "defaultCollectionInterval: " + tc.val + "\n"
		c, _, err := parse(t, src)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "test.yaml:3: defaultCollectionInterval: ") {
				t.Errorf("%q: err = %v, want %q", tc.val, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.val, err)
		case c.DefaultCollectionInterval != tc.want:
			t.Errorf("%q = %v, want %v", tc.val, c.DefaultCollectionInterval, tc.want)
		}
	}
}

func TestFlushInterval(t *testing.T) {
	wantErr(t, minimal+"flushInterval: 60\n", "test.yaml:3: flushInterval: metric resolution should not be less than 5 seconds: 60")
	wantErr(t, minimal+"flushInterval: 1s\n", "less than 5 seconds: 1000000000")
	// Checked before the other validations.
	_, _, err := parse(t, "flushInterval: 1s\n")
	if err == nil || !strings.HasPrefix(err.Error(), "test.yaml:1: flushInterval: metric resolution") {
		t.Errorf("err = %v", err)
	}
	c, _ := mustParse(t, minimal+"flushInterval: 5s\n")
	if c.FlushInterval != 5*time.Second {
		t.Error(c.FlushInterval)
	}
	c, _ = mustParse(t, minimal+"flushInterval:\n")
	if c.FlushInterval != DefaultFlushInterval {
		t.Error(c.FlushInterval)
	}
}

func TestBools(t *testing.T) {
	for _, v := range []string{"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"} {
		if c, _ := mustParse(t, minimal+"enableDiscovery: "+v+"\n"); !c.EnableDiscovery {
			t.Errorf("%s is not true", v)
		}
	}
	for _, v := range []string{"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null"} {
		if c, _ := mustParse(t, minimal+"enableDiscovery: "+v+"\n"); c.EnableDiscovery {
			t.Errorf("%q is not false", v)
		}
	}
	wantErr(t, minimal+"enableDiscovery: \"true\"\n", "test.yaml:3: enableDiscovery: expected a boolean, got quoted string \"true\" (remove the quotes)")
	wantErr(t, minimal+"enableDiscovery: 'yes'\n", "expected a boolean")
	wantErr(t, minimal+"enableDiscovery: 1\n", `expected a boolean, got "1"`)
	wantErr(t, minimal+"enableDiscovery: tRUE\n", "expected a boolean")
}

func TestStringsFromScalars(t *testing.T) {
	c, _ := mustParse(t, `
sinks: [{proxyAddress: p, tags: {ratio: 1.50, on: yes, n: 010}}]
sources: {}
discovery:
  plugins:
  - name: r
    type: prometheus
    selectors: {namespaces: [x]}
    port: 9090
    includeLabels: True
clusterName: 1.0
`)
	if got := c.Sinks[0].Tags; !reflect.DeepEqual(got, map[string]string{"ratio": "1.50", "on": "yes", "n": "010"}) {
		t.Errorf("tags = %q", got)
	}
	r := c.Discovery.Plugins[0]
	if r.Port != "9090" || r.IncludeLabels != "True" || c.ClusterName != "1.0" {
		t.Errorf("rule = %+v, cluster %q", r, c.ClusterName)
	}
	c, _ = mustParse(t, minimal+"clusterName:\n")
	if c.ClusterName != "" {
		t.Errorf("empty clusterName = %q, want reset", c.ClusterName)
	}
	c, _ = mustParse(t, minimal)
	if c.ClusterName != DefaultClusterName {
		t.Errorf("default clusterName = %q", c.ClusterName)
	}
	wantErr(t, minimal+"clusterName: {a: b}\n", "clusterName: expected a string, got a mapping")
}

func TestProxyAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		host string
		port int
		err  string
	}{
		{"wavefront-proxy:2878", "wavefront-proxy", 2878, ""},
		{"proxy.example.com:4242", "proxy.example.com", 4242, ""},
		{"wavefront-proxy", "wavefront-proxy", 2878, ""},
		{"10.0.0.1", "10.0.0.1", 2878, ""},
		{"[2001:db8::1]:2878", "2001:db8::1", 2878, ""},
		{"[2001:db8::1]", "2001:db8::1", 2878, ""},
		{"2001:db8::1", "2001:db8::1", 2878, ""},
		{"proxy:http", "", 0, `error parsing proxy port "http"`},
		{"proxy:0", "", 0, "error parsing proxy port"},
		{":2878", "", 0, "missing host"},
		{"http://proxy:2878", "", 0, "is a URL"},
		{"a:b:c", "", 0, "invalid address"},
	} {
		c, _, err := parse(t, "sources: {}\nsinks:\n- proxyAddress: '"+tc.addr+"'\n")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "test.yaml:3: sinks[0].proxyAddress: ") {
				t.Errorf("%q: err = %v, want %q", tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.addr, err)
			continue
		}
		if s := c.Sinks[0]; s.ProxyHost != tc.host || s.ProxyPort != tc.port {
			t.Errorf("%q: %s %d", tc.addr, s.ProxyHost, s.ProxyPort)
		}
	}
}

func TestValidationMessages(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"sources: {}\n", []string{"test.yaml:1: sinks: missing sink"}},
		{"sources: {}\nsinks: []\n", []string{"test.yaml:2: sinks: missing sink"}},
		{"sinks: [{proxyAddress: p}]\n", []string{"sources: missing sources"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n", []string{"test.yaml:2: sources: missing sources"}},
		{"sources: {}\nsinks:\n- server: https://x.wavefront.com\n", []string{"test.yaml:3: sinks[0]: token missing for Wavefront sink"}},
		{"sources: {}\nsinks:\n- tags: {a: b}\n", []string{"test.yaml:3: sinks[0]: proxyAddress, server or file property required for Wavefront sink"}},
		{"sources: {}\nsinks:\n- server: x\n  token: t\n", []string{"sinks[0].server: invalid URL"}},
		{"sources: {}\nsinks:\n- file: out\n  batchSize: -1\n", []string{"test.yaml:4: sinks[0].batchSize: must be positive"}},
		{minimal + "sources:\n", []string{"test.yaml:3:1: sources: duplicate key: already set at line 2, again at line 3"}},
		{minimal + "clusterNam: x\n", []string{"test.yaml:3:1: clusterNam: unknown key (did you mean clusterName?)"}},
		{minimal + "zzzzzzzzzz: x\n", []string{"test.yaml:3:1: zzzzzzzzzz: unknown key"}},
		{"sinks: [{proxyAddress: p, filters: {metricDenylist: [a]}}]\nsources: {}\n", []string{
			"test.yaml:1:", "sinks[0].filters.metricDenylist: unknown key (did you mean metricDenyList?)"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - name: x\n", []string{"test.yaml:4: sources.prometheus_sources[0].url: required"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: foo\n", []string{"test.yaml:4: sources.prometheus_sources[0].url: invalid URL \"foo\""}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: \"http://a/\\x01\"\n", []string{"prometheus_sources[0].url: invalid URL"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    httpConfig:\n      tls_config: {cert_file: c}\n",
			[]string{"test.yaml:6: sources.prometheus_sources[0].httpConfig.tls_config: cert_file and key_file must be given together"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    httpConfig: {bearer: x}\n",
			[]string{"httpConfig.bearer: unknown key (did you mean bearer_token?)"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    httpConfig: {basic_auth: {password: x}}\n",
			[]string{"basic_auth: username required"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    httpConfig: {proxy_url: 'proxy:3128'}\n",
			[]string{"httpConfig.proxy_url: invalid proxy URL"}},
		{minimal + "discovery: {discovery_interval: 0s}\n", []string{"test.yaml:3: discovery.discovery_interval: must be positive"}},
		{minimal + "discovery: {discovery_interval: -5m}\n", []string{"discovery.discovery_interval: must be positive"}},
		{minimal + "sinkExportDataTimeout: -1s\n", []string{"sinkExportDataTimeout: must be positive"}},
		{minimal + "sources2: {}\n", []string{"did you mean sources?"}},
		{minimal + "a: &x 1\nb: *x\n", []string{"test.yaml:3:1: a: unknown key", "test.yaml:4:1: b: unknown key"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    filters: {metricAllowList: ['{a', '[x']}\n",
			[]string{"test.yaml:5: sources.prometheus_sources[0].filters.metricAllowList[1]: pattern \"[x\" does not compile"}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    filters:\n      metricTagDenyList:\n        code: ['5*', '[']\n",
			[]string{"test.yaml:7: sources.prometheus_sources[0].filters.metricTagDenyList.code[1]: pattern \"[\""}},
		{"sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    filters:\n      metricBlacklist:\n      - ok\n      - '[b'\n",
			[]string{"test.yaml:8: sources.prometheus_sources[0].filters.metricBlacklist[1]"}},
		{"a: [\n", []string{"test.yaml:", "invalid YAML"}},
		{"- 1\n", []string{"test.yaml:1: expected a mapping, got a list"}},
	} {
		wantErr(t, tc.src, tc.want...)
	}
}

func TestAliases(t *testing.T) {
	c, ws := mustParse(t, `
sinks: [{proxyAddress: p}]
sources:
  prometheus_sources:
  - url: http://a
    filters:
      metricWhitelist: [old.*]
      metricBlacklist: [old.deny]
      metricDenyList: [new.deny]
      metricTagWhitelist: {env: [prod]}
      metricTagBlacklist: {code: ['5*']}
      metricTagDenyList: {}
`)
	f := c.Sources.PrometheusSources[0].Filters
	if !reflect.DeepEqual(f.MetricAllowList, []string{"old.*"}) || !reflect.DeepEqual(f.MetricDenyList, []string{"new.deny"}) ||
		!reflect.DeepEqual(f.MetricTagAllowList, map[string][]string{"env": {"prod"}}) ||
		!reflect.DeepEqual(f.MetricTagDenyList, map[string][]string{"code": {"5*"}}) {
		t.Errorf("resolved = %+v", f)
	}
	if !hasWarning(ws, "test.yaml:8:", "metricBlacklist: ignored, metricDenyList is set") {
		t.Errorf("warnings = %v", ws)
	}
	if hasWarning(ws, "metricTagBlacklist") {
		t.Error("an empty new key must not shadow its alias")
	}
}

func TestDuplicateSources(t *testing.T) {
	c, ws := mustParse(t, `
sinks: [{proxyAddress: p}]
sources:
  prometheus_sources:
  - url: http://a/metrics
  - url: http://b/metrics
    name: b
  - url: http://a/metrics
    prefix: second.
  - url: http://b/metrics
`)
	var got []string
	for _, s := range c.Sources.PrometheusSources {
		got = append(got, s.Key()+"|"+s.Prefix)
	}
	if want := []string{"http://a/metrics|second.", "b|", "http://b/metrics|"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sources = %q, want %q", got, want)
	}
	if !hasWarning(ws, "test.yaml:8:", `"http://a/metrics" replaces the source at line 5`) {
		t.Errorf("warnings = %v", ws)
	}
}

func TestNotImplementedKeys(t *testing.T) {
	c, ws := mustParse(t, `
sinks:
- proxyAddress: p
  testMode: true
- type: external
  externalEndpointURL: http://e
- file: '-'
  enableEvents: false
enableEvents: true
events:
  filters:
    tagAllowList: {kind: [Warning]}
    tagWhitelistSets: [{a: [b]}]
experimental: [histogram-conversion, other]
omitBucketSuffix: on
sources:
  kubernetes_source: {url: x, kubeletPort: 10250, kubeletHttps: true, inClusterConfig: x, useServiceAccount: yes, insecure: true, auth: a, prefix: k.}
  kubernetes_cadvisor_source: {prefix: c.}
  kubernetes_state_source: {collection: {interval: 1m}}
  internal_stats_source: {prefix: kubernetes., tags: {a: b}}
  telegraf_sources:
  - plugins: [mem, cpu]
    conf: "[[inputs.mem]]"
  - plugins: [net]
  systemd_source: {taskMetrics: true, unitAllowList: ['docker*'], unitDenyList: [x]}
  kubernetes_control_plane_source: {collection: {interval: 2m}}
discovery:
  enable_runtime_plugins: true
  global: {discovery_interval: 1m}
  prom_configs:
  - {name: a, resourceType: pod, labels: {a: b}, namespace: n, port: 80, path: /m, scheme: http, prefix: p, tags: {a: b}, source: s, includeLabels: "true", filters: {metricAllowList: [x]}}
`)
	for _, key := range []string{"sinks[0]: testMode", "sinks[1]: type external", "enableEvents:", "events:",
		"kubernetes_source:", "kubernetes_cadvisor_source:", "kubernetes_state_source:", "telegraf_sources:",
		"systemd_source:", "kubernetes_control_plane_source:", "enable_runtime_plugins:", "discovery.global:",
		"discovery.prom_configs:", `unknown value "other"`} {
		n := 0
		for _, w := range ws {
			if strings.Contains(w.Message, key) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d warnings for %q, want 1: %v", n, key, ws)
		}
	}
	if !c.HistogramConversion() || !c.OmitBucketSuffix || c.Sources.KubernetesSource.KubeletPort != "10250" ||
		c.Sources.KubernetesSource.UseServiceAccount != "yes" || len(c.Sources.TelegrafSources) != 2 ||
		!c.Sources.SystemdSource.TaskMetrics || c.Sources.KubernetesControlPlaneSource.Collection.Interval != 2*time.Minute ||
		c.Events.Filters.TagAllowList["kind"][0] != "Warning" || len(c.Events.Filters.TagAllowListSets) != 1 ||
		c.Sources.InternalStatsSource.Prefix != "kubernetes." || c.Discovery.PromConfigs[0].Port != "80" {
		t.Errorf("config = %+v", c)
	}
	if !c.Sinks[0].EnableEvents || c.Sinks[2].EnableEvents || c.Sinks[2].Kind() != SinkFile || c.Sinks[2].File != "-" {
		t.Errorf("sinks = %+v", c.Sinks)
	}
	wantErr(t, minimal[:len(minimal)-4]+"\n  kubernetes_control_plane_source: {prefix: x}\n", "kubernetes_control_plane_source.prefix: unknown key")
}

func TestDiscoveryRules(t *testing.T) {
	c, ws := mustParse(t, minimal+`
discovery:
  annotation_prefix: ""
  annotation_excludes:
  - namespaces: [kube-system]
  - resourceType: service
    namespaces: [istio-system]
  - resourceType: deployment
    namespaces: [x]
  - {}
  plugins:
  - name: a
    type: prometheus
    selectors: {labels: {app: [web]}}
    conf: |
      bearer_token: t
      tls_config: {insecure_skip_verify: true}
  - name: badport
    type: prometheus
    selectors: {namespaces: [x]}
    port: http
  - name: badtype
    type: statsd
    selectors: {namespaces: [x]}
  - name: noselector
    type: prometheus
  - name: node
    type: prometheus
    selectors: {resourceType: node}
  - name: a
    type: prometheus/x
    selectors: {images: ['*redis*']}
    conf: "bogus: 1"
`)
	d := c.Discovery
	if d.AnnotationPrefix != "prometheus.io" || len(d.AnnotationExcludes) != 2 {
		t.Errorf("discovery = %+v", d)
	}
	var names []string
	for _, r := range d.Plugins {
		names = append(names, r.Name+"|"+r.Type)
	}
	if want := []string{"a|prometheus/x", "node|prometheus"}; !reflect.DeepEqual(names, want) {
		t.Errorf("rules = %q, want %q", names, want)
	}
	for _, w := range [][]string{
		{"test.yaml:10:", `invalid resourceType "deployment"`},
		{"test.yaml:12:", "no selectors specified"},
		{"test.yaml:20:", `invalid port "http"`},
		{"test.yaml:24:", `invalid type "statsd"`},
		{"test.yaml:27:", "no selectors specified"},
		{"test.yaml:32:", `rule "a" replaces the rule at line 14`},
		{"test.yaml:35:", "discovery.plugins[5].conf.bogus: unknown key; this rule will produce no targets"},
	} {
		if !hasWarning(ws, w...) {
			t.Errorf("no warning %q in\n%v", w, ws)
		}
	}
}

func TestEmbeddedConf(t *testing.T) {
	c, _ := mustParse(t, minimal+`
discovery:
  plugins:
  - name: a
    type: prometheus
    selectors: {namespaces: [x]}
    conf: |
      bearer_token: t
      tls_config: {insecure_skip_verify: true}
`)
	h := c.Discovery.Plugins[0].ConfHTTP
	if h == nil || h.BearerToken != "t" || !h.TLSConfig.InsecureSkipVerify {
		t.Errorf("conf = %+v", h)
	}
}

func TestProxyURLForms(t *testing.T) {
	for src, want := range map[string]string{
		"proxy_url: http://proxy:3128":                                   "http://proxy:3128",
		"proxy_url: {url: {scheme: http, host: 'proxy:3128'}}":           "http://proxy:3128",
		"proxy_url: {url: {scheme: https, host: p, path: /x}}":           "https://p/x",
		"basic_auth: {username: u, password_file: /f}\n      proxy_url:": "",
	} {
		c, _ := mustParse(t, "sinks: [{proxyAddress: p}]\nsources:\n  prometheus_sources:\n  - url: http://a\n    httpConfig:\n      "+src+"\n")
		if got := c.Sources.PrometheusSources[0].HTTPConfig.ProxyURL; got != want {
			t.Errorf("%s: %q, want %q", src, got, want)
		}
	}
}

func TestManifestForms(t *testing.T) {
	plainDoc := "clusterName: c\n" + minimal
	collector := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  collector.yaml: |\n    clusterName: manual\n    sinks: [{proxyAddress: p}]\n    sources: {}\n    bogus: 1\n"
	_, _, err := Parse([]byte(collector), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), "m.yaml:9:5: bogus: unknown key") {
		t.Errorf("manual-era ConfigMap: %v", err)
	}
	c, _, err := Parse([]byte(strings.Replace(collector, "    bogus: 1\n", "", 1)), "m.yaml")
	if err != nil || c.ClusterName != "manual" {
		t.Errorf("manual-era ConfigMap: %v %+v", err, c)
	}
	_, _, err = Parse([]byte("apiVersion: v1\nkind: Service\n"), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), "without a ConfigMap") {
		t.Errorf("no ConfigMap: %v", err)
	}
	_, _, err = Parse([]byte(plainDoc+"---\n"+plainDoc), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), "p.yaml:5: more than one YAML document") {
		t.Errorf("two plain docs: %v", err)
	}
	_, _, err = Parse([]byte("apiVersion: v1\nkind: ConfigMap\ndata:\n  config.yaml: |\n    sinks: [\n"), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), "m.yaml:") || !strings.Contains(err.Error(), "invalid YAML") {
		t.Errorf("bad embedded YAML: %v", err)
	}
	_, _, err = Parse(nil, "e.yaml")
	if err == nil || !strings.Contains(err.Error(), "empty configuration") {
		t.Errorf("empty: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); !os.IsNotExist(err) {
		t.Errorf("err = %v", err)
	}
}

func tagsOf(kv ...string) []wavefront.Tag {
	var out []wavefront.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, wavefront.Tag{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}
