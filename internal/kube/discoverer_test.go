package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/testlog"
)

// waitTimeout is generous: the shared test machine is slow, and informer
// back-off after an API error starts at 800ms.
const waitTimeout = 15 * time.Second

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder is an apply callback that keeps the latest list and notices
// overlapping calls.
type recorder struct {
	mu         sync.Mutex
	last       map[string]collector.Target
	calls      int
	active     atomic.Int32
	concurrent atomic.Bool
}

func (r *recorder) apply(list []collector.Target) {
	if r.active.Add(1) != 1 {
		r.concurrent.Store(true)
	}
	defer r.active.Add(-1)
	if !slices.IsSortedFunc(list, func(a, b collector.Target) int { return strings.Compare(a.Key, b.Key) }) {
		panic("apply got an unsorted list")
	}
	m := map[string]collector.Target{}
	for _, t := range list {
		m[t.Key] = t
	}
	time.Sleep(time.Millisecond) // widen the window for overlapping calls
	r.mu.Lock()
	r.last, r.calls = m, r.calls+1
	r.mu.Unlock()
}

func (r *recorder) current() map[string]collector.Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) waitFor(t *testing.T, what string, cond func(map[string]collector.Target) bool) map[string]collector.Target {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		cur := r.current()
		if cond(cur) {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; targets: %v", what, slices.Sorted(maps.Keys(cur)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keysAre(keys ...string) func(map[string]collector.Target) bool {
	slices.Sort(keys)
	return func(m map[string]collector.Target) bool { return slices.Equal(slices.Sorted(maps.Keys(m)), keys) }
}

// start runs a Discoverer until the test ends, checking that Run returns
// nil promptly and apply never overlapped.
func start(t *testing.T, client *fake.Clientset, opts Options, tweak ...func(*Discoverer)) (*Discoverer, *recorder) {
	t.Helper()
	rec := &recorder{}
	d, err := New(client, opts, rec.apply)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
		if rec.concurrent.Load() {
			t.Error("apply was called concurrently")
		}
	})
	return d, rec
}

