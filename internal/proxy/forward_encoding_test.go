package proxy

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/meshwave/meshwave/internal/queue"
)

// TestForwarderEncodings: the forwarder sends gzip until the backend offers
// s2 or zstd in Accept-Encoding (as meshwave's server does); then it posts
// the queue's S2 records as they are, or zstd; a backend that offers
// nothing keeps getting gzip; one that refuses s2 or zstd with 415, though
// it offered it, gets that batch again otherwise and never that coding
// again; records too small for the queue to compress are compressed for
// the post, and records over --pushFlushMaxPoints are decoded and go in
// posts of that many lines. Every line arrives, and is counted delivered,
// in each case.
func TestForwarderEncodings(t *testing.T) {
	for _, c := range []struct {
		name                 string
		accept               string
		refuseZstd, refuseS2 bool
		lines, maxPoints     int      // lines per POST to the proxy; --pushFlushMaxPoints (0: default)
		want                 []string // the encodings of the requests, in order
	}{
		{"offers zstd", "zstd, gzip, deflate", false, false, 20, 0, []string{"gzip", "zstd", "zstd"}},
		{"offers nothing", "", false, false, 20, 0, []string{"gzip", "gzip", "gzip"}},
		{"zstd with q=0", "gzip, zstd;q=0", false, false, 20, 0, []string{"gzip", "gzip", "gzip"}},
		{"offers zstd, refuses it", "zstd, gzip", true, false, 20, 0, []string{"gzip", "zstd", "gzip", "gzip"}},
		{"offers s2", "s2, zstd, gzip", false, false, 20, 0, []string{"gzip", "s2", "s2"}},
		{"offers s2, refuses it", "s2, zstd", false, true, 20, 0, []string{"gzip", "s2", "zstd", "zstd"}},
		{"offers s2, records too small", "s2, zstd", false, false, 1, 0, []string{"gzip", "s2", "s2"}},
		{"offers s2, records over pushFlushMaxPoints", "s2, zstd", false, false, 20, 10, []string{"gzip", "zstd", "zstd", "zstd", "zstd", "zstd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			b.accept, b.refuseZstd, b.refuseS2 = c.accept, c.refuseZstd, c.refuseS2
			p := startProxy(t, b.srv.URL, func(cfg *Config) {
				if c.maxPoints > 0 {
					cfg.PushFlushMaxPoints = c.maxPoints
				}
			})
			for i := range 3 {
				var body strings.Builder
				for j := range c.lines {
					fmt.Fprintf(&body, "enc.test %d %d source=a \"j\"=\"%d\"\n", i, time.Now().Unix(), j)
				}
				if code := postLines(t, p, "", body.String()); code/100 != 2 {
					t.Fatalf("post %d: %d", i, code)
				}
				// One record at a time, so the requests follow each other.
				want := (i + 1) * c.lines
				waitFor(t, fmt.Sprint(want, " lines"), 10*time.Second, func() bool { return len(b.get("wavefront")) == want })
			}
			b.mu.Lock()
			got := slices.Clone(b.encodings)
			b.mu.Unlock()
			if !slices.Equal(got, c.want) {
				t.Errorf("encodings %v, want %v", got, c.want)
			}
			// Counted once the backend's answer is back.
			delivered := p.m.delivered.WithLabelValues(entityPoints, portOf(p.Addr("push", "0").String()))
			waitFor(t, "proxy_delivered", 10*time.Second, func() bool { return value(delivered) == float64(3*c.lines) })
		})
	}
}

