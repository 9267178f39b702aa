package simulate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func get(t *testing.T, url string, gz bool) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	} else {
		req.Header.Set("Accept-Encoding", "identity") // stop the transport's transparent gzip
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServer(t *testing.T) {
	m := testMesh(t, nil)
	now := testStart.Add(time.Hour)
	ts := httptest.NewServer(NewServer(m, func() time.Time { return now }).Handler())
	defer ts.Close()

	want := render(t, func(w io.Writer) error { return WriteFederate(w, m, now) })
	for _, gz := range []bool{false, true} {
		resp, b := get(t, ts.URL+`/federate?match[]={job=~"federate|kubernetes-pods"}`, gz)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
			t.Fatalf("gzip=%v: %s %q", gz, resp.Status, resp.Header.Get("Content-Type"))
		}
		if (resp.Header.Get("Content-Encoding") == "gzip") != gz {
			t.Errorf("gzip=%v: Content-Encoding %q", gz, resp.Header.Get("Content-Encoding"))
		}
		if !bytes.Equal(b, want) {
			t.Errorf("gzip=%v: body differs from WriteFederate", gz)
		}
	}
	if _, b := get(t, ts.URL+"/istiod/metrics", true); !bytes.Equal(b, render(t, func(w io.Writer) error { return WriteIstiod(w, m, now) })) {
		t.Error("/istiod/metrics differs from WriteIstiod")
	}

	resp, b := get(t, ts.URL+"/targets", false)
	var sd []fileSD
	if err := json.Unmarshal(b, &sd); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/targets: %s %v", resp.Status, err)
	}
	if len(sd) != len(m.pods)+1 {
		t.Fatalf("%d targets, want %d", len(sd), len(m.pods)+1)
	}
	host := ts.Listener.Addr().String()
	for _, e := range sd {
		l := e.Labels
		if len(e.Targets) != 1 || e.Targets[0] != host || l["__metrics_path__"] == "" || l["app"] == "" ||
			l["kubernetes_namespace"] == "" || l["kubernetes_pod_name"] == "" || l["instance"] == "" {
			t.Fatalf("bad file_sd entry %+v", e)
		}
		r, body := get(t, ts.URL+l["__metrics_path__"], false)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != ContentType || len(parseProm(t, body)) == 0 {
			t.Fatalf("%s: %s", l["__metrics_path__"], r.Status)
		}
	}
	if r, _ := get(t, ts.URL+"/pods/default/nope/stats/prometheus", false); r.StatusCode != 404 {
		t.Errorf("unknown pod: %s", r.Status)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "deflate, gzip;q=1.0, *;q=0.5": true, "GZIP": true, "gzip;q=0": false, "br": false,
	} {
		if acceptsGzip(h) != want {
			t.Errorf("acceptsGzip(%q) = %v", h, !want)
		}
	}
}

func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(testMesh(t, nil), nil).Serve(ctx, ln) }()
	if r, _ := get(t, "http://"+ln.Addr().String()+"/istiod/metrics", false); r.StatusCode != 200 {
		t.Fatal(r.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
