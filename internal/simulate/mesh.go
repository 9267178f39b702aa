package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

type protocol uint8

const (
	protoHTTP protocol = iota
	protoGRPC
	protoTCP
)

func (p protocol) String() string {
	switch p {
	case protoGRPC:
		return "grpc"
	case protoTCP:
		return "tcp"
	}
	return "http"
}

// targetKind selects the pod labels Prometheus copies onto a target's series.
type targetKind uint8

const (
	tkSidecar targetKind = iota
	tkGateway
	tkIstiod
	nTargetKinds
)

// podLabelNames are the sanitised pod labels per kind, as Kubernetes pod
// discovery copies them (istio.md §2.1, §10.2).
func podLabelNames(k targetKind) []string {
	switch k {
	case tkGateway:
		return []string{"app", "chart", "heritage", "install_operator_istio_io_owning_resource", "istio",
			"istio_io_rev", "operator_istio_io_component", "pod_template_hash", "release",
			"service_istio_io_canonical_name", "service_istio_io_canonical_revision", "sidecar_istio_io_inject"}
	case tkIstiod:
		return []string{"app", "install_operator_istio_io_owning_resource", "istio", "istio_io_rev",
			"operator_istio_io_component", "pod_template_hash", "sidecar_istio_io_inject"}
	}
	return []string{"app", "pod_template_hash", "security_istio_io_tlsMode",
		"service_istio_io_canonical_name", "service_istio_io_canonical_revision", "version"}
}

// Mesh is an immutable simulated mesh; it is safe for concurrent writers.
type Mesh struct {
	opts    Options
	startMs int64

	namespaces []string
	services   []*service
	workloads  []*workload
	edges      []*edge
	pods       []*pod // sidecars and the gateway, in namespace order
	istiod     *pod
	byName     map[string]*pod // "namespace/pod"
	groups     []*group
	rawSamples int

	envoyB *buckets
	lsets  []*lset   // indexed by the ls* constants, then simple families
	agg    [2]*shape // recorded series: HTTP, TCP
	aggLe  *shape
	self   *shape // the federate job's own up/scrape_* series

	sideFams   []*family // sidecar exposition, in Envoy's order
	istiodFams []*family // istiod exposition, sorted by name
	fedFams    []*fedFamily
}

type service struct {
	name, ns, host string
	proto          protocol
	workloads      []*workload
	out            []*edge
}

type workload struct {
	name, ns, app, version, canonSvc, canonRev, principal, hash string
	svc                                                         *service
	pods                                                        []*pod
}

// outcome is one response class of an edge. Groups of the recording rules
// key on code and flags only, so gRPC statuses may share a group.
type outcome struct {
	code, flags, grpc string
	frac              float64
	sourceOnly        bool // upstream failures never reach the server's proxy
}

// dist is a histogram observation distribution: cumulative fraction per
// bucket bound and the mean observation.
type dist struct {
	cdf  []float64
	mean float64
}

type edge struct {
	src, dst *service
	proto    protocol
	outcomes []outcome
	rate     float64 // per source pod: requests/s (TCP: connections/s)
	// Observation distributions; the server side sees shorter durations.
	durSrc, durDst, reqSize, respSize dist
	upBytes, downBytes, connSeconds   float64 // TCP, per connection
	respMsgs                          float64 // gRPC response messages per call
}

type pod struct {
	name, ns, ip, instance, metricsPath string
	kind                                targetKind
	wl                                  *workload // nil for istiod
	labels                              []string  // values of podLabelNames(kind)
	offsetMs                            int64     // scrape phase within the interval
	factor                              float64   // per-pod jitter of runtime gauges
	streams                             []stream
	samples                             int // series in its exposition
}

// stream is one label set of the Istio request/TCP metrics on one pod.
type stream struct {
	e        *edge
	o        *outcome
	src, dst *workload
	dest     bool    // reporter="destination"
	rate     float64 // requests (TCP: connections) per second on this pod
}

