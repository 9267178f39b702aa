package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshwave/meshwave/internal/httpbody"
	"github.com/meshwave/meshwave/internal/preprocessor"
	"github.com/meshwave/meshwave/internal/red"
	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/meshwave/meshwave/internal/zipkin"
)

// zipkinState is one request's decoding state, pooled so that a request
// allocates nothing once the buffers have grown to the bodies' size.
type zipkinState struct {
	dec  zipkin.Decoder
	conv zipkin.Converter
	span wavefront.Span
	reds *red.Batch // the body's RED observations, committed before the answer
	in   *ingester  // empty between requests: every request commits or fails whole
	body []byte
	// now is the request's arrival time: its spans share it for the time
	// window check (WF-402), as the lines of one TCP read do, instead of
	// reading the clock once per span.
	now time.Time
}

// maxPooledBody bounds the body buffer a pooled state keeps, so one huge
// request does not pin its size in memory.
const maxPooledBody = 4 << 20

// zipkinHandler serves a Zipkin port (proxy.md §5.1). Its RED metrics are
// flushed once a minute until ctx ends, then once more.
func (p *Proxy) zipkinHandler(ctx context.Context, port string) http.Handler {
	deriver := red.New(red.Options{Mode: red.ZipkinMode, ReporterSource: "zipkin"})
	p.wg.Go(func() { p.runRED(ctx, port, deriver) })
	pool := sync.Pool{New: func() any {
		st := &zipkinState{
			conv: zipkin.Converter{
				DefaultApplication: p.cfg.TraceZipkinApplicationName,
				SpanLogs:           true,
				CustomTagKeys:      splitList(p.cfg.TraceDerivedCustomTagKeys),
			},
			reds: deriver.NewBatch(),
			in:   p.newIngester(port, nil), // converted spans always have a source
		}
		st.in.dec.Now = func() time.Time { return st.now }
		return st
	}}
	accepted := p.m.httpStatus.WithLabelValues(port, strconv.Itoa(http.StatusAccepted))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := pool.Get().(*zipkinState)
		code, msg := p.serveZipkin(port, st, r)
		if st.in.staging == 0 && cap(st.body) <= maxPooledBody {
			pool.Put(st)
		}
		if code == http.StatusAccepted {
			accepted.Inc() // looked up once: every body but a failed one
		} else {
			p.m.httpStatus.WithLabelValues(port, strconv.Itoa(code)).Inc()
		}
		if msg != "" {
			httpbody.Error(w, msg, code)
			return
		}
		w.WriteHeader(code)
	})
}

func (p *Proxy) serveZipkin(port string, st *zipkinState, r *http.Request) (int, string) {
	if r.Method == http.MethodOptions {
		return http.StatusNoContent, ""
	}
	// Either spelling, with or without the trailing slash, and without
	// building a string per request.
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path != "/api/v1/spans" && path != "/api/v2/spans" {
		return http.StatusBadRequest, "Unsupported URL path."
	}
	if r.Method != http.MethodPost {
		return http.StatusBadRequest, "Unsupported Http method."
	}
	// The body is read into a buffer reused across requests, sized once
	// from Envoy's Content-Length.
	body, code, err := httpbody.ReadInto(st.body, r, p.cfg.TraceListenerHTTPBufferSize)
	st.body = body
	if err != nil {
		return code, err.Error()
	}
	st.now = time.Now()
	enc, err := zipkin.Detect(body)
	if err != nil {
		p.m.batchFailed.WithLabelValues(port).Inc()
		return http.StatusBadRequest, err.Error()
	}
	in := st.in
	rules := p.portRules(port)
	if rules.Empty() {
		rules = nil // lets zipkinSpan skip re-reading the RED inputs
	}
	err = st.dec.Decode(body, enc, func(z *zipkin.Span) error {
		p.zipkinSpan(in, rules, st, z)
		if in.full() {
			return in.commit()
		}
		return nil
	})
	st.reds.Commit()
	if err != nil {
		if _, ok := err.(*zipkin.SpanError); ok || in.staging == 0 {
			p.m.batchFailed.WithLabelValues(port).Inc()
			return http.StatusBadRequest, err.Error()
		}
		return http.StatusServiceUnavailable, "cannot queue spans: " + err.Error()
	}
	// The 202 goes out only once the spans are durable.
	if err := in.commit(); err != nil {
		return http.StatusServiceUnavailable, "cannot queue spans: " + err.Error()
	}
	return http.StatusAccepted, ""
}

