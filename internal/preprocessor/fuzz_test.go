package preprocessor

import (
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// FuzzParse checks that no rule file makes Parse panic, and that whatever
// parses can be run on a point, a span and a line without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(ruleFile("prod")))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		s := new(Scratch)
		for _, port := range []string{"2878", "9411", "global"} {
			p := r.ForPort(port)
			line := p.TransformLine([]byte("istio_requests_total 1 source=web-1 env=Prod"), nil)
			p.LineFilter(line)
			pt := mkPoint("istio_requests_total web-1 env=Prod reporter=source code=503")
			p.Point(pt, s)
			p.Span(envoySpan(), s)
			p.Span(&wavefront.Span{}, s)
			p.Point(&wavefront.Point{}, s)
		}
		r.Stats()
	})
}
