package proxy

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestForwarderEncodings: the forwarder sends gzip until the backend offers
// zstd in Accept-Encoding (as meshwave's server does), then zstd; a backend
// that offers nothing keeps getting gzip; and one that refuses a zstd batch
// with 415, though it offered zstd, gets that batch again in gzip and gzip
// from then on. Every line arrives in each case.
func TestForwarderEncodings(t *testing.T) {
	for _, c := range []struct {
		name       string
		accept     string
		refuseZstd bool
		want       []string // the encodings of the first requests, in order
	}{
		{"offers zstd", "zstd, gzip, deflate", false, []string{"gzip", "zstd", "zstd"}},
		{"offers nothing", "", false, []string{"gzip", "gzip", "gzip"}},
		{"zstd with q=0", "gzip, zstd;q=0", false, []string{"gzip", "gzip", "gzip"}},
		{"offers zstd, refuses it", "zstd, gzip", true, []string{"gzip", "zstd", "gzip", "gzip"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			b.accept, b.refuseZstd = c.accept, c.refuseZstd
			p := startProxy(t, b.srv.URL, nil)
			for i := range 3 {
				line := fmt.Sprintf("enc.test %d %d source=a", i, time.Now().Unix())
				if code := postLines(t, p, "", line+"\n"); code/100 != 2 {
					t.Fatalf("post %d: %d", i, code)
				}
				// One batch at a time, so each request holds one line.
				waitFor(t, "line "+fmt.Sprint(i), 10*time.Second, func() bool { return len(b.get("wavefront")) == i+1 })
			}
			b.mu.Lock()
			got := slices.Clone(b.encodings)
			b.mu.Unlock()
			if !slices.Equal(got, c.want) {
				t.Fatalf("encodings %v, want %v", got, c.want)
			}
		})
	}
}

// TestUnknownBodyEncoding: a body in a coding the proxy does not read gets
// 415 naming it, with the codings it reads in Accept-Encoding (RFC 7694),
// on the push port and the Zipkin port alike.
func TestUnknownBodyEncoding(t *testing.T) {
	p := startProxy(t, newBackend(t).srv.URL, nil)
	for _, url := range []string{
		fmt.Sprintf("http://%s/report?f=wavefront", p.Addr("push", "0")),
		fmt.Sprintf("http://%s/api/v2/spans", p.Addr("zipkin", "0")),
	} {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
		req.Header.Set("Content-Encoding", "br")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(msg), `"br"`) || !strings.Contains(resp.Header.Get("Accept-Encoding"), "zstd") {
			t.Errorf("%s: %d %q, Accept-Encoding %q", url, resp.StatusCode, msg, resp.Header.Get("Accept-Encoding"))
		}
	}
}
