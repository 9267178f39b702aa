package proxy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var reSeq = regexp.MustCompile(`"seq"="(\d+)"`)

// seqCounts counts the backend's deliveries per sequence number.
func seqCounts(lines []string) map[int]int {
	n := make(map[int]int, len(lines))
	for _, l := range lines {
		if m := reSeq.FindStringSubmatch(l); m != nil {
			s, _ := strconv.Atoi(m[1])
			n[s]++
		}
	}
	return n
}

// TestCrashAcknowledged SIGKILLs a proxy process under load from HTTP and
// TCP clients at a random moment, three times, restarting it on the same
// buffer each time. What it proves:
//
//   - HTTP: every line whose request got a 2xx reaches the backend at least
//     once (the 2xx is sent after the queue's fsync).
//   - TCP: a plaintext connection's lines are committed in read order, so
//     proxy_received on the TCP-only port, scraped from the child before
//     the kill, is a lower bound R on the number of that connection's
//     lines made durable; its first R lines must reach the backend.
//
// Delivery is at-least-once, not exactly-once: a batch posted but not yet
// acknowledged in the queue when the process dies is posted again after
// the restart. The duplicates are counted and logged.
func TestCrashAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns proxy processes")
	}
	b := newBackend(t)
	dir := t.TempDir()
	cc := childConfig{Buffer: filepath.Join(dir, "buffer"), Server: b.srv.URL, PortFile: filepath.Join(dir, "ports.json")}

	var (
		mu      sync.Mutex
		cur     *child
		httpAck = map[int]bool{} // seq → acknowledged by a 2xx
		tcpAck  []int            // seqs of TCP lines proven counted before a kill
	)
	current := func() *child { mu.Lock(); defer mu.Unlock(); return cur }
	ts := time.Now().Unix()

	const httpClients, linesPerPost = 3, 20
	var stop atomic.Bool
	var wg sync.WaitGroup
	for c := range httpClients {
		wg.Go(func() {
			hc := &http.Client{Timeout: 5 * time.Second}
			next := (c + 1) * 10_000_000
			var body bytes.Buffer
			for !stop.Load() {
				ch := current()
				if ch == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				body.Reset()
				for i := range linesPerPost {
					fmt.Fprintf(&body, "crash.http.%d 1 %d source=s seq=%d\n", c, ts, next+i)
				}
				resp, err := hc.Post("http://"+ch.ports.Push[0]+"/report?f=wavefront", "text/plain", &body)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						mu.Lock()
						for i := range linesPerPost {
							httpAck[next+i] = true
						}
						mu.Unlock()
					}
				} else {
					time.Sleep(5 * time.Millisecond) // the proxy is down; wait for the next one
				}
				next += linesPerPost
			}
		})
	}

	// One TCP connection per child generation; written tracks its lines in
	// order and counted the highest proxy_received scraped before the kill.
	type tcpGen struct {
		mu      sync.Mutex
		written []int
		counted float64
	}
	tcpSeq := 90_000_000
	runTCP := func(ch *child, g *tcpGen, done chan struct{}) {
		defer close(done)
		conn, err := net.Dial("tcp", ch.ports.Push[1])
		if err != nil {
			return
		}
		defer conn.Close()
		var buf []byte
		for !stop.Load() {
			buf = buf[:0]
			g.mu.Lock()
			first := len(g.written)
			for i := range 10 {
				buf = fmt.Appendf(buf, "crash.tcp 1 %d source=s seq=%d\n", ts, tcpSeq+first+i)
				g.written = append(g.written, tcpSeq+first+i)
			}
			g.mu.Unlock()
			if _, err := conn.Write(buf); err != nil {
				return
			}
			time.Sleep(time.Millisecond) // lets commits happen between writes
		}
	}
	scrape := func(ch *child, g *tcpGen, done chan struct{}) {
		hc := &http.Client{Timeout: time.Second}
		_, tcpPort, _ := net.SplitHostPort(ch.ports.Push[1])
		for {
			select {
			case <-done:
				return
			default:
			}
			v, err := ch.metric(hc, "proxy_received", `{entity="points",port="`+tcpPort+`"}`)
			if err == nil {
				g.mu.Lock()
				g.counted = max(g.counted, v)
				g.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	start := time.Now()
	var kills []time.Duration
	for round := range 4 {
		ch := startChild(t, cc)
		mu.Lock()
		cur = ch
		mu.Unlock()
		g := &tcpGen{}
		tcpDone, scrapeDone := make(chan struct{}), make(chan struct{})
		go runTCP(ch, g, tcpDone)
		go scrape(ch, g, scrapeDone)
		if round == 3 {
			// The last generation only drains: stop the load and let it deliver.
			time.Sleep(200 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			<-tcpDone
			close(scrapeDone)
			// What this generation counted is durable and, with the proxy
			// alive, must be delivered too.
			waitFor(t, "the last generation to count its TCP lines", 10*time.Second, func() bool {
				v, _ := ch.metric(http.DefaultClient, "proxy_received", `{entity="points",port="`+portOf(ch.ports.Push[1])+`"}`)
				g.mu.Lock()
				defer g.mu.Unlock()
				g.counted = v
				return int(v) == len(g.written)
			})
		} else {
			d := time.Duration(200+rand.IntN(600)) * time.Millisecond
			kills = append(kills, d)
			time.Sleep(d)
			ch.kill()
			<-tcpDone
			close(scrapeDone)
		}
		g.mu.Lock()
		if int(g.counted) > len(g.written) {
			t.Fatalf("round %d: proxy counted %v TCP lines, only %d were written", round, g.counted, len(g.written))
		}
		tcpAck = append(tcpAck, g.written[:int(g.counted)]...)
		tcpSeq += 1_000_000
		g.mu.Unlock()
	}

	mu.Lock()
	want := len(httpAck) + len(tcpAck)
	mu.Unlock()
	var got map[int]int
	waitFor(t, "every acknowledged line at the backend", 20*time.Second, func() bool {
		got = seqCounts(b.get("wavefront"))
		for s := range httpAck {
			if got[s] == 0 {
				return false
			}
		}
		for _, s := range tcpAck {
			if got[s] == 0 {
				return false
			}
		}
		return true
	})
	dups, unacked := 0, 0
	for s, n := range got {
		dups += n - 1
		if !httpAck[s] && s < 90_000_000 {
			unacked++ // accepted but the client saw no 2xx (killed mid-request): allowed either way
		}
	}
	if want == 0 || len(tcpAck) == 0 {
		t.Fatalf("no load got through: %d HTTP, %d TCP lines acknowledged", len(httpAck), len(tcpAck))
	}
	t.Logf("kills after %v; %d HTTP + %d TCP lines acknowledged, all delivered; %d duplicate deliveries (at-least-once); %d delivered lines never acknowledged; %v",
		kills, len(httpAck), len(tcpAck), dups, unacked, time.Since(start).Round(time.Millisecond))
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
