package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/envoyjson"
	"github.com/openzipkin/zipkin-go/model"
)

const zipkinSpansPerBody = 100

// envoyBodies builds POST bodies of zipkinSpansPerBody spans cycled from the
// Envoy captures in testdata, with fresh IDs and current timestamps. Envoy
// writes every object's members in a fresh order (its JSON comes from
// protobuf maps; the captures show it), so each span here gets its own
// random order at every level, with Envoy's ", " separators.
func envoyBodies(tb testing.TB, n int) [][]byte {
	paths, _ := filepath.Glob("../../testdata/fixtures/zipkin/*.json")
	if len(paths) == 0 {
		tb.Fatal("no Zipkin fixtures")
	}
	var templates []map[string]any
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var spans []map[string]any
		if err := dec.Decode(&spans); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		templates = append(templates, spans...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UnixMicro()
	bodies := make([][]byte, n)
	for i := range bodies {
		var b bytes.Buffer
		b.WriteByte('[')
		for j := range zipkinSpansPerBody {
			span := maps.Clone(templates[j%len(templates)])
			ts := now - int64(r.IntN(1e6))
			span["traceId"] = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
			span["id"] = fmt.Sprintf("%016x", r.Uint64())
			span["timestamp"] = json.Number(strconv.FormatInt(ts, 10))
			if anns, ok := span["annotations"].([]any); ok {
				for k, a := range anns {
					a := maps.Clone(a.(map[string]any))
					a["timestamp"] = json.Number(strconv.FormatInt(ts+int64(r.IntN(1e4)), 10))
					anns[k] = a
				}
			}
			if j > 0 {
				b.WriteString(", ")
			}
			envoyjson.WriteShuffled(&b, r, span)
		}
		b.WriteByte(']')
		bodies[i] = b.Bytes()
	}
	return bodies
}

// BenchmarkZipkinIngest: parallel clients POST Envoy JSON v2 bodies of 100
// spans to the Zipkin port; each 202 means the spans, span logs and RED
// observations are durable. An op is one body.
func BenchmarkZipkinIngest(b *testing.B) {
	srv := discardBackend(b)
	p := benchProxy(b, srv.URL)
	url := fmt.Sprintf("http://%s/api/v2/spans", p.Addr("zipkin", "0"))
	bodies := envoyBodies(b, 64)
	b.SetParallelism(2) // 2×GOMAXPROCS clients keep the proxy busy during fsyncs
	b.ResetTimer()
	cpu0 := cpuclock.Self()
	b.RunParallel(func(pb *testing.PB) {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		i := rand.IntN(len(bodies))
		for pb.Next() {
			resp, err := hc.Post(url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			i++
		}
	})
	b.StopTimer()
	perSec := float64(b.N*zipkinSpansPerBody) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "spans/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "spans/s/core")
	b.ReportMetric(float64(b.N*zipkinSpansPerBody)/(cpuclock.Self()-cpu0).Seconds(), "spans/cpu-s")
}

// BenchmarkZipkinEncodingJSONBaseline is the obvious Go implementation's
// first step alone: encoding/json decoding the same bodies into
// zipkin-go's model, on one goroutine (so spans/s is per core). It does no
// HTTP, conversion or queueing.
func BenchmarkZipkinEncodingJSONBaseline(b *testing.B) {
	bodies := envoyBodies(b, 64)
	i := 0
	cpu0 := cpuclock.Self()
	for b.Loop() {
		var spans []model.SpanModel
		if err := json.Unmarshal(bodies[i%len(bodies)], &spans); err != nil {
			b.Fatal(err)
		}
		if len(spans) != zipkinSpansPerBody {
			b.Fatal("span count")
		}
		i++
	}
	perSec := float64(b.N*zipkinSpansPerBody) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "spans/s")
	b.ReportMetric(perSec, "spans/s/core")
	b.ReportMetric(float64(b.N*zipkinSpansPerBody)/(cpuclock.Self()-cpu0).Seconds(), "spans/cpu-s")
}
