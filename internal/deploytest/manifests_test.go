package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const (
	manifestDir = repoRoot + "/deploy/kubernetes"
	// placeholder is what the plain manifests ask users to replace.
	placeholder = "YOUR_CLUSTER_NAME"
)

// plainSet is deploy/kubernetes/*.yaml: what `kubectl apply -f
// deploy/kubernetes/` creates (alternatives/ is not applied by that).
func plainSet(t *testing.T) []object { return loadDir(t, manifestDir, false) }

// alternativeSet is the plain set with the DaemonSet swapped for the
// collector Deployment of alternatives/.
func alternativeSet(t *testing.T) []object {
	objs := slices.DeleteFunc(plainSet(t), func(o object) bool { return o.kind == "DaemonSet" })
	return append(objs, loadDir(t, filepath.Join(manifestDir, "alternatives"), false)...)
}

func TestManifestsDecodeStrictly(t *testing.T) {
	all := loadDir(t, manifestDir, true)
	t.Logf("%d objects: %v", len(all), keys(t, all))
}

func TestManifests(t *testing.T) {
	for name, objs := range map[string][]object{"daemonset": plainSet(t), "deployment": alternativeSet(t)} {
		t.Run(name, func(t *testing.T) {
			kind := map[string]string{"daemonset": "DaemonSet", "deployment": "Deployment"}[name]
			keys(t, objs)
			checkPods(t, objs)
			checkReferences(t, objs, "meshwave-token")
			checkCollector(t, objs, kind, "meshwave", placeholder)
			checkProxy(t, objs, "meshwave", "http://meshwave-server.meshwave.svc:8080")
			checkTraceRedirect(t, objs, "meshwave")
			checkPrometheus(t, objs)
		})
	}
}

// TestManifestsNamespace: everything but the Prometheus deployment and the
// trace redirect, which the integration puts in istio-system, lives in
// the meshwave namespace the manifests create.
func TestManifestsNamespace(t *testing.T) {
	objs := plainSet(t)
	find[corev1.Namespace](t, objs, "Namespace", "meshwave")
	for _, o := range objs {
		want := "meshwave"
		if o.name == "prometheus" || o.name == "zipkin" {
			want = "istio-system"
		}
		if clusterScoped[o.kind] {
			want = ""
		}
		if o.namespace != want {
			t.Errorf("%s (%s) in namespace %q, want %q", o.key(), o.where, o.namespace, want)
		}
	}
}

// TestIstioMeshConfig checks the snippet for newer Istio points at the proxy
// (its kinds are Istio's, so it is checked as plain YAML).
func TestIstioMeshConfig(t *testing.T) {
	data, err := os.ReadFile(repoRoot + "/deploy/istio/meshconfig-tracing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want IstioOperator and Telemetry", len(docs))
	}
	var op struct {
		Kind string
		Spec struct {
			MeshConfig struct {
				DefaultConfig struct {
					Tracing struct {
						Zipkin struct{ Address string }
					}
				} `json:"defaultConfig"`
				ExtensionProviders []struct {
					Name   string
					Zipkin struct {
						Service string
						Port    int
					}
				} `json:"extensionProviders"`
			} `json:"meshConfig"`
		}
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &op); err != nil {
		t.Fatal(err)
	}
	mc := op.Spec.MeshConfig
	if op.Kind != "IstioOperator" || mc.DefaultConfig.Tracing.Zipkin.Address != "zipkin.istio-system:9411" {
		t.Errorf("IstioOperator tracing address %q", mc.DefaultConfig.Tracing.Zipkin.Address)
	}
	if len(mc.ExtensionProviders) != 1 || mc.ExtensionProviders[0].Zipkin.Service != "meshwave-proxy.meshwave.svc.cluster.local" ||
		mc.ExtensionProviders[0].Zipkin.Port != 9411 {
		t.Errorf("extensionProviders %+v", mc.ExtensionProviders)
	}
	var tel struct {
		Kind string
		Spec struct {
			Tracing []struct{ Providers []struct{ Name string } }
		}
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &tel); err != nil {
		t.Fatal(err)
	}
	if tel.Kind != "Telemetry" || len(tel.Spec.Tracing) != 1 || len(tel.Spec.Tracing[0].Providers) != 1 ||
		tel.Spec.Tracing[0].Providers[0].Name != mc.ExtensionProviders[0].Name {
		t.Errorf("Telemetry does not enable provider %q: %+v", mc.ExtensionProviders[0].Name, tel)
	}
}

var promtoolVersion = regexp.MustCompile(`version (\d+)\.(\d+)\.(\d+)`)

// TestPrometheusConfigPromtool checks the deployed prometheus.yml and
// recording rules with promtool, which CI installs from Debian (2.42.0, the
// pinned image's version). Debian builds Prometheus without Kubernetes
// service discovery, so the kubernetes-pods job's SD is swapped for file_sd,
// as internal/integration does.
func TestPrometheusConfigPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found; CI installs Debian's prometheus package")
		}
		t.Skip("promtool not installed")
	}
	out, _ := exec.Command(promtool, "--version").CombinedOutput()
	m := promtoolVersion.FindStringSubmatch(string(out))
	if m == nil || m[1] != "2" {
		t.Fatalf("promtool is not 2.x: %s", out)
	}
	if v := "v" + m[1] + "." + m[2] + "." + m[3]; !strings.HasSuffix(pinnedPrometheus, ":"+v) {
		t.Logf("promtool %s differs from the pinned %s; checking anyway", v, pinnedPrometheus)
	}

	cm := find[corev1.ConfigMap](t, plainSet(t), "ConfigMap", "prometheus")
	dir := t.TempDir()
	const k8sSD = "  kubernetes_sd_configs:\n  - role: pod\n"
	promYML := cm.Data["prometheus.yml"]
	if strings.Count(promYML, k8sSD) != 1 {
		t.Fatalf("prometheus.yml: kubernetes_sd_configs block not found once")
	}
	promYML = strings.Replace(promYML, k8sSD, "  file_sd_configs:\n  - files: ["+filepath.Join(dir, "pods.json")+"]\n", 1)
	promYML = strings.ReplaceAll(promYML, "/etc/config/", dir+"/")
	for name, content := range map[string]string{"prometheus.yml": promYML, "pods.json": "[]",
		"recording_rules.yml": cm.Data["recording_rules.yml"], "alerting_rules.yml": cm.Data["alerting_rules.yml"],
		"alerts": cm.Data["alerts"],
		// rule_files lists /etc/config/rules, which the ConfigMap lacks:
		// Prometheus globs it to nothing, promtool wants a file.
		"rules": "{}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", filepath.Join(dir, "recording_rules.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
