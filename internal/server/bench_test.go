package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"go.etcd.io/bbolt"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// Load of BenchmarkIngest: senders concurrent clients, each with its own
// seriesPerSender series (as separate proxies have separate sources), send
// bodies of about bodyBytes, like the proxy's forwarder.
const (
	benchSenders         = 4
	benchSeriesPerSender = 2500
	benchBodyBytes       = 1 << 20
)

// baselineEnv names another build of this package's test binary (say, of
// an older commit) to measure as "server=baseline" in the same run.
const baselineEnv = "MESHWAVE_BASELINE_SERVER"

// BenchmarkIngest measures a server process end to end: /report over
// loopback HTTP → WAL (fsync) → tsdb, for plain, gzip'd (BestSpeed), zstd
// (SpeedFastest) and s2 bodies of canonical Istio-like point lines, the
// compressed ones as the forwarder may send them. An op
// is one body; the clock stops once every point is in the tsdb. The
// series exist before the clock starts.
// points/cpu-s divides by the server process's CPU time (user+system from
// /proc, all threads), so the client's work is not counted: it runs in the
// benchmark process and prepares every body before the clock starts.
// Server-side profile: MESHWAVE_SERVER_TEST_CPUPROFILE=file.
func BenchmarkIngest(b *testing.B) {
	type server struct{ name, bin string }
	servers := []server{{"current", os.Args[0]}}
	if bin := os.Getenv(baselineEnv); bin != "" {
		servers = append(servers, server{"baseline", bin})
	}
	// gzip=false is plain; zstd=true is zstd (SpeedFastest) and s2=true one
	// S2 block, as the forwarder sends to backends that offer them (to
	// this one, s2).
	for _, enc := range []struct{ name, encoding string }{{"gzip=false", ""}, {"gzip=true", "gzip"}, {"zstd=true", "zstd"}, {"s2=true", "s2"}} {
		for _, srv := range servers {
			b.Run("server="+srv.name+"/"+enc.name, func(b *testing.B) { benchIngest(b, srv.bin, enc.encoding) })
		}
	}
}

func benchIngest(b *testing.B, bin, encoding string) {
	var env []string
	if prof := os.Getenv(childProfileEnv); prof != "" {
		env = append(env, childProfileEnv+"="+prof)
	}
	cmd, url := startChild(b, bin, b.TempDir(), env...)
	defer stopChild(b, cmd)

	// Body 0 of every sender creates its series before the clock starts:
	// steady state is what is measured.
	bodies := make([][][]byte, benchSenders)
	points, warmup := 0, 0
	t0 := time.Now().Add(-30*time.Minute).Unix() * 1000
	for i := range b.N + benchSenders {
		w := i % benchSenders
		body, n := istioBody(w, len(bodies[w]), t0)
		body = encodeBody(b, body, encoding)
		bodies[w] = append(bodies[w], body)
		if i < benchSenders {
			warmup += n
		} else {
			points += n
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchSenders}}
	for w, bs := range bodies {
		if err := postBody(client, url, bs[0], encoding); err != nil {
			b.Fatal(err)
		}
		bodies[w] = bs[1:]
	}
	for storedPoints(b, client, url) < warmup {
		time.Sleep(50 * time.Millisecond)
	}
	var wg sync.WaitGroup
	errs := make(chan error, benchSenders)
	b.ResetTimer()
	cpu0, wall0 := childCPU(b, cmd), time.Now()
	for _, bs := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bs {
				if err := postBody(client, url, body, encoding); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// Rarely: each poll costs the server about a millisecond of CPU.
	for storedPoints(b, client, url) < warmup+points {
		time.Sleep(50 * time.Millisecond)
	}
	cpu, wall := childCPU(b, cmd)-cpu0, time.Since(wall0)
	b.StopTimer()
	b.ReportMetric(float64(points)/wall.Seconds(), "points/s")
	b.ReportMetric(float64(points)/cpu.Seconds(), "points/cpu-s")
}

// BenchmarkApply measures the applier alone: WAL records of canonical
// Istio-like lines, as handleReport writes them from the bodies of
// BenchmarkIngest's four senders, applied to the tsdb in batches of four
// records (one body of each sender, about one WAL read). Records are
// built with the timer stopped; points/cpu-s counts the process's CPU
// time (getrusage) during the applies only. order=stable sends every
// sender's series in the same order body after body, as BenchmarkIngest
// and scrapes do; order=shuffled in a new order in every body (a series'
// points still in time order), so the reference cache's guess of the
// next series never holds and every line takes the hash index.
// hints=true gives the applier the records with the hints the handler
// makes for lines of known series (pointHint), as it does when the
// records come in memory; hints=false is a replay from disk.
func BenchmarkApply(b *testing.B) {
	for _, shuffled := range []bool{false, true} {
		for _, hinted := range []bool{false, true} {
			name := fmt.Sprintf("order=%s/hints=%t", map[bool]string{false: "stable", true: "shuffled"}[shuffled], hinted)
			b.Run(name, func(b *testing.B) { benchApply(b, shuffled, hinted) })
		}
	}
}

func benchApply(b *testing.B, shuffled, hinted bool) {
	s := start(b, Config{})
	a := &applier{s: s.Server}
	a.dec.Limits = &s.limits
	dec := &wavefront.Decoder{Limits: &s.limits}
	var p wavefront.Point
	t0 := time.Now().Add(-30*time.Minute).Unix() * 1000
	recs := make([][]byte, benchSenders)
	var hints [][]pointHint
	if hinted {
		hints = make([][]pointHint, benchSenders)
	}
	var lines [][]byte
	build := func(k int) (points int) {
		for w := range recs {
			known := s.known.reader(new(freeList[pointHint]))
			body, n := istioBody(w, k, t0)
			points += n
			lines = lines[:0]
			for line := range bytes.Lines(body) {
				lines = append(lines, bytes.TrimSuffix(line, []byte("\n")))
			}
			if shuffled {
				shuffleSeries(lines, k*benchBodyBytes/180, rand.New(rand.NewPCG(uint64(k), uint64(w))))
			}
			rec := newFrame(nil, fmtPoint, t0, recordCap(len(body)))
			for _, line := range lines {
				before := len(rec)
				var ok bool
				if rec, ok = known.appendPoint(rec, dec, line); ok {
					continue
				}
				var err error
				if rec, err = appendPoint(rec, dec, line, &p); err != nil {
					b.Fatal(err)
				}
				known.learn(line, rec[before:])
			}
			recs[w] = rec[walFrameHeader:]
			if hinted {
				hints[w] = known.takeHints()
			}
			known.close()
		}
		return points
	}
	// Create every series first: steady state is what is measured.
	build(0)
	if err := a.apply(context.Background(), recs, hints); err != nil {
		b.Fatal(err)
	}
	points, cpu := 0, time.Duration(0)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		points += build(i + 1)
		b.StartTimer()
		cpu0 := cpuclock.Self()
		if err := a.apply(context.Background(), recs, hints); err != nil {
			b.Fatal(err)
		}
		cpu += cpuclock.Self() - cpu0
	}
	b.StopTimer()
	b.ReportMetric(float64(points)/cpu.Seconds(), "points/cpu-s")
}