// group is one recording-rule output series set: a sum over the pods of the
// reporting workload, possibly over several outcomes sharing code and flags.
type group struct {
	e        *edge
	o        *outcome
	src, dst *workload
	dest     bool
	rates    []float64 // per pod, one per merged outcome
}

const (
	scrapeIntervalMs = 15000
	ruleIntervalMs   = 10000
	sidecarPort      = 15020
	istiodPort       = 15014
)

func bookinfo() []string { return []string{"productpage", "details", "reviews", "ratings"} }

func genericNames() []string {
	return []string{"frontend", "cart", "checkout", "payment", "shipping", "catalog", "search",
		"inventory", "accounts", "auth", "notifications", "recommendations", "currency", "email",
		"ads", "pricing"}
}

func namespaceNames() []string {
	return []string{"shop", "payments", "identity", "media", "search", "logistics"}
}

// NewMesh builds the mesh for o.
func NewMesh(o Options) (*Mesh, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Start.IsZero() {
		o.Start = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	m := &Mesh{opts: o, startMs: o.Start.UnixMilli(), byName: map[string]*pod{}, envoyB: envoyBuckets()}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x6d657368))
	gw := m.buildTopology(rng)
	m.buildPods(rng, gw)
	m.buildStreams()
	m.buildFamilies()
	for _, p := range m.pods {
		p.samples = m.podSamples(p)
	}
	m.istiod.samples = m.istiodSamples()
	// The federate job's own scrape_samples_scraped: the raw series it
	// re-ingests (the recorded ones come on top; close enough for a gauge).
	m.rawSamples = m.istiod.samples
	for _, p := range m.pods {
		m.rawSamples += p.samples
	}
	return m, nil
}

func (m *Mesh) buildTopology(rng *rand.Rand) *service {
	o := m.opts
	gw := &service{name: "istio-ingressgateway", ns: "istio-system", proto: protoHTTP}
	gw.host = gw.name + "." + gw.ns + ".svc.cluster.local"
	m.namespaces = append(m.namespaces, "default")
	for i := 1; i < o.Namespaces; i++ {
		nn := namespaceNames()
		name := nn[(i-1)%len(nn)]
		if i > len(nn) {
			name = fmt.Sprintf("%s-%d", name, (i-1)/len(nn))
		}
		m.namespaces = append(m.namespaces, name)
	}
	for ni, ns := range m.namespaces {
		var svcs, generic []*service
		for j := 0; j < o.Services; j++ {
			s := &service{ns: ns}
			g := j
			if ni == 0 && j < len(bookinfo()) {
				s.name, g = bookinfo()[j], -1
			} else {
				if ni == 0 {
					g = j - len(bookinfo())
				}
				gn := genericNames()
				s.name = gn[g%len(gn)]
				if g >= len(gn) {
					s.name = fmt.Sprintf("%s-%d", s.name, g/len(gn))
				}
				// A fixed protocol mix so every namespace has gRPC and TCP
				// edges once it has five services.
				switch g % 5 {
				case 2:
					s.proto = protoGRPC
				case 4:
					s.proto = protoTCP
				}
				generic = append(generic, s)
			}
			s.host = s.name + "." + ns + ".svc.cluster.local"
			svcs = append(svcs, s)
			m.services = append(m.services, s)
		}
		// Edges depend on the shape only, so the series count does too.
		k := 0
		link := func(a, b *service) {
			m.edges = append(m.edges, m.newEdge(rng, a, b, k))
			a.out = append(a.out, m.edges[len(m.edges)-1])
			k++
		}
		if ni == 0 && o.Services > 0 {
			link(gw, svcs[0])
			for _, e := range [][2]int{{0, 1}, {0, 2}, {2, 3}} {
				if e[1] < len(svcs) && e[1] < len(bookinfo()) {
					link(svcs[e[0]], svcs[e[1]])
				}
			}
		}
		if len(generic) > 0 {
			link(gw, generic[0])
		}
		for g, s := range generic {
			for _, d := range []int{g + 1, g + 2} {
				if d < len(generic) {
					link(s, generic[d])
				}
			}
		}
	}
	return gw
}

