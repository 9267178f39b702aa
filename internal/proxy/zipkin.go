package proxy

import (
	"context"
	"net"
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

// zipkinState is one request's reusable decoding state.
type zipkinState struct {
	dec  zipkin.Decoder
	conv zipkin.Converter
	span wavefront.Span
	logs wavefront.SpanLogs
	red  red.Span
}

// zipkinHandler serves a Zipkin port (proxy.md §5.1). Its RED metrics are
// flushed once a minute until ctx ends, then once more.
func (p *Proxy) zipkinHandler(ctx context.Context, port string) http.Handler {
	deriver := red.New(red.Options{Mode: red.ZipkinMode, ReporterSource: "zipkin"})
	p.wg.Go(func() { p.runRED(ctx, port, deriver) })
	pool := sync.Pool{New: func() any {
		return &zipkinState{conv: zipkin.Converter{
			DefaultApplication: p.cfg.TraceZipkinApplicationName,
			SpanLogs:           true,
			CustomTagKeys:      splitList(p.cfg.TraceDerivedCustomTagKeys),
		}}
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := pool.Get().(*zipkinState)
		code, msg := p.serveZipkin(port, deriver, st, r)
		pool.Put(st)
		p.m.httpStatus.WithLabelValues(port, strconv.Itoa(code)).Inc()
		if msg != "" {
			http.Error(w, msg, code)
			return
		}
		w.WriteHeader(code)
	})
}

func (p *Proxy) serveZipkin(port string, deriver *red.Deriver, st *zipkinState, r *http.Request) (int, string) {
	if r.Method == http.MethodOptions {
		return http.StatusNoContent, ""
	}
	path := r.URL.Path
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	if path != "/api/v1/spans/" && path != "/api/v2/spans/" {
		return http.StatusBadRequest, "Unsupported URL path."
	}
	if r.Method != http.MethodPost {
		return http.StatusBadRequest, "Unsupported Http method."
	}
	body, code, err := httpbody.Read(r, p.cfg.TraceListenerHTTPBufferSize)
	if err != nil {
		return code, err.Error()
	}
	enc, err := zipkin.Detect(body)
	if err != nil {
		p.m.batchFailed.WithLabelValues(port).Inc()
		return http.StatusBadRequest, err.Error()
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	in := p.newIngester(port, []byte(host))
	rules := p.portRules(port)
	err = st.dec.Decode(body, enc, func(z *zipkin.Span) error {
		p.zipkinSpan(in, rules, deriver, st, z)
		if in.full() {
			return in.commit()
		}
		return nil
	})
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
func (p *Proxy) zipkinSpan(in *ingester, rules *preprocessor.PortRules, deriver *red.Deriver, st *zipkinState, z *zipkin.Span) {
	s := &st.span
	rd := st.conv.Convert(z, s)
	if res, _ := rules.Span(s, &in.rules); res != preprocessor.Keep {
		p.m.blocked.WithLabelValues(entitySpans, in.port).Inc()
		return
	}
	st.conv.Refresh(&rd, s)
	observeRED(deriver, &st.red, &rd, s)
	hasLogs := st.conv.ConvertLogs(z, s, &st.logs)
	if err := in.dec.ValidateSpan(s); err != nil {
		in.reject(entitySpans, nil, err)
		return
	}
	in.stage(fmtTrace, func(b []byte) []byte { return wavefront.AppendSpan(b, s) })
	if hasLogs {
		st.logs.Span = "_sampledByPolicy=NONE"
		in.stageSpanLogs(&st.logs)
	}
	if full := in.dec.TruncatedAnnotations(); len(full) > 0 {
		in.stageSpanLogs(wavefront.TruncationSpanLogs(s, full))
	}
}

func observeRED(deriver *red.Deriver, rs *red.Span, rd *zipkin.RED, s *wavefront.Span) {
	*rs = red.Span{
		Application:    string(rd.Application),
		Service:        string(rd.Service),
		Operation:      string(rd.Operation),
		Cluster:        string(rd.Cluster),
		Shard:          string(rd.Shard),
		Component:      string(rd.Component),
		SpanKind:       string(rd.SpanKind),
		Source:         string(rd.Source),
		HTTPStatusCode: string(rd.HTTPStatusCode),
		CustomTags:     rd.CustomTags,
		IsError:        rd.IsError,
		DurationMicros: rd.DurationMicros,
		DurationMillis: s.DurationMillis,
	}
	deriver.Observe(rs)
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
