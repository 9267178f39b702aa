package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// sendTCP writes data on a new connection to the push port and closes it.
func sendTCP(t *testing.T, addr net.Addr, data []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

func hasLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// Malformed lines among good ones, on TCP and HTTP: the good ones are
// delivered, the bad ones counted per code and written to the blocked log;
// an over-long line is dropped and the connection goes on.
func TestBadLines(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, logs := startProxyLog(t, b.srv.URL, func(c *Config) {
		c.PushListenerMaxReceivedLength = 1024
		// Room for all 8 blocked lines: TCP and HTTP are read concurrently,
		// so under the default 5 the HTTP ones could use up the budget
		// before the TCP connection's too-long lines are logged.
		c.PushBlockedSamples = 100
	})
	addr := p.Addr("push", "0")
	pp := portOf(addr.String())
	ts := time.Now().Unix()
	good := func(tag string, i int) string { return fmt.Sprintf("good.%s 1 %d source=s i=%d\n", tag, ts, i) }
	var tcp bytes.Buffer
	tcp.WriteString(good("tcp", 0))
	tcp.WriteString("this line has no value\n")                               // WF-300
	fmt.Fprintf(&tcp, "bad:name 1 %d source=s\n", ts)                         // WF-400
	fmt.Fprintf(&tcp, "old.point 1 %d source=s\n", ts-2*365*24*3600)          // WF-402
	fmt.Fprintf(&tcp, "m 1 %d source=s %s=v\n", ts, strings.Repeat("k", 300)) // WF-411
	tcp.WriteString(good("tcp", 1))
	fmt.Fprintf(&tcp, "long.line 1 %d source=s pad=%s\n", ts, strings.Repeat("x", 2000)) // over 1024: TOO_LONG
	tcp.WriteString(good("tcp", 2))
	fmt.Fprintf(&tcp, "huge.line 1 %d source=s pad=%s\n", ts, strings.Repeat("y", 200<<10)) // over bufio's 64 KiB too
	tcp.WriteString(good("tcp", 3))
	sendTCP(t, addr, tcp.Bytes())

	body := good("http", 0) + "nope\n" + good("http", 1) + fmt.Sprintf("m 1 %d source=\"\"\n", ts) + good("http", 2)
	if code := postLines(t, p, "?f=wavefront", body); code != http.StatusAccepted {
		t.Fatalf("HTTP with bad lines: %d, want 202", code)
	}
	waitFor(t, "the good lines", 10*time.Second, func() bool { return len(b.get("wavefront")) >= 7 })
	time.Sleep(100 * time.Millisecond)
	got := b.get("wavefront")
	if len(got) != 7 {
		t.Errorf("backend got %d lines, want the 7 good ones:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range 4 {
		if !hasLine(got, fmt.Sprintf(`"good.tcp" 1 %d source="s" "i"="%d"`, ts, i)) {
			t.Errorf("good TCP line %d missing", i)
		}
	}
	for code, want := range map[string]float64{"WF-300": 2, "WF-400": 1, "WF-402": 1, "WF-411": 1, "WF-406": 1, "TOO_LONG": 2} {
		if v := value(p.m.rejected.WithLabelValues(entityPoints, pp, code)); v != want {
			t.Errorf("proxy_rejected{code=%q} = %v, want %v", code, v, want)
		}
	}
	if v := value(p.m.received.WithLabelValues(entityPoints, pp)); v != 7 {
		t.Errorf("proxy_received = %v, want 7", v)
	}
	l := logs.String()
	for _, want := range []string{"logger=RawBlockedPoints", "this line has no value", "WF-400", "pushListenerMaxReceivedLength"} {
		if !strings.Contains(l, want) {
			t.Errorf("blocked log lacks %q", want)
		}
	}
}

// A line limit under 64 bytes (the most of a too-long line the blocked
// log shows) still rejects long lines cleanly and keeps short ones.
func TestSmallLineLimit(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, logs := startProxyLog(t, b.srv.URL, func(c *Config) { c.PushListenerMaxReceivedLength = 20 })
	addr := p.Addr("push", "0")
	ts := time.Now().Unix()
	sendTCP(t, addr, fmt.Appendf(nil, "a.much.longer.metric.name 1 %d source=s\nm 1 %d\n", ts, ts))
	waitFor(t, "the short line", 10*time.Second, func() bool { return len(b.get("wavefront")) >= 1 })
	if v := value(p.m.rejected.WithLabelValues(entityPoints, portOf(addr.String()), "TOO_LONG")); v != 1 {
		t.Errorf("TOO_LONG = %v, want 1", v)
	}
	if l := logs.String(); !strings.Contains(l, "a.much.longer.metric.name") || strings.Contains(l, `source=s\nm 1`) {
		t.Errorf("the blocked log should show the long line and nothing after it:\n%s", l)
	}
}

// Invalid UTF-8 in a tag value is forwarded with each bad byte replaced by
// U+FFFD, as the reference decodes it; forwarded as-is, it could make the
// backend refuse the whole batch, which the forwarder then drops.
func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, nil)
	ts := time.Now().Unix()
	body := fmt.Sprintf("utf.bad 1 %d source=s k=a\xff\xfeb\nutf.good 1 %d source=s k=ok\n", ts, ts)
	if code := postLines(t, p, "?f=wavefront", body); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	waitFor(t, "the good line", 10*time.Second, func() bool { return hasLine(b.get("wavefront"), "utf.good") })
	time.Sleep(100 * time.Millisecond)
	pp := portOf(p.Addr("push", "0").String())
	var rejected float64
	for _, code := range []string{"WF-300", "WF-401", "WF-414"} {
		rejected += value(p.m.rejected.WithLabelValues(entityPoints, pp, code))
	}
	forwarded := hasLine(b.get("wavefront"), "utf.bad")
	for _, l := range b.get("wavefront") {
		if !utf8.ValidString(l) {
			t.Errorf("invalid UTF-8 forwarded: %q", l)
		}
	}
	if !forwarded || rejected > 0 {
		t.Errorf("forwarded=%v, rejected=%v", forwarded, rejected)
	}
	if !hasLine(b.get("wavefront"), "\"k\"=\"a\uFFFD\uFFFDb\"") {
		t.Errorf("want each invalid byte as U+FFFD: %q", b.get("wavefront"))
	}
}

