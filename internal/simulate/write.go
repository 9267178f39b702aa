package simulate

import (
	"errors"
	"io"
	"math"
	"time"
)

// ErrUnknownPod is returned by WritePod for a pod the mesh does not have.
var ErrUnknownPod = errors.New("simulate: unknown pod")

// WritePod writes the merged sidecar exposition of pod namespace/name (what
// :15020/stats/prometheus returns: Envoy families with TYPE-only framing and a
// blank line after each, then istio-agent's go_*/process_* with HELP) as of
// now. Use the istiod pod's name for istiod's exposition.
func WritePod(w io.Writer, m *Mesh, namespace, name string, now time.Time) error {
	p := m.byName[namespace+"/"+name]
	if p == nil {
		return ErrUnknownPod
	}
	if p.kind == tkIstiod {
		return WriteIstiod(w, m, now)
	}
	e := newEnc(m, w, false)
	m.writePod(e, p, now.UnixMilli())
	return e.bw.Flush()
}

// WriteIstiod writes istiod's :15014/metrics (Go client framing) as of now.
func WriteIstiod(w io.Writer, m *Mesh, now time.Time) error {
	e := newEnc(m, w, false)
	e.target(m.istiod, now.UnixMilli())
	for _, f := range m.istiodFams {
		e.header(f.name, f.help, f.typ)
		m.writeFamily(e, m.istiod, f, partAll)
	}
	return e.bw.Flush()
}

func (m *Mesh) writePod(e *enc, p *pod, nowMs int64) {
	e.target(p, nowMs)
	for _, f := range m.sideFams {
		if !m.hasSeries(p, f) {
			continue
		}
		e.header(f.name, f.help, f.typ)
		m.writeFamily(e, p, f, partAll)
		if f.help == "" {
			e.str("\n") // Envoy separates families with a blank line
		}
	}
}

// hasSeries reports whether f has any series on p; Envoy omits empty families.
func (m *Mesh) hasSeries(p *pod, f *family) bool {
	if f.kind == fkSimple {
		return true
	}
	for i := range p.streams {
		if f.accepts(p.streams[i].e.proto) {
			return true
		}
	}
	return false
}

// accepts reports whether an Istio family records traffic of protocol pr.
func (f *family) accepts(pr protocol) bool {
	switch f.kind {
	case fkRequests, fkHist:
		return pr != protoTCP
	case fkReqMsgs, fkRespMsgs:
		return pr == protoGRPC
	case fkTCP:
		return pr == protoTCP
	}
	return false
}

// writeFamily writes part pt of family f for target p (already selected).
func (m *Mesh) writeFamily(e *enc, p *pod, f *family, pt part) {
	e.envoy = f.help == ""
	if f.kind == fkSimple {
		m.writeSimple(e, f, pt)
		return
	}
	sh := e.shape(f.ls)
	for i := range p.streams {
		s := &p.streams[i]
		if !f.accepts(s.e.proto) {
			continue
		}
		e.streamLabels(s)
		n := math.Floor(s.rate * e.el)
		switch f.kind {
		case fkRequests:
			e.line(f.name, "", sh, n)
		case fkReqMsgs, fkRespMsgs:
			// Message counters carry peer labels only: one series per call
			// path, over all its outcomes (which are adjacent in streams).
			if i > 0 && sameCall(s, &p.streams[i-1]) {
				continue
			}
			msgs := 0.0
			for j := i; j < len(p.streams) && sameCall(s, &p.streams[j]); j++ {
				c := math.Floor(p.streams[j].rate * e.el)
				if f.kind == fkRespMsgs {
					c = math.Floor(c * s.e.respMsgs)
				}
				msgs += c
			}
			e.line(f.name, "", sh, msgs)
		case fkTCP:
			e.line(f.name, "", sh, tcpValue(s.e, f.sub, s.dest, s.rate, e.el))
		case fkHist:
			d := s.e.dist(f.sub, s.dest)
			e.histogram(f.name, f.b, pt, sh, e.shape(f.lsLe), n, d.cdf, d.mean)
		}
	}
}

// histogram writes one histogram series of n observations with cumulative
// fractions cdf over b and mean observation mean.
func (e *enc) histogram(name string, b *buckets, pt part, sh, shLe *shape, n float64, cdf []float64, mean float64) {
	if pt == partAll || pt == partBucket {
		for i, c := range cdf {
			e.le(b, i)
			e.line(name, "_bucket", shLe, math.Floor(n*c))
		}
		e.le(b, len(cdf))
		e.line(name, "_bucket", shLe, n)
	}
	if pt == partAll || pt == partSum {
		e.line(name, "_sum", sh, n*mean)
	}
	if pt == partAll || pt == partCount {
		e.line(name, "_count", sh, n)
	}
}

