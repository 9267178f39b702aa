package deploytest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshwave/meshwave/internal/config"
)

// pinnedPrometheus is the Prometheus image deploy/ pins: a 2.x (3.x rewrites
// `le` and rejects scrapes without a Content-Type), the version
// internal/integration runs.
const pinnedPrometheus = "prom/prometheus:v2.42.0"

// referenceManifest is the repository's verbatim copy of the integration's
// istio/prometheus.yaml.
const referenceManifest = repoRoot + "/internal/integration/testdata/istio-prometheus.yaml"

// checkPods applies the rules every workload in deploy/ follows: non-root,
// pinned images, requests and memory limits, read-only root filesystem, no
// privilege escalation, and a selector that matches its own template.
func checkPods(t *testing.T, objs []object) {
	t.Helper()
	n := 0
	for _, o := range objs {
		tpl := podSpec(o)
		if tpl == nil {
			continue
		}
		n++
		where := o.key()
		if sel := selectorOf(o); sel == nil || !labels.SelectorFromSet(sel).Matches(labels.Set(tpl.Labels)) {
			t.Errorf("%s: selector %v does not match template labels %v", where, sel, tpl.Labels)
		}
		ps := tpl.Spec.SecurityContext
		podNonRoot := ps != nil && ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
		if !podNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
		}
		for _, c := range tpl.Spec.Containers {
			cw := where + " container " + c.Name
			if msg := unpinned(c.Image); msg != "" {
				t.Errorf("%s: image %q %s", cw, c.Image, msg)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: needs cpu and memory requests", cw)
			}
			if c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: needs a memory limit", cw)
			}
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s: no securityContext", cw)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s: root filesystem is writable", cw)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: allowPrivilegeEscalation is not false", cw)
			case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
				t.Errorf("%s: capabilities not dropped", cw)
			}
		}
	}
	if n == 0 {
		t.Error("no workloads")
	}
}

// unpinned says why an image reference is not pinned, or "" if it is.
func unpinned(image string) string {
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	switch {
	case colon < slash+1:
		return "has no tag"
	case image[colon+1:] == "latest":
		return "is :latest"
	}
	return ""
}

func selectorOf(o object) map[string]string {
	switch v := o.obj.(type) {
	case *appsv1.Deployment:
		return v.Spec.Selector.MatchLabels
	case *appsv1.DaemonSet:
		return v.Spec.Selector.MatchLabels
	case *appsv1.StatefulSet:
		return v.Spec.Selector.MatchLabels
	}
	return nil
}

// checkReferences checks that names objects use resolve within the set:
// Service selectors and target ports, ConfigMap and PVC volumes, service
// accounts, RBAC subjects and roles. Secrets named in externalSecrets are
// created by the user and may be absent.
func checkReferences(t *testing.T, objs []object, externalSecrets ...string) {
	t.Helper()
	has := map[string]bool{}
	for _, o := range objs {
		has[o.kind+"/"+o.namespace+"/"+o.name] = true
	}
	need := func(where, kind, ns, name string) {
		if !has[kind+"/"+ns+"/"+name] {
			t.Errorf("%s refers to %s %s/%s, which is not defined", where, kind, ns, name)
		}
	}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			if v.Spec.Type == corev1.ServiceTypeExternalName {
				continue
			}
			checkServiceBackends(t, o, v, objs)
		case *rbacv1.ClusterRoleBinding:
			need(o.key(), "ClusterRole", "", v.RoleRef.Name)
			for _, s := range v.Subjects {
				need(o.key(), "ServiceAccount", s.Namespace, s.Name)
			}
		case *rbacv1.RoleBinding:
			need(o.key(), v.RoleRef.Kind, o.namespace, v.RoleRef.Name)
			for _, s := range v.Subjects {
				need(o.key(), "ServiceAccount", s.Namespace, s.Name)
			}
		}
		tpl := podSpec(o)
		if tpl == nil {
			continue
		}
		if sa := tpl.Spec.ServiceAccountName; sa != "" {
			need(o.key(), "ServiceAccount", o.namespace, sa)
		}
		claims := map[string]bool{}
		if sts, ok := o.obj.(*appsv1.StatefulSet); ok {
			for _, c := range sts.Spec.VolumeClaimTemplates {
				claims[c.Name] = true
			}
		}
		for _, v := range tpl.Spec.Volumes {
			claims[v.Name] = true
			switch {
			case v.ConfigMap != nil:
				need(o.key(), "ConfigMap", o.namespace, v.ConfigMap.Name)
			case v.PersistentVolumeClaim != nil:
				need(o.key(), "PersistentVolumeClaim", o.namespace, v.PersistentVolumeClaim.ClaimName)
			}
		}
		for _, c := range tpl.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if !claims[m.Name] {
					t.Errorf("%s container %s mounts undefined volume %q", o.key(), c.Name, m.Name)
				}
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && !slices.Contains(externalSecrets, r.SecretKeyRef.Name) {
					need(o.key(), "Secret", o.namespace, r.SecretKeyRef.Name)
				}
			}
		}
	}
}

