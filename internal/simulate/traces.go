package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TraceOptions shape the Zipkin traces a Tracer produces.
type TraceOptions struct {
	// Rate is the number of traces per second across the mesh; zero means 5.
	Rate float64
	// Seed drives trace and span IDs, the paths taken, latencies, sizes and
	// errors (together with each batch's start time).
	Seed int64
	// Interval is how often Run posts a batch; zero means 1 s, Envoy's
	// default Zipkin flush interval.
	Interval time.Duration
	// SharedSpanContext makes a SERVER span reuse its CLIENT span's ID (and
	// parent) with "shared": true, as Envoy does with shared_span_context
	// true. Istio configures false (istio.md §8.1): the SERVER span gets its
	// own ID and the CLIENT span's ID as parentId. Either way a hop is one
	// CLIENT span in the caller's sidecar and one SERVER span in the callee's.
	SharedSpanContext bool
}

// Tracer renders Envoy/Istio-style Zipkin v2 JSON traces over a Mesh's
// traffic graph (istio.md §8.1). It is safe for concurrent use.
type Tracer struct {
	m         *Mesh
	o         TraceOptions
	gw        *pod
	roots     []*edge   // the gateway's traced (non-TCP) edges
	cum       []float64 // cumulative root weights (edge rates)
	clusterID bool      // istio.cluster_id is sent from Istio 1.21
}

// errorTraceFrac is the fraction of traces with a failed hop.
const errorTraceFrac = 0.02

const (
	maxHops  = 48 // per trace
	maxDepth = 6  // hops below the gateway
	maxBatch = 100000
)