func (m *Mesh) writeSimple(e *enc, f *family, pt part) {
	sh := e.shape(f.ls)
	for i := range f.series {
		s := &f.series[i]
		for j, v := range s.vals {
			e.vals[sM0+slot(j)] = v
		}
		x := s.v.at(e.el, e.factor)
		switch f.typ {
		case "histogram":
			e.histogram(f.name, s.v.b, pt, sh, e.shape(f.lsLe), x, s.v.cdf, s.v.mean)
		case "summary":
			if pt == partAll || pt == partBucket {
				shQ := e.shape(f.lsLe)
				for j, q := range s.v.cdf {
					e.le(f.quantiles, j)
					e.line(f.name, "", shQ, q)
				}
			}
			if pt == partAll || pt == partSum {
				e.line(f.name, "_sum", sh, x*s.v.mean)
			}
			if pt == partAll || pt == partCount {
				e.line(f.name, "_count", sh, x)
			}
		default:
			e.line(f.name, "", sh, x)
		}
	}
}

// dist returns the observation distribution of histogram sub.
func (e *edge) dist(sub int, dest bool) *dist {
	switch {
	case sub == histReqBytes:
		return &e.reqSize
	case sub == histRespBytes:
		return &e.respSize
	case dest:
		return &e.durDst
	}
	return &e.durSrc
}

// tcpValue is a TCP counter of a stream with connection rate r after el s.
// The client sends upBytes per connection and receives downBytes; the
// server's proxy sees the reverse.
func tcpValue(e *edge, sub int, dest bool, r, el float64) float64 {
	opened := r * el
	switch sub {
	case tcpOpened:
		return math.Floor(opened)
	case tcpClosed:
		return math.Floor(r * max(0, el-e.connSeconds))
	}
	if (sub == tcpSent) != dest {
		return math.Floor(opened * e.upBytes)
	}
	return math.Floor(opened * e.downBytes)
}

// sameCall reports whether two streams differ only in outcome.
func sameCall(a, b *stream) bool {
	return a.e == b.e && a.src == b.src && a.dst == b.dst && a.dest == b.dest
}

// streamLabels fills the 25 Istio label slots for s.
func (e *enc) streamLabels(s *stream) {
	v := &e.vals
	src, dst, o := s.src, s.dst, s.o
	v[sResponseCode] = o.code
	v[sReporter] = "source"
	v[sConnectionSecurityPolicy] = "unknown" // a client proxy cannot tell
	if s.dest {
		v[sReporter] = "destination"
		v[sConnectionSecurityPolicy] = "mutual_tls"
	}
	v[sSourceWorkload] = src.name
	v[sSourceWorkloadNamespace] = src.ns
	v[sSourcePrincipal] = src.principal
	v[sSourceApp] = src.app
	v[sSourceVersion] = src.version
	v[sSourceCluster] = e.m.opts.Cluster
	v[sDestinationWorkload] = dst.name
	v[sDestinationWorkloadNamespace] = dst.ns
	v[sDestinationPrincipal] = dst.principal
	v[sDestinationApp] = dst.app
	v[sDestinationVersion] = dst.version
	v[sDestinationService] = dst.svc.host
	v[sDestinationServiceName] = dst.svc.name
	v[sDestinationServiceNamespace] = dst.ns
	v[sDestinationCluster] = e.m.opts.Cluster
	v[sRequestProtocol] = s.e.proto.String()
	v[sResponseFlags] = o.flags
	v[sGrpcResponseStatus] = o.grpc
	v[sSourceCanonicalService] = src.canonSvc
	v[sDestinationCanonicalService] = dst.canonSvc
	v[sSourceCanonicalRevision] = src.canonRev
	v[sDestinationCanonicalRevision] = dst.canonRev
}

// podSamples counts the series of p's exposition, for scrape_samples_scraped.
func (m *Mesh) podSamples(p *pod) int {
	n := 0
	for _, f := range m.sideFams {
		if f.kind == fkSimple {
			n += f.simpleSamples()
			continue
		}
		per := 1
		if f.kind == fkHist {
			per = len(f.b.native) + 2
		}
		for i := range p.streams {
			s := &p.streams[i]
			msgs := f.kind == fkReqMsgs || f.kind == fkRespMsgs
			if f.accepts(s.e.proto) && !(msgs && i > 0 && sameCall(s, &p.streams[i-1])) {
				n += per
			}
		}
	}
	return n
}

func (m *Mesh) istiodSamples() int {
	n := 0
	for _, f := range m.istiodFams {
		n += f.simpleSamples()
	}
	return n
}

func (f *family) simpleSamples() int {
	per := 1
	switch f.typ {
	case "histogram":
		per = len(f.series[0].v.b.native) + 2
	case "summary":
		per = len(f.quantiles.native) + 2
	}
	return per * len(f.series)
}
