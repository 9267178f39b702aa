package server

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestUIPagesAndAssets(t *testing.T) {
	ts := start(t, Config{Tokens: []string{"secret"}}) // pages and assets need no token
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "/ui/app.js"},
		{"/data-plane", "text/html", "uPlot.iife.min.js"},
		{"/control-plane", "text/html", "<main"},
		{"/metrics-browser", "text/html", "<main"},
		{"/traces", "text/html", "<main"},
		{"/ui/app.js", "text/javascript", "Istio Control Plane"},
		{"/ui/style.css", "text/css", ".chart"},
		{"/ui/vendor/uPlot.iife.min.js", "text/javascript", "uPlot"},
		{"/ui/vendor/uPlot.min.css", "text/css", ".uplot"},
		{"/ui/vendor/uPlot.LICENSE", "", "MIT"},
	} {
		resp, err := http.Get(ts.url + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", c.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
	for _, p := range []string{"/nope", "/ui/nope.js", "/data-plane/x"} {
		resp, err := http.Get(ts.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestUINoRemoteResources keeps the UI self-contained: no CDN, fonts or
// other remote URLs in our own files.
func TestUINoRemoteResources(t *testing.T) {
	remote := regexp.MustCompile(`https?://[^"'\s)]+`)
	for _, f := range []string{"web/index.html", "web/app.js", "web/style.css"} {
		b, err := webFiles.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range remote.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s references %s", f, u)
			}
		}
	}
}

// TestUIDashboardMetrics checks that the dashboards name the metrics of
// the acceptance queries (internal/wql/dashboards_test.go).
func TestUIDashboardMetrics(t *testing.T) {
	b, err := webFiles.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, m := range []string{
		"istio.requests.total.value", "istio.request.bytes.sum.value", "istio.response.bytes.count.value",
		"istio.request.duration.milliseconds.bucket.value", "istio.tcp.sent.bytes.total.value",
		"istio.tcp.connections.closed.total.value", "istio.build.value", "pilot.services.value",
		"pilot.xds.${m}.reject.value", "sidecar.injection.${m}.total.value", "process.cpu.seconds.total.value",
		"pilot.xds.pushes.value", "pilot.virt.services.value", "pilot.proxy.convergence.time.bucket.value", "pilot.proxy.queue.time.bucket.value",
		"galley.validation.${m}.value", "citadel.server.root.cert.expiry.timestamp.value", "go.memstats.heap.${m}.bytes.value",
	} {
		if !strings.Contains(js, m) {
			t.Errorf("app.js lacks %s", m)
		}
	}
}