// TestForwarderSplitsS2Records: a backend that reads s2 but answers 413 to
// a record gets it decoded and split in halves until it takes them.
func TestForwarderSplitsS2Records(t *testing.T) {
	b := newBackend(t)
	b.accept, b.maxLines = "s2, zstd", 10
	p := startProxy(t, b.srv.URL, nil)
	for i := range 2 {
		var body strings.Builder
		for j := range 40 {
			fmt.Fprintf(&body, "split.test %d %d source=a \"j\"=\"%d\"\n", i, time.Now().Unix(), j)
		}
		if code := postLines(t, p, "", body.String()); code/100 != 2 {
			t.Fatalf("post %d: %d", i, code)
		}
		want := (i + 1) * 40
		waitFor(t, fmt.Sprint(want, " lines"), 10*time.Second, func() bool { return len(b.get("wavefront")) == want })
	}
	b.mu.Lock()
	got := slices.Clone(b.encodings)
	b.mu.Unlock()
	// The second record goes as s2 first: 413, then zstd halves and quarters.
	if !slices.Contains(got, "s2") || got[len(got)-1] != "zstd" {
		t.Errorf("encodings %v: want an s2 attempt, then zstd", got)
	}
	delivered := p.m.delivered.WithLabelValues(entityPoints, portOf(p.Addr("push", "0").String()))
	waitFor(t, "proxy_delivered", 10*time.Second, func() bool { return value(delivered) == 80 })
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

// TestForwardsOldCompressedRecords: a buffer written before records kept
// their header out of the compression (the queue compressed them whole)
// is still delivered after an upgrade, to a backend that reads s2 too.
func TestForwardsOldCompressedRecords(t *testing.T) {
	dir := t.TempDir()
	q, err := queue.Open(dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for j := range 50 {
		fmt.Fprintf(&lines, "old.format %d %d source=a\n", j, time.Now().Unix())
	}
	rec := append(recordHeader(make([]byte, queue.FrameHeader), fmtWavefront, "2878"), lines.String()...)
	frame, compressed := queue.SealCompressed(nil, rec)
	if !compressed {
		t.Fatal("the old-format record did not compress")
	}
	if err := q.AppendFrames(frame); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	b.accept = "s2, zstd, gzip"
	startProxy(t, b.srv.URL, func(c *Config) { c.Buffer = dir })
	waitFor(t, "the old record's lines", 10*time.Second, func() bool { return len(b.get("wavefront")) == 50 })
}

// FuzzParseRecord: any bytes parse or are refused without a panic, and a
// record sealS2 made gives back its format, port, and lines (at once, or
// from its S2 block with their count).
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("w\x042878a 1 1 source=s\n"), "2878", []byte("cpu.load 1 1700000000 source=a\n"))
	f.Add([]byte{'t' | s2Lines, 0, 3, 0}, "", bytes.Repeat([]byte("span.line x\n"), 40))
	f.Fuzz(func(t *testing.T, raw []byte, port string, lines []byte) {
		parseRecord(raw)
		if len(port) > 255 {
			return
		}
		n := bytes.Count(lines, []byte{'\n'})
		frame := append(recordHeader(make([]byte, queue.FrameHeader), fmtTrace, port), lines...)
		sealed, _ := sealS2(nil, frame, n)
		rec, ok := parseRecord(sealed[queue.FrameHeader:])
		if !ok || rec.f != fmtTrace || rec.port != port {
			t.Fatalf("parsed %+v, %v", rec, ok)
		}
		got := rec.body
		if rec.s2 {
			var err error
			if got, err = s2.Decode(nil, rec.body); err != nil || rec.lines != n {
				t.Fatalf("S2 record: %v, %d lines, want %d", err, rec.lines, n)
			}
		}
		if !bytes.Equal(got, lines) {
			t.Fatalf("lines %q, want %q", got, lines)
		}
	})
}

// TestForwarderJoinsRecords: records queued while the backend was away go
// out joined, one post per format and port, each format's lines in the
// order the proxy accepted them: as one S2 block to a backend that reads
// s2 (records the queue holds as S2 blocks and as lines alike), as gzip'd
// lines to one that does not.
func TestForwarderJoinsRecords(t *testing.T) {
	for _, c := range []struct{ accept, want string }{{"s2, zstd, gzip", "s2"}, {"", "gzip"}} {
		t.Run("accept="+c.accept, func(t *testing.T) {
			b := newBackend(t)
			b.accept = c.accept
			var up atomic.Bool
			b.status = func() int {
				if up.Load() {
					return http.StatusAccepted
				}
				return http.StatusServiceUnavailable
			}
			p := startProxy(t, b.srv.URL, nil)
			ms := time.Now().UnixMilli()
			var spans, logs []string
			for i := range 30 {
				// A Zipkin body's two records; one line is too little for
				// S2 to shrink, so those records are kept as lines.
				var sp, lg strings.Builder
				for j := range 1 + i%2*19 {
					span := fmt.Sprintf("00000000-0000-0000-%04x-%012x", i, j)
					name := fmt.Sprintf("op.%d.%d", i, j)
					fmt.Fprintf(&sp, "%s source=s spanId=%s traceId=%s application=a service=b %d 12\n", name, span, span, ms)
					fmt.Fprintf(&lg, `{"traceId":"%s","spanId":"%s","logs":[{"timestamp":%d,"fields":{"event":"%s"}}]}`+"\n", span, span, ms*1000, name)
					spans, logs = append(spans, name), append(logs, name)
				}
				for _, post := range []struct{ query, body string }{{"?f=trace", sp.String()}, {"?f=spanLogs", lg.String()}} {
					if code := postLines(t, p, post.query, post.body); code != http.StatusAccepted {
						t.Fatalf("POST %s: %d", post.query, code)
					}
				}
			}
			// Two failed attempts after the last record was queued: the
			// second read the whole queue, and so will the next.
			retries := value(p.m.retries)
			waitFor(t, "two more retries", 20*time.Second, func() bool { return value(p.m.retries) >= retries+2 })
			up.Store(true)
			waitFor(t, "every line", 20*time.Second, func() bool {
				return len(b.get("trace")) == len(spans) && len(b.get("spanLogs")) == len(logs)
			})
			b.mu.Lock()
			posts := maps.Clone(b.posts)
			b.mu.Unlock()
			for _, f := range []string{"trace", "spanLogs"} {
				if !slices.Equal(posts[f], []string{c.want}) {
					t.Errorf("%s posts %v, want one %s", f, posts[f], c.want)
				}
			}
			for _, got := range []struct {
				f     string
				names []string
			}{{"trace", spans}, {"spanLogs", logs}} {
				for i, l := range b.get(got.f) {
					if !strings.Contains(l, `"`+got.names[i]+`"`) && !strings.HasPrefix(l, `"`+got.names[i]+`"`) {
						t.Fatalf("%s line %d is %q, want %s: out of order", got.f, i, l, got.names[i])
					}
				}
			}
		})
	}
}
