package wql

import "strings"

// The acceptance set: every query of istio.md §10 (inferred there), written
// with the F_dp / F_cp filters of §9. Where the reference leaves a choice
// open, the comment says which form we use.
const (
	fDP = `cluster="${cluster}" and reporter="${reporter}" and source_workload_namespace="${src_ns}"` +
		` and source_workload="${src_wl}" and destination_workload_namespace="${dst_ns}"` +
		` and destination_workload="${dst_wl}"`
	fCP = `cluster="${cluster}"`
)

type dashQuery struct{ chart, query string }

func dp(q string) string { return strings.ReplaceAll(q, "F_dp", fDP) }
func cp(q string) string { return strings.ReplaceAll(q, "F_cp", fCP) }

var dataPlaneQueries = []dashQuery{
	{"Success Rate (as inferred)", dp(`100 * sum(rate(ts(istio.requests.total.value, F_dp and not response_code="5*"))) / sum(rate(ts(istio.requests.total.value, F_dp)))`)},
	// §10.1 "our choice": 4xx count as failures too.
	{"Success Rate", dp(`100 * sum(rate(ts(istio.requests.total.value, F_dp and not response_code="5*" and not response_code="4*"))) / sum(rate(ts(istio.requests.total.value, F_dp)))`)},
	{"Operations per Sec", dp(`sum(rate(ts(istio.requests.total.value, F_dp)))`)},
	{"4xx's", dp(`sum(rate(ts(istio.requests.total.value, F_dp and response_code="4*")))`)},
	{"5xx's", dp(`sum(rate(ts(istio.requests.total.value, F_dp and response_code="5*")))`)},
	{"Avg. Request Size", dp(`sum(rate(ts(istio.request.bytes.sum.value, F_dp))) / sum(rate(ts(istio.request.bytes.count.value, F_dp)))`)},
	{"Avg. Response Size", dp(`sum(rate(ts(istio.response.bytes.sum.value, F_dp))) / sum(rate(ts(istio.response.bytes.count.value, F_dp)))`)},
	{"Avg. Response Time", dp(`(sum(rate(ts(istio.request.duration.milliseconds.sum.value, F_dp))) / sum(rate(ts(istio.request.duration.milliseconds.count.value, F_dp)))) / 1000`)},
	{"Request Size P50", dp(`ts(istio.request.bytes.bucket.p50.value, F_dp)`)},
	{"Request Size P95", dp(`ts(istio.request.bytes.bucket.p95.value, F_dp)`)},
	{"Request Size P99", dp(`ts(istio.request.bytes.bucket.p99.value, F_dp)`)},
	{"Response Size P50", dp(`ts(istio.response.bytes.bucket.p50.value, F_dp)`)},
	{"Response Size P95", dp(`ts(istio.response.bytes.bucket.p95.value, F_dp)`)},
	{"Response Size P99", dp(`ts(istio.response.bytes.bucket.p99.value, F_dp)`)},
	{"Response Time P50", dp(`ts(istio.request.duration.milliseconds.bucket.p50.value, F_dp) / 1000`)},
	{"Response Time P95", dp(`ts(istio.request.duration.milliseconds.bucket.p95.value, F_dp) / 1000`)},
	{"Response Time P99", dp(`ts(istio.request.duration.milliseconds.bucket.p99.value, F_dp) / 1000`)},
	{"Overview of Applications using HTTP", dp(`ts(istio.request.duration.milliseconds.bucket.value, F_dp)`)},
	{"Avg. TCP Sent Bytes", dp(`avg(rate(ts(istio.tcp.sent.bytes.total.value, F_dp)))`)},
	{"Avg. TCP Received Bytes", dp(`avg(rate(ts(istio.tcp.received.bytes.total.value, F_dp)))`)},
	{"Avg. TCP Connections Opened", dp(`avg(rate(ts(istio.tcp.connections.opened.total.value, F_dp)))`)},
	{"Avg. TCP Connections Closed", dp(`avg(rate(ts(istio.tcp.connections.closed.total.value, F_dp)))`)},
	{"TCP table: Sent Bytes", dp(`rate(ts(istio.tcp.sent.bytes.total.value, F_dp))`)},
	{"TCP table: Received Bytes", dp(`rate(ts(istio.tcp.received.bytes.total.value, F_dp))`)},
}

