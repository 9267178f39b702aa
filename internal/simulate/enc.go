package simulate

import (
	"bufio"
	"io"
	"math"
	"strconv"
)

// enc streams one exposition. It is allocated once per body; writing a
// series only copies pre-rendered strings and appends numbers into scratch.
type enc struct {
	m       *Mesh
	bw      *bufio.Writer
	fed     bool // /federate layout: sorted labels, untyped, timestamps
	envoy   bool // current family uses Envoy's number printing
	tk      targetKind
	el      float64 // elapsed seconds at the current sample time
	factor  float64 // current pod's jitter
	ts      []byte  // " <ms>\n" in /federate, "\n" otherwise
	scratch [64]byte
	vals    [nSlots + 1]string // the extra slot stays empty (instance="")
	cum     [32]float64        // aggregated bucket rates
	n       int                // series written
}

const bufSize = 64 << 10

func newEnc(m *Mesh, w io.Writer, fed bool) *enc {
	bw, ok := w.(*bufio.Writer)
	if !ok || bw.Size() < bufSize {
		bw = bufio.NewWriterSize(w, bufSize)
	}
	e := &enc{m: m, bw: bw, fed: fed, ts: make([]byte, 0, 24)}
	e.ts = append(e.ts, '\n')
	return e
}

// at sets the sample time: elapsed seconds and, in /federate, the timestamp.
func (e *enc) at(tms int64) {
	e.el = e.m.elapsed(tms)
	if e.fed {
		e.ts = append(strconv.AppendInt(append(e.ts[:0], ' '), tms, 10), '\n')
	}
}

// target switches to pod p's series, as scraped at or before now.
func (e *enc) target(p *pod, nowMs int64) {
	e.tk, e.factor = p.kind, p.factor
	if !e.fed {
		e.at(nowMs)
		return
	}
	e.at(p.lastScrape(nowMs))
	e.vals[sJob] = "kubernetes-pods"
	e.vals[sInstance] = p.instance
	e.vals[sKubeNamespace] = p.ns
	e.vals[sKubePod] = p.name
	for i, v := range p.labels {
		e.vals[sP0+slot(i)] = v
	}
}

// shape picks label set ls's layout for the current target.
func (e *enc) shape(ls int) *shape {
	if e.fed {
		return e.m.lsets[ls].fed[e.tk]
	}
	return e.m.lsets[ls].native
}

// le sets the bucket label to bound i of b in the output's spelling.
func (e *enc) le(b *buckets, i int) {
	if e.fed && e.m.opts.LeFormat == LePrometheus3 {
		e.vals[sLe] = b.prom3[i]
	} else {
		e.vals[sLe] = b.native[i]
	}
}

func (e *enc) str(s string) { _, _ = e.bw.WriteString(s) }

// header writes a family's HELP/TYPE framing.
func (e *enc) header(name, help, typ string) {
	if e.fed {
		e.str("# TYPE ")
		e.str(name)
		e.str(" untyped\n")
		return
	}
	if help != "" {
		e.str("# HELP ")
		e.str(name)
		e.str(" ")
		e.str(help)
		e.str("\n")
	}
	e.str("# TYPE ")
	e.str(name)
	e.str(" ")
	e.str(typ)
	e.str("\n")
}

// line writes one sample: name+suffix, labels per sh, value, timestamp.
func (e *enc) line(name, suffix string, sh *shape, v float64) {
	bw := e.bw
	_, _ = bw.WriteString(name)
	_, _ = bw.WriteString(suffix)
	for i := range sh.items {
		it := &sh.items[i]
		_, _ = bw.WriteString(it.pre)
		_, _ = bw.WriteString(e.vals[it.slot])
	}
	_, _ = bw.WriteString(sh.end)
	b := append(e.scratch[:0], ' ')
	switch {
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	case e.envoy && !e.fed:
		b = strconv.AppendFloat(b, v, 'f', -1, 64) // Envoy prints 12450000, not 1.245e+07
	default:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	_, _ = bw.Write(b)
	_, _ = bw.Write(e.ts)
	e.n++
}

// failed reports a sticky write error, so a dropped client stops a long body.
func (e *enc) failed() error {
	_, err := e.bw.Write(nil)
	return err
}
