package simulate

import (
	"math"
	"slices"
	"strings"
)

// part is the slice of a family one /federate family holds: histograms and
// summaries split into <name>_bucket (or <name> for quantiles), _sum, _count.
type part uint8

const (
	partAll part = iota
	partBucket
	partSum
	partCount
)

type famKind uint8

const (
	fkRequests famKind = iota
	fkHist             // sub: histDuration, histReqBytes, histRespBytes
	fkReqMsgs
	fkRespMsgs
	fkTCP // sub: tcpSent, tcpReceived, tcpOpened, tcpClosed
	fkSimple
)

const (
	histDuration = iota
	histReqBytes
	histRespBytes
)

const (
	tcpSent = iota
	tcpReceived
	tcpOpened
	tcpClosed
)

// Label-set ids of the Istio families; simple families register more.
const (
	lsHTTP = iota
	lsHTTPLe
	lsTCP
	lsPeer
	lsNone
)

// lset holds one label set's layouts: exposition order, and Prometheus order
// merged with each target kind's labels.
type lset struct {
	native *shape
	fed    [nTargetKinds]*shape
}

// family is one exposition family of a sidecar or of istiod.
type family struct {
	name, help, typ string // help is empty for Envoy families (TYPE-only framing)
	kind            famKind
	sub             int
	ls, lsLe        int      // lsLe: with le (histograms) or quantile (summaries)
	b               *buckets // bounds of the Istio histograms
	quantiles       *buckets // summary quantiles, as label strings
	series          []simpleSeries
}

// simpleSeries is one series of a runtime/control-plane family.
type simpleSeries struct {
	vals []string // label values, in family label order (slots sM0…)
	v    model
}

// model computes a value from elapsed seconds: base + rate·el, optionally
// wobbling around base with a 10-minute period. Histograms observe `count`
// values with cumulative fractions cdf and mean `mean`; summaries use cdf as
// the quantile values.
type model struct {
	base, rate, amp float64
	whole           bool // counters of events are integers
	scaled          bool // multiply by the pod's jitter factor
	b               *buckets
	cdf             []float64
	mean            float64
}

func (v *model) at(el, factor float64) float64 {
	x := v.base + v.rate*el
	if v.amp != 0 {
		x *= 1 + v.amp*math.Sin(el*2*math.Pi/600+factor*10)
	}
	if v.scaled {
		x *= factor
	}
	if v.whole {
		x = math.Floor(x)
	}
	return x
}

func counter(base, rate float64) model { return model{base: base, rate: rate, whole: true} }
func gauge(base, amp float64) model    { return model{base: base, amp: amp, scaled: true} }
func constant(v float64) model         { return model{base: v} }

// observed is a histogram model: count grows at rate, observations are
// log-normal around median.
func observed(b *buckets, base, rate, median, sigma float64) model {
	v := counter(base, rate)
	v.b = b
	v.mean = median * math.Exp(sigma*sigma/2)
	for _, x := range b.bounds {
		v.cdf = append(v.cdf, 0.5*math.Erfc(-(math.Log(x)-math.Log(median))/(sigma*math.Sqrt2)))
	}
	return v
}

// addLset registers a label set and precomputes its layouts.
func (m *Mesh) addLset(metric []lbl, envoy bool) int {
	l := &lset{native: buildShape(metric, nil, shapeOpts{emptyBraces: envoy})}
	for k := range nTargetKinds {
		l.fed[k] = buildShape(metric, targetLabels(k), shapeOpts{sorted: true})
	}
	m.lsets = append(m.lsets, l)
	return len(m.lsets) - 1
}

// targetLabels are what the kubernetes-pods job attaches to every series.
func targetLabels(k targetKind) []lbl {
	ls := []lbl{{"job", sJob}, {"instance", sInstance}, {"kubernetes_namespace", sKubeNamespace},
		{"kubernetes_pod_name", sKubePod}}
	for i, n := range podLabelNames(k) {
		ls = append(ls, lbl{n, sP0 + slot(i)})
	}
	return ls
}

