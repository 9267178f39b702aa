package simulate

import (
	"fmt"
	"time"
)

// LeFormat selects how /federate spells histogram `le` (and summary
// `quantile`) label values, which depends on the Prometheus version that
// ingested the scrape (istio.md §3).
type LeFormat int

const (
	// LePrometheus2 keeps the scraped strings: Envoy "1800000", istiod "1".
	LePrometheus2 LeFormat = iota
	// LePrometheus3 normalises to Go's shortest float with ".0" added to
	// integers: "1.8e+06", "1.0", "300000.0".
	LePrometheus3
)

// String returns the flag spelling, "prom2" or "prom3".
func (f LeFormat) String() string {
	if f == LePrometheus3 {
		return "prom3"
	}
	return "prom2"
}

// ParseLeFormat parses "prom2" or "prom3".
func ParseLeFormat(s string) (LeFormat, error) {
	switch s {
	case "prom2", "2":
		return LePrometheus2, nil
	case "prom3", "3":
		return LePrometheus3, nil
	}
	return 0, fmt.Errorf("le format %q: want prom2 or prom3", s)
}

// Options shape the simulated mesh. The zero value is not useful; start from
// DefaultOptions.
type Options struct {
	// Namespaces is the number of application namespaces. The first is
	// "default" and hosts Bookinfo (productpage → details, reviews → ratings)
	// ahead of any generic services; the others hold generic services only.
	Namespaces int
	// Services is the number of services per namespace.
	Services int
	// Versions is the number of workloads (v1, v2, …) per service.
	Versions int
	// Pods is the number of pods per workload.
	Pods int
	// RPS is the request rate each client pod sends along each outbound edge
	// (for TCP edges: connections per second divided by ten).
	RPS float64
	// Seed drives pod names, IPs, latencies and sizes. The series set depends
	// only on the shape, never on the seed.
	Seed int64
	// LeFormat picks the Prometheus 2.x or 3.x `le` spelling in /federate.
	LeFormat LeFormat
	// Start is when every pod (and istiod) started; counters are zero then.
	// Zero means one hour before NewMesh is called, so the first scrape
	// already shows non-trivial values.
	Start time.Time
	// IstioVersion is the `tag` of istio_build and the pilot_xds version.
	IstioVersion string
	// Cluster is the source_cluster/destination_cluster label value.
	Cluster string
	// DocumentedNames also emits the three istiod names the setup page lists
	// but Istio 1.14 never emits (citadel_server_csr_sign_error_count,
	// galley_validation_config_load, galley_validation_config_delete_error),
	// so allow lists and dashboards written from that page can be exercised.
	DocumentedNames bool
}

// DefaultOptions is the shape `meshwave simulate` serves without flags.
func DefaultOptions() Options {
	return Options{
		Namespaces:      2,
		Services:        5,
		Versions:        2,
		Pods:            1,
		RPS:             2,
		Seed:            1,
		IstioVersion:    "1.14.6",
		Cluster:         "Kubernetes",
		DocumentedNames: true,
	}
}

func (o Options) validate() error {
	switch {
	case o.Namespaces < 1 || o.Namespaces > 10000:
		return fmt.Errorf("namespaces %d: want 1..10000", o.Namespaces)
	case o.Services < 1 || o.Services > 1000:
		return fmt.Errorf("services %d: want 1..1000", o.Services)
	case o.Versions < 1 || o.Versions > 100:
		return fmt.Errorf("versions %d: want 1..100", o.Versions)
	case o.Pods < 1 || o.Pods > 1000:
		return fmt.Errorf("pods %d: want 1..1000", o.Pods)
	case o.Namespaces*o.Services*o.Versions*o.Pods > 1<<20:
		return fmt.Errorf("%d pods: at most %d", o.Namespaces*o.Services*o.Versions*o.Pods, 1<<20)
	case !(o.RPS >= 0) || o.RPS > 1e6:
		return fmt.Errorf("rps %v: want 0..1e6", o.RPS)
	case o.IstioVersion == "" || o.Cluster == "":
		return fmt.Errorf("IstioVersion and Cluster must be set")
	}
	return nil
}