// NewTracer returns a Tracer for m.
func NewTracer(m *Mesh, o TraceOptions) *Tracer {
	if !(o.Rate > 0) {
		o.Rate = 5
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	t := &Tracer{m: m, o: o}
	for _, p := range m.pods {
		if p.kind == tkGateway {
			t.gw = p
			break
		}
	}
	sum := 0.0
	if t.gw != nil {
		for _, e := range t.gw.wl.svc.out {
			if e.proto == protoTCP {
				continue
			}
			sum += e.rate + 1e-9
			t.roots = append(t.roots, e)
			t.cum = append(t.cum, sum)
		}
	}
	if v := strings.Split(m.opts.IstioVersion, "."); len(v) >= 2 {
		major, _ := strconv.Atoi(v[0])
		minor, _ := strconv.Atoi(v[1])
		t.clusterID = major > 1 || major == 1 && minor >= 21
	}
	return t
}

// hop is one request from a caller's sidecar to a callee's: a CLIENT span
// and, unless the upstream connection failed, a SERVER span.
type hop struct {
	e         *edge
	src, dst  *pod
	kids      []*hop
	up        *hop
	u, uq, us float64 // latency, request size and response size quantiles
	failed    bool
	noServer  bool // UF: the request never reached the callee
	flags     string

	cliID, srvID, parent               uint64
	cliStart, cliDur, srvStart, srvDur int64 // µs
}

// trace is the per-trace state shared by its spans.
type trace struct {
	hi, lo    uint64
	requestID string
	userAgent string
	client    string // external client address
	rootID    uint64
	start     int64
	dur       int64
}

// AppendBatch appends to dst a Zipkin v2 JSON list with the spans of n traces
// starting in [now, now+Interval), evenly spread with jitter. Each walks the
// traffic graph from the ingress gateway: a root SERVER span in the gateway,
// then per hop a CLIENT span in the caller's sidecar and a SERVER span in the
// callee's. Durations follow the edges' latency distributions; about 2 % of
// traces fail one hop, with 503 and error=true up to the root. The output is
// a pure function of the mesh, the options, n and now.
func (t *Tracer) AppendBatch(dst []byte, n int, now time.Time) []byte {
	dst = append(dst, '[')
	if len(t.roots) == 0 || n <= 0 {
		return append(dst, ']')
	}
	n = min(n, maxBatch)
	rng := rand.New(rand.NewPCG(uint64(t.o.Seed), uint64(now.UnixNano())^0x7472616365))
	base := now.UnixMicro()
	step := float64(t.o.Interval.Microseconds()) / float64(n)
	first := true
	for i := range n {
		start := base + int64((float64(i)+rng.Float64())*step)
		dst = t.appendTrace(dst, rng, start, &first)
	}
	return append(dst, ']')
}

func (t *Tracer) appendTrace(dst []byte, rng *rand.Rand, start int64, first *bool) []byte {
	tr := &trace{hi: nonZero(rng), lo: nonZero(rng), start: start}
	tr.requestID = uuid(rng)
	tr.userAgent = externalAgents[rng.IntN(len(externalAgents))]
	tr.client = fmt.Sprintf("172.18.%d.%d", rng.IntN(4), 2+rng.IntN(250))

	x := rng.Float64() * t.cum[len(t.cum)-1]
	ri, _ := slices.BinarySearch(t.cum, x)
	root := &hop{e: t.roots[min(ri, len(t.roots)-1)], src: t.gw}
	var hops []*hop
	t.grow(rng, root, 0, &hops)

	if rng.Float64() < errorTraceFrac {
		f := hops[rng.IntN(len(hops))]
		f.failed, f.flags = true, "-"
		if hasUF(f.e) && rng.IntN(2) == 0 {
			f.flags, f.noServer, f.kids = "UF", true, nil
		}
		for a := f.up; a != nil; a = a.up {
			a.failed = true
		}
	}

	// IDs, parents first.
	tr.rootID = nonZero(rng)
	var assign func(h *hop, parent uint64)
	assign = func(h *hop, parent uint64) {
		h.parent, h.cliID = parent, nonZero(rng)
		h.srvID = h.cliID
		if !t.o.SharedSpanContext {
			h.srvID = nonZero(rng)
		}
		for _, k := range h.kids {
			assign(k, h.srvID)
		}
	}
	assign(root, tr.rootID)

	// The gateway forwards after a little routing work.
	d := t.timeHop(root, start+80+rng.Int64N(120))
	tr.dur = root.cliStart - start + d + 40 + rng.Int64N(80)

	w := spanWriter{dst: dst, t: t, tr: tr, first: first}
	w.rootSpan(root)
	var emit func(h *hop)
	emit = func(h *hop) {
		w.hopSpans(h)
		for _, k := range h.kids {
			emit(k)
		}
	}
	emit(root)
	return w.dst
}

// grow picks h's callee pod and, recursively, the calls it makes.
func (t *Tracer) grow(rng *rand.Rand, h *hop, depth int, hops *[]*hop) {
	*hops = append(*hops, h)
	s := h.e.dst
	wl := s.workloads[rng.IntN(len(s.workloads))]
	h.dst = wl.pods[rng.IntN(len(wl.pods))]
	h.u, h.uq, h.us = rng.Float64(), rng.Float64(), rng.Float64()
	book := isBookinfo(s)
	for _, e := range s.out {
		if e.proto == protoTCP || depth+1 >= maxDepth || len(*hops) >= maxHops {
			continue
		}
		if book {
			// reviews-v1 shows no stars, so it never calls ratings.
			if s.name == "reviews" && wl.version == "v1" {
				continue
			}
		} else if rng.IntN(2) == 0 {
			continue
		}
		k := &hop{e: e, src: h.dst, up: h}
		h.kids = append(h.kids, k)
		t.grow(rng, k, depth+1, hops)
	}
}

// timeHop lays out h's spans with its CLIENT span starting at cs and returns
// the CLIENT span's duration, in µs. The server's own time is drawn from the
// edge's destination latency, the sidecar overhead from the gap between the
// source and destination latencies at the same quantile; downstream calls
// run one after another.
func (t *Tracer) timeHop(h *hop, cs int64) int64 {
	srv := int64(quantile(h.e.durDst, h.u, t.m.envoyB.bounds) * 1000)
	cli := int64(quantile(h.e.durSrc, h.u, t.m.envoyB.bounds) * 1000)
	over := max(cli-srv, 150)
	h.cliStart = cs
	if h.noServer {
		h.cliDur = over + 400 + int64(h.u*1500)
		return h.cliDur
	}
	srv = max(srv, 100)
	if h.failed && len(h.kids) == 0 {
		srv = srv/4 + 50 // an application failing fast
	}
	h.srvStart = cs + over/2
	cur := h.srvStart + srv/10 + 30
	for _, k := range h.kids {
		cur += t.timeHop(k, cur) + 20
	}
	end := max(h.srvStart+srv, cur+srv/10+30)
	h.srvDur = end - h.srvStart
	h.cliDur = h.srvDur + over
	return h.cliDur
}

// quantile inverts a dist's bucket CDF at u, interpolating log-linearly
// between bucket bounds (linearly from zero in the first bucket).
func quantile(d dist, u float64, bounds []float64) float64 {
	lo, clo := 0.0, 0.0
	for i, b := range bounds {
		c := d.cdf[i]
		if u <= c {
			if c <= clo {
				return b
			}
			f := (u - clo) / (c - clo)
			if lo == 0 {
				return b * f
			}
			return lo * math.Pow(b/lo, f)
		}
		lo, clo = b, c
	}
	return lo
}

func hasUF(e *edge) bool {
	for _, o := range e.outcomes {
		if o.flags == "UF" {
			return true
		}
	}
	return false
}

func isBookinfo(s *service) bool {
	return s.ns == "default" && slices.Contains(bookinfo(), s.name)
}

func nonZero(rng *rand.Rand) uint64 {
	for {
		if v := rng.Uint64(); v != 0 {
			return v
		}
	}
}

func uuid(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	a = a&^0xf000 | 0x4000     // version 4
	b = b&^(0xc<<60) | 0x8<<60 // variant 10
	h := fmt.Sprintf("%016x%016x", a, b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var externalAgents = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
	"curl/7.88.1",
	"fortio.org/fortio-1.60.3",
}

// port, path and user agent of a call to s; method and protocol follow.
func servicePort(s *service) int {
	switch {
	case isBookinfo(s):
		return 9080
	case s.proto == protoGRPC:
		return 9090
	}
	return 8080
}

func servicePath(s *service) string {
	switch {
	case isBookinfo(s) && s.name == "productpage":
		return "/productpage"
	case isBookinfo(s):
		return "/" + s.name + "/0"
	case s.proto == protoGRPC:
		return "/" + s.name + ".v1." + strings.ToUpper(s.name[:1]) + s.name[1:] + "Service/Get"
	}
	return "/api/v1/" + s.name
}

func callerAgent(caller, callee *service) string {
	switch {
	case callee.proto == protoGRPC:
		return "grpc-go/1.60.1"
	case isBookinfo(caller) && caller.name == "productpage":
		return "python-requests/2.31.0"
	case isBookinfo(caller):
		return "Apache-CXF/3.1.18"
	}
	return "Go-http-client/1.1"
}

// spanWriter appends spans as compact JSON.
type spanWriter struct {
	dst   []byte
	t     *Tracer
	tr    *trace
	first *bool
	tags  bool // a tag was written in the current span
}

type spanKind uint8

const (
	kindClient spanKind = iota
	kindServer
)

// request is what a span says about the HTTP exchange.
type request struct {
	name, url, method, proto, agent, cluster, peer string
	reqSize, respSize                              int64
	code                                           int
	grpc                                           bool
	grpcStatus                                     string
	failed                                         bool
	flags                                          string
	authority, path                                string
}

func (t *Tracer) request(h *hop) request {
	s := h.e.dst
	port := strconv.Itoa(servicePort(s))
	r := request{
		name:    s.host + ":" + port + "/*",
		path:    servicePath(s),
		method:  "GET",
		proto:   "HTTP/1.1",
		agent:   callerAgent(h.e.src, s),
		cluster: "outbound|" + port + "||" + s.host,
		peer:    h.src.ip,
		code:    200,
		failed:  h.failed,
		flags:   "-",
	}
	r.authority = s.name + ":" + port
	r.respSize = int64(quantile(h.e.respSize, h.us, t.m.envoyB.bounds))
	if !isBookinfo(s) {
		r.method = "POST"
		r.reqSize = int64(quantile(h.e.reqSize, h.uq, t.m.envoyB.bounds))
	}
	if s.proto == protoGRPC {
		r.grpc, r.proto, r.grpcStatus = true, "HTTP/2", "0"
	}
	if h.e.src.ns != s.ns {
		r.authority = s.name + "." + s.ns + ":" + port
	}
	if h.failed {
		if h.flags != "" {
			r.flags = h.flags
		}
		switch {
		case r.grpc:
			r.grpcStatus, r.respSize = "14", 0
		case h.noServer:
			r.code, r.respSize = 503, 91 // "upstream connect error or disconnect/reset before headers. …"
		default:
			r.code, r.respSize = 503, 19
		}
	}
	r.url = "http://" + r.authority + r.path
	return r
}

func (w *spanWriter) rootSpan(root *hop) {
	r := w.t.request(root)
	r.agent, r.peer = w.tr.userAgent, w.tr.client
	r.url = w.externalURL(root)
	w.span(kindServer, w.tr.rootID, 0, false, w.tr.start, w.tr.dur, w.t.gw, r)
}

func (w *spanWriter) externalURL(root *hop) string {
	s := root.e.dst
	if isBookinfo(s) {
		return "http://bookinfo.example.com" + servicePath(s)
	}
	return "http://" + s.ns + ".example.com" + servicePath(s)
}

func (w *spanWriter) hopSpans(h *hop) {
	r := w.t.request(h)
	if h.src.kind == tkGateway {
		r.agent, r.url, r.peer = w.tr.userAgent, w.externalURL(h), w.tr.client
	}
	w.span(kindClient, h.cliID, h.parent, false, h.cliStart, h.cliDur, h.src, r)
	if h.noServer {
		return
	}
	r.cluster = "inbound|" + strconv.Itoa(servicePort(h.e.dst)) + "||"
	r.flags, r.peer = "-", h.src.ip
	parent, shared := h.cliID, false
	if w.t.o.SharedSpanContext {
		parent, shared = h.parent, true
	}
	w.span(kindServer, h.srvID, parent, shared, h.srvStart, h.srvDur, h.dst, r)
}

func (w *spanWriter) span(k spanKind, id, parent uint64, shared bool, ts, dur int64, p *pod, r request) {
	b := w.dst
	if !*w.first {
		b = append(b, ',')
	}
	*w.first = false
	b = append(b, `{"traceId":"`...)
	b = appendHex(b, w.tr.hi)
	b = appendHex(b, w.tr.lo)
	b = append(b, `","id":"`...)
	b = appendHex(b, id)
	b = append(b, '"')
	if parent != 0 {
		b = append(b, `,"parentId":"`...)
		b = appendHex(b, parent)
		b = append(b, '"')
	}
	kind, ann := "CLIENT", "cr"
	if k == kindServer {
		kind, ann = "SERVER", "ss"
	}
	b = append(b, `,"kind":"`...)
	b = append(b, kind...)
	b = append(b, `","name":`...)
	b = appendJSONString(b, r.name)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, max(dur, 1), 10)
	if shared {
		b = append(b, `,"shared":true`...)
	}
	b = append(b, `,"localEndpoint":{"serviceName":`...)
	b = appendJSONString(b, p.wl.app+"."+p.ns)
	b = append(b, `,"ipv4":"`...)
	b = append(b, p.ip...)
	b = append(b, `","port":0},"annotations":[{"timestamp":`...)
	b = strconv.AppendInt(b, ts+max(dur, 1), 10)
	b = append(b, `,"value":"`...)
	b = append(b, ann...)
	b = append(b, `"}],"tags":{`...)
	w.dst, w.tags = b, false

	node := "sidecar~"
	if p.kind == tkGateway {
		node = "router~"
	}
	w.tag("component", "proxy")
	w.tag("node_id", node+p.ip+"~"+p.name+"."+p.ns+"~"+p.ns+".svc.cluster.local")
	w.tag("guid:x-request-id", w.tr.requestID)
	w.tag("http.url", r.url)
	w.tag("http.method", r.method)
	w.tag("http.protocol", r.proto)
	w.tag("http.status_code", strconv.Itoa(r.code))
	w.tag("downstream_cluster", "-")
	w.tag("user_agent", r.agent)
	w.tag("request_size", strconv.FormatInt(r.reqSize, 10))
	w.tag("response_size", strconv.FormatInt(r.respSize, 10))
	w.tag("response_flags", r.flags)
	w.tag("upstream_cluster", r.cluster)
	w.tag("upstream_cluster.name", r.cluster)
	w.tag("peer.address", r.peer)
	if r.grpc {
		w.tag("grpc.path", r.path)
		w.tag("grpc.authority", r.authority)
		w.tag("grpc.content_type", "application/grpc")
		w.tag("grpc.status_code", r.grpcStatus)
	}
	if r.failed {
		w.tag("error", "true")
	}
	w.tag("istio.canonical_service", p.wl.canonSvc)
	w.tag("istio.canonical_revision", p.wl.canonRev)
	w.tag("istio.mesh_id", "cluster.local")
	w.tag("istio.namespace", p.ns)
	if w.t.clusterID {
		w.tag("istio.cluster_id", w.t.m.opts.Cluster)
	}
	w.dst = append(w.dst, "}}"...)
}

func (w *spanWriter) tag(k, v string) {
	if v == "" {
		return // Envoy drops empty tags
	}
	if w.tags {
		w.dst = append(w.dst, ',')
	}
	w.tags = true
	w.dst = appendJSONString(w.dst, k)
	w.dst = append(w.dst, ':')
	w.dst = appendJSONString(w.dst, v)
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[v>>uint(i)&15])
	}
	return b
}