// simple builds a family of static series; names are its label names.
func (m *Mesh) simple(name, help, typ string, names []string, series ...simpleSeries) *family {
	f := &family{name: name, help: help, typ: typ, kind: fkSimple, series: series}
	ls := make([]lbl, len(names))
	for i, n := range names {
		ls[i] = lbl{n, sM0 + slot(i)}
	}
	envoy := help == ""
	f.ls = m.addLset(ls, envoy)
	switch typ {
	case "histogram":
		f.lsLe = m.addLset(withLe(ls, "le"), envoy)
	case "summary":
		f.lsLe = m.addLset(withLe(ls, "quantile"), envoy)
	}
	return f
}

func ser(v model, vals ...string) simpleSeries { return simpleSeries{vals: vals, v: v} }

func (m *Mesh) buildFamilies() {
	m.lsets = nil
	m.addLset(istioLabels(), true)
	m.addLset(withLe(istioLabels(), "le"), true)
	m.addLset(tcpLabels(), true)
	m.addLset(peerLabels(), true)
	m.addLset(nil, true)
	aggT := []lbl{}
	m.agg[0] = buildShape(aggLabels(false), aggT, shapeOpts{sorted: true, emptyInst: true})
	m.agg[1] = buildShape(aggLabels(true), aggT, shapeOpts{sorted: true, emptyInst: true})
	m.aggLe = buildShape(withLe(aggLabels(false), "le"), aggT, shapeOpts{sorted: true, emptyInst: true})
	m.self = buildShape(nil, []lbl{{"job", sJob}, {"instance", sInstance}}, shapeOpts{sorted: true})

	istio := func(name, typ string, kind famKind, sub int) *family {
		f := &family{name: name, typ: typ, kind: kind, sub: sub, b: m.envoyB}
		switch kind {
		case fkRequests, fkHist:
			f.ls, f.lsLe = lsHTTP, lsHTTPLe
		case fkTCP:
			f.ls = lsTCP
		default:
			f.ls = lsPeer
		}
		return f
	}
	m.sideFams = []*family{
		istio("istio_requests_total", "counter", fkRequests, 0),
		istio("istio_request_duration_milliseconds", "histogram", fkHist, histDuration),
		istio("istio_request_bytes", "histogram", fkHist, histReqBytes),
		istio("istio_response_bytes", "histogram", fkHist, histRespBytes),
		istio("istio_request_messages_total", "counter", fkReqMsgs, 0),
		istio("istio_response_messages_total", "counter", fkRespMsgs, 0),
		istio("istio_tcp_sent_bytes_total", "counter", fkTCP, tcpSent),
		istio("istio_tcp_received_bytes_total", "counter", fkTCP, tcpReceived),
		istio("istio_tcp_connections_opened_total", "counter", fkTCP, tcpOpened),
		istio("istio_tcp_connections_closed_total", "counter", fkTCP, tcpClosed),
		m.simple("istio_build", "", "gauge", []string{"component", "tag"},
			ser(constant(1), "proxy", m.opts.IstioVersion)),
	}
	m.sideFams = append(m.sideFams, m.envoyFamilies()...)
	m.sideFams = append(m.sideFams, m.runtimeFamilies(false)...)
	m.istiodFams = m.istiodFamilies()
	m.buildFederateFamilies()
}

