package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
)

// Discovered targets run through the real collector: the points carry the
// pod, namespace and label.* tags, the rule's prefix and filter apply.
func TestDiscoveredTargetsThroughCollector(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 7\n# TYPE go_goroutines gauge\ngo_goroutines 12\n")
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	out := filepath.Join(t.TempDir(), "points.wf")
	cfg, _, err := config.Parse(fmt.Appendf(nil, `
enableDiscovery: true
sinks:
- file: %s
sources:
  kubernetes_source: {}
discovery:
  plugins:
  - name: apps
    type: prometheus
    selectors: {namespaces: [shop]}
    port: "%s"
    prefix: shop.
    tags: {team: payments}
    filters: {metricAllowList: ['shop.app.*']}
`, out, port), "collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := collector.New(cfg, collector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(fake.NewClientset(), Options{Discovery: cfg.Discovery, DefaultCollectionInterval: cfg.DefaultCollectionInterval,
		NodeName: testNode}, func(list []collector.Target) { c.SetTargets("kubernetes", list) })
	if err != nil {
		t.Fatal(err)
	}
	s := web1()
	s.ip, s.ann = host, nil
	r, _ := podResource(mkPod(s), testNode)
	targets, skips := d.eval.evaluate(&r)
	if len(targets) != 1 || len(skips) != 0 {
		t.Fatalf("targets %+v, skips %v", targets, skips)
	}
	d.apply(targets)
	if _, err := c.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, `"shop.app.requests.total`) {
			line = l
		}
		if strings.Contains(l, "go.goroutines") {
			t.Errorf("the rule's filter did not apply: %s", l)
		}
	}
	for _, tag := range []string{`"pod"="web-1"`, `"namespace"="shop"`, `"label.app"="web"`, `"team"="payments"`,
		`"code"="200"`, `source="node-a"`} {
		if !strings.Contains(line, tag) {
			t.Errorf("point lacks %s: %q", tag, line)
		}
	}
	if strings.Contains(line, "pod-template-hash") {
		t.Errorf("pod-template-hash must not be a tag: %s", line)
	}
}
