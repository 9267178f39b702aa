package proxy

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// postLines POSTs lines to the push port and returns the status code.
func postLines(t *testing.T, p *Proxy, query, body string) int {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://%s/report%s", p.Addr("push", "0"), query), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkFIFO asserts that, per client, the first deliveries of its lines
// follow the order in which the proxy accepted them, and that none is lost.
func checkFIFO(t *testing.T, delivered []string, accepted map[int][]int) {
	t.Helper()
	first := map[int]int{} // seq → position of its first delivery
	for i, l := range delivered {
		if m := reSeq.FindStringSubmatch(l); m != nil {
			var s int
			fmt.Sscan(m[1], &s)
			if _, ok := first[s]; !ok {
				first[s] = i
			}
		}
	}
	for c, seqs := range accepted {
		prev := -1
		for _, s := range seqs {
			pos, ok := first[s]
			if !ok {
				t.Fatalf("client %d: accepted line %d was never delivered", c, s)
			}
			if pos < prev {
				t.Fatalf("client %d: line %d delivered before an earlier-accepted line", c, s)
			}
			prev = pos
		}
	}
}

// outageLoad runs clients that each POST one numbered line at a time,
// sequentially, so a client's acceptance order is its numbering.
func outageLoad(t *testing.T, p *Proxy, clients int, stop *atomic.Bool) map[int][]int {
	t.Helper()
	accepted := map[int][]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ts := time.Now().Unix()
	for c := range clients {
		wg.Go(func() {
			for i := c * 1_000_000; !stop.Load(); i++ {
				code := postLines(t, p, "?f=wavefront", fmt.Sprintf("outage.%d 1 %d source=s seq=%d\n", c, ts, i))
				if code/100 == 2 {
					mu.Lock()
					accepted[c] = append(accepted[c], i)
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(1200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	return accepted
}

// answer503 makes b answer 503 until the returned flag is cleared.
func answer503(b *backend) *atomic.Bool {
	down := new(atomic.Bool)
	down.Store(true)
	b.status = func() int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	}
	return down
}

// checkAllDelivered waits until b has every line accepted during an
// outage, checks their order, and that the outage caused retries.
func checkAllDelivered(t *testing.T, p *Proxy, b *backend, accepted map[int][]int) {
	t.Helper()
	total := 0
	for _, s := range accepted {
		total += len(s)
	}
	waitFor(t, "every accepted line", 20*time.Second, func() bool { return len(seqCounts(b.get("wavefront"))) >= total })
	checkFIFO(t, b.get("wavefront"), accepted)
	if r := value(p.m.retries); r == 0 {
		t.Error("the outage caused no retries")
	}
	t.Logf("%d lines accepted, %v retries", total, value(p.m.retries))
}

// A backend answering 503 for a while loses nothing accepted meanwhile and
// then receives everything in acceptance order.
func TestOutage503(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	down := answer503(b)
	p, _ := startProxyLog(t, b.srv.URL, func(c *Config) { c.PushFlushMaxPoints = 7 }) // several posts per batch
	var stop atomic.Bool
	go func() { time.Sleep(700 * time.Millisecond); down.Store(false) }()
	accepted := outageLoad(t, p, 3, &stop)
	checkAllDelivered(t, p, b, accepted)
}

// A backend that is not listening at all (connection refused) for a while
// is the same: nothing is lost and order holds.
func TestOutageUnreachable(t *testing.T) {
	t.Parallel()
	addr := refusedAddr(t)
	b := newBackend(t)
	p, _ := startProxyLog(t, "http://"+addr, nil)
	var stop atomic.Bool
	srvc := make(chan *httptest.Server, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		// The real backend comes back on the same address.
		for {
			l, err := net.Listen("tcp", addr)
			if err == nil {
				srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: b.srv.Config.Handler}}
				srv.Start()
				srvc <- srv
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	accepted := outageLoad(t, p, 3, &stop)
	srv := <-srvc
	t.Cleanup(srv.Close)
	checkAllDelivered(t, p, b, accepted)
}

// With a small buffer and the backend down, the queue drops the oldest
// data, counted and logged, and delivers the newest once the backend is
// back.
func TestBufferFullDropsOldest(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	down := answer503(b)
	p, logs := startProxyLog(t, b.srv.URL, func(c *Config) { c.BufferMaxBytes = 64 << 10 })
	const posts, perPost = 100, 50 // ~4.5 KB per record, ~450 KB in all
	ts := time.Now().Unix()
	r := rand.New(rand.NewPCG(1, 1))
	for i := range posts {
		var body strings.Builder
		for j := range perPost {
			// Random pads, so the queue's compression cannot fit it all.
			fmt.Fprintf(&body, "full.m 1 %d source=s pad=%016x%016x%016x seq=%d\n", ts, r.Uint64(), r.Uint64(), r.Uint64(), i*perPost+j)
		}
		if code := postLines(t, p, "?f=wavefront", body.String()); code != http.StatusAccepted {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	down.Store(false)
	last := posts*perPost - 1
	waitFor(t, "the newest line", 20*time.Second, func() bool { return seqCounts(b.get("wavefront"))[last] > 0 })
	time.Sleep(300 * time.Millisecond)
	got := seqCounts(b.get("wavefront"))
	if got[0] > 0 {
		t.Error("the oldest line was delivered; expected it dropped")
	}
	dropped := gatherValue(t, p, "meshwave_queue_dropped_records_total")
	if dropped == 0 {
		t.Fatal("meshwave_queue_dropped_records_total is 0")
	}
	// Each post is one record, so the accounting is exact.
	if lost := posts*perPost - len(got); lost != int(dropped)*perPost {
		t.Errorf("%d lines missing at the backend, but %v records (%v lines) counted dropped", lost, dropped, dropped*perPost)
	}
	t.Logf("%v records dropped, %d lines delivered", dropped, len(got))
	if !strings.Contains(logs.String(), "queue full: dropped") {
		t.Errorf("no drop logged:\n%s", logs.String())
	}
}

// gatherValue returns the sum of a metric family's values in p's registry.
func gatherValue(t *testing.T, p *Proxy, name string) float64 {
	t.Helper()
	families, err := p.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// value reads a counter or gauge (client_golang's testutil would add a
// module dependency).
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue() + d.GetGauge().GetValue()
}