func (m *Mesh) envoyFamilies() []*family {
	cn := []string{"cluster_name"}
	return []*family{
		m.simple("envoy_cluster_upstream_cx_active", "", "gauge", cn, ser(constant(1), "xds-grpc")),
		m.simple("envoy_cluster_upstream_cx_total", "", "counter", cn, ser(counter(1, 1.0/1800), "xds-grpc")),
		m.simple("envoy_cluster_upstream_rq_total", "", "counter", cn, ser(counter(3, 0.05), "xds-grpc")),
		m.simple("envoy_cluster_manager_cds_update_success", "", "counter", nil, ser(counter(2, 0.01))),
		m.simple("envoy_listener_manager_lds_update_success", "", "counter", nil, ser(counter(2, 0.01))),
		m.simple("envoy_server_concurrency", "", "gauge", nil, ser(constant(2))),
		m.simple("envoy_server_live", "", "gauge", nil, ser(constant(1))),
		m.simple("envoy_server_memory_allocated", "", "gauge", nil, ser(gauge(9.4e6, 0.05))),
		m.simple("envoy_server_uptime", "", "gauge", nil, ser(model{rate: 1, whole: true})),
		m.simple("envoy_cluster_upstream_cx_connect_ms", "", "histogram", cn,
			ser(observed(m.envoyB, 1, 1.0/1800, 4, 0.6), "xds-grpc")),
		m.simple("envoy_cluster_upstream_cx_length_ms", "", "histogram", cn,
			ser(observed(m.envoyB, 0, 1.0/1800, 1.6e6, 0.3), "xds-grpc")),
		m.simple("envoy_server_initialization_time_ms", "", "histogram", nil,
			ser(observed(m.envoyB, 1, 0, 650, 0.2))),
	}
}

// runtimeFamilies are the Go client's go_*/process_* families, for
// istio-agent (small, jittered per pod) or istiod (bigger).
func (m *Mesh) runtimeFamilies(istiod bool) []*family {
	s := 1.0
	if istiod {
		s = 1 + float64(len(m.pods))/200
	}
	g := func(base float64) model { return gauge(base*s, 0.08) }
	startSec := float64(m.startMs) / 1000
	fs := []*family{
		m.simple("go_goroutines", "Number of goroutines that currently exist.", "gauge", nil, ser(g(map[bool]float64{true: 379, false: 48}[istiod]))),
		m.simple("go_memstats_alloc_bytes", "Number of bytes allocated and still in use.", "gauge", nil, ser(g(1.1e7))),
		m.simple("go_memstats_alloc_bytes_total", "Total number of bytes allocated, even if freed.", "counter", nil, ser(model{base: 2e7, rate: 9000 * s, scaled: true, whole: true})),
		m.simple("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", "gauge", nil, ser(g(1.1e7))),
		m.simple("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", "gauge", nil, ser(g(7.2e6))),
		m.simple("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", "gauge", nil, ser(g(1.4e7))),
		m.simple("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", "gauge", nil, ser(g(4.2e7))),
		m.simple("go_memstats_stack_inuse_bytes", "Number of bytes in use by the stack allocator.", "gauge", nil, ser(g(1.1e6))),
		m.simple("go_memstats_sys_bytes", "Number of bytes obtained from system.", "gauge", nil, ser(g(5.3e7))),
		m.simple("go_threads", "Number of OS threads created.", "gauge", nil, ser(constant(map[bool]float64{true: 14, false: 11}[istiod]))),
		m.simple("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", nil, ser(model{base: 0.4, rate: 0.0035 * s, scaled: true})),
		m.simple("process_max_fds", "Maximum number of open file descriptors.", "gauge", nil, ser(constant(1048576))),
		m.simple("process_open_fds", "Number of open file descriptors.", "gauge", nil, ser(constant(map[bool]float64{true: 52, false: 21}[istiod]))),
		m.simple("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", nil, ser(g(4.1e7))),
		m.simple("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", nil, ser(constant(startSec))),
		m.simple("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", nil, ser(g(7.6e8))),
		m.simple("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", "gauge", nil, ser(constant(-1))),
	}
	if istiod {
		// go_info's `version` would clash with the sidecars' pod label, so
		// only istiod (no version pod label) exposes it here.
		q := newBuckets(false, 0, 0.25, 0.5, 0.75, 1)
		q.native, q.prom3 = q.native[:5], q.prom3[:5] // summaries have no +Inf
		gc := model{base: 13, rate: 1.0 / 30, whole: true, mean: 2.1e-4,
			cdf: []float64{8.9e-6, 8.75e-5, 2.38e-4, 7.83e-4, 5.5e-3}}
		f := m.simple("go_gc_duration_seconds", "A summary of the pause duration of garbage collection cycles.", "summary", nil, ser(gc))
		f.quantiles = q
		fs = append(fs, f,
			m.simple("go_info", "Information about the Go environment.", "gauge", []string{"version"}, ser(constant(1), "go1.18.7")))
	}
	return fs
}

