package kube

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/testlog"
)

const testNode = "node-a"

// parseDiscovery loads a discovery block through the real config parser, so
// rules carry the defaults, compiled filters and parsed conf they have in
// production.
func parseDiscovery(t *testing.T, discovery string) config.Discovery {
	t.Helper()
	y := "enableDiscovery: true\nsinks:\n- file: /dev/null\nsources:\n  kubernetes_source: {}\n"
	if discovery != "" {
		y += "discovery:\n" + discovery
	}
	cfg, _, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Discovery
}

// newEval builds the evaluator New would use.
func newEval(t *testing.T, discovery string) *evaluator {
	t.Helper()
	d, err := New(fake.NewClientset(), Options{Discovery: parseDiscovery(t, discovery), NodeName: testNode},
		func([]collector.Target) {})
	if err != nil {
		t.Fatal(err)
	}
	return &d.eval
}

type podSpec struct {
	ns, name, ip string
	labels, ann  map[string]string
	images       []string
	phase        corev1.PodPhase
}

func mkPod(s podSpec) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name, Labels: s.labels, Annotations: s.ann},
		Spec:       corev1.PodSpec{NodeName: testNode},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: s.ip},
	}
	if s.phase != "" {
		p.Status.Phase = s.phase
	}
	for i, img := range s.images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprint("c", i), Image: img})
	}
	return p
}

func evalPod(t *testing.T, e *evaluator, p *corev1.Pod) ([]collector.Target, []*skipError) {
	t.Helper()
	r, ok := podResource(p, testNode)
	if !ok {
		return nil, nil
	}
	return e.evaluate(&r)
}

// web1 is the §5.4 worked example.
func web1() podSpec {
	return podSpec{ns: "shop", name: "web-1", ip: "10.0.0.7",
		labels: map[string]string{"app": "web", "pod-template-hash": "5d9"},
		ann:    map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}}
}

func TestEvaluateWorkedExample(t *testing.T) {
	got, skips := evalPod(t, newEval(t, ""), mkPod(web1()))
	want := []collector.Target{{
		Key:        "shop-pod-web-1:9100/metrics",
		Discovered: "annotation",
		Source: config.PrometheusSource{
			URL:        "http://10.0.0.7:9100/metrics",
			Name:       "shop-pod-web-1:9100/metrics",
			HTTPConfig: config.HTTPConfig{TLSConfig: config.TLSConfig{InsecureSkipVerify: true}},
			Transform: config.Transform{
				Source: testNode,
				Tags:   map[string]string{"pod": "web-1", "namespace": "shop", "label.app": "web"},
			},
			Collection: config.Collection{Interval: config.DefaultCollectionInterval, Timeout: config.DefaultCollectionTimeout},
		},
	}}
	if len(skips) != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v (skips %v)\nwant %+v", got, skips, want)
	}
}

const istioDiscovery = `  annotation_excludes:
  - namespaces: [istio-system]
  plugins:
  - name: coredns
    type: prometheus
    selectors:
      images: ['*coredns*']
    port: 9153
    prefix: kube.dns.
    source: dns
    tags: {app: coredns, empty: "", pod-template-hash: x}
    filters:
      metricAllowList: ['kube.dns.coredns.*']
    collection: {interval: 15s}
`