// waitWatch waits until an informer watches resource: the fake clientset
// drops events of objects changed between its list and its watch.
func waitWatch(t *testing.T, client *fake.Clientset, resource string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == resource {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watch on %s", resource)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gathered returns the value of the series of name with exactly labels,
// and whether it exists.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

const web1Key = "shop-pod-web-1:9100/metrics"

func TestDiscovererPodLifecycle(t *testing.T) {
	ctx := context.Background()
	scrape := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
	other := mkPod(podSpec{ns: "shop", name: "cart-1", ip: "10.0.0.8", ann: scrape})
	excludedNS := mkPod(podSpec{ns: "istio-system", name: "istiod-1", ip: "10.0.0.9", ann: scrape})
	excludedLabel := mkPod(podSpec{ns: "shop", name: "quiet-1", ip: "10.0.0.10", ann: scrape,
		labels: map[string]string{"monitoring": "off"}})
	elsewhere := mkPod(podSpec{ns: "shop", name: "web-2", ip: "10.0.0.11", ann: scrape})
	elsewhere.Spec.NodeName = "node-b"
	client := fake.NewClientset(mkPod(web1()), other, excludedNS, excludedLabel, elsewhere)
	reg := prometheus.NewRegistry()
	_, rec := start(t, client, Options{
		Discovery: parseDiscovery(t, "  annotation_excludes:\n  - {namespaces: [istio-system]}\n  - {labels: {monitoring: ['off']}}\n"),
		NodeName:  testNode, Registerer: reg,
	})

	got := rec.waitFor(t, "the initial pods", keysAre(web1Key, "shop-pod-cart-1:9100/metrics"))
	wantWeb1, _ := evalPod(t, newEval(t, ""), mkPod(web1()))
	if !reflect.DeepEqual(got[web1Key], wantWeb1[0]) {
		t.Errorf("web-1: %+v\nwant %+v", got[web1Key], wantWeb1[0])
	}
	cart := got["shop-pod-cart-1:9100/metrics"]
	if v, _ := gathered(t, reg, "kubernetes_collector_discovery_targets_registered", map[string]string{"type": "prometheus"}); v != 2 {
		t.Errorf("targets_registered = %v, want 2", v)
	}
	if v, _ := gathered(t, reg, "kubernetes_collector_discovery_enabled", nil); v != 1 {
		t.Errorf("discovery_enabled = %v, want 1", v)
	}
	waitWatch(t, client, "pods")

	// Relabel: the tags follow; the other target is handed over unchanged,
	// so the collector keeps its loop running.
	p, err := client.CoreV1().Pods("shop").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "storefront"
	if p, err = client.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = rec.waitFor(t, "the new label", func(m map[string]collector.Target) bool {
		return m[web1Key].Source.Tags["label.app"] == "storefront"
	})
	if !reflect.DeepEqual(got["shop-pod-cart-1:9100/metrics"], cart) {
		t.Error("an unrelated target changed")
	}

	// Leaving Running removes the targets at once (the reference waited for
	// the delete); coming back restores them.
	p.Status.Phase = corev1.PodFailed
	if p, err = client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the failed pod to go", keysAre("shop-pod-cart-1:9100/metrics"))
	p.Status.Phase = corev1.PodRunning
	if _, err = client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the pod to come back", keysAre(web1Key, "shop-pod-cart-1:9100/metrics"))

	if err := client.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the deleted pod to go", keysAre("shop-pod-cart-1:9100/metrics"))
	if _, err := client.CoreV1().Pods("shop").Create(ctx, mkPod(podSpec{ns: "shop", name: "new-1", ip: "10.0.0.12", ann: scrape}),
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the new pod", keysAre("shop-pod-cart-1:9100/metrics", "shop-pod-new-1:9100/metrics"))
}

func TestDiscovererBadAnnotationsCounted(t *testing.T) {
	ctx := context.Background()
	bad := mkPod(podSpec{ns: "shop", name: "bad-1", ip: "10.0.0.20", ann: map[string]string{
		"prometheus.io/scrape": "true", "prometheus.io/port": "abc", "prometheus.io/collectionInterval": "5x"}})
	ftp := mkPod(podSpec{ns: "shop", name: "ftp-1", ip: "10.0.0.21", ann: map[string]string{
		"prometheus.io/scrape": "true", "prometheus.io/scheme": "ftp"}})
	client := fake.NewClientset(bad, ftp, mkPod(web1()))
	reg := prometheus.NewRegistry()
	var logs testlog.Buffer
	_, rec := start(t, client, Options{NodeName: testNode, Registerer: reg, Logger: testLogger(&logs)})
	rec.waitFor(t, "the good pod", keysAre(web1Key))

	const skipped = "kubernetes_collector_discovery_skipped"
	series := func(name, reason string) map[string]string {
		return map[string]string{"kind": "pod", "namespace": "shop", "name": name, "reason": reason}
	}
	for _, c := range []struct{ pod, reason string }{{"bad-1", "bad_port"}, {"ftp-1", "bad_scheme"}} {
		if v, _ := gathered(t, reg, skipped, series(c.pod, c.reason)); v != 1 {
			t.Errorf("%s %s = %v, want 1", c.pod, c.reason, v)
		}
	}
	// Evaluation stops at the first bad setting, as the reference does.
	if _, ok := gathered(t, reg, skipped, series("bad-1", "bad_interval")); ok {
		t.Error("one reason per failed target")
	}
	out := logs.String()
	if !strings.Contains(out, `discovery skipped pod shop/bad-1: port \"abc\"`) || !strings.Contains(out, `shop/ftp-1: scheme \"ftp\"`) {
		t.Errorf("log lines must name the pod and the value:\n%s", out)
	}

	// Status churn does not re-log or re-count; deleting the pod drops its
	// series.
	waitWatch(t, client, "pods")
	bad.Labels = map[string]string{"touched": "yes"}
	if _, err := client.CoreV1().Pods("shop").Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods("shop").Delete(ctx, "ftp-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, ok := gathered(t, reg, skipped, series("ftp-1", "bad_scheme")); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted pod's skipped series stayed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, _ := gathered(t, reg, skipped, series("bad-1", "bad_port")); v != 1 {
		t.Errorf("bad-1 counted again after an update: %v", v)
	}
	if n := strings.Count(logs.String(), "shop/bad-1:"); n != 1 {
		t.Errorf("bad-1 logged %d times, want 1", n)
	}
}

func annotatedService(name, ip string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
		Spec: corev1.ServiceSpec{ClusterIP: ip},
	}
}

func TestDiscovererServicesWhileLeading(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(mkPod(web1()), annotatedService("api", "10.96.0.10"),
		annotatedService("headless", "None"))
	// Shards do not apply to services: only the leader watches them.
	d, rec := start(t, client, Options{NodeName: testNode, Shards: 1000, ShardIndex: ShardOf(web1Key, 1000)})
	rec.waitFor(t, "the pod", keysAre(web1Key))

	d.SetWatchServices(true)
	got := rec.waitFor(t, "the service", keysAre(web1Key, "shop-service-api:8080/metrics"))
	if s := got["shop-service-api:8080/metrics"]; s.Source.URL != "http://10.96.0.10:8080/metrics" ||
		!reflect.DeepEqual(s.Source.Tags, map[string]string{"service": "api", "namespace": "shop"}) {
		t.Errorf("service target: %+v", s)
	}
	waitWatch(t, client, "services")

	// A deleted service's target goes (the reference re-discovered instead).
	if err := client.CoreV1().Services("shop").Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the deleted service to go", keysAre(web1Key))
	if _, err := client.CoreV1().Services("shop").Create(ctx, annotatedService("cart", "10.96.0.11"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the new service", keysAre(web1Key, "shop-service-cart:8080/metrics"))

	d.SetWatchServices(false)
	rec.waitFor(t, "service targets to go on demotion", keysAre(web1Key))
	d.SetWatchServices(true)
	rec.waitFor(t, "service targets back on election", keysAre(web1Key, "shop-service-cart:8080/metrics"))
}

// A delete the informer missed arrives as a tombstone; its targets go
// (the reference ignored tombstones and leaked them).
func TestDiscovererTombstone(t *testing.T) {
	pod := mkPod(web1())
	client := fake.NewClientset(pod)
	d, rec := start(t, client, Options{NodeName: testNode})
	rec.waitFor(t, "the pod", keysAre(web1Key))
	d.remove(kindPod, 0, cache.DeletedFinalStateUnknown{Key: "shop/web-1", Obj: pod})
	rec.waitFor(t, "the tombstoned pod to go", keysAre())
	d.upsert(kindPod, 0, pod)
	rec.waitFor(t, "the pod again", keysAre(web1Key))
	// A tombstone without a usable object still carries the key.
	d.remove(kindPod, 0, cache.DeletedFinalStateUnknown{Key: "shop/web-1"})
	rec.waitFor(t, "the pod to go again", keysAre())
}

func TestDiscovererForbiddenThenAllowed(t *testing.T) {
	client := fake.NewClientset(mkPod(web1()))
	var lists atomic.Int32
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) <= 2 {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
				errors.New(`User "system:serviceaccount:monitoring:meshwave" cannot list resource "pods"`))
		}
		return false, nil, nil
	})
	reg := prometheus.NewRegistry()
	var logs testlog.Buffer
	_, rec := start(t, client, Options{NodeName: testNode, Registerer: reg, Logger: testLogger(&logs)})
	rec.waitFor(t, "the pod once RBAC allows it", keysAre(web1Key))
	out := logs.String()
	if n := strings.Count(out, "cannot list/watch pods"); n != 1 {
		t.Errorf("%d error lines, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "grant the collector's service account list and watch on pods") {
		t.Errorf("no RBAC hint:\n%s", out)
	}
	if v, _ := gathered(t, reg, "kubernetes_collector_discovery_watch_errors", map[string]string{"resource": "pod"}); v != 2 {
		t.Errorf("watch_errors = %v, want 2", v)
	}
}

func TestDiscovererUnreachable(t *testing.T) {
	client := fake.NewClientset(mkPod(web1()))
	client.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
	})
	var logs testlog.Buffer
	d, rec := start(t, client, Options{NodeName: testNode, Logger: testLogger(&logs)})
	d.SetWatchServices(true)
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(logs.String(), "cannot list/watch services") || !strings.Contains(logs.String(), "cannot list/watch pods") {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "is the API server reachable") {
		t.Errorf("no reachability hint:\n%s", logs.String())
	}
	if rec.current() != nil {
		t.Errorf("apply called without any data: %v", rec.current())
	}
	// Run is still going; the cleanup checks it returns nil on cancel.
}

