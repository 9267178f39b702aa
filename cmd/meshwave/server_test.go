package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"15d": 15 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1d", "xd", "0s", "-5h", "fortnight"} {
		if _, err := parseRetention(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestHeaderFlag(t *testing.T) {
	var f headerFlag
	for _, v := range []string{"X-Scope-OrgID=tenant-1", "X-Extra=a=b"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if f.h.Get("X-Scope-OrgID") != "tenant-1" || f.h.Get("X-Extra") != "a=b" {
		t.Errorf("headers %v", f.h)
	}
	for _, bad := range []string{"novalue", "=v", " =v"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRunServerFlags starts the server command with the exits' flags and
// checks it serves, then stops cleanly when its context ends.
func TestRunServerFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--retention", "2d",
			"--remote-write-url", "http://user:secret@127.0.0.1:1/api/v1/write", "--remote-write-header", "X-Scope-OrgID=t1",
			"--otlp-endpoint", "http://127.0.0.1:1"}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestRunServerBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--retention", "soon"},
		{"--remote-write-header", "nonsense"},
		{"--no-such-flag"},
	} {
		args = append(args, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		if err := runServer(context.Background(), args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The demo takes --retention as the server does, and names it when bad.
func TestRunDemoBadRetention(t *testing.T) {
	err := runDemo(context.Background(), []string{"--retention", "soon", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--retention") {
		t.Errorf("got %v, want an error naming --retention", err)
	}
}