func appendJSONString(b []byte, s string) []byte {
	const digits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', digits[c>>4], digits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Run posts a batch to url (e.g. http://127.0.0.1:9411/api/v2/spans) every
// Interval with the traces started during the previous interval, at Rate
// traces per second on average, as Envoy's Zipkin tracer does. Errors are
// logged (at most one line per 30 s) and never end the loop. It returns nil
// when ctx is done. A nil client uses one with a 5 s timeout; a nil log uses
// slog.Default().
func (t *Tracer) Run(ctx context.Context, url string, client *http.Client, log *slog.Logger) error {
	if url == "" {
		return errors.New("simulate: traces: empty collector URL")
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if log == nil {
		log = slog.Default()
	}
	tick := time.NewTicker(t.o.Interval)
	defer tick.Stop()
	last := time.Now()
	acc := 0.0
	var buf []byte
	var lastLog time.Time
	suppressed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			acc += t.o.Rate * now.Sub(last).Seconds()
			last = now
			n := int(acc)
			acc -= float64(n)
			if n == 0 {
				continue
			}
			buf = t.AppendBatch(buf[:0], n, now.Add(-t.o.Interval))
			err := post(ctx, client, url, buf)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if time.Since(lastLog) < 30*time.Second {
				suppressed++
				continue
			}
			log.Warn("simulate: posting traces", "url", url, "spans_bytes", len(buf), "err", err, "suppressed", suppressed)
			lastLog, suppressed = time.Now(), 0
		}
	}
}

func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
