package preprocessor

import (
	"testing"
)

// benchRules are five typical rules for an Istio scrape; none of them
// changes benchPoint, which is the steady state for most traffic.
const benchRules = `
'2878':
  - {rule: drop-envoy, action: block, scope: metricName, match: "envoy_.*"}
  - {rule: drop-revisions, action: dropTag, tag: "(source|destination)_canonical_revision"}
  - {rule: dots, action: replaceRegex, scope: metricName, search: "\\.", replace: "_"}
  - {rule: cluster, action: addTagIfNotExists, tag: cluster, value: prod-eu}
  - {rule: only-mesh, action: allow, if: "{{reporter}} = 'source' or {{reporter}} = 'destination'"}
`

const benchPoint = "istio_requests_total productpage-v1-7d9b-x2x4z " +
	"cluster=prod-eu connection_security_policy=mutual_tls destination_app=reviews " +
	"destination_service=reviews.default.svc.cluster.local destination_version=v2 " +
	"destination_workload=reviews-v2 reporter=source request_protocol=http " +
	"response_code=200 source_app=productpage source_workload=productpage-v1"

func BenchmarkPointRules(b *testing.B) {
	p := mustParse(b, benchRules).ForPort("2878")
	in := mkPoint(benchPoint)
	pt := *in
	s := new(Scratch)
	b.ReportAllocs()
	for b.Loop() {
		pt = *in
		if res, _ := p.Point(&pt, s); res != Keep {
			b.Fatal(res)
		}
	}
}

func TestBenchPointUnchanged(t *testing.T) {
	p := mustParse(t, benchRules).ForPort("2878")
	pt := mkPoint(benchPoint)
	want := fmtPoint(pt)
	s := new(Scratch)
	allocs := testing.AllocsPerRun(100, func() { p.Point(pt, s) })
	if fmtPoint(pt) != want {
		t.Errorf("point changed: %s", fmtPoint(pt))
	}
	if allocs != 0 {
		t.Errorf("%v allocs per point, want 0", allocs)
	}
}
