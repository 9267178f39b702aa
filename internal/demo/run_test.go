package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRun runs the whole demo on ephemeral ports with a short collection
// interval and waits for the simulator's requests to reach the server's
// chart API through collector and proxy.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack for several seconds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), CollectionInterval: 2 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Ready:  func(a Addrs) { ready <- a },
		})
	}()
	var a Addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo not ready after 20s")
	}
	q := url.Values{
		"q": {"ts(istio.requests.total.value)"},
		"s": {fmt.Sprint(time.Now().Add(-10 * time.Minute).Unix())},
		"g": {"m"},
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		q.Set("e", fmt.Sprint(time.Now().Add(time.Minute).Unix()))
		n, body, err := chart(a.URL() + "api/v2/chart/api?" + q.Encode())
		if err == nil && n > 0 {
			break
		}
		last = fmt.Sprintf("err=%v body=%.300s", err, body)
		if time.Now().After(deadline) {
			t.Fatalf("no istio.requests.total.value series after 30s: %s", last)
		}
		time.Sleep(time.Second)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop within 20s")
	}
}

func chart(u string) (int, string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	var r struct {
		Timeseries []struct {
			Data [][2]float64 `json:"data"`
		} `json:"timeseries"`
	}
	if err := json.NewDecoder(strings.NewReader(string(b))).Decode(&r); err != nil {
		return 0, string(b), err
	}
	n := 0
	for _, s := range r.Timeseries {
		n += len(s.Data)
	}
	return n, string(b), nil
}

func TestRunListenBusy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Ready: func(a Addrs) { ready <- a },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	a := <-ready
	err := Run(ctx, Options{Listen: a.Server, DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second Run on %s: %v, want an 'already in use' error", a.Server, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCollectorConfigWith(t *testing.T) {
	s := string(CollectorConfigWith("http://x/federate", ConfigOptions{ProxyAddress: "127.0.0.1:1", CollectionInterval: 2 * time.Second, PrintPoints: true}))
	for _, want := range []string{"proxyAddress: '127.0.0.1:1'", "defaultCollectionInterval: 2s", "- file: '-'", "http://x/federate"} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q", want)
		}
	}
}