// Istio sidecars are scraped through their annotations; istiod is left to
// federation by annotation_excludes; CoreDNS is matched by a rule even in
// an excluded namespace, since exclusions only stop annotation mode.
func TestEvaluateIstioMesh(t *testing.T) {
	e := newEval(t, istioDiscovery)
	kubeSystem, err := compileSelector(config.Selector{Namespaces: []string{"kube-system"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	e.excludes = append(e.excludes, kubeSystem)
	sidecarAnn := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15020",
		"prometheus.io/path": "/stats/prometheus"}

	got, _ := evalPod(t, e, mkPod(podSpec{ns: "bookinfo", name: "reviews-v1-abc", ip: "10.0.1.5",
		labels: map[string]string{"app": "reviews", "version": "v1", "pod-template-hash": "abc"}, ann: sidecarAnn,
		images: []string{"docker.io/istio/examples-bookinfo-reviews-v1:1.20", "docker.io/istio/proxyv2:1.22"}}))
	if len(got) != 1 {
		t.Fatalf("sidecar: %+v", got)
	}
	if g := got[0]; g.Key != "bookinfo-pod-reviews-v1-abc:15020/stats/prometheus" ||
		g.Source.URL != "http://10.0.1.5:15020/stats/prometheus" || g.Discovered != "annotation" ||
		!reflect.DeepEqual(g.Source.Tags, map[string]string{"pod": "reviews-v1-abc", "namespace": "bookinfo",
			"label.app": "reviews", "label.version": "v1"}) {
		t.Errorf("sidecar: %+v", g)
	}

	istiod := mkPod(podSpec{ns: "istio-system", name: "istiod-7f", ip: "10.0.2.2",
		labels: map[string]string{"app": "istiod"}, images: []string{"docker.io/istio/pilot:1.22"},
		ann: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15014"}})
	if got, skips := evalPod(t, e, istiod); len(got) != 0 || len(skips) != 0 {
		t.Errorf("istiod must be excluded: %+v %v", got, skips)
	}

	coredns := mkPod(podSpec{ns: "kube-system", name: "coredns-5d-x", ip: "10.0.0.9",
		labels: map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "5d"},
		images: []string{"registry.k8s.io/coredns/coredns:v1.11.1"}})
	got, _ = evalPod(t, e, coredns)
	if len(got) != 1 {
		t.Fatalf("coredns: %+v", got)
	}
	g := got[0]
	want := config.PrometheusSource{
		URL:        "http://10.0.0.9:9153/metrics",
		Name:       "kube-system-pod-coredns-5d-x:9153/metrics",
		HTTPConfig: config.HTTPConfig{TLSConfig: config.TLSConfig{InsecureSkipVerify: true}},
		Transform: config.Transform{
			Source: "dns",
			Prefix: "kube.dns.",
			Tags: map[string]string{"pod": "coredns-5d-x", "namespace": "kube-system", "app": "coredns",
				"label.k8s-app": "kube-dns"},
			Filters: e.rules[0].Filters,
			Filter:  e.rules[0].filter,
		},
		Collection: config.Collection{Interval: 15 * time.Second, Timeout: config.DefaultCollectionTimeout},
		Line:       e.rules[0].Line,
	}
	if g.Key != want.Name || g.Discovered != "rule" || !reflect.DeepEqual(g.Source, want) {
		t.Errorf("coredns:\n got %+v\nwant %+v", g.Source, want)
	}
	if g.Source.Filter == nil || !g.Source.Filter.Keep([]byte("kube.dns.coredns.dns.requests.total"), nil) ||
		g.Source.Filter.Keep([]byte("kube.dns.go.goroutines"), nil) {
		t.Error("the rule's filter must be compiled and applied")
	}
	// Annotations beat the rule, even for a rule-matched pod.
	coredns.Annotations = map[string]string{"prometheus.io/port": "9999", "prometheus.io/source": "mine"}
	got, _ = evalPod(t, e, coredns)
	if len(got) != 1 || got[0].Source.URL != "http://10.0.0.9:9999/metrics" || got[0].Source.Source != "mine" {
		t.Errorf("annotation over rule: %+v", got)
	}
}

func TestEvaluateAnnotationOverrides(t *testing.T) {
	e := newEval(t, "  annotation_prefix: example.com\n")
	s := web1()
	s.ann = map[string]string{
		"example.com/scrape":             "true",
		"example.com/scheme":             "HTTPS",
		"example.com/port":               "8443",
		"example.com/path":               "stats",
		"example.com/prefix":             "web.",
		"example.com/includeLabels":      "True", // only the exact "true" enables labels
		"example.com/source":             "web-source",
		"example.com/collectionInterval": "15s",
		"example.com/timeout":            "5s",
		"example.com/serverName":         "web.shop.svc",
		"prometheus.io/port":             "1", // the default prefix no longer applies
	}
	got, skips := evalPod(t, e, mkPod(s))
	want := []collector.Target{{
		Key:        "shop-pod-web-1:8443/stats",
		Discovered: "annotation",
		Source: config.PrometheusSource{
			URL:        "https://10.0.0.7:8443/stats",
			Name:       "shop-pod-web-1:8443/stats",
			HTTPConfig: config.HTTPConfig{TLSConfig: config.TLSConfig{ServerName: "web.shop.svc"}},
			Transform: config.Transform{Source: "web-source", Prefix: "web.",
				Tags: map[string]string{"pod": "web-1", "namespace": "shop"}},
			Collection: config.Collection{Interval: 15 * time.Second, Timeout: 5 * time.Second},
		},
	}}
	if len(skips) != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v (skips %v)", got, want, skips)
	}

	for _, c := range []struct {
		ann  map[string]string
		skip bool
	}{
		{map[string]string{"insecureSkipVerify": "false"}, false},
		{map[string]string{"insecureSkipVerify": "yes"}, false}, // not Go bool syntax: false
		{map[string]string{"insecureSkipVerify": "1", "serverName": "x"}, true},
		{map[string]string{"insecureSkipVerify": ""}, true}, // empty counts as absent
		{map[string]string{"serverName": "x"}, false},
	} {
		ann := map[string]string{"example.com/scrape": "true"}
		for k, v := range c.ann {
			ann["example.com/"+k] = v
		}
		s.ann = ann
		got, _ := evalPod(t, e, mkPod(s))
		if len(got) != 1 || got[0].Source.HTTPConfig.TLSConfig.InsecureSkipVerify != c.skip {
			t.Errorf("%v: %+v, want insecure_skip_verify %v", c.ann, got, c.skip)
		}
	}
}

func TestEvaluateEdgeCases(t *testing.T) {
	e := newEval(t, `  plugins:
  - name: a
    type: prometheus
    selectors: {labels: {app: [dup]}}
    port: "9000"
    tags: {from: a}
  - name: b
    type: prometheus
    selectors: {labels: {app: [dup]}}
    port: "9000"
    tags: {from: b}
  - type: prometheus
    selectors: {namespaces: ['nameless-*']}
    port: "7000"
  - name: tls
    type: prometheus
    selectors: {namespaces: [tls]}
    conf: |
      tls_config: {ca_file: /etc/ca.pem, server_name: api}
  - name: badconf
    type: prometheus
    selectors: {namespaces: [badconf]}
    conf: "bogus: 1"
`)
	scrape := map[string]string{"prometheus.io/scrape": "true"}
	for _, c := range []struct {
		name string
		pod  podSpec
		urls []string
		disc string
		tags map[string]string
	}{
		{name: "not running", pod: podSpec{ns: "a", name: "p", ip: "10.0.0.1", ann: scrape, phase: corev1.PodFailed}},
		{name: "no ip", pod: podSpec{ns: "a", name: "p", ip: "None", ann: scrape}},
		{name: "no scrape annotation", pod: podSpec{ns: "a", name: "p", ip: "10.0.0.1"}},
		{name: "scrape must be exactly true", pod: podSpec{ns: "a", name: "p", ip: "10.0.0.1",
			ann: map[string]string{"prometheus.io/scrape": "True"}}},
		{name: "no port", pod: podSpec{ns: "a", name: "p", ip: "10.0.0.1", ann: scrape},
			urls: []string{"http://10.0.0.1/metrics"}},
		{name: "kube-state-metrics defaults to 8080", pod: podSpec{ns: "a", name: "kube-state-metrics-0", ip: "10.0.0.1", ann: scrape},
			urls: []string{"http://10.0.0.1:8080/metrics"}},
		{name: "ipv6 without port", pod: podSpec{ns: "a", name: "p", ip: "fd00::1", ann: scrape},
			urls: []string{"http://[fd00::1]/metrics"}},
		{name: "ipv6 with port", pod: podSpec{ns: "a", name: "p", ip: "fd00::1",
			ann: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}},
			urls: []string{"http://[fd00::1]:9100/metrics"}},
		{name: "same name: later rule wins", pod: podSpec{ns: "a", name: "p", ip: "10.0.0.1", labels: map[string]string{"app": "dup"}},
			urls: []string{"http://10.0.0.1:9000/metrics"}, disc: "rule",
			tags: map[string]string{"pod": "p", "namespace": "a", "from": "b", "label.app": "dup"}},
		{name: "nameless rule needs the annotation", pod: podSpec{ns: "nameless-x", name: "p", ip: "10.0.0.1"}},
		{name: "nameless rule is annotation discovery", pod: podSpec{ns: "nameless-x", name: "p", ip: "10.0.0.1", ann: scrape},
			urls: []string{"http://10.0.0.1:7000/metrics"}, disc: "annotation"},
		{name: "rule conf", pod: podSpec{ns: "tls", name: "p", ip: "10.0.0.1",
			ann: map[string]string{"prometheus.io/insecureSkipVerify": "true"}}, // ignored with conf
			urls: []string{"http://10.0.0.1/metrics"}, disc: "rule"},
	} {
		got, skips := evalPod(t, e, mkPod(c.pod))
		var urls []string
		for _, g := range got {
			urls = append(urls, g.Source.URL)
			if c.disc != "" && g.Discovered != c.disc {
				t.Errorf("%s: discovered %q, want %q", c.name, g.Discovered, c.disc)
			}
			if c.tags != nil && !reflect.DeepEqual(g.Source.Tags, c.tags) {
				t.Errorf("%s: tags %v, want %v", c.name, g.Source.Tags, c.tags)
			}
			if c.name == "rule conf" && g.Source.HTTPConfig != (config.HTTPConfig{TLSConfig: config.TLSConfig{CAFile: "/etc/ca.pem", ServerName: "api"}}) {
				t.Errorf("%s: %+v", c.name, g.Source.HTTPConfig)
			}
		}
		if len(skips) != 0 || !reflect.DeepEqual(urls, c.urls) {
			t.Errorf("%s: urls %q (skips %v), want %q", c.name, urls, skips, c.urls)
		}
	}
	got, skips := evalPod(t, e, mkPod(podSpec{ns: "badconf", name: "p", ip: "10.0.0.1"}))
	if len(got) != 0 || len(skips) != 1 || skips[0].reason != "bad_conf" {
		t.Errorf("bad conf: %+v %v", got, skips)
	}
}

func TestEvaluateBadAnnotations(t *testing.T) {
	e := newEval(t, "")
	for _, c := range []struct{ ann, value, reason string }{
		{"port", "abc", "bad_port"},
		{"port", "70000", "bad_port"},
		{"scheme", "ftp", "bad_scheme"},
		{"collectionInterval", "5x", "bad_interval"},
		{"collectionInterval", "30", "bad_interval"}, // a unit is required
		{"timeout", "-1s", "bad_timeout"},
	} {
		s := web1()
		s.ann = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/" + c.ann: c.value}
		got, skips := evalPod(t, e, mkPod(s))
		if len(got) != 0 || len(skips) != 1 || skips[0].reason != c.reason || !strings.Contains(skips[0].msg, c.value) {
			t.Errorf("%s=%q: %+v %+v", c.ann, c.value, got, skips)
		}
	}
}

func TestEvaluateDisableAnnotationDiscovery(t *testing.T) {
	e := newEval(t, "  disable_annotation_discovery: true\n"+istioDiscovery)
	if got, _ := evalPod(t, e, mkPod(web1())); len(got) != 0 {
		t.Errorf("annotation mode must be off: %+v", got)
	}
	got, _ := evalPod(t, e, mkPod(podSpec{ns: "kube-system", name: "coredns", ip: "10.0.0.9",
		images: []string{"coredns/coredns:1.11"}}))
	if len(got) != 1 {
		t.Errorf("rules still apply: %+v", got)
	}
}

func TestEvaluateSelectors(t *testing.T) {
	e := newEval(t, `  annotation_excludes:
  - {namespaces: ['openshift-*']}
  - {labels: {monitoring: ['off', 'no']}}
  - {resourceType: service, namespaces: [private]}
  plugins:
  - name: both
    type: prometheus
    selectors: {labels: {app: ['db*'], tier: [backend]}, namespaces: [data]}
`)
	ann := map[string]string{"prometheus.io/scrape": "true"}
	for _, c := range []struct {
		pod  podSpec
		want int
	}{
		{podSpec{ns: "openshift-monitoring", name: "p", ip: "10.0.0.1", ann: ann}, 0},
		{podSpec{ns: "openshift", name: "p", ip: "10.0.0.1", ann: ann}, 1},
		{podSpec{ns: "a", name: "p", ip: "10.0.0.1", ann: ann, labels: map[string]string{"monitoring": "no"}}, 0},
		{podSpec{ns: "a", name: "p", ip: "10.0.0.1", ann: ann, labels: map[string]string{"monitoring": "yes"}}, 1},
		// An exclusion of services does not exclude pods.
		{podSpec{ns: "private", name: "p", ip: "10.0.0.1", ann: ann}, 1},
		{podSpec{ns: "data", name: "p", ip: "10.0.0.1", labels: map[string]string{"app": "dbx", "tier": "backend"}}, 1},
		{podSpec{ns: "data", name: "p", ip: "10.0.0.1", labels: map[string]string{"app": "dbx"}}, 0},
		{podSpec{ns: "other", name: "p", ip: "10.0.0.1", labels: map[string]string{"app": "dbx", "tier": "backend"}}, 0},
	} {
		if got, _ := evalPod(t, e, mkPod(c.pod)); len(got) != c.want {
			t.Errorf("%+v: %d targets, want %d", c.pod, len(got), c.want)
		}
	}

	svc := func(ns, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api", Labels: map[string]string{"app": "api"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
			Spec: corev1.ServiceSpec{ClusterIP: ip}}
	}
	r, ok := serviceResource(svc("shop", "10.96.0.10"))
	got, _ := e.evaluate(&r)
	if !ok || len(got) != 1 || got[0].Key != "shop-service-api:8080/metrics" || got[0].Source.URL != "http://10.96.0.10:8080/metrics" ||
		!reflect.DeepEqual(got[0].Source.Tags, map[string]string{"service": "api", "namespace": "shop", "label.app": "api"}) {
		t.Errorf("service: %+v", got)
	}
	if _, ok := serviceResource(svc("shop", "None")); ok {
		t.Error("headless services must be skipped")
	}
	// openshift-* excludes pods only: the exclusion has no resourceType.
	r, _ = serviceResource(svc("openshift-x", "10.96.0.11"))
	if got, _ := e.evaluate(&r); len(got) != 1 {
		t.Errorf("pod exclusion applied to a service: %+v", got)
	}
	r, _ = serviceResource(svc("private", "10.96.0.12"))
	if got, _ := e.evaluate(&r); len(got) != 0 {
		t.Errorf("service exclusion ignored: %+v", got)
	}
}

