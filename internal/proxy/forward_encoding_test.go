package proxy

import (
	"fmt"
	"slices"
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
