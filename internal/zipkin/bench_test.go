package zipkin

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/openzipkin/zipkin-go/model"
)

const benchSpans = 100

var (
	reTraceID = regexp.MustCompile(`"traceId":\s*"[0-9a-f]+"`)
	reID      = regexp.MustCompile(`"id":\s*"[0-9a-f]+"`)
)

// envoyBody builds a realistic Envoy POST body: benchSpans spans cycled
// from the Envoy captures and the Istio sample, each with fresh 128-bit
// trace and 64-bit span IDs.
func envoyBody(tb testing.TB) []byte {
	var templates []string
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		templates = append(templates, strings.TrimSpace(string(b)))
	}
	var istio []json.RawMessage
	if err := json.Unmarshal([]byte(istioBody), &istio); err != nil {
		tb.Fatal(err)
	}
	for _, s := range istio {
		templates = append(templates, "["+string(s)+"]")
	}
	r := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	b.WriteString("[")
	for i := range benchSpans {
		s := templates[i%len(templates)]
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		s = reTraceID.ReplaceAllString(s, fmt.Sprintf(`"traceId":"%016x%016x"`, r.Uint64(), r.Uint64()))
		s = reID.ReplaceAllString(s, fmt.Sprintf(`"id":"%016x"`, r.Uint64()))
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func reportSpans(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "spans/s")
}

func BenchmarkDecodeV2(b *testing.B) {
	body := envoyBody(b)
	var d Decoder
	n := 0
	fn := func(*Span) error { n++; return nil }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(body, JSONV2, fn); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N*benchSpans && n%benchSpans != 0 {
		b.Fatal("span count")
	}
	reportSpans(b, benchSpans)
}

// BenchmarkDecodeV2EncodingJSON is the baseline: encoding/json into
// zipkin-go's model, the obvious Go implementation.
func BenchmarkDecodeV2EncodingJSON(b *testing.B) {
	body := envoyBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var spans []model.SpanModel
		if err := json.Unmarshal(body, &spans); err != nil {
			b.Fatal(err)
		}
		if len(spans) != benchSpans {
			b.Fatal("span count")
		}
	}
	reportSpans(b, benchSpans)
}

func BenchmarkConvert(b *testing.B) {
	spans, err := decodeAs(&Decoder{}, envoyBody(b), JSONV2)
	if err != nil {
		b.Fatal(err)
	}
	c := Converter{SpanLogs: true}
	var out wavefront.Span
	b.ReportAllocs()
	for b.Loop() {
		for i := range spans {
			c.Convert(&spans[i], &out)
		}
	}
	reportSpans(b, len(spans))
}