// zipkinSpan converts, filters, validates and stages one span, and feeds
// RED metrics, in the reference's order (proxy.md §5.3): RED metrics count
// every span the rules keep, even one validation then rejects.
func (p *Proxy) zipkinSpan(in *ingester, rules *preprocessor.PortRules, st *zipkinState, z *zipkin.Span) {
	s := &st.span
	if rules == nil {
		// The common span, converted and written in one pass; anything
		// else takes the general path below.
		var rd zipkin.RED
		var fused bool
		in.stage(fmtTrace, func(b []byte) []byte {
			b, fused = st.conv.AppendCanonicalSpanTo(b, z, s, &rd, &in.dec)
			return b
		})
		if fused {
			st.reds.Add(&rd)
			in.stage(fmtSpanLogs, func(b []byte) []byte { return st.conv.AppendLogs(b, z, s, "_sampledByPolicy=NONE") })
			return
		}
	}
	rd := st.conv.Convert(z, s)
	if rules != nil {
		if res, _ := rules.Span(s, &in.rules); res != preprocessor.Keep {
			p.m.blocked.WithLabelValues(entitySpans, in.port).Inc()
			return
		}
		st.conv.Refresh(&rd, s) // Convert's RED inputs may be stale now
	}
	st.reds.Add(&rd)
	var canonical bool
	in.stage(fmtTrace, func(b []byte) []byte {
		b, canonical = in.dec.AppendCanonicalSpan(b, s)
		return b
	})
	if !canonical {
		if err := in.dec.ValidateSpan(s); err != nil {
			in.reject(entitySpans, nil, err)
			return
		}
		in.stage(fmtTrace, func(b []byte) []byte { return wavefront.AppendSpan(b, s) })
	}
	in.stage(fmtSpanLogs, func(b []byte) []byte { return st.conv.AppendLogs(b, z, s, "_sampledByPolicy=NONE") })
	if full := in.dec.TruncatedAnnotations(); len(full) > 0 {
		in.stageSpanLogs(wavefront.TruncationSpanLogs(s, full))
	}
}

// runRED flushes a port's RED metrics and heartbeats into the queue once a
// minute, and once more at shutdown so a graceful stop loses nothing.
func (p *Proxy) runRED(ctx context.Context, port string, d *red.Deriver) {
	em := &redEmitter{in: p.newIngester(port, []byte("zipkin"))}
	flush := func(now time.Time) {
		d.Flush(now, em)
		if err := em.in.commit(); err != nil {
			p.log.Error("queueing RED metrics failed", "port", port, "err", err)
		}
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush(time.Now().Add(time.Minute)) // completes the current minute's histograms
			return
		case now := <-t.C:
			flush(now)
		}
	}
}

// redEmitter stages derived points like client data: validated, but not
// preprocessed (proxy.md §6.1).
type redEmitter struct{ in *ingester }

func (e *redEmitter) WritePoint(pt *wavefront.Point) {
	if err := e.in.p.limits.ValidatePoint(pt); err != nil {
		e.in.reject(entityPoints, pt.Name, err)
		return
	}
	e.in.stage(fmtWavefront, func(b []byte) []byte { return wavefront.AppendPoint(b, pt) })
}

func (e *redEmitter) WriteDistribution(d *wavefront.Distribution) {
	if err := e.in.p.limits.ValidateDistribution(d); err != nil {
		e.in.reject(entityHistograms, d.Name, err)
		return
	}
	e.in.stage(fmtHistogram, func(b []byte) []byte { return wavefront.AppendDistribution(b, d) })
}
