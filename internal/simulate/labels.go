package simulate

import (
	"slices"
	"strconv"
	"strings"
)

// slot indexes one label value in enc.vals. Writers fill slots and a shape
// decides which slots appear, under which names and in which order, so one
// code path serves Envoy's native order and Prometheus' sorted order.
type slot uint8

// The Istio standard labels, in the order Envoy writes them (see the 1.16.5
// sidecar fixture): response_code first, canonical labels last.
const (
	sResponseCode slot = iota
	sReporter
	sSourceWorkload
	sSourceWorkloadNamespace
	sSourcePrincipal
	sSourceApp
	sSourceVersion
	sSourceCluster
	sDestinationWorkload
	sDestinationWorkloadNamespace
	sDestinationPrincipal
	sDestinationApp
	sDestinationVersion
	sDestinationService
	sDestinationServiceName
	sDestinationServiceNamespace
	sDestinationCluster
	sRequestProtocol
	sResponseFlags
	sGrpcResponseStatus
	sConnectionSecurityPolicy
	sSourceCanonicalService
	sDestinationCanonicalService
	sSourceCanonicalRevision
	sDestinationCanonicalRevision
	sLe  // `le` of buckets, `quantile` of summaries
	sApp // `app` of recorded (aggregated) series
	sJob // target labels added by Prometheus
	sInstance
	sKubeNamespace
	sKubePod
	sM0 // static labels of simple metrics, positionally
	sM1
	sM2
	sM3
	sP0    // pod labels, positionally per target kind
	nSlots = sP0 + maxPodLabels
)

const maxPodLabels = 12

// lbl names one slot.
type lbl struct {
	name string
	slot slot
}

// istioLabels returns the 25 request labels in Envoy's order.
func istioLabels() []lbl {
	return []lbl{
		{"response_code", sResponseCode},
		{"reporter", sReporter},
		{"source_workload", sSourceWorkload},
		{"source_workload_namespace", sSourceWorkloadNamespace},
		{"source_principal", sSourcePrincipal},
		{"source_app", sSourceApp},
		{"source_version", sSourceVersion},
		{"source_cluster", sSourceCluster},
		{"destination_workload", sDestinationWorkload},
		{"destination_workload_namespace", sDestinationWorkloadNamespace},
		{"destination_principal", sDestinationPrincipal},
		{"destination_app", sDestinationApp},
		{"destination_version", sDestinationVersion},
		{"destination_service", sDestinationService},
		{"destination_service_name", sDestinationServiceName},
		{"destination_service_namespace", sDestinationServiceNamespace},
		{"destination_cluster", sDestinationCluster},
		{"request_protocol", sRequestProtocol},
		{"response_flags", sResponseFlags},
		{"grpc_response_status", sGrpcResponseStatus},
		{"connection_security_policy", sConnectionSecurityPolicy},
		{"source_canonical_service", sSourceCanonicalService},
		{"destination_canonical_service", sDestinationCanonicalService},
		{"source_canonical_revision", sSourceCanonicalRevision},
		{"destination_canonical_revision", sDestinationCanonicalRevision},
	}
}

// without drops the named slots, keeping order.
func without(ls []lbl, drop ...slot) []lbl {
	return slices.DeleteFunc(slices.Clone(ls), func(l lbl) bool { return slices.Contains(drop, l.slot) })
}

// withLe appends `le` (or `quantile`), which Envoy and the Go client write last.
func withLe(ls []lbl, name string) []lbl {
	return append(slices.Clone(ls), lbl{name, sLe})
}

// tcpLabels is the first 23 of istio.md §6: no response_code, no grpc status.
func tcpLabels() []lbl { return without(istioLabels(), sResponseCode, sGrpcResponseStatus) }

// peerLabels is the first 20 (gRPC message counters): peers only.
func peerLabels() []lbl {
	return without(istioLabels(), sResponseCode, sGrpcResponseStatus, sRequestProtocol,
		sResponseFlags, sConnectionSecurityPolicy)
}