// HTTP body limits and broken compression.
func TestBadBodies(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, func(c *Config) { c.PushListenerHTTPBufferSize = 64 << 10 })
	url := fmt.Sprintf("http://%s/report?f=wavefront", p.Addr("push", "0"))
	ts := time.Now().Unix()
	line := fmt.Sprintf("body.m 1 %d source=s\n", ts)

	big := bytes.Repeat([]byte(line), (64<<10)/len(line)+10)
	if code, _ := do(t, http.MethodPost, url, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	// A gzip body that inflates past the limit is refused too (gzip bomb).
	if code, _ := do(t, http.MethodPost, url, gz(t, big), "Content-Encoding", "gzip"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized gzip body: %d, want 413", code)
	}
	z := gz(t, bytes.Repeat([]byte(line), 100))
	code, msg := do(t, http.MethodPost, url, z[:len(z)-10], "Content-Encoding", "gzip")
	if code != http.StatusBadRequest || !strings.Contains(msg, "EOF") {
		t.Errorf("truncated gzip: %d %q, want 400 with the reason", code, msg)
	}
	code, msg = do(t, http.MethodPost, url, []byte("not gzip at all"), "Content-Encoding", "gzip")
	if code != http.StatusBadRequest || !strings.Contains(msg, "gzip") {
		t.Errorf("non-gzip body sent as gzip: %d %q", code, msg)
	}
	// Nothing of the refused bodies is forwarded; a good request after them is.
	if code, _ := do(t, http.MethodPost, url, []byte("after.m 1 "+fmt.Sprint(ts)+" source=s\n")); code != http.StatusAccepted {
		t.Fatalf("good body: %d", code)
	}
	waitFor(t, "the good body", 10*time.Second, func() bool { return len(b.get("wavefront")) > 0 })
	time.Sleep(100 * time.Millisecond)
	if got := b.get("wavefront"); len(got) != 1 || !strings.Contains(got[0], "after.m") {
		t.Errorf("backend got %q, want only the good line", got)
	}
}