// checkServiceBackends checks that a Service selects exactly one workload
// and that each named targetPort is one of its container ports.
func checkServiceBackends(t *testing.T, o object, svc *corev1.Service, objs []object) {
	t.Helper()
	var backends []object
	for _, w := range objs {
		if tpl := podSpec(w); tpl != nil && w.namespace == o.namespace &&
			labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tpl.Labels)) {
			backends = append(backends, w)
		}
	}
	if len(backends) != 1 {
		t.Errorf("Service %s selects %d workloads, want 1", o.name, len(backends))
		return
	}
	ports := map[string]int32{}
	for _, c := range podSpec(backends[0]).Spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
			ports[strconv.Itoa(int(p.ContainerPort))] = p.ContainerPort
		}
	}
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		if _, ok := ports[target.String()]; !ok {
			t.Errorf("Service %s port %d: targetPort %s is not a container port of %s", o.name, p.Port, target.String(), backends[0].key())
		}
	}
}

// container returns the named container of a workload.
func container(t *testing.T, objs []object, kind, name, ctr string) *corev1.Container {
	t.Helper()
	for _, o := range objs {
		if o.kind != kind || o.name != name {
			continue
		}
		for i, c := range podSpec(o).Spec.Containers {
			if c.Name == ctr {
				return &podSpec(o).Spec.Containers[i]
			}
		}
	}
	t.Fatalf("no container %s in %s/%s", ctr, kind, name)
	return nil
}

// flag returns the value following name in args.
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// checkCollector loads the collector ConfigMap with meshwave's own parser and
// checks the workload that reads it.
func checkCollector(t *testing.T, objs []object, collectorKind, ns, wantCluster string) {
	t.Helper()
	cm := find[corev1.ConfigMap](t, objs, "ConfigMap", "meshwave-collector")
	cfg, warnings, err := config.Parse([]byte(cm.Data["config.yaml"]), "config.yaml")
	if err != nil {
		t.Fatalf("collector config.yaml: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("collector config.yaml: warning %s", w)
	}
	// Lint flags an allow list that blocks metrics the Istio dashboards
	// query: the seed's misses pilot.proxy.queue.time.bucket.value.
	for _, w := range config.Lint(cfg) {
		t.Errorf("collector config.yaml: lint %s", w)
	}
	if cfg.ClusterName != wantCluster {
		t.Errorf("clusterName = %q, want %q", cfg.ClusterName, wantCluster)
	}
	if !cfg.EnableDiscovery {
		t.Error("enableDiscovery is off")
	}
	if len(cfg.Sources.PrometheusSources) == 0 || !strings.Contains(cfg.Sources.PrometheusSources[0].URL, "prometheus.istio-system.svc.cluster.local:9090/federate") {
		t.Errorf("no Istio federation source: %+v", cfg.Sources.PrometheusSources)
	}
	ex := cfg.Discovery.AnnotationExcludes
	if len(ex) != 1 || !slices.Equal(ex[0].Namespaces, []string{"istio-system"}) {
		t.Errorf("discovery.annotation_excludes = %+v, want istio-system", ex)
	}
	if len(cfg.Sinks) != 1 {
		t.Fatalf("%d sinks, want 1", len(cfg.Sinks))
	}
	s := cfg.Sinks[0]
	if want := "meshwave-proxy." + ns + ".svc"; s.ProxyHost != want || s.ProxyPort != 2878 {
		t.Errorf("sink proxyAddress %q, want %s:2878", s.ProxyAddress, want)
	}
	if !servicePort(objs, ns, "meshwave-proxy", 2878) {
		t.Errorf("Service meshwave-proxy in %s has no port 2878", ns)
	}

	c := container(t, objs, collectorKind, "meshwave-collector", "collector")
	if path, _ := flag(c.Args, "--config"); len(c.Args) == 0 || c.Args[0] != "collector" || path != "/etc/collector/config.yaml" {
		t.Errorf("collector args %q", c.Args)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/collector" }) {
		t.Error("collector: config not mounted at /etc/collector")
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		default:
			env[e.Name] = e.Value
		}
	}
	for k, v := range map[string]string{"POD_NODE_NAME": "field:spec.nodeName",
		"POD_NAMESPACE_NAME": "field:metadata.namespace", "INSTALLATION_METHOD": "manual"} {
		if env[k] != v {
			t.Errorf("collector env %s = %q, want %q", k, env[k], v)
		}
	}
	if addr, _ := flag(c.Args, "--metrics-addr"); c.LivenessProbe == nil || addr != ":9102" {
		t.Errorf("collector: self-metrics on %q, liveness %v; want :9102 and a probe", addr, c.LivenessProbe)
	}
}

