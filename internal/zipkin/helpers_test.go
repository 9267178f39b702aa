package zipkin

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

const fixtureDir = "../../testdata/fixtures/zipkin"

// fixtures returns the Envoy capture bodies by file name, skipping the test
// when the shared fixtures are not mounted.
func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if len(paths) == 0 {
		t.Skip("no fixtures in " + fixtureDir)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// decodeAll decodes body with detection and returns deep copies of the
// spans, so they outlive the Decoder's buffers.
func decodeAll(t testing.TB, body []byte) ([]Span, error) {
	t.Helper()
	enc, err := Detect(body)
	if err != nil {
		return nil, err
	}
	return decodeAs(&Decoder{}, body, enc)
}

func decodeAs(d *Decoder, body []byte, enc Encoding) ([]Span, error) {
	var spans []Span
	err := d.Decode(body, enc, func(s *Span) error {
		spans = append(spans, cloneSpan(s))
		return nil
	})
	return spans, err
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

func cloneSpan(s *Span) Span {
	c := *s
	c.TraceID, c.ID, c.ParentID, c.Name = clone(s.TraceID), clone(s.ID), clone(s.ParentID), clone(s.Name)
	c.LocalEndpoint.ServiceName = clone(s.LocalEndpoint.ServiceName)
	c.RemoteEndpoint.ServiceName = clone(s.RemoteEndpoint.ServiceName)
	c.Annotations = nil
	for _, a := range s.Annotations {
		c.Annotations = append(c.Annotations, Annotation{a.Timestamp, clone(a.Value)})
	}
	c.Tags = nil
	for _, t := range s.Tags {
		c.Tags = append(c.Tags, Tag{Key: clone(t.Key), Value: clone(t.Value)})
	}
	c.annLo, c.annHi, c.tagLo, c.tagHi = 0, 0, 0, 0
	return c
}

func spanLine(s *wavefront.Span) string { return string(wavefront.AppendSpan(nil, s)) }

func mustDecode(t testing.TB, body string) []Span {
	t.Helper()
	spans, err := decodeAll(t, []byte(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return spans
}