// aggLabels is recording-rule set A (istio.md §2.2); tcp drops response_code.
func aggLabels(tcp bool) []lbl {
	ls := []lbl{
		{"app", sApp},
		{"reporter", sReporter},
		{"response_code", sResponseCode},
		{"response_flags", sResponseFlags},
		{"source_workload", sSourceWorkload},
		{"source_workload_namespace", sSourceWorkloadNamespace},
		{"destination_workload", sDestinationWorkload},
		{"destination_workload_namespace", sDestinationWorkloadNamespace},
		{"job", sJob},
	}
	if tcp {
		ls = without(ls, sResponseCode)
	}
	return ls
}

// shape is a pre-rendered label layout: write items[i].pre then the slot's
// value for each item, then end. pre already holds the closing quote of the
// previous value, so a label costs two writes.
type shape struct {
	items []shapeItem
	end   string
}

type shapeItem struct {
	pre  string
	slot slot
}

// shapeOpts says how labels are laid out.
type shapeOpts struct {
	sorted      bool // Prometheus order (federate) instead of exposition order
	emptyInst   bool // append instance="" last, as /federate does when absent
	emptyBraces bool // Envoy writes `name{}` for families with no labels
}

// buildShape lays out metric labels followed by target labels. A metric
// label that clashes with a target label is renamed exported_<name>, as a
// scrape without honor_labels does.
func buildShape(metric, target []lbl, o shapeOpts) *shape {
	all := make([]lbl, 0, len(metric)+len(target)+1)
	for _, l := range metric {
		if slices.ContainsFunc(target, func(t lbl) bool { return t.name == l.name }) {
			l.name = "exported_" + l.name
		}
		all = append(all, l)
	}
	all = append(all, target...)
	if o.sorted {
		slices.SortStableFunc(all, func(a, b lbl) int { return strings.Compare(a.name, b.name) })
	}
	if o.emptyInst && !slices.ContainsFunc(all, func(l lbl) bool { return l.name == "instance" }) {
		all = append(all, lbl{"instance", nSlots}) // nSlots: always-empty value
	}
	sh := &shape{items: make([]shapeItem, len(all))}
	for i, l := range all {
		sep := `",`
		if i == 0 {
			sep = "{"
		}
		sh.items[i] = shapeItem{pre: sep + l.name + `="`, slot: l.slot}
	}
	switch {
	case len(all) > 0:
		sh.end = `"}`
	case o.emptyBraces:
		sh.end = "{}"
	}
	return sh
}

// buckets is one histogram layout with its `le` strings as scraped
// (Envoy/Go client) and as Prometheus 3 stores them.
type buckets struct {
	bounds []float64
	native []string
	prom3  []string
}

// newBuckets renders bounds; envoy selects Envoy's integer printing
// ("1800000") over the Go client's shortest form ("1e+06").
func newBuckets(envoy bool, bounds ...float64) *buckets {
	b := &buckets{bounds: bounds}
	for _, v := range bounds {
		if envoy {
			b.native = append(b.native, strconv.FormatFloat(v, 'f', -1, 64))
		} else {
			b.native = append(b.native, strconv.FormatFloat(v, 'g', -1, 64))
		}
		b.prom3 = append(b.prom3, prom3Float(v))
	}
	b.native = append(b.native, "+Inf")
	b.prom3 = append(b.prom3, "+Inf")
	return b
}

// prom3Float is Prometheus 3's label normalisation (formatOpenMetricsFloat).
func prom3Float(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if strings.ContainsAny(s, "e.") || strings.Contains(s, "Inf") || s == "NaN" {
		return s
	}
	return s + ".0"
}

// envoyBuckets are Envoy's default bounds, used by every istio_* histogram.
func envoyBuckets() *buckets {
	return newBuckets(true, 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
		30000, 60000, 300000, 600000, 1800000, 3600000)
}
