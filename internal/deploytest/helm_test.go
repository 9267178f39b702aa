package deploytest

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

const chartDir = repoRoot + "/deploy/helm/meshwave"

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// render renders the chart as `helm install meshwave -n meshwave` would,
// with vals over values.yaml, and decodes every object strictly.
func render(t *testing.T, vals map[string]any) []object {
	t.Helper()
	files, err := renderFiles(loadChart(t), vals)
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt
		}
		got, err := decodeStream([]byte(files[name]), name)
		if err != nil {
			t.Errorf("%v\nrendered:\n%s", err, files[name])
		}
		objs = append(objs, got...)
	}
	return objs
}

func renderFiles(ch *chart.Chart, vals map[string]any) (map[string]string, error) {
	opts := chartutil.ReleaseOptions{Name: "meshwave", Namespace: "meshwave", Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// withoutNamespace drops the Namespace object: a chart installs into the
// release namespace (helm install -n meshwave --create-namespace) and must
// not create it, or Helm refuses to adopt it.
func withoutNamespace(objs []object) []object {
	return slices.DeleteFunc(slices.Clone(objs), func(o object) bool { return o.kind == "Namespace" })
}

func TestChartDefaultMatchesManifests(t *testing.T) {
	objs := render(t, nil)
	got, want := keys(t, objs), keys(t, withoutNamespace(plainSet(t)))
	if !slices.Equal(got, want) {
		t.Errorf("chart renders %v\nplain manifests have %v", got, want)
	}
	checkPods(t, objs)
	checkReferences(t, objs, "meshwave-token")
	checkCollector(t, objs, "DaemonSet", "meshwave", "k8s-cluster")
	checkProxy(t, objs, "meshwave", "http://meshwave-server.meshwave.svc:8080")
	checkTraceRedirect(t, objs, "meshwave")
	checkPrometheus(t, objs)
	samePodSpecs(t, objs, plainSet(t))
}

// TestChartDeploymentExternalBackend: the collector as a Deployment, the
// proxy forwarding to an external backend, the chart creating the token
// Secret, in another namespace and cluster.
func TestChartDeploymentExternalBackend(t *testing.T) {
	vals := map[string]any{
		"clusterName": "prod-eu1",
		"collector": map[string]any{
			"mode": "deployment",
			"sink": map[string]any{"tags": map[string]any{"env": "prod"}},
		},
		"backend": map[string]any{
			"server": map[string]any{"enabled": false},
			"url":    "https://backend.example.com",
			"token":  map[string]any{"value": "s3cret"},
		},
	}
	objs := render(t, vals)
	var want []string
	for _, k := range keys(t, withoutNamespace(alternativeSet(t))) {
		if !strings.HasSuffix(k, "/meshwave-server") {
			want = append(want, k)
		}
	}
	want = append(want, "Secret/meshwave-token")
	sort.Strings(want)
	if got := keys(t, objs); !slices.Equal(got, want) {
		t.Errorf("rendered %v\nwant %v", got, want)
	}
	checkPods(t, objs)
	checkReferences(t, objs)
	checkCollector(t, objs, "Deployment", "meshwave", "prod-eu1")
	checkProxy(t, objs, "meshwave", "https://backend.example.com")
	checkTraceRedirect(t, objs, "meshwave")

	sec := find[corev1.Secret](t, objs, "Secret", "meshwave-token")
	if sec.StringData["token"] != "s3cret" {
		t.Errorf("Secret data %v", sec.StringData)
	}
	cm := find[corev1.ConfigMap](t, objs, "ConfigMap", "meshwave-collector")
	if !strings.Contains(cm.Data["config.yaml"], "env: prod") {
		t.Errorf("sink tags missing from config.yaml:\n%s", cm.Data["config.yaml"])
	}
	proxy := container(t, objs, "Deployment", "meshwave-proxy", "proxy")
	if h, _ := flag(proxy.Args, "--hostname"); h != "meshwave-proxy-prod-eu1" {
		t.Errorf("proxy --hostname %q", h)
	}
}

// TestChartOptionalParts: Prometheus and the trace redirect can be left
// out, e.g. for a cluster whose Prometheus already federates.
func TestChartOptionalParts(t *testing.T) {
	objs := render(t, map[string]any{
		"prometheus":    map[string]any{"enabled": false},
		"traceRedirect": map[string]any{"enabled": false},
	})
	for _, o := range objs {
		if o.namespace == "istio-system" || o.name == "prometheus" {
			t.Errorf("%s rendered while disabled", o.key())
		}
	}
}

func TestChartRejectsBadValues(t *testing.T) {
	ch := loadChart(t)
	for name, vals := range map[string]map[string]any{
		"mode":   {"collector": map[string]any{"mode": "statefulset"}},
		"no url": {"backend": map[string]any{"server": map[string]any{"enabled": false}}},
	} {
		if _, err := renderFiles(ch, vals); err == nil {
			t.Errorf("%s: rendered without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestChartLint runs `helm lint`'s checks.
func TestChartLint(t *testing.T) {
	l := lint.All(chartDir, nil, "meshwave", false)
	for _, m := range l.Messages {
		if m.Severity > support.InfoSev {
			t.Error(m)
		} else {
			t.Log(m)
		}
	}
}

// samePodSpecs checks that the chart's workloads run what the plain
// manifests run: images, args, ports and resources, container by container.
// The proxy's --hostname carries the cluster name, which the two spell
// differently (value vs placeholder).
func samePodSpecs(t *testing.T, rendered, plain []object) {
	t.Helper()
	for _, p := range plain {
		pt := podSpec(p)
		if pt == nil {
			continue
		}
		for _, pc := range pt.Spec.Containers {
			rc := container(t, rendered, p.kind, p.name, pc.Name)
			pa, ra := slices.Clone(pc.Args), slices.Clone(rc.Args)
			if i := slices.Index(pa, "--hostname"); i >= 0 && i+1 < len(pa) {
				pa[i+1] = strings.ReplaceAll(pa[i+1], placeholder, "k8s-cluster")
			}
			if !slices.Equal(pa, ra) {
				t.Errorf("%s %s args:\nchart %q\nplain %q", p.key(), pc.Name, ra, pa)
			}
			if rc.Image != pc.Image {
				t.Errorf("%s %s image: chart %q, plain %q", p.key(), pc.Name, rc.Image, pc.Image)
			}
			if !rc.Resources.Requests.Cpu().Equal(*pc.Resources.Requests.Cpu()) ||
				!rc.Resources.Requests.Memory().Equal(*pc.Resources.Requests.Memory()) ||
				!rc.Resources.Limits.Memory().Equal(*pc.Resources.Limits.Memory()) {
				t.Errorf("%s %s resources: chart %v, plain %v", p.key(), pc.Name, rc.Resources, pc.Resources)
			}
			if len(rc.Ports) != len(pc.Ports) {
				t.Errorf("%s %s ports: chart %v, plain %v", p.key(), pc.Name, rc.Ports, pc.Ports)
			}
		}
	}
}