// A client that connects and sends nothing neither blocks others nor keeps
// its connection past listenerIdleTimeout.
func TestIdleClient(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	addr := p.Addr("push", "0")
	idle, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	sendTCP(t, addr, fmt.Appendf(nil, "busy.m 1 %d source=s\n", time.Now().Unix()))
	waitFor(t, "the other client's line", 5*time.Second, func() bool { return len(b.get("wavefront")) == 1 })
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if n, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatalf("idle connection read %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the proxy did not close the idle connection")
	}
	t.Logf("idle connection closed %v after the check began", time.Since(start).Round(time.Millisecond))
}

// A flood of connections over maxConnections is refused and counted; a
// client already connected keeps sending and none of its data is lost.
func TestConnectionFlood(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, func(c *Config) { c.MaxConnections = 3 })
	addr := p.Addr("push", "0")
	pp := portOf(addr.String())
	ts := time.Now().Unix()
	steady, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer steady.Close()
	fmt.Fprintf(steady, "steady.m 1 %d source=s i=0\n", ts)
	waitFor(t, "the steady client's first line", 5*time.Second, func() bool { return len(b.get("wavefront")) == 1 })

	const flood = 20
	var held []net.Conn
	for range flood {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Two slots were free: the other 18 are refused.
	waitFor(t, "refusals", 5*time.Second, func() bool { return value(p.m.refused.WithLabelValues(pp)) == flood-2 })
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(steady, "steady.m 1 %d source=s i=%d\n", ts, i)
	}
	waitFor(t, "all the steady client's lines", 10*time.Second, func() bool { return len(b.get("wavefront")) == 101 })
	if v := value(p.m.connections.WithLabelValues(pp)); v != 3 {
		t.Errorf("proxy_connections = %v, want 3", v)
	}
	time.Sleep(100 * time.Millisecond)
	if v := value(p.m.refused.WithLabelValues(pp)); v != flood-2 {
		t.Errorf("proxy_connections_refused = %v, want %d", v, flood-2)
	}
}

// The Zipkin port's error answers (proxy.md §5.1).
func TestZipkinBadRequests(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, nil)
	zp := portOf(p.Addr("zipkin", "0").String())
	base := "http://" + p.Addr("zipkin", "0").String()
	v2 := base + "/api/v2/spans"
	for _, c := range []struct {
		name, method, url string
		body              []byte
		code              int
		msg               string
		failed            bool // counted in batches_failed
	}{
		{"bad JSON", "POST", v2, []byte(`[{"traceId":"abc","id":`), 400, "", true},
		{"single object", "POST", v2, []byte(`{"traceId":"1","id":"2"}`), 400, "", true},
		{"thrift-looking", "POST", v2, []byte{0x0c, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff}, 400, "", true},
		{"other binary", "POST", v2, []byte{0x01, 0x02}, 400, "", true},
		{"wrong path", "POST", base + "/api/v3/spans", []byte(`[]`), 400, "Unsupported URL path.", false},
		{"wrong path before method", "GET", base + "/nope", nil, 400, "Unsupported URL path.", false},
		{"trailing slash", "POST", v2 + "/", []byte(`[]`), 202, "", false},
		{"v1 path", "POST", base + "/api/v1/spans", []byte(`[]`), 202, "", false},
		{"two trailing slashes", "POST", v2 + "//", []byte(`[]`), 400, "Unsupported URL path.", false},
		{"GET", "GET", v2, nil, 400, "Unsupported Http method.", false},
		{"OPTIONS", "OPTIONS", base + "/anything", nil, 204, "", false},
		{"over 16 MiB", "POST", v2, bytes.Repeat([]byte("["), 16<<20+1), 413, "", false},
	} {
		before := value(p.m.batchFailed.WithLabelValues(zp))
		code, msg := do(t, c.method, c.url, c.body)
		if code != c.code || (c.msg != "" && msg != c.msg) || (c.code == 400 && msg == "") {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, msg, c.code, c.msg)
		}
		if after := value(p.m.batchFailed.WithLabelValues(zp)); (after > before) != c.failed {
			t.Errorf("%s: batches_failed %v → %v", c.name, before, after)
		}
	}
	// A gzip body is accepted and its spans delivered.
	body := fmt.Sprintf(`[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get /api","timestamp":%d,"duration":1500,"kind":"SERVER","localEndpoint":{"serviceName":"web"},"tags":{"http.status_code":"200"}}]`,
		time.Now().UnixMicro())
	if code, msg := do(t, "POST", v2, gz(t, []byte(body)), "Content-Encoding", "gzip"); code != http.StatusAccepted {
		t.Fatalf("gzip Zipkin body: %d %q", code, msg)
	}
	waitFor(t, "the gzip'd span", 10*time.Second, func() bool { return hasLine(b.get("trace"), `"get /api"`) })
}

