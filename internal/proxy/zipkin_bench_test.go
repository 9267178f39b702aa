package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/openzipkin/zipkin-go/model"
)

const zipkinSpansPerBody = 100

var (
	reTraceID = regexp.MustCompile(`"traceId":\s*"[0-9a-f]+"`)
	reSpanID  = regexp.MustCompile(`"id":\s*"[0-9a-f]+"`)
	reTS      = regexp.MustCompile(`"timestamp":\s*\d+`)
)

// envoyBodies builds POST bodies of zipkinSpansPerBody spans cycled from the
// Envoy captures in testdata, with fresh IDs and current timestamps.
func envoyBodies(tb testing.TB, n int) [][]byte {
	paths, _ := filepath.Glob("../../testdata/fixtures/zipkin/*.json")
	if len(paths) == 0 {
		tb.Fatal("no Zipkin fixtures")
	}
	var templates []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		s := strings.TrimSpace(string(data))
		templates = append(templates, strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UnixMicro()
	bodies := make([][]byte, n)
	for i := range bodies {
		var sb strings.Builder
		sb.WriteByte('[')
		for j := range zipkinSpansPerBody {
			s := templates[j%len(templates)]
			s = reTraceID.ReplaceAllString(s, fmt.Sprintf(`"traceId":"%016x%016x"`, r.Uint64(), r.Uint64()))
			s = reSpanID.ReplaceAllString(s, fmt.Sprintf(`"id":"%016x"`, r.Uint64()))
			s = reTS.ReplaceAllString(s, fmt.Sprintf(`"timestamp":%d`, now-int64(r.IntN(1e6))))
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(s)
		}
		sb.WriteByte(']')
		bodies[i] = []byte(sb.String())
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