// newEdge draws an edge's rates and distributions; k, its index within the
// namespace, fixes its outcome set so that only the seed-free shape decides
// which series exist.
func (m *Mesh) newEdge(rng *rand.Rand, a, b *service, k int) *edge {
	e := &edge{src: a, dst: b, proto: b.proto, rate: m.opts.RPS * (0.5 + rng.Float64())}
	switch e.proto {
	case protoHTTP:
		e.outcomes = []outcome{{code: "200", flags: "-"}}
		if k%3 == 0 {
			e.outcomes = append(e.outcomes, outcome{code: "404", flags: "-", frac: 0.04})
		}
		if k%4 == 1 {
			e.outcomes = append(e.outcomes, outcome{code: "503", flags: "UF", frac: 0.01, sourceOnly: true})
		}
		if k%5 == 3 {
			e.outcomes = append(e.outcomes, outcome{code: "503", flags: "-", frac: 0.02})
		}
	case protoGRPC:
		e.outcomes = []outcome{{code: "200", flags: "-", grpc: "0"}}
		if k%2 == 0 {
			e.outcomes = append(e.outcomes, outcome{code: "200", flags: "-", grpc: "5", frac: 0.03})
		}
		if k%3 == 1 {
			e.outcomes = append(e.outcomes, outcome{code: "200", flags: "UF", grpc: "14", frac: 0.01, sourceOnly: true})
		}
		e.respMsgs = float64(1 + rng.IntN(4))
	case protoTCP:
		e.outcomes = []outcome{{flags: "-"}}
		e.rate /= 10
		e.upBytes = 200 + 2000*rng.Float64()
		e.downBytes = 1000 + 50000*rng.Float64()
		e.connSeconds = 1 + 30*rng.Float64()
	}
	rest := 1.0
	for _, oc := range e.outcomes[1:] {
		rest -= oc.frac
	}
	e.outcomes[0].frac = rest
	median := 2 + 60*rng.Float64()*rng.Float64()
	sigma := 0.5 + 0.6*rng.Float64()
	e.durSrc = m.lognormal(median, sigma)
	e.durDst = m.lognormal(median*0.85, sigma)
	e.reqSize = m.lognormal(400+1200*rng.Float64(), 0.3)
	e.respSize = m.lognormal(300+6000*rng.Float64(), 0.8)
	return e
}

func (m *Mesh) lognormal(median, sigma float64) dist {
	d := dist{cdf: make([]float64, len(m.envoyB.bounds)), mean: median * math.Exp(sigma*sigma/2)}
	for i, b := range m.envoyB.bounds {
		d.cdf[i] = 0.5 * math.Erfc(-(math.Log(b)-math.Log(median))/(sigma*math.Sqrt2))
	}
	return d
}

// k8s name suffixes avoid vowels and look-alikes, as ReplicaSets do.
const k8sAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func randSuffix(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(k8sAlphabet[rng.IntN(len(k8sAlphabet))])
	}
	return b.String()
}

