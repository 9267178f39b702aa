package sink

import (
	"net"
	"strings"
	"testing"
	"time"
)

// writeAll writes lines in chunks of up to chunk lines, as the pipeline does.
func writeAll(w Writer, lines []string, chunk int) {
	for i := 0; i < len(lines); i += chunk {
		w.Write([]byte(strings.Join(lines[i:min(i+chunk, len(lines))], "")))
	}
}

func TestTCPDeliversExactly(t *testing.T) {
	checkLeaks(t)
	srv := startLineServer(t, "127.0.0.1:0", 0)
	m := testMetrics()
	opt := testOptions(t)
	opt.FlushInterval = time.Hour // only Flush and full blocks push data
	w := NewTCP(srv.addr(), opt, m, testLogger(t))
	defer mustClose(t, w)

	want := testLines(5000) // ~330 KB: several full 64 KiB blocks
	writeAll(w, want, 7)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := counter(m.sent, t); got != float64(len(want)) {
		t.Errorf("sent = %v, want %d", got, len(want))
	}
	waitFor(t, "all lines", func() bool { return len(srv.got()) >= len(want) })
	if d := diffLines(srv.got(), want); d != "" {
		t.Error(d)
	}
	if n := srv.connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestTCPFlushIntervalPushesPartialBlock(t *testing.T) {
	checkLeaks(t)
	srv := startLineServer(t, "127.0.0.1:0", 0)
	w := NewTCP(srv.addr(), testOptions(t), testMetrics(), testLogger(t))
	defer mustClose(t, w)
	want := testLines(3)
	writeAll(w, want, 3)
	waitFor(t, "ticker flush", func() bool { return len(srv.got()) == 3 })
}

// reserveAddr returns a loopback address nobody listens on (for now).
func reserveAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTCPServerDownThenUp(t *testing.T) {
	checkLeaks(t)
	addr := reserveAddr(t)
	m := testMetrics()
	w := NewTCP(addr, testOptions(t), m, testLogger(t))
	defer mustClose(t, w)

	want := testLines(2000)
	writeAll(w, want, 10)
	waitFor(t, "failed connection attempts", func() bool { return counter(m.retries, t) >= 2 })

	// Flush must not claim success while the proxy is down.
	if err := w.Flush(ctxTimeout(t, 30*time.Millisecond)); err == nil {
		t.Fatal("Flush succeeded with the proxy down")
	}
	srv := startLineServer(t, addr, 0)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all lines", func() bool { return len(srv.got()) >= len(want) })
	if d := diffLines(srv.got(), want); d != "" {
		t.Error(d)
	}
	if got := counter(m.dropped, t) + counter(m.errors, t); got != 0 {
		t.Errorf("dropped+errors = %v, want 0", got)
	}
}

func TestTCPReconnectsMidStream(t *testing.T) {
	checkLeaks(t)
	srv := startLineServer(t, "127.0.0.1:0", 150)
	w := NewTCP(srv.addr(), testOptions(t), testMetrics(), testLogger(t))
	defer mustClose(t, w)

	want := testLines(20000)
	for i := 0; i < len(want); i += 1000 {
		writeAll(w, want[i:i+1000], 10)
		time.Sleep(2 * time.Millisecond) // spread over several flushes
	}
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every line at least once", func() bool { return len(firstArrivals(srv.got())) >= len(want) })
	if d := diffLines(firstArrivals(srv.got()), want); d != "" {
		t.Error(d)
	}
	if n := srv.connections(); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
}

func TestTCPOverflowDropsOldest(t *testing.T) {
	checkLeaks(t)
	addr := reserveAddr(t)
	m := testMetrics()
	opt := testOptions(t)
	opt.FlushInterval = time.Hour // nothing leaves the queue before Flush
	all := testLines(100)
	opt.MaxBufferBytes = 40 * len(all[0])
	w := NewTCP(addr, opt, m, testLogger(t))
	defer mustClose(t, w)

	writeAll(w, all, 3)
	if got := counter(m.dropped, t); got != 60 {
		t.Errorf("dropped = %v, want 60", got)
	}
	srv := startLineServer(t, addr, 0)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kept lines", func() bool { return len(srv.got()) >= 40 })
	if d := diffLines(srv.got(), all[60:]); d != "" {
		t.Error(d)
	}
}

func TestTCPCloseWithProxyDown(t *testing.T) {
	checkLeaks(t)
	m := testMetrics()
	w := NewTCP(reserveAddr(t), testOptions(t), m, testLogger(t))
	writeAll(w, testLines(10), 10)
	if err := w.Close(ctxTimeout(t, 50*time.Millisecond)); err == nil {
		t.Error("Close reported success with lines undelivered")
	}
	if got := counter(m.errors, t); got != 10 {
		t.Errorf("errors = %v, want 10", got)
	}
	w.Write([]byte(testLines(1)[0]))
	if got := counter(m.errors, t); got != 11 {
		t.Errorf("errors after a write after Close = %v, want 11", got)
	}
}

func TestProxyAddr(t *testing.T) {
	for in, want := range map[string]string{
		"proxy:2878":       "proxy:2878",
		"10.0.0.1:9999":    "10.0.0.1:9999",
		"[::1]:2878":       "[::1]:2878",
		"proxy":            "proxy:2878",
		"::1":              "[::1]:2878",
		"[fe80::1]":        "[fe80::1]:2878",
		"wavefront-proxy.": "wavefront-proxy.:2878",
	} {
		if got := proxyAddr(in); got != want {
			t.Errorf("proxyAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTCPIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	ln.Close()
	checkLeaks(t)
	srv := startLineServer(t, "[::1]:0", 0)
	w := NewTCP(srv.addr(), testOptions(t), testMetrics(), testLogger(t))
	defer mustClose(t, w)
	writeAll(w, testLines(5), 5)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lines over IPv6", func() bool { return len(srv.got()) == 5 })
}