// Rules the reference would reject are logged and skipped by New too, even
// when they did not come through config.Parse.
func TestNewSkipsInvalidRules(t *testing.T) {
	var logs testlog.Buffer
	d, err := New(fake.NewClientset(), Options{Logger: testLogger(&logs), Discovery: config.Discovery{
		Plugins: []config.PluginRule{
			{Name: "telegraf", Type: "telegraf/redis", Selectors: config.Selector{Namespaces: []string{"a"}}},
			{Name: "noselector", Type: "prometheus"},
			{Name: "badtype", Type: "prometheus", Selectors: config.Selector{ResourceType: "deployment", Namespaces: []string{"a"}}},
			{Name: "badport", Type: "prometheus", Port: "x", Selectors: config.Selector{Namespaces: []string{"a"}}},
			{Name: "badglob", Type: "prometheus", Selectors: config.Selector{Namespaces: []string{"[a"}}},
			{Name: "ok", Type: "prometheus", Selectors: config.Selector{Namespaces: []string{"a"}}},
		},
		AnnotationExcludes: []config.Selector{{}, {Namespaces: []string{"istio-system"}}},
	}}, func([]collector.Target) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.eval.rules) != 1 || d.eval.rules[0].Name != "ok" || len(d.eval.excludes) != 1 {
		t.Errorf("rules %d, excludes %d", len(d.eval.rules), len(d.eval.excludes))
	}
	for _, name := range []string{"telegraf", "noselector", "badtype", "badport", "badglob"} {
		if !strings.Contains(logs.String(), `rule=`+name) {
			t.Errorf("rule %s not logged:\n%s", name, logs.String())
		}
	}
}

// The default source is the collector's node; without one, the pod name.
func TestEvaluateDefaultSource(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{NodeName: testNode}, testNode},
		{Options{DefaultSource: "node-z"}, "node-z"}, // an `all` agent
		{Options{}, "web-1"},
	} {
		d, err := New(fake.NewClientset(), c.opts, func([]collector.Target) {})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := podResource(mkPod(web1()), c.opts.NodeName)
		if got, _ := d.eval.evaluate(&r); len(got) != 1 || got[0].Source.Source != c.want {
			t.Errorf("%+v: %+v, want source %q", c.opts, got, c.want)
		}
	}
}