func TestDiscovererShards(t *testing.T) {
	var pods []runtime.Object
	want := map[string]bool{}
	for i := range 40 {
		p := mkPod(podSpec{ns: "mesh", name: fmt.Sprint("app-", i), ip: fmt.Sprint("10.1.0.", i),
			ann: map[string]string{"prometheus.io/scrape": "true"}})
		pods = append(pods, p)
		want[fmt.Sprintf("mesh-pod-app-%d/metrics", i)] = true
	}
	client := fake.NewClientset(pods...)
	const shards = 3
	recs := make([]*recorder, shards)
	for i := range shards {
		// Each shard registers the same metric names: separate registries.
		_, recs[i] = start(t, client, Options{Shards: shards, ShardIndex: i, Registerer: prometheus.NewRegistry()})
	}
	seen := map[string]int{}
	for i, rec := range recs {
		got := rec.waitFor(t, fmt.Sprint("shard ", i), func(m map[string]collector.Target) bool { return len(m) > 0 })
		for k := range got {
			seen[k]++
			if ShardOf(k, shards) != i {
				t.Errorf("shard %d got %s", i, k)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d targets across shards, want %d", len(seen), len(want))
	}
	for k, n := range seen {
		if !want[k] || n != 1 {
			t.Errorf("%s scraped by %d shards", k, n)
		}
	}
	if _, err := New(client, Options{Shards: 3, ShardIndex: 3}, func([]collector.Target) {}); err == nil {
		t.Error("shard index 3 of 3 must be rejected")
	}
}

func TestDiscovererNodeRules(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode, Labels: map[string]string{"kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.5"},
				{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
		},
	}
	other := node.DeepCopy()
	other.Name = "node-b"
	client := fake.NewClientset(node, other)
	disc := parseDiscovery(t, `  plugins:
  - name: kubelet
    type: prometheus
    selectors: {resourceType: node}
    scheme: https
    port: 10250
    path: /metrics/cadvisor
`)
	_, rec := start(t, client, Options{Discovery: disc, NodeName: testNode},
		func(d *Discoverer) { d.nodeDelay = 10 * time.Millisecond })
	got := rec.waitFor(t, "the node target", keysAre("node-node-a:10250/metrics/cadvisor"))
	s := got["node-node-a:10250/metrics/cadvisor"]
	if s.Source.URL != "https://192.168.1.10:10250/metrics/cadvisor" || s.Discovered != "rule" ||
		!reflect.DeepEqual(s.Source.Tags, map[string]string{"node": testNode}) || s.Source.Source != testNode {
		t.Errorf("node target: %+v", s)
	}
}