func (m *Mesh) istiodFamilies() []*family {
	o := m.opts
	nPods := float64(len(m.pods))
	nSvc := float64(len(m.services) + 3) // + kubernetes, istiod, istio-ingressgateway
	pushRate := nPods / 120              // endpoint churn drives EDS pushes
	rootExpiry := float64(m.startMs)/1000 + 10*365.25*86400
	conv := newBuckets(false, 0.1, 0.5, 1, 3, 5, 10, 20, 30)
	push := newBuckets(false, 0.01, 0.1, 1, 3, 5, 10, 20, 30)
	initB := newBuckets(false, 0.01, 0.1, 0.5, 1, 3, 5)
	size := newBuckets(false, 1, 10000, 1e6, 4e6, 1e7, 4e7)
	xdsTypes := []string{"cds", "eds", "lds", "rds"}
	perType := func(f func(i int, t string) simpleSeries, types ...string) []simpleSeries {
		var ss []simpleSeries
		for i, t := range types {
			ss = append(ss, f(i, t))
		}
		return ss
	}
	node := "sidecar~" + m.pods[0].ip + "~" + m.pods[0].name + "." + m.pods[0].ns + "~" + m.pods[0].ns + ".svc.cluster.local"
	csr := counter(nPods, nPods/43200) // one CSR per proxy at start, then 12 h rotations
	fs := []*family{
		m.simple("citadel_server_csr_count", "The number of CSRs received by Citadel server.", "counter", nil, ser(csr)),
		m.simple("citadel_server_success_cert_issuance_count", "The number of certificates issuances that have succeeded.", "counter", nil, ser(csr)),
		m.simple("citadel_server_csr_sign_err_count", "The number of errors occurred when signing the CSR.", "counter", []string{"error"}, ser(counter(1, 0), "CSR_SIGN_ERROR")),
		m.simple("citadel_server_root_cert_expiry_timestamp", "The unix timestamp, in seconds, when Citadel root cert will expire. A negative time indicates the cert is expired.", "gauge", nil, ser(constant(rootExpiry))),
		m.simple("citadel_server_cert_chain_expiry_timestamp", "The unix timestamp, in seconds, when Citadel cert chain will expire. A negative time indicates the cert is expired.", "gauge", nil, ser(constant(rootExpiry))),
		m.simple("endpoint_no_pod", "Endpoints without an associated pod.", "gauge", nil, ser(constant(0))),
		m.simple("galley_validation_config_updates", "k8s webhook configuration updates", "counter", nil, ser(counter(2, 0))),
		m.simple("galley_validation_config_update_error", "k8s webhook configuration update error", "counter", []string{"reason"}, ser(counter(1, 0), "Conflict")),
		m.simple("galley_validation_config_load_error", "k8s webhook configuration (re)load error", "counter", []string{"reason"}, ser(counter(1, 0), "NotFound")),
		m.simple("galley_validation_passed", "Resource is valid", "counter", []string{"group", "resource", "version"},
			ser(counter(3, 1.0/900), "networking.istio.io", "destinationrules", "v1beta1"),
			ser(counter(1, 1.0/3600), "networking.istio.io", "gateways", "v1beta1"),
			ser(counter(4, 1.0/600), "networking.istio.io", "virtualservices", "v1beta1")),
		m.simple("galley_validation_failed", "Resource validation failed", "counter", []string{"group", "reason", "resource", "version"},
			ser(counter(1, 1.0/7200), "networking.istio.io", "invalid_resource", "gateways", "v1alpha3")),
		m.simple("galley_validation_http_error", "Resource validation http serve errors", "counter", []string{"status"}, ser(counter(1, 0), "405")),
		m.simple("istio_build", "Istio component build info", "gauge", []string{"component", "tag"}, ser(constant(1), "pilot", o.IstioVersion)),
		m.simple("pilot_conflict_inbound_listener", "Number of conflicting inbound listeners.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_conflict_outbound_listener_http_over_current_tcp", "Number of conflicting wildcard http listeners with current wildcard tcp listener.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_conflict_outbound_listener_tcp_over_current_http", "Number of conflicting wildcard tcp listeners with current wildcard http listener.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_conflict_outbound_listener_tcp_over_current_tcp", "Number of conflicting tcp listeners with current tcp listener.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_destrule_subsets", "Duplicate subsets across destination rules for same host", "gauge", nil, ser(constant(0))),
		m.simple("pilot_duplicate_envoy_clusters", "Duplicate envoy clusters caused by service entries with same hostname", "gauge", nil, ser(constant(0))),
		m.simple("pilot_eds_no_instances", "Number of clusters without instances.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_endpoint_not_ready", "Endpoint found in unready state.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_inbound_updates", "Total number of updates received by pilot.", "counter", []string{"type"},
			ser(counter(90, 0.01), "config"), ser(counter(nPods, pushRate), "eds"), ser(counter(nSvc, 0.001), "svc")),
		m.simple("pilot_k8s_reg_events", "Events from k8s registry.", "counter", []string{"event", "type"},
			ser(counter(nSvc, 0), "add", "Endpoints"), ser(counter(nPods, 0), "add", "Pods"), ser(counter(nSvc, 0), "add", "Services"),
			ser(counter(nPods, pushRate), "update", "Endpoints"), ser(counter(3*nPods, pushRate*2), "update", "Pods")),
		m.simple("pilot_no_ip", "Pods not found in the endpoint table, possibly invalid.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_proxy_convergence_time", "Delay in seconds between config change and a proxy receiving all required configuration.", "histogram", nil, ser(observed(conv, nPods, pushRate*3, 0.02, 1.2))),
		m.simple("pilot_proxy_queue_time", "Time in seconds, a proxy is in the push queue before being dequeued.", "histogram", nil, ser(observed(conv, nPods, pushRate*3, 0.0005, 1))),
		m.simple("pilot_push_triggers", "Total number of times a push was triggered, labeled by reason for the push.", "counter", []string{"type"},
			ser(counter(4, 0.002), "config"), ser(counter(nPods, pushRate), "endpoint"), ser(counter(nPods, 0.001), "proxy"), ser(counter(2, 0.0005), "service")),
		m.simple("pilot_pushcontext_init_seconds", "Total time in seconds Pilot takes to init pushContext.", "histogram", nil, ser(observed(initB, 6, 0.003, 0.004, 0.7))),
		m.simple("pilot_services", "Total services known to pilot.", "gauge", nil, ser(constant(nSvc))),
		m.simple("pilot_total_xds_internal_errors", "Total number of internal XDS errors in pilot.", "counter", nil, ser(counter(0, 0))),
		m.simple("pilot_total_xds_rejects", "Total number of XDS responses from pilot rejected by proxy.", "counter", []string{"type"},
			perType(func(_ int, t string) simpleSeries { return ser(counter(0, 0), t) }, xdsTypes...)...),
		m.simple("pilot_virt_services", "Total virtual services known to pilot.", "gauge", nil, ser(constant(float64(len(m.namespaces))))),
		m.simple("pilot_vservice_dup_domain", "Virtual services with dup domains.", "gauge", nil, ser(constant(0))),
		m.simple("pilot_xds", "Number of endpoints connected to this pilot using XDS.", "gauge", []string{"version"}, ser(constant(nPods), o.IstioVersion)),
		m.simple("pilot_xds_config_size_bytes", "Distribution of configuration sizes pushed to clients", "histogram", []string{"type"},
			perType(func(i int, t string) simpleSeries {
				return ser(observed(size, nPods, pushRate*float64(1+3*(i&1)), 2000*float64(i+1)*(1+nSvc/10), 0.5), t)
			}, xdsTypes...)...),
		m.simple("pilot_xds_expired_nonce", "Total number of XDS requests with an expired nonce.", "counter", []string{"type"}, ser(counter(1, pushRate/50), "eds")),
		m.simple("pilot_xds_push_context_errors", "Number of errors (timeouts) initiating push context.", "counter", nil, ser(counter(0, 0))),
		m.simple("pilot_xds_push_time", "Total time in seconds Pilot takes to push lds, rds, cds and eds.", "histogram", []string{"type"},
			perType(func(i int, t string) simpleSeries {
				return ser(observed(push, nPods, pushRate*float64(1+3*(i&1)), 0.002*float64(i+1), 0.6), t)
			}, xdsTypes...)...),
		m.simple("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", "counter", []string{"type"},
			perType(func(i int, t string) simpleSeries {
				return ser(counter(nPods, pushRate*[]float64{1, 4, 1, 0.9, 0.05}[i]), t)
			}, "cds", "eds", "lds", "rds", "sds")...),
		m.simple("pilot_xds_send_time", "Total time in seconds Pilot takes to send generated configuration.", "histogram", nil, ser(observed(push, 4*nPods, pushRate*7, 0.0004, 0.8))),
		m.simple("pilot_xds_write_timeout", "Pilot XDS response write timeouts.", "counter", nil, ser(counter(0, 0))),
		m.simple("sidecar_injection_failure_total", "Total number of failed sidecar injection requests.", "counter", nil, ser(counter(0, 0))),
		m.simple("sidecar_injection_requests_total", "Total number of sidecar injection requests.", "counter", nil, ser(counter(nPods, 0))),
		m.simple("sidecar_injection_skip_total", "Total number of skipped sidecar injection requests.", "counter", nil, ser(counter(0, 0))),
		m.simple("sidecar_injection_success_total", "Total number of successful sidecar injection requests.", "counter", nil, ser(counter(nPods, 0))),
	}
	// The reject gauges exist only after a proxy rejected a config; a 0 keeps
	// the dashboard's "Pilot Rejected" rows at 0 while the names are present.
	for _, t := range xdsTypes {
		fs = append(fs, m.simple("pilot_xds_"+t+"_reject", "Pilot rejected "+strings.ToUpper(t)+" configs.", "gauge",
			[]string{"node", "err"}, ser(constant(0), node, "Proxy rejected the configuration")))
	}
	if o.DocumentedNames {
		fs = append(fs,
			m.simple("citadel_server_csr_sign_error_count", "The number of errors occurred when signing the CSR.", "counter", []string{"error"}, ser(counter(1, 0), "CSR_SIGN_ERROR")),
			m.simple("galley_validation_config_load", "k8s webhook configuration (re)loads", "counter", nil, ser(counter(1, 0))),
			m.simple("galley_validation_config_delete_error", "k8s webhook configuration delete error", "counter", []string{"reason"}, ser(counter(1, 0), "NotFound")))
	}
	fs = append(fs, m.runtimeFamilies(true)...)
	slices.SortFunc(fs, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	return fs
}

// parts lists the /federate parts of f.
func (f *family) parts() []part {
	if f.typ == "histogram" || f.typ == "summary" {
		return []part{partBucket, partSum, partCount}
	}
	return []part{partAll}
}

// partName is the sample name of f's part.
func (f *family) partName(p part) string {
	switch {
	case p == partBucket && f.typ == "histogram":
		return f.name + "_bucket"
	case p == partSum:
		return f.name + "_sum"
	case p == partCount:
		return f.name + "_count"
	}
	return f.name
}