var controlPlaneQueries = []dashQuery{
	{"Component Build Info", cp(`ts(istio.build.value, F_cp)`)},
	{"#Services known to Pilot", cp(`ts(pilot.services.value, F_cp)`)},
	// "must yield 0 when no series exists": Wavefront's .orElse().
	{"Pilot Rejected: eds", cp(`sum(ts(pilot.xds.eds.reject.value, F_cp)).orElse(0)`)},
	{"Pilot Rejected: cds_configs", cp(`sum(ts(pilot.xds.cds.reject.value, F_cp)).orElse(0)`)},
	{"Pilot Rejected: lds", cp(`sum(ts(pilot.xds.lds.reject.value, F_cp)).orElse(0)`)},
	{"Pilot Rejected: rds", cp(`sum(ts(pilot.xds.rds.reject.value, F_cp)).orElse(0)`)},
	{"XDS Push Context Errors", cp(`ts(pilot.xds.push.context.errors.value, F_cp)`)},
	{"Sidecar Injection: total_requests", cp(`sum(ts(sidecar.injection.requests.total.value, F_cp))`)},
	{"Sidecar Injection: success", cp(`sum(ts(sidecar.injection.success.total.value, F_cp))`)},
	{"Sidecar Injection: failed", cp(`sum(ts(sidecar.injection.failure.total.value, F_cp))`)},
	{"Sidecar Injection: skip", cp(`sum(ts(sidecar.injection.skip.total.value, F_cp))`)},
	{"CPU", cp(`rate(ts(process.cpu.seconds.total.value, F_cp and app="istiod"))`)},
	{"Resident Memory", cp(`ts(process.resident.memory.bytes.value, F_cp and app="istiod")`)},
	{"Virtual Memory", cp(`ts(process.virtual.memory.bytes.value, F_cp and app="istiod")`)},
	{"Go Routines", cp(`ts(go.goroutines.value, F_cp and app="istiod")`)},
	{"XDS Pushes", cp(`ts(pilot.xds.pushes.value, F_cp)`)},
	{"Total XDS Responses Rejected by Proxy", cp(`ts(pilot.total.xds.rejects.value, F_cp)`)},
	{"XDS Write Timeout", cp(`ts(pilot.xds.write.timeout.value, F_cp)`)},
	{"Total XDS Internal Errors", cp(`ts(pilot.total.xds.internal.errors.value, F_cp)`)},
	{"Virtual Services know to Pilot", cp(`ts(pilot.virt.services.value, F_cp)`)},
	{"Conflicting: Inbound", cp(`sum(ts(pilot.conflict.inbound.listener.value, F_cp))`)},
	{"Conflicting: HTTP over current TCP", cp(`sum(ts(pilot.conflict.outbound.listener.http.over.current.tcp.value, F_cp))`)},
	{"Conflicting: TCP over current HTTP", cp(`sum(ts(pilot.conflict.outbound.listener.tcp.over.current.http.value, F_cp))`)},
	{"Conflicting: TCP over current TCP", cp(`sum(ts(pilot.conflict.outbound.listener.tcp.over.current.tcp.value, F_cp))`)},
	{"Proxy Convergence Time", cp(`ts(pilot.proxy.convergence.time.bucket.value, F_cp)`)},
	// §10.2 / §11.2 corrected variant: a real latency distribution from le deltas.
	{"Proxy Convergence Time p50", cp(`percentile(50, rate(ts(pilot.proxy.convergence.time.bucket.value, F_cp)))`)},
	{"Proxy Convergence Time p90", cp(`percentile(90, rate(ts(pilot.proxy.convergence.time.bucket.value, F_cp)))`)},
	{"Proxy Convergence Time p99", cp(`percentile(99, rate(ts(pilot.proxy.convergence.time.bucket.value, F_cp)))`)},
	{"Proxy Queue Time", cp(`ts(pilot.proxy.queue.time.bucket.value, F_cp)`)},
	{"Validation Passed", cp(`sum(rate(ts(galley.validation.passed.value, F_cp)), app, instance)`)},
	{"Validation Failed", cp(`sum(rate(ts(galley.validation.failed.value, F_cp)), app, instance)`)},
	{"HTTP Error", cp(`sum(rate(ts(galley.validation.http.error.value, F_cp)), app, instance)`)},
	{"Config Updates", cp(`sum(rate(ts(galley.validation.config.updates.value, F_cp)), app, instance)`)},
	{"Config Load", cp(`sum(rate(ts(galley.validation.config.load.value, F_cp)), app, instance)`)},
	{"Delete Error", cp(`sum(rate(ts(galley.validation.config.delete.error.value, F_cp)), app, instance)`)},
	{"Root Certificate Expiry", cp(`ts(citadel.server.root.cert.expiry.timestamp.value, F_cp) - time()`)},
	{"CSRs Received", cp(`sum(rate(ts(citadel.server.csr.count.value, F_cp)), app, instance)`)},
	{"CSRs Success", cp(`sum(rate(ts(citadel.server.success.cert.issuance.count.value, F_cp)), app, instance)`)},
	// §11.6: accept the documented (sign.error) and the real (sign.err) name.
	{"CSRs Error", cp(`sum(rate(ts(citadel.server.csr.sign.err*.count.value, F_cp)), app, instance)`)},
	{"Allocated Bytes", cp(`ts(go.memstats.alloc.bytes.value, F_cp and app="istiod")`)},
	{"Stack Inuse", cp(`ts(go.memstats.stack.inuse.bytes.value, F_cp and app="istiod")`)},
	{"heap_sys_bytes", cp(`ts(go.memstats.heap.sys.bytes.value, F_cp and app="istiod")`)},
	{"heap_inuse_bytes", cp(`ts(go.memstats.heap.inuse.bytes.value, F_cp and app="istiod")`)},
	{"heap_alloc_bytes", cp(`ts(go.memstats.heap.alloc.bytes.value, F_cp and app="istiod")`)},
}

// dashVars are the dashboard variables with every filter at "all".
var dashVars = map[string]string{
	"cluster": "prod", "reporter": "*", "src_ns": "*", "src_wl": "*", "dst_ns": "*", "dst_wl": "*",
}
