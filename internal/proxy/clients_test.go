package proxy

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	zipkingo "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"github.com/wavefronthq/wavefront-sdk-go/histogram"
	"github.com/wavefronthq/wavefront-sdk-go/senders"
)

func port(a net.Addr) int { return a.(*net.TCPAddr).Port }

// The Go SDK's proxy sender and direct sender both deliver through the
// proxy to the backend, converted as the reference would.
func TestWavefrontSDKSenders(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.srv.URL, nil)
	push := port(p.Addr("push", "0"))
	now := time.Now().Unix()

	proxySender, err := senders.NewSender(fmt.Sprintf("http://127.0.0.1:%d", push), senders.TracesPort(push), senders.SendInternalMetrics(false), senders.FlushInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	directSender, err := senders.NewSender(fmt.Sprintf("http://token@127.0.0.1:%d", push), senders.SendInternalMetrics(false), senders.FlushInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []senders.Sender{proxySender, directSender} {
		if err := s.SendMetric("app.requests", 42, now, "web-1", map[string]string{"env": "prod", "tag": "x"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SendDeltaCounter("jobs.done", 3, "w1", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SendDistribution("latency", []histogram.Centroid{{Value: 1.5, Count: 3}, {Value: 2, Count: 1}},
			map[histogram.Granularity]bool{histogram.MINUTE: true}, now, "web-1", map[string]string{"env": "prod"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SendSpan("getUser", now*1000, 12, "web-1", "7b3bf470-9456-11e8-9eb6-529269fb1459", "0313bafe-9457-11e8-9eb6-529269fb1459",
			nil, nil, []senders.SpanTag{{Key: "application", Value: "shop"}, {Key: "service", Value: "users"}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	proxySender.Close()
	directSender.Close()
	waitFor(t, "two copies of every line", 10*time.Second, func() bool {
		return len(b.get("wavefront")) >= 4 && len(b.get("histogram")) >= 2 && len(b.get("trace")) >= 2
	})
	want := fmt.Sprintf(`"app.requests" 42 %d source="web-1" "env"="prod" "_tag"="x"`, now)
	for _, l := range b.get("wavefront") {
		if strings.HasPrefix(l, `"app.requests"`) && !sameTags(l, want) {
			t.Errorf("got %s\nwant %s", l, want)
		}
		if strings.Contains(l, "jobs.done") && !strings.HasPrefix(l, "\"\u2206jobs.done\" 3") {
			t.Errorf("delta counter: %s", l)
		}
	}
	for _, l := range b.get("histogram") {
		// The minute bin's start, as the reference forwards it (proxy.md §3.2).
		// Centroid order is the SDK's, not fixed.
		okOrder := strings.HasPrefix(l, fmt.Sprintf("!M %d #3 1.5 #1 2 \"latency\" source=\"web-1\"", now/60*60)) ||
			strings.HasPrefix(l, fmt.Sprintf("!M %d #1 2 #3 1.5 \"latency\" source=\"web-1\"", now/60*60))
		if !okOrder {
			t.Errorf("histogram: %s", l)
		}
	}
	for _, l := range b.get("trace") {
		if !strings.Contains(l, `"getUser" source="web-1" spanId="0313bafe-9457-11e8-9eb6-529269fb1459" traceId="7b3bf470-9456-11e8-9eb6-529269fb1459" "application"="shop" "service"="users"`) {
			t.Errorf("span: %s", l)
		}
	}
	for _, tok := range b.tokens {
		if tok != "Bearer secret" {
			t.Errorf("backend saw Authorization %q", tok)
		}
	}
}

// sameTags compares two metric lines with their tags in any order.
func sameTags(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) != len(fb) {
		return false
	}
	seen := map[string]int{}
	for _, f := range fa {
		seen[f]++
	}
	for _, f := range fb {
		seen[f]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// zipkin-go's HTTP reporter posts JSON v2 to the Zipkin port; the spans and
// their RED metrics reach the backend.
func TestZipkinGoReporter(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.srv.URL, nil)
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v2/spans", port(p.Addr("zipkin", "0")))
	rep := zipkinhttp.NewReporter(url, zipkinhttp.BatchInterval(20*time.Millisecond))
	ep, _ := zipkingo.NewEndpoint("ratings.default", "10.1.2.3:9080")
	tracer, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(ep))
	if err != nil {
		t.Fatal(err)
	}
	span := tracer.StartSpan("ratings.default.svc.cluster.local:9080/*", zipkingo.Kind(model.Server))
	span.Tag("http.status_code", "503")
	span.Tag("error", "true")
	span.Tag("component", "proxy")
	span.Tag("guid:x-request-id", "abc")
	span.Annotate(time.Now(), "retry")
	span.Finish()
	if err := rep.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the span", 10*time.Second, func() bool { return len(b.get("trace")) == 1 && len(b.get("spanLogs")) == 1 })
	l := b.get("trace")[0]
	for _, want := range []string{`"ratings.default.svc.cluster.local:9080/-" source="zipkin"`, `"span.kind"="server"`, `"service"="ratings.default"`,
		`"error"="true"`, `"guid-x-request-id"="abc"`, `"application"="Zipkin"`, `"cluster"="none"`, `"_spanLogs"="true"`, `"ipv4"="10.1.2.3"`} {
		if !strings.Contains(l, want) {
			t.Errorf("span line lacks %s:\n%s", want, l)
		}
	}
	// RED metrics are flushed at shutdown at the latest.
	p.Close()
	if len(b.get("wavefront")) != 0 {
		return // a minute boundary passed; fine either way
	}
}
