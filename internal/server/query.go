package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/meshwave/meshwave/internal/wql"
)

// ChartResponse is the JSON of /api/v2/chart/api, shaped like Wavefront's.
type ChartResponse struct {
	Query       string        `json:"query"`
	Name        string        `json:"name"`
	Granularity int64         `json:"granularity"` // seconds
	Timeseries  []ChartSeries `json:"timeseries"`
}

// ChartSeries is one result series. Data points are [epoch seconds,
// value]; non-finite values are left out, as JSON cannot carry them.
type ChartSeries struct {
	Label string            `json:"label"`
	Host  string            `json:"host"`
	Tags  map[string]string `json:"tags"`
	Data  [][2]float64      `json:"data"`
}

// QueryError is the JSON body of a 4xx/5xx from the query endpoints.
type QueryError struct {
	Error    string `json:"error"`
	Position *int   `json:"position,omitempty"` // byte offset in q, for query errors
}

var granularities = map[string]int64{"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

// handleChart evaluates a WQL query. Every query error, including an
// unusable time range, is a 400 with its position where known; only a
// store failure is a 5xx.
func (s *Server) handleChart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := q.Get("q")
	now := time.Now().UnixMilli()
	start, err1 := msParam(q.Get("s"), now-3_600_000)
	end, err2 := msParam(q.Get("e"), now)
	step, ok := granularities[cmp.Or(q.Get("g"), "m")]
	maxPoints, err3 := strconv.ParseInt(cmp.Or(q.Get("p"), "0"), 10, 64)
	switch {
	case query == "":
		writeJSON(w, http.StatusBadRequest, QueryError{Error: "missing q"})
		return
	case err1 != nil || err2 != nil:
		writeJSON(w, http.StatusBadRequest, QueryError{Error: "bad s or e: " + errors.Join(err1, err2).Error()})
		return
	case !ok:
		writeJSON(w, http.StatusBadRequest, QueryError{Error: "g must be one of s, m, h, d"})
		return
	case err3 != nil || maxPoints < 0:
		writeJSON(w, http.StatusBadRequest, QueryError{Error: "p must be a non-negative integer"})
		return
	}
	step = coarsen(start, end, step, maxPoints)
	vars := map[string]string{}
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, "var."); ok && len(v) > 0 {
			vars[name] = v[0]
		}
	}
	expr, err := wql.Parse(query, vars)
	if err != nil {
		writeQueryError(w, err)
		return
	}
	// The result's values and tag lists are lent for this request only:
	// the deferred calls hand them to later requests once the answer is
	// written.
	mem := new(queryMemory)
	defer mem.release()
	grid, err := wql.EvalGrid(r.Context(), expr, queryStore{m: s.metrics, kv: s.kv, ru: s.rollups, mem: mem}, wql.Options{Start: start, End: end, Step: step})
	if err != nil {
		writeQueryError(w, err)
		return
	}
	defer grid.Release()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	writeChart(w, query, grid)
}

// chartBufs recycles writeChart's buffers: a dashboard load writes ~70 MB
// of JSON through them.
var chartBufs = sync.Pool{New: func() any { return new([]byte) }}

// chartFlush is how much JSON writeChart collects before writing it: large
// writes go straight through the HTTP response's own buffers.
const chartFlush = 64 << 10

