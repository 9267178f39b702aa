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

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/envoyjson"
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
func envoyBody(tb testing.TB) []byte { return envoyBodySeeded(tb, 7) }

// envoyBodySeeded is envoyBody with IDs from the given seed.
func envoyBodySeeded(tb testing.TB, seed uint64) []byte {
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
	r := rand.New(rand.NewPCG(seed, seed))
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

func BenchmarkDecodeV2(b *testing.B) { benchDecodeV2(b, envoyBody(b)) }

// BenchmarkDecodeV2ShuffledTags is BenchmarkDecodeV2 with every span's
// tags in a fresh order, as Envoy sends them (its tags come from a hash
// map), and the other members in order.
func BenchmarkDecodeV2ShuffledTags(b *testing.B) { benchDecodeV2(b, shuffleTags(envoyBody(b), 7)) }

// BenchmarkDecodeV2Envoy is BenchmarkDecodeV2 with bodies as real Envoy
// writes them: every object's members (span, tags, endpoints,
// annotations) in a fresh order per span, as the proxy's
// BenchmarkZipkinProcess sends them.
func BenchmarkDecodeV2Envoy(b *testing.B) { benchDecodeV2(b, shuffleAll(b, envoyBody(b), 7)) }

func benchDecodeV2(b *testing.B, body []byte) {
	var d Decoder
	n := 0
	fn := func(*Span) error { n++; return nil }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuclock.Self()
	for b.Loop() {
		if err := d.Decode(body, JSONV2, fn); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N*benchSpans {
		b.Fatalf("decoded %d spans, want %d", n, b.N*benchSpans)
	}
	reportSpans(b, benchSpans)
	b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N*benchSpans), "cpu-ns/span")
}

var (
	reTags      = regexp.MustCompile(`"tags":\{[^{}]*\}`)
	reTagMember = regexp.MustCompile(`"[^"\\]*":\s*"[^"\\]*"`)
)

// shuffleTags rewrites body with each tags object's plain members in a
// random order, separated by ", ".
func shuffleTags(body []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	return reTags.ReplaceAllFunc(body, func(tags []byte) []byte {
		m := reTagMember.FindAll(tags, -1)
		r.Shuffle(len(m), func(i, j int) { m[i], m[j] = m[j], m[i] })
		var out []byte
		out = append(out, `"tags":{`...)
		for i, t := range m {
			if i > 0 {
				out = append(out, ", "...)
			}
			out = append(out, t...)
		}
		return append(out, '}')
	})
}

// shuffleAll rewrites body with every object's members in a random order
// per span, written as Envoy writes them.
func shuffleAll(tb testing.TB, body []byte, seed uint64) []byte {
	out, err := envoyjson.Shuffle(body, seed)
	if err != nil {
		tb.Fatal(err)
	}
	return out
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

// BenchmarkPipeline is what the Zipkin port does per span without HTTP,
// RED and the queue: decode, convert, validate+encode the span line and
// write the span logs. general converts to a wavefront.Span and encodes
// that; fused is Converter.AppendCanonicalSpan, falling back to general.
// cpu-ns/span is process CPU time (getrusage), steadier than wall time on
// a loaded machine.
func BenchmarkPipeline(b *testing.B) {
	// Bodies in rotation, as a proxy sees them: 64 × ~80 KB does not stay
	// in a core's cache the way one body would.
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = envoyBodySeeded(b, uint64(i))
	}
	for _, fused := range []bool{false, true} {
		name := "general"
		if fused {
			name = "fused"
		}
		b.Run(name, func(b *testing.B) { benchPipeline(b, bodies, fused) })
	}
}

// BenchmarkPipelineShuffledTags is BenchmarkPipeline's fused path with
// every span's tags in a fresh order, as Envoy sends them: the Converter's
// plans, cached by key sequence number, hit only if every order of a set
// of keys gets the same number.
func BenchmarkPipelineShuffledTags(b *testing.B) {
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = shuffleTags(envoyBodySeeded(b, uint64(i)), uint64(i))
	}
	benchPipeline(b, bodies, true)
}

func benchPipeline(b *testing.B, bodies [][]byte, fused bool) {
	var d Decoder
	c := Converter{SpanLogs: true}
	wd := meshDecoder()
	var out wavefront.Span
	var buf []byte
	fn := func(z *Span) error {
		if fused {
			var ok bool
			if buf, _, ok = c.AppendCanonicalSpan(buf, z, &out, wd); ok {
				buf = c.AppendLogs(buf, z, &out, "_sampledByPolicy=NONE")
				return nil
			}
		}
		c.Convert(z, &out)
		var ok bool
		if buf, ok = wd.AppendCanonicalSpan(buf, &out); !ok {
			if wd.ValidateSpan(&out) != nil {
				return nil // rejected
			}
			buf = wavefront.AppendSpan(buf, &out)
		}
		buf = c.AppendLogs(buf, z, &out, "_sampledByPolicy=NONE")
		return nil
	}
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	cpu0 := cpuclock.Self()
	for i := 0; b.Loop(); i++ {
		buf = buf[:0]
		if err := d.Decode(bodies[i%len(bodies)], JSONV2, fn); err != nil {
			b.Fatal(err)
		}
	}
	reportSpans(b, benchSpans)
	b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N*benchSpans), "cpu-ns/span")
}
