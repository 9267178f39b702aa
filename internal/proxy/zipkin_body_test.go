package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A body shorter than its Content-Length (a client that gave up) is a 400
// naming the read, and the pooled request state serves the next request
// as if new.
func TestZipkinTruncatedBody(t *testing.T) {
	p := startProxy(t, discardBackend(t).URL, nil)
	addr := p.Addr("zipkin", "0").String()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := `[{"traceId":"1","id":"2"`
	if _, err := io.WriteString(conn, "POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "reading body") {
		t.Errorf("got %d %q, want 400 naming the body read", resp.StatusCode, msg)
	}

	for range 3 {
		resp, err := http.Post("http://"+addr+"/api/v2/spans", "application/json",
			strings.NewReader(`[{"traceId":"1","id":"2","name":"get","timestamp":1712000000000000,"duration":5,"annotations":[{"timestamp":1712000000000001,"value":"ss"}]}]`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got := value(p.m.received.WithLabelValues(entitySpans, portOf(addr))); got != 3 {
		t.Errorf("received %v spans, want 3", got)
	}
	if got := value(p.m.received.WithLabelValues(entitySpanLogs, portOf(addr))); got != 3 {
		t.Errorf("received %v span logs, want 3", got)
	}
}