// writeChart writes the ChartResponse JSON for a query's result. Dashboards
// fetch tens of megabytes of points; encoding/json spent most of a query's
// time formatting them (reflection, and float formatting of integral
// timestamps), so points are appended by hand, the text of each grid
// timestamp made once, and the rest uses encoding/json. Write errors (a
// client gone) are left to the server: the answer is already committed.
func writeChart(w io.Writer, query string, g *wql.Grid) {
	pb := chartBufs.Get().(*[]byte)
	defer chartBufs.Put(pb)
	b := (*pb)[:0]
	defer func() { *pb = b[:0] }()
	str := func(s string) { b = appendJSONString(b, s) }
	b = append(b, `{"query":`...)
	str(query)
	b = append(b, `,"name":`...)
	str(query)
	b = append(b, `,"granularity":`...)
	b = strconv.AppendInt(b, g.Step/1000, 10)
	b = append(b, `,"timeseries":[`...)
	// stamps[ends[i-1]:ends[i]] is `,[<bucket i's time>,`; a series' first
	// point leaves out the comma.
	var stamps []byte
	var ends []int
	for i, ser := range g.Series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"label":`...)
		str(ser.Name)
		b = append(b, `,"host":`...)
		str(ser.Source)
		b = append(b, `,"tags":`...)
		// encoding/json's order, keys sorted, is the order of Tags.
		b = append(b, '{')
		for i, t := range ser.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			str(t.Key)
			b = append(b, ':')
			str(t.Value)
		}
		b = append(b, '}')
		b = append(b, `,"data":[`...)
		for len(ends) < len(ser.Vals) {
			stamps = append(stamps, ",["...)
			stamps = strconv.AppendInt(stamps, (g.Start+int64(len(ends))*g.Step)/1000, 10)
			stamps = append(stamps, ',')
			ends = append(ends, len(stamps))
		}
		skip := 1 // the first point's comma
		for j, v := range ser.Vals {
			if v-v != 0 {
				continue // NaN (no point) or ±Inf, which JSON cannot carry
			}
			lo := 0
			if j > 0 {
				lo = ends[j-1]
			}
			b = append(b, stamps[lo+skip:ends[j]]...)
			skip = 0
			b = appendJSONFloat(b, v)
			b = append(b, ']')
			if len(b) >= chartFlush {
				w.Write(b)
				b = b[:0]
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}\n"...)
	w.Write(b)
}

// jsonPlain marks the bytes encoding/json writes as they are in a string.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString quotes s as encoding/json does; names, sources and tags
// are nearly always plain ASCII, which needs no escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat formats v as encoding/json does (shortest repr, 'e'
// only for very small or large magnitudes), with fast paths for the
// integral values counters and sizes mostly are, and for the short
// decimals means of them are.
func appendJSONFloat(b []byte, v float64) []byte {
	abs := math.Abs(v)
	if abs < 1e15 && float64(int64(v)) == v { // integral; the conversion is one instruction, math.Trunc a call
		if v == 0 && math.Signbit(v) {
			return append(b, "-0"...)
		}
		return strconv.AppendInt(b, int64(v), 10)
	}
	if abs < 1e-6 || abs >= 1e21 {
		n := len(b)
		b = strconv.AppendFloat(b, v, 'e', -1, 64)
		// encoding/json's clean-up: e-07 → e-7.
		if m := len(b); m-n >= 4 && b[m-4] == 'e' && b[m-3] == '-' && b[m-2] == '0' {
			b[m-2] = b[m-1]
			b = b[:m-1]
		}
		return b
	}
	// Below 1e8 (1e11) two numbers of 7 (4) decimals are further apart
	// than two floats, so at most one converts back to v. If the one
	// nearest v does (n / 10^d is correctly rounded, as parsing its text
	// is), it is the shortest text for v, less its trailing zeros. The
	// truncating conversion may miss the nearest by one, which only
	// sends v down the slow path.
	var d int
	var p float64
	switch {
	case abs < 1e8:
		d, p = 7, 1e7
	case abs < 1e11:
		d, p = 4, 1e4
	default:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	n := int64(abs*p + 0.5)
	if float64(n)/p != abs {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	if v < 0 {
		b = append(b, '-')
	}
	return appendDecimal(b, n, d)
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendDecimal writes n / 10^d (n > 0, not a multiple of 10^d, d ≤ 7)
// without trailing zeros.
func appendDecimal(b []byte, n int64, d int) []byte {
	// At most d-1 trailing zeros: 4, 2 and 1 at a time cover them.
	if d > 4 && n%10000 == 0 {
		n /= 10000
		d -= 4
	}
	if d > 2 && n%100 == 0 {
		n /= 100
		d -= 2
	}
	if d > 1 && n%10 == 0 {
		n /= 10
		d--
	}
	var buf [24]byte
	i := len(buf)
	for ; d >= 2; d -= 2 {
		q := n % 100 * 2
		i -= 2
		buf[i], buf[i+1] = digitPairs[q], digitPairs[q+1]
		n /= 100
	}
	if d == 1 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	buf[i] = '.'
	for n >= 100 {
		q := n % 100 * 2
		i -= 2
		buf[i], buf[i+1] = digitPairs[q], digitPairs[q+1]
		n /= 100
	}
	if n >= 10 {
		i -= 2
		buf[i], buf[i+1] = digitPairs[2*n], digitPairs[2*n+1]
	} else {
		i--
		buf[i] = byte('0' + n)
	}
	return append(b, buf[i:]...)
}

// coarsen widens step to a multiple of itself so that [start, end] has at
// most about maxPoints buckets (0: no limit). This is Wavefront's p, "the
// approximate maximum number of points to return": a chart a few hundred
// pixels wide needs no 1440 points a series for a day, and the query then
// evaluates and sends that many fewer. Each point is the mean over its
// wider bucket (Wavefront's default summarization).
func coarsen(start, end, step, maxPoints int64) int64 {
	if maxPoints <= 0 || end < start {
		return step
	}
	buckets := (end-start)/step + 1
	if buckets <= maxPoints || buckets <= 0 {
		return step
	}
	if wide := step * ((buckets + maxPoints - 1) / maxPoints); wide > step {
		return wide
	}
	return step // overflowed: Eval reports the range

}

func writeQueryError(w http.ResponseWriter, err error) {
	var se storageError
	var qe *wql.Error
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusServiceUnavailable, QueryError{Error: err.Error()})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusServiceUnavailable, QueryError{Error: err.Error()})
	case errors.As(err, &qe):
		writeJSON(w, http.StatusBadRequest, QueryError{Error: err.Error(), Position: &qe.Pos})
	default:
		writeJSON(w, http.StatusBadRequest, QueryError{Error: err.Error()})
	}
}

// msParam parses an epoch time in seconds or milliseconds (told apart by
// magnitude, as Wavefront timestamps are).
func msParam(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, err
	}
	if n < 1e11 && n > -1e11 {
		n *= 1000
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// TraceResponse is the JSON of /api/v2/traces/{traceId}.
type TraceResponse struct {
	TraceID string     `json:"traceId"`
	Spans   []SpanJSON `json:"spans"`
}

func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("traceId")
	dec := s.decs.Get().(*wavefront.Decoder)
	defer s.decs.Put(dec)
	spans, err := s.kv.trace(id, dec)
	switch {
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, QueryError{Error: err.Error()})
	case len(spans) == 0:
		writeJSON(w, http.StatusNotFound, QueryError{Error: "trace not found"})
	default:
		writeJSON(w, http.StatusOK, TraceResponse{TraceID: id, Spans: spans})
	}
}

// TraceSearchResponse is the JSON of /api/v2/traces.
type TraceSearchResponse struct {
	Traces []TraceSummary `json:"traces"`
}

func (s *Server) handleTraceSearch(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	now := time.Now().UnixMilli()
	tq := TraceQuery{Service: p.Get("service"), Operation: p.Get("operation")}
	var errs []error
	intParam := func(name string, def int64, conv func(string, int64) (int64, error)) int64 {
		v, err := conv(p.Get(name), def)
		if err != nil {
			errs = append(errs, errors.New(name+": "+err.Error()))
		}
		return v
	}
	plain := func(v string, def int64) (int64, error) {
		if v == "" {
			return def, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	tq.Start = intParam("start", now-s.cfg.Retention.Milliseconds(), msParam)
	tq.End = intParam("end", now, msParam)
	tq.MinDuration = intParam("minDuration", 0, plain)
	tq.MaxDuration = intParam("maxDuration", 0, plain)
	tq.Limit = int(min(max(intParam("limit", 20, plain), 1), 1000))
	if v := p.Get("error"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, errors.New("error: "+err.Error()))
		}
		tq.Error = &b
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, QueryError{Error: errors.Join(errs...).Error()})
		return
	}
	dec := s.decs.Get().(*wavefront.Decoder)
	defer s.decs.Put(dec)
	traces, err := s.kv.searchTraces(r.Context(), tq, dec)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, QueryError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, TraceSearchResponse{Traces: traces})
}

// MetricsResponse is the JSON of /api/v2/metrics.
type MetricsResponse struct {
	Metrics []MetricInfo `json:"metrics"`
}

// handleMetrics lists metric and histogram names matching a glob, with
// their sources and tag values, for a metrics browser.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	now := time.Now().UnixMilli()
	start, err1 := msParam(p.Get("start"), now-s.cfg.Retention.Milliseconds())
	end, err2 := msParam(p.Get("end"), now)
	limit, err3 := strconv.Atoi(cmp.Or(p.Get("limit"), "1000"))
	if err := errors.Join(err1, err2, err3); err != nil {
		writeJSON(w, http.StatusBadRequest, QueryError{Error: err.Error()})
		return
	}
	glob := cmp.Or(p.Get("match"), "*")
	limit = max(limit, 1)
	ms, err := s.metrics.browse(r.Context(), glob, start, end, limit)
	if err == nil {
		var ds []MetricInfo
		ds, err = s.kv.browseDists(r.Context(), glob, start, end, limit)
		ms = append(ms, ds...)
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, QueryError{Error: err.Error()})
		return
	}
	slices.SortStableFunc(ms, func(a, b MetricInfo) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, MetricsResponse{Metrics: ms[:min(len(ms), limit)]})
}
