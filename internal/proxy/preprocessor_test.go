package proxy

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeAtomic replaces path the way a ConfigMap update does: write, rename.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Rules are keyed 'global' because test ports are only known once bound.
const rulesV1 = `
global:
  - {rule: drop-envoy, action: block, scope: metricName, match: "envoy_.*"}
  - {rule: cluster, action: addTag, tag: cluster, value: prod-eu}
  - {rule: reqid, action: spanRenameAnnotation, key: guid-x-request-id, newkey: request_id}
`

const rulesV2 = `
global:
  - {rule: drop-istio, action: block, scope: metricName, match: "istio_.*"}
  - {rule: cluster, action: addTag, tag: cluster, value: prod-us}
`

// --preprocessorConfigFile: block, addTag and a span rule on the Zipkin
// port apply, and an atomic replacement of the file changes behaviour
// without a restart.
func TestPreprocessorRules(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomic(t, path, rulesV1)
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, func(c *Config) { c.PreprocessorConfigFile = path })
	pp := portOf(p.Addr("push", "0").String())
	zipkinURL := fmt.Sprintf("http://%s/api/v2/spans", p.Addr("zipkin", "0"))
	ts := time.Now().Unix()
	send := func(gen int) {
		body := fmt.Sprintf("envoy_x 1 %d source=s gen=%d\nistio_y 1 %d source=s gen=%d\n", ts, gen, ts, gen)
		if code := postLines(t, p, "?f=wavefront", body); code != http.StatusAccepted {
			t.Fatalf("status %d", code)
		}
		span := fmt.Sprintf(`[{"traceId":"5af7183fb1d4cf5f","id":"%016x","name":"op%d","timestamp":%d,"duration":1500,"kind":"SERVER","localEndpoint":{"serviceName":"web"},"tags":{"guid:x-request-id":"abc"}}]`,
			gen, gen, time.Now().UnixMicro())
		if code, msg := do(t, "POST", zipkinURL, []byte(span)); code != http.StatusAccepted {
			t.Fatalf("zipkin: %d %s", code, msg)
		}
	}
	metricLines := func(gen int) []string {
		var out []string
		for _, l := range b.get("wavefront") {
			if strings.Contains(l, fmt.Sprintf(`"gen"="%d"`, gen)) {
				out = append(out, l)
			}
		}
		return out
	}

	send(1)
	waitFor(t, "generation 1", 10*time.Second, func() bool { return len(metricLines(1)) == 1 && hasLine(b.get("trace"), `"op1"`) })
	if l := metricLines(1)[0]; !strings.HasPrefix(l, `"istio_y"`) || !strings.Contains(l, `"cluster"="prod-eu"`) {
		t.Errorf("v1 rules: got %s", l)
	}
	if v := value(p.m.blocked.WithLabelValues(entityPoints, pp)); v != 1 {
		t.Errorf("proxy_blocked = %v, want 1", v)
	}
	for _, l := range b.get("trace") {
		if strings.Contains(l, `"op1"`) && (!strings.Contains(l, `"request_id"="abc"`) || strings.Contains(l, "guid")) {
			t.Errorf("span rule not applied: %s", l)
		}
	}

	writeAtomic(t, path, rulesV2)
	// The file is polled every 10 s; keep sending until the new rules show.
	deadline := time.Now().Add(25 * time.Second)
	for gen := 2; ; gen++ {
		send(gen)
		waitFor(t, "a generation", 10*time.Second, func() bool { return len(metricLines(gen)) == 1 })
		l := metricLines(gen)[0]
		if strings.HasPrefix(l, `"envoy_x"`) {
			if !strings.Contains(l, `"cluster"="prod-us"`) {
				t.Errorf("v2 rules: got %s", l)
			}
			waitFor(t, "the span", 10*time.Second, func() bool { return hasLine(b.get("trace"), fmt.Sprintf(`"op%d"`, gen)) })
			for _, s := range b.get("trace") {
				if strings.Contains(s, fmt.Sprintf(`"op%d"`, gen)) && !strings.Contains(s, `"guid-x-request-id"="abc"`) {
					t.Errorf("span rule still applied after reload: %s", s)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced rules file was not applied")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
