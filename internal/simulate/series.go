package simulate

import "math"

// FederateSeries is the exact number of samples WriteFederate writes.
func (m *Mesh) FederateSeries() int {
	n := m.rawSamples
	nHist := len(m.envoyB.native) + 2 + 6 // buckets with +Inf, sum, count, six quantiles
	for _, g := range m.groups {
		if g.e.proto == protoTCP {
			n += 4
		} else {
			n += 1 + 3*nHist
		}
	}
	return n + 5*(len(m.pods)+2) // up and scrape_* per target and for the federate job
}

// ShapeForSeries returns o with Namespaces, Services, Versions and Pods
// chosen so that /federate has about n series. The series count is linear
// in the number of generic namespaces, so it tries namespace shapes from
// the most realistic down, solves each for the namespace count and takes the
// first within 2 % (else the closest); seed, rate and formats are kept.
func ShapeForSeries(n int, o Options) Options {
	best, bestErr := o, math.Inf(1)
	for _, svcs := range []int{8, 6, 4, 2, 1} {
		for _, vers := range []int{2, 1} {
			for pods := 1; pods <= 4; pods++ {
				c := o
				c.Services, c.Versions, c.Pods = svcs, vers, pods
				c.Namespaces = 1
				c1 := countSeries(c)
				c.Namespaces = 2
				d := countSeries(c) - c1
				if c1 < 0 || d <= 0 {
					continue
				}
				c.Namespaces = int(min(10000, max(1, 1+math.Round(float64(n-c1)/float64(d)))))
				err := math.Abs(float64(c1+(c.Namespaces-1)*d-n)) / float64(n)
				if err <= 0.02 {
					return c
				}
				if err < bestErr {
					best, bestErr = c, err
				}
			}
		}
	}
	return best
}

func countSeries(o Options) int {
	m, err := NewMesh(o)
	if err != nil {
		return -1
	}
	return m.FederateSeries()
}

// NewMeshForSeries builds a default-options mesh whose /federate has about
// n series, mostly ~1 KB lines with full Istio label sets.
func NewMeshForSeries(n int) *Mesh {
	m, err := NewMesh(ShapeForSeries(n, DefaultOptions()))
	if err != nil {
		panic(err) // DefaultOptions and the shapes ShapeForSeries picks are valid
	}
	return m
}