// One push port serves TCP lines, gzip'd TCP streams and HTTP with every
// ?f= format or none (proxy.md §1.2).
func TestPortUnification(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, _ := startProxyLog(t, b.srv.URL, nil)
	addr := p.Addr("push", "0")
	ts := time.Now().Unix()
	ms := time.Now().UnixMilli()
	const trace, span = "7b3bf470-9456-11e8-9eb6-529269fb1459", "0313bafe-9457-11e8-9eb6-529269fb1459"
	spanLine := fmt.Sprintf("op.%%s source=s spanId=%s traceId=%s application=a service=b %d 12\n", span, trace, ms)
	logsLine := fmt.Sprintf(`{"traceId":"%s","spanId":"%s","logs":[{"timestamp":%d,"fields":{"event":"%%s"}}]}`+"\n", trace, span, ms*1000)

	sendTCP(t, addr, fmt.Appendf(nil, "uni.tcp 1 %d source=s\n", ts))
	sendTCP(t, addr, gz(t, fmt.Appendf(nil, "uni.tcpgz 1 %d source=s\nuni.tcpgz2 2 %d source=s\n", ts, ts)))
	for _, c := range []struct{ query, body string }{
		{"?f=wavefront", fmt.Sprintf("uni.http 1 %d source=s\n", ts)},
		{"?f=histogram", fmt.Sprintf("!M %d #2 1.5 uni.hist source=s\n", ts)},
		{"?f=trace", fmt.Sprintf(spanLine, "http")},
		{"?f=spanLogs", fmt.Sprintf(logsLine, "http")},
		{"", fmt.Sprintf("uni.auto 1 %d source=s\n!M %d #1 2 uni.autohist source=s\n", ts, ts) + fmt.Sprintf(logsLine, "auto")},
	} {
		if code := postLines(t, p, c.query, c.body); code != http.StatusAccepted {
			t.Errorf("POST /report%s: %d", c.query, code)
		}
	}
	waitFor(t, "every format", 10*time.Second, func() bool {
		w, h, tr, sl := b.get("wavefront"), b.get("histogram"), b.get("trace"), b.get("spanLogs")
		return hasLine(w, "uni.tcp\"") && hasLine(w, "uni.tcpgz\"") && hasLine(w, "uni.tcpgz2") && hasLine(w, "uni.http") && hasLine(w, "uni.auto") &&
			hasLine(h, "uni.hist") && hasLine(h, "uni.autohist") && hasLine(tr, "op.http") && hasLine(sl, `"event":"http"`) && hasLine(sl, `"event":"auto"`)
	})
}