func (m *Mesh) buildPods(rng *rand.Rand, gw *service) {
	o := m.opts
	addPod := func(w *workload, kind targetKind) *pod {
		n := len(m.pods) + 10 // skip the subnet's network and gateway addresses
		p := &pod{
			name:     w.name + "-" + w.hash + "-" + randSuffix(rng, 5),
			ns:       w.ns,
			ip:       fmt.Sprintf("10.%d.%d.%d", 64+n>>16, n>>8&255, n&255),
			kind:     kind,
			wl:       w,
			offsetMs: rng.Int64N(scrapeIntervalMs),
			factor:   0.8 + 0.4*rng.Float64(),
		}
		p.instance = fmt.Sprintf("%s:%d", p.ip, sidecarPort)
		p.metricsPath = "/pods/" + p.ns + "/" + p.name + "/stats/prometheus"
		if kind == tkGateway {
			p.labels = []string{w.app, "gateways", "Tiller", "unknown", "ingressgateway", "default",
				"IngressGateways", w.hash, "istio", w.canonSvc, w.canonRev, "false"}
		} else {
			p.labels = []string{w.app, w.hash, "istio", w.canonSvc, w.canonRev, w.version}
		}
		w.pods = append(w.pods, p)
		m.pods = append(m.pods, p)
		m.byName[p.ns+"/"+p.name] = p
		return p
	}
	gwl := &workload{name: gw.name, ns: gw.ns, app: gw.name, version: "unknown", canonSvc: gw.name,
		canonRev: "latest", principal: "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
		hash: randSuffix(rng, 10), svc: gw}
	gw.workloads = []*workload{gwl}
	m.workloads = append(m.workloads, gwl)
	addPod(gwl, tkGateway)
	for _, s := range m.services {
		sa := s.name
		if s.ns == "default" && slices.Contains(bookinfo(), s.name) {
			sa = "bookinfo-" + s.name // Bookinfo's own service accounts
		}
		for v := 1; v <= o.Versions; v++ {
			ver := fmt.Sprintf("v%d", v)
			w := &workload{name: s.name + "-" + ver, ns: s.ns, app: s.name, version: ver, canonSvc: s.name,
				canonRev: ver, principal: "spiffe://cluster.local/ns/" + s.ns + "/sa/" + sa,
				hash: randSuffix(rng, 10), svc: s}
			s.workloads = append(s.workloads, w)
			m.workloads = append(m.workloads, w)
			for range o.Pods {
				addPod(w, tkSidecar)
			}
		}
	}
	hash := randSuffix(rng, 10)
	id := &pod{
		name: "istiod-" + hash + "-" + randSuffix(rng, 5), ns: "istio-system",
		ip: "10.63.0.2", kind: tkIstiod, offsetMs: rng.Int64N(scrapeIntervalMs), factor: 1,
	}
	id.instance = fmt.Sprintf("%s:%d", id.ip, istiodPort)
	id.metricsPath = "/istiod/metrics"
	id.labels = []string{"istiod", "unknown", "pilot", "default", "Pilot", hash, "false"}
	m.istiod = id
	m.byName[id.ns+"/"+id.name] = id
}

// buildStreams spreads each edge's traffic: a client pod sends e.rate to the
// destination service, split evenly over its workloads and their pods.
func (m *Mesh) buildStreams() {
	type gkey struct {
		e           *edge
		src, dst    *workload
		dest        bool
		code, flags string
	}
	groups := map[gkey]*group{}
	for _, e := range m.edges {
		nd := float64(len(e.dst.workloads))
		for _, sw := range e.src.workloads {
			for _, dw := range e.dst.workloads {
				for oi := range e.outcomes {
					o := &e.outcomes[oi]
					srcRate := e.rate * o.frac / nd
					dstRate := srcRate * float64(len(sw.pods)) / float64(len(dw.pods))
					for _, side := range []bool{false, true} {
						if side && o.sourceOnly {
							continue
						}
						r, rep := srcRate, sw
						if side {
							r, rep = dstRate, dw
						}
						for _, p := range rep.pods {
							p.streams = append(p.streams, stream{e: e, o: o, src: sw, dst: dw, dest: side, rate: r})
						}
						k := gkey{e, sw, dw, side, o.code, o.flags}
						g := groups[k]
						if g == nil {
							g = &group{e: e, o: o, src: sw, dst: dw, dest: side}
							groups[k] = g
							m.groups = append(m.groups, g)
						}
						g.rates = append(g.rates, r)
					}
				}
			}
		}
	}
}

// reporting is the workload whose pods report the group's series.
func (g *group) reporting() *workload {
	if g.dest {
		return g.dst
	}
	return g.src
}

// lastScrape is the latest scrape of p at or before tms, in ms.
func (p *pod) lastScrape(tms int64) int64 {
	return tms - mod(tms-p.offsetMs, scrapeIntervalMs)
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// elapsed is seconds since the mesh started at tms, never negative.
func (m *Mesh) elapsed(tms int64) float64 {
	return max(0, float64(tms-m.startMs)/1000)
}
