package benchmark

import (
	"bytes"
	"sync"
	"time"

	"github.com/meshwave/meshwave/internal/simulate"
)

// DefaultSeries is the size of the payload the Go benchmarks share.
const DefaultSeries = 100_000

// Payload is one generated Istio /federate body.
type Payload struct {
	Body   []byte
	Series int // samples in Body, exactly
}

// NewPayload generates a /federate body of about series samples, mostly
// ~1 KB lines with full Istio label sets.
func NewPayload(series int) (*Payload, error) {
	m := simulate.NewMeshForSeries(series)
	var b bytes.Buffer
	b.Grow(m.FederateSeries() * 1100) // avoid regrowing a ~100 MB buffer
	if err := simulate.WriteFederate(&b, m, time.Now()); err != nil {
		return nil, err
	}
	return &Payload{Body: b.Bytes(), Series: m.FederateSeries()}, nil
}

// DefaultPayload is the DefaultSeries payload, generated on first use and
// then shared: generating it takes longer than one benchmark op.
var DefaultPayload = sync.OnceValues(func() (*Payload, error) { return NewPayload(DefaultSeries) })
