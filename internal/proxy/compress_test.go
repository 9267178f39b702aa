package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The queue holds what the proxy accepted compressed by default, and as
// received with --bufferCompression=false; either way the backend gets
// the same lines once it is back, from TCP and HTTP alike.
func TestBufferCompression(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("bufferCompression=%v", compress), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			down := answer503(b)
			p := startProxy(t, b.srv.URL, func(c *Config) { c.BufferCompression = compress })
			ts := time.Now().Unix()
			var tcp, post strings.Builder
			const n = 2000
			for i := range n {
				fmt.Fprintf(&tcp, "istio.requests.total.value %d %d source=\"pod-%d\" \"destination_workload\"=\"reviews-v%d\" seq=%d\n", i, ts, i%5, i%3, i)
				fmt.Fprintf(&post, "istio.requests.total.value %d %d source=\"pod-%d\" \"destination_workload\"=\"ratings-v%d\" seq=%d\n", i, ts, i%5, i%3, n+i)
			}
			conn, err := net.Dial("tcp", p.Addr("push", "0").String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte(tcp.String())); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			if code := postLines(t, p, "", post.String()); code != http.StatusAccepted {
				t.Fatalf("POST: %d", code)
			}
			waitFor(t, "the TCP lines counted", 10*time.Second, func() bool {
				return gatherValue(t, p, "proxy_received") >= 2*n
			})

			var disk []byte
			segs, _ := filepath.Glob(filepath.Join(p.cfg.Buffer, "*.seg"))
			for _, s := range segs {
				data, err := os.ReadFile(s)
				if err != nil {
					t.Fatal(err)
				}
				disk = append(disk, data...)
			}
			plain := bytes.Contains(disk, []byte(`"destination_workload"="reviews-v1"`))
			if plain == compress {
				t.Errorf("lines readable in the segment files: %v, with compression %v", plain, compress)
			}
			if size := len(bytes.TrimRight(disk, "\x00")); compress && size > (tcp.Len()+post.Len())/4 {
				t.Errorf("%d bytes on disk for %d bytes of lines: compressed less than 4x", size, tcp.Len()+post.Len())
			}

			down.Store(false)
			waitFor(t, "every line delivered", 20*time.Second, func() bool { return len(seqCounts(b.get("wavefront"))) >= 2*n })
			got := seqCounts(b.get("wavefront"))
			for i := range 2 * n {
				if got[i] == 0 {
					t.Fatalf("line seq=%d not delivered", i)
				}
			}
		})
	}
}
