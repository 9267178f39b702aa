package wavefront

import (
	"testing"

	"github.com/meshwave/meshwave/internal/pageend"
)

// TestParsersReadNothingPastTheLine runs every parser over every prefix
// of real lines placed at the end of readable memory (package pageend),
// with no spare capacity: the fast paths' word loads and assembly may use
// spare capacity only where a line has it.
func TestParsersReadNothingPastTheLine(t *testing.T) {
	lines := []string{
		istioLine,
		`istio_requests_total 1842 1712000000 source=productpage-v1-00001a.default reporter=destination source_workload=productpage-v1 response_code=200 response_flags=- "quoted_key"="a value"`,
		`getAllUsers source=localhost traceId=7b3bf470-9456-11e8-9eb6-529269fb1459 spanId=0313bafe-9457-11e8-9eb6-529269fb1459 parent=2f64e538-9457-11e8-9eb6-529269fb1459 application=Wavefront http.method=GET 1533529977 343500`,
		`{"customer":"default","traceId":"7b3bf470-9456-11e8-9eb6-529269fb1459","spanId":"0313bafe-9457-11e8-9eb6-529269fb1459","logs":[{"timestamp":1533529977000000,"fields":{"annotation":"ss","k":"v"}}]}`,
		`!M 1712000000 #20 30.0 #10 5.1 request.latency source=appServer1 region=us-west`,
	}
	longest := 0
	for _, l := range lines {
		longest = max(longest, len(l)+1)
	}
	mem := pageend.New(t, longest)
	d := newTestDecoder()
	var (
		p   Point
		s   Span
		sl  SpanLogs
		h   Distribution
		dst []byte
	)
	// The fast paths must run to the line's end at the page's edge, not
	// just decline early.
	for _, line := range lines[:2] {
		if _, ok := d.AppendCanonicalPoint(nil, mem.At([]byte(line))); !ok {
			t.Fatalf("AppendCanonicalPoint declined %s", line)
		}
		if _, taken, _ := d.AppendCanonicalLines(nil, mem.At([]byte(line+"\n")), 4096); taken != 1 {
			t.Fatalf("AppendCanonicalLines took %d lines of %s", taken, line)
		}
	}
	for _, line := range lines {
		withNewline := []byte(line + "\n")
		for n := range len(withNewline) + 1 {
			prefix := withNewline[:n]
			dst, _ = d.AppendCanonicalPoint(dst[:0], mem.At(prefix))
			dst, _, _ = d.AppendCanonicalLines(dst[:0], mem.At(prefix), 4096)
			_ = d.DecodePoint(mem.At(prefix), &p)
			_ = d.DecodeSpan(mem.At(prefix), &s)
			_ = DecodeSpanLogs(mem.At(prefix), &sl)
			_ = d.DecodeDistribution(mem.At(prefix), &h)
		}
	}
}