func servicePort(objs []object, ns, name string, port int32) bool {
	for _, o := range objs {
		if svc, ok := o.obj.(*corev1.Service); ok && o.namespace == ns && o.name == name {
			for _, p := range svc.Spec.Ports {
				if p.Port == port {
					return true
				}
			}
		}
	}
	return false
}

// checkProxy checks the proxy's flags, token plumbing and buffer volume.
func checkProxy(t *testing.T, objs []object, ns, wantServer string) {
	t.Helper()
	d := find[appsv1.Deployment](t, objs, "Deployment", "meshwave-proxy")
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("proxy strategy %q, want Recreate (ReadWriteOnce buffer)", d.Spec.Strategy.Type)
	}
	c := container(t, objs, "Deployment", "meshwave-proxy", "proxy")
	want := map[string]string{"--pushListenerPorts": "2878", "--traceZipkinListenerPorts": "9411",
		"--server": wantServer, "--token": "$(MESHWAVE_TOKEN)", "--buffer": "/var/spool/meshwave/buffer"}
	for k, v := range want {
		if got, _ := flag(c.Args, k); got != v {
			t.Errorf("proxy %s = %q, want %q", k, got, v)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "MESHWAVE_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}) {
		t.Error("proxy: MESHWAVE_TOKEN does not come from a Secret")
	}
	pvc := find[corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", "meshwave-proxy-buffer")
	size := pvc.Spec.Resources.Requests.Storage().Value()
	maxBytes, _ := flag(c.Args, "--bufferMaxBytes")
	if n, err := strconv.ParseInt(maxBytes, 10, 64); err != nil || n <= 0 || n >= size {
		t.Errorf("proxy --bufferMaxBytes %q must be positive and below the %d-byte volume", maxBytes, size)
	}
	if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
		t.Errorf("buffer PVC access modes %v", pvc.Spec.AccessModes)
	}
	for _, p := range []int32{2878, 9411} {
		if !servicePort(objs, ns, "meshwave-proxy", p) {
			t.Errorf("Service meshwave-proxy has no port %d", p)
		}
	}
}

// checkTraceRedirect checks istio-system/zipkin aliases the proxy Service,
// which must expose Zipkin's port.
func checkTraceRedirect(t *testing.T, objs []object, ns string) {
	t.Helper()
	svc := find[corev1.Service](t, objs, "Service", "zipkin")
	want := "meshwave-proxy." + ns + ".svc.cluster.local"
	if svc.Namespace != "istio-system" || svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != want {
		t.Errorf("zipkin Service: %s %s → %q, want istio-system ExternalName → %q", svc.Namespace, svc.Spec.Type, svc.Spec.ExternalName, want)
	}
	if !servicePort(objs, ns, "meshwave-proxy", 9411) {
		t.Error("the redirect's target has no port 9411")
	}
}

// checkPrometheus checks the federation deployment: the integration's
// ConfigMap data verbatim, the pinned 2.x image, the Service the collector
// scrapes.
func checkPrometheus(t *testing.T, objs []object) {
	t.Helper()
	ref := referenceConfigMap(t)
	cm := find[corev1.ConfigMap](t, objs, "ConfigMap", "prometheus")
	for _, k := range []string{"prometheus.yml", "recording_rules.yml", "alerting_rules.yml", "alerts"} {
		if cm.Data[k] != ref.Data[k] {
			t.Errorf("ConfigMap prometheus %s differs from the integration's:\n%s", k, firstDiff(cm.Data[k], ref.Data[k]))
		}
	}
	c := container(t, objs, "Deployment", "prometheus", "prometheus-server")
	if c.Image != pinnedPrometheus {
		t.Errorf("Prometheus image %q, want %q", c.Image, pinnedPrometheus)
	}
	if cm.Namespace != "istio-system" || !servicePort(objs, "istio-system", "prometheus", 9090) {
		t.Error("Prometheus must be Service prometheus:9090 in istio-system, the collector's source URL")
	}
}

func referenceConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	data, err := os.ReadFile(referenceManifest)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeStream(data, referenceManifest)
	if err != nil {
		t.Fatal(err)
	}
	return find[corev1.ConfigMap](t, objs, "ConfigMap", "prometheus")
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, gl, wl)
		}
	}
	return "(identical lines; different lengths)"
}
