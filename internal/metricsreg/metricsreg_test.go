package metricsreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	newC := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"})
	}
	a := Register(reg, newC())
	b := Register(reg, newC())
	if a != b {
		t.Fatal("second registration did not return the first collector")
	}
	if c := newC(); Register[prometheus.Counter](nil, c) != c {
		t.Fatal("nil registerer should return c unchanged")
	}
}
