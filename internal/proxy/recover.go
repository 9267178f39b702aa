package proxy

import (
	"net"
	"net/http"
	"runtime/debug"
)

// survive, deferred around serving connection c, turns a panic there (a
// proxy bug: the decoders are fuzzed, but they use assembly and unsafe
// word loads) into the end of that connection alone: it is closed, the
// panic is logged with its stack and counted in proxy_internal_errors, and
// the other clients and the queue carry on, which a crash would not let
// them do.
func (p *Proxy) survive(port string, c net.Conn) {
	if v := recover(); v != nil {
		c.Close()
		p.internalError(port, c.RemoteAddr().String(), v)
	}
}

// surviveHTTP is survive for an HTTP handler: the request is answered 500.
// net/http would recover too, but without counting or a structured log.
func (p *Proxy) surviveHTTP(port string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { // net/http's own way to abort
					panic(v)
				}
				p.internalError(port, r.RemoteAddr, v)
				http.Error(w, "internal error; see the proxy's log", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (p *Proxy) internalError(port, remote string, v any) {
	p.m.internalErrors.WithLabelValues(port).Inc()
	p.log.Error("internal error: a proxy bug ended one connection or request", "port", port, "remote", remote, "panic", v, "stack", string(debug.Stack()))
}