// shuffleSeries reorders the lines of an istioBody whose first line is
// line number first by a random order of their series, keeping each
// series' lines in their (time) order.
func shuffleSeries(lines [][]byte, first int, r *rand.Rand) {
	rank := r.Perm(benchSeriesPerSender)
	seriesOf := func(j int) int { return (first + j) % benchSeriesPerSender }
	order := make([]int, len(lines))
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(x, y int) int { return rank[seriesOf(x)] - rank[seriesOf(y)] })
	sorted := make([][]byte, len(lines))
	for j, o := range order {
		sorted[j] = lines[o]
	}
	copy(lines, sorted)
}

// istioBody returns sender w's body number k: its series in turn, one
// point each, about benchBodyBytes of canonical lines with second
// timestamps, and the number of lines. Every series' timestamps rise by a
// second per round, so samples arrive in order.
func istioBody(w, k int, t0 int64) ([]byte, int) {
	body := make([]byte, 0, benchBodyBytes+512)
	n := 0
	for i := k * benchBodyBytes / 180; len(body) < benchBodyBytes; i++ {
		series, round := i%benchSeriesPerSender, i/benchSeriesPerSender
		svc, pod := series%100, series/100
		body = fmt.Appendf(body, "\"istio.requests.total\" %d %d source=\"pod-%d-%d\" \"destination_service\"=\"svc-%d.default.svc.cluster.local\" \"destination_workload\"=\"svc-%d-v1\" \"response_code\"=\"%d\" \"reporter\"=\"destination\"\n",
			round*7+series, t0/1000+int64(round), w, pod, svc, svc, 200+series%3)
		n++
	}
	return body, n
}

// encodeBody compresses body as the forwarder would for encoding ("" is
// plain).
func encodeBody(b *testing.B, body []byte, encoding string) []byte {
	switch encoding {
	case "gzip":
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := zw.Write(body); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	case "zstd":
		zw, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		return zw.EncodeAll(body, nil)
	case "s2":
		return s2.Encode(nil, body)
	}
	return body
}

