package zipkin

import (
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// BenchmarkConvertFused is the Zipkin port's per-span conversion without
// decoding: span line (AppendCanonicalSpan, or Convert and the general
// encoder when it declines) and span logs, over already decoded Envoy
// spans. The spans keep the Decoder's plain-value marks and key sequences,
// as the port sees them.
func BenchmarkConvertFused(b *testing.B) {
	var d Decoder
	var spans []Span
	if err := d.Decode(envoyBody(b), JSONV2, func(z *Span) error {
		spans = append(spans, *z) // aliases d's pools, which the next Decode would reuse
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	c := Converter{SpanLogs: true}
	wd := meshDecoder()
	var out wavefront.Span
	var red RED
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range spans {
			z := &spans[i]
			var ok bool
			if buf, ok = c.AppendCanonicalSpanTo(buf, z, &out, &red, wd); !ok {
				c.Convert(z, &out)
				buf = wavefront.AppendSpan(buf, &out)
			}
			buf = c.AppendLogs(buf, z, &out, "_sampledByPolicy=NONE")
		}
	}
	reportSpans(b, len(spans))
}