func postBody(client *http.Client, url string, body []byte, encoding string) error {
	req, err := http.NewRequest(http.MethodPost, url+"/report?f=wavefront", bytes.NewReader(body))
	if err != nil {
		return err
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	var res ReportResult
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(msg, &res) != nil || len(res.Rejected) > 0 {
		return fmt.Errorf("POST /report: %d %s", resp.StatusCode, msg)
	}
	return nil
}

// storedPoints reads the server's count of points written to the tsdb.
func storedPoints(b *testing.B, client *http.Client, url string) int {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	const prefix = `meshwave_server_lines_stored_total{format="wavefront"} `
	for l := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return int(n)
		}
	}
	return 0
}

// childCPU is the child's user+system CPU time, all threads.
func childCPU(b *testing.B, cmd *exec.Cmd) time.Duration {
	d, err := cpuclock.Process(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// stopChild ends a benchmark's server with SIGTERM, so that it closes its
// stores and writes its CPU profile.
func stopChild(b *testing.B, cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		b.Error("server child did not stop on SIGTERM")
	}
}

// BenchmarkTraceLookup measures GET-by-ID in a store of 20 000 traces of
// 8 spans each, with span logs.
func BenchmarkTraceLookup(b *testing.B) {
	kv, err := openKV(b.TempDir() + "/kv.db")
	if err != nil {
		b.Fatal(err)
	}
	defer kv.close()
	var dec wavefront.Decoder
	t0 := base()
	const traces, spans = 20000, 8
	ids := make([]string, traces)
	var batch kvBatch
	var sp wavefront.Span
	for i := range traces {
		ids[i] = fmt.Sprintf("%08x-9456-11e8-9eb6-529269fb1459", rand.Uint32())
		for j := range spans {
			line := fmt.Sprintf("op%d source=web traceId=%s spanId=%08x-0000-0000-0000-%012d application=shop service=svc%d http.method=GET %d %d",
				j, ids[i], j, i, j%3, t0+int64(i), 10+j)
			if err := dec.DecodeSpan([]byte(line), &sp); err != nil {
				b.Fatal(err)
			}
			batch.spans = append(batch.spans, spanRecOf(&sp, []byte(line)))
		}
		batch.logs = append(batch.logs, logRec{key: []byte(ids[i] + "\x00x\x00hashhash"), received: t0, json: []byte(`{"traceId":"x","spanId":"x","logs":[]}`)})
		if len(batch.spans) >= 40000 {
			if err := kv.write(&batch, &dec); err != nil {
				b.Fatal(err)
			}
			batch.reset()
		}
	}
	if err := kv.write(&batch, &dec); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		got, err := kv.trace(ids[i%traces], &dec)
		if err != nil || len(got) != spans {
			b.Fatalf("trace: %d spans, %v", len(got), err)
		}
	}
}

// BenchmarkSpanStore writes Envoy spans with their span logs (the testdata
// lines, in traces of 8 spans that arrive together, as a request through
// four sidecars makes them) into the span store in transactions of 500,
// as the applier does, and reports the process's CPU and the store's
// pages per span.
func BenchmarkSpanStore(b *testing.B) {
	const spansPerTrace = 8
	lim := wavefront.DefaultLimits()
	lim.MaxSpanAnnotations = wavefront.MeshSpanAnnotations
	dec := wavefront.Decoder{Limits: &lim}
	lines, logs := testLines(b, "testdata/envoy-span-lines.txt"), testLines(b, "testdata/envoy-span-logs.txt")
	recs := make([]spanRec, len(lines))
	for i, l := range lines {
		var sp wavefront.Span
		if err := dec.DecodeSpan(l, &sp); err != nil {
			b.Fatal(err)
		}
		recs[i] = spanRecOf(&sp, l)
	}
	kv, err := openKV(b.TempDir() + "/kv.db")
	if err != nil {
		b.Fatal(err)
	}
	defer kv.close()
	n := 0
	cpu0 := cpuclock.Self()
	for b.Loop() {
		var batch kvBatch
		for range 500 {
			r := recs[n%len(recs)]
			r.traceID = fmt.Sprintf("%08x%s", uint32(n/spansPerTrace)*2654435761, r.traceID[8:])
			r.spanID = fmt.Sprintf("%s%08x", r.spanID[:len(r.spanID)-8], uint32(n))
			batch.spans = append(batch.spans, r)
			batch.logs = append(batch.logs, logRec{key: []byte(r.traceID + "\x00" + r.spanID + "\x00hashhash"), received: int64(n), json: logs[n%len(logs)]})
			n++
		}
		if err := kv.write(&batch, &dec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuclock.Self()-cpu0).Nanoseconds())/float64(n), "cpu-ns/span")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/span")
	kv.db.View(func(tx *bbolt.Tx) error {
		pages := 0
		for _, name := range allBuckets {
			s := tx.Bucket(name).Stats()
			pages += s.BranchPageN + s.BranchOverflowN + s.LeafPageN + s.LeafOverflowN
		}
		b.ReportMetric(float64(pages*kv.db.Info().PageSize)/float64(n), "file-B/span")
		return nil
	})
}
