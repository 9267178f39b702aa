package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Buckets of the span, span-log and distribution store. See doc.go for
// the key layout.
var (
	bSpans     = []byte("spans")     // traceId 0 spanId → span line
	bSpanTime  = []byte("spantime")  // start 8 | traceId 0 spanId → meta
	bSpanSvc   = []byte("spansvc")   // service 0 start 8 | traceId 0 spanId → meta
	bLogs      = []byte("logs")      // traceId 0 spanId 0 hash 8 → span-logs JSON
	bLogTime   = []byte("logtime")   // received 8 | logs key → nil
	bDists     = []byte("dists")     // name 0 binStart 8 | hash 8 → distribution
	bDistNames = []byte("distnames") // name → nil
	allBuckets = [][]byte{bSpans, bSpanTime, bSpanSvc, bLogs, bLogTime, bDists, bDistNames}
)

// appendFill is the bbolt FillPercent of buckets written in key order.
const appendFill = 0.9

// kvStore keeps spans, span logs and distributions in one bbolt file.
// bbolt fsyncs every commit; the applier commits once per WAL batch.
type kvStore struct {
	db *bbolt.DB
}

func openKV(path string) (*kvStore, error) {
	db, err := bbolt.Open(path, 0o644, &bbolt.Options{Timeout: 5 * time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &kvStore{db: db}, nil
}

func (s *kvStore) close() error { return s.db.Close() }

func be64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// spanRec is a decoded span ready to store.
type spanRec struct {
	traceID, spanID, service, operation string
	start, duration                     int64
	isErr                               bool
	line                                []byte // canonical, without the newline
}

func (r *spanRec) key() []byte {
	return append(append(append(make([]byte, 0, len(r.traceID)+1+len(r.spanID)), r.traceID...), 0), r.spanID...)
}

// meta is the index value: enough to filter a search without loading spans.
func (r *spanRec) meta() []byte {
	b := be64(nil, r.duration)
	if r.isErr {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(append(append(b, r.service...), 0), r.operation...)
}

func parseMeta(v []byte) (dur int64, isErr bool, service, op string) {
	if len(v) < 9 {
		return 0, false, "", ""
	}
	dur, isErr = int64(binary.BigEndian.Uint64(v)), v[8] == 1
	rest := v[9:]
	if i := bytes.IndexByte(rest, 0); i >= 0 {
		return dur, isErr, string(rest[:i]), string(rest[i+1:])
	}
	return dur, isErr, string(rest), ""
}

func (r *spanRec) timeKey() []byte { return append(be64(nil, r.start), r.key()...) }

func (r *spanRec) svcKey() []byte {
	return append(be64(append([]byte(r.service), 0), r.start), r.key()...)
}

// spanRecOf extracts what the indexes need from a decoded span.
func spanRecOf(sp *wavefront.Span, line []byte) spanRec {
	r := spanRec{
		traceID:   string(sp.TraceID),
		spanID:    string(sp.SpanID),
		operation: string(sp.Name),
		start:     sp.StartMillis,
		duration:  sp.DurationMillis,
		line:      line,
	}
	for _, t := range sp.Tags {
		switch string(t.Key) {
		case "service":
			if r.service == "" {
				r.service = string(t.Value)
			}
		case "error":
			r.isErr = r.isErr || strings.EqualFold(string(t.Value), "true")
		}
	}
	return r
}

// logRec is one span-logs object ready to store.
type logRec struct {
	key      []byte // traceId 0 spanId 0 hash
	received int64
	json     []byte
}

// distRec is one histogram ready to store.
type distRec struct {
	key   []byte // name 0 binStart hash
	name  []byte
	value []byte
}

// kvBatch is what one WAL batch writes to the KV store.
type kvBatch struct {
	spans []spanRec
	logs  []logRec
	dists []distRec
}

func (b *kvBatch) empty() bool { return len(b.spans)+len(b.logs)+len(b.dists) == 0 }

func (b *kvBatch) reset() { b.spans, b.logs, b.dists = b.spans[:0], b.logs[:0], b.dists[:0] }

// write stores b in one transaction. Rewriting a span (a WAL replay, or a
// client resending it) replaces it and its index entries; span logs and
// distributions are keyed by a hash of their content, so a replay
// rewrites the same keys.
func (s *kvStore) write(b *kvBatch, dec *wavefront.Decoder) error {
	if b.empty() {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		spans, st, ss := tx.Bucket(bSpans), tx.Bucket(bSpanTime), tx.Bucket(bSpanSvc)
		logs, lt := tx.Bucket(bLogs), tx.Bucket(bLogTime)
		// The time indexes grow near their end (per service for spansvc):
		// a page that splits there keeps 90 % instead of bbolt's 50 %, and
		// with spans seconds late they stay 78–89 % full instead of half
		// (TestTimeIndexesFillPages). Keys by trace ID land anywhere, so
		// those buckets keep the default.
		st.FillPercent, ss.FillPercent, lt.FillPercent = appendFill, appendFill, appendFill
		var (
			sp         wavefront.Span
			arena, buf []byte
			packed     []byte
		)
		for i := range b.spans {
			r := &b.spans[i]
			k := r.key()
			if old := spans.Get(k); old != nil {
				if line, err := unpacked(&buf, old); err == nil && dec.DecodeSpan(line, &sp) == nil {
					o := spanRecOf(&sp, nil)
					if err := deleteSpanIndex(st, ss, &o); err != nil {
						return err
					}
				}
			}
			arena, packed = appendPacked(arena, r.line)
			if err := spans.Put(k, packed); err != nil {
				return err
			}
			meta := r.meta()
			if err := st.Put(r.timeKey(), meta); err != nil {
				return err
			}
			if err := ss.Put(r.svcKey(), meta); err != nil {
				return err
			}
		}
		for _, l := range b.logs {
			arena, packed = appendPacked(arena, l.json)
			if err := logs.Put(l.key, packed); err != nil {
				return err
			}
			if err := lt.Put(append(be64(nil, l.received), l.key...), nil); err != nil {
				return err
			}
		}
		dists, dn := tx.Bucket(bDists), tx.Bucket(bDistNames)
		for _, d := range b.dists {
			if err := dists.Put(d.key, d.value); err != nil {
				return err
			}
			if dn.Get(d.name) == nil {
				if err := dn.Put(d.name, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func deleteSpanIndex(st, ss *bbolt.Bucket, r *spanRec) error {
	if err := st.Delete(r.timeKey()); err != nil {
		return err
	}
	return ss.Delete(r.svcKey())
}

// SpanJSON is one span as the trace endpoints return it.
type SpanJSON struct {
	TraceID     string              `json:"traceId"`
	SpanID      string              `json:"spanId"`
	Name        string              `json:"name"`
	Source      string              `json:"source"`
	StartMs     int64               `json:"startMs"`
	DurationMs  int64               `json:"durationMs"`
	Annotations []Annotation        `json:"annotations"`
	Logs        []wavefront.SpanLog `json:"logs,omitempty"`
}

// Annotation is one span tag; keys may repeat (parent, followsFrom), so
// the list keeps the span's order.
type Annotation struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// trace returns the spans of traceID, ordered by start time, with their
// span logs; nil when there are none.
func (s *kvStore) trace(traceID string, dec *wavefront.Decoder) ([]SpanJSON, error) {
	prefix := append([]byte(traceID), 0)
	var out []SpanJSON
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bSpans).Cursor()
		var (
			sp  wavefront.Span
			buf []byte
		)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			line, err := unpacked(&buf, v)
			if err != nil || dec.DecodeSpan(line, &sp) != nil {
				continue // validated on ingestion; only a limit change can get here
			}
			out = append(out, spanJSONOf(&sp))
		}
		lc := tx.Bucket(bLogs).Cursor()
		for k, v := lc.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = lc.Next() {
			rest := k[len(prefix):]
			spanID := string(rest[:max(0, len(rest)-9)])
			var sl wavefront.SpanLogs
			text, err := unpacked(&buf, v)
			if err != nil || json.Unmarshal(text, &sl) != nil {
				continue
			}
			for i := range out {
				if out[i].SpanID == spanID {
					out[i].Logs = append(out[i].Logs, sl.Logs...)
				}
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b SpanJSON) int { return int(min(max(a.StartMs-b.StartMs, -1), 1)) })
	return out, err
}

func spanJSONOf(sp *wavefront.Span) SpanJSON {
	j := SpanJSON{
		TraceID:     string(sp.TraceID),
		SpanID:      string(sp.SpanID),
		Name:        string(sp.Name),
		Source:      string(sp.Source),
		StartMs:     sp.StartMillis,
		DurationMs:  sp.DurationMillis,
		Annotations: make([]Annotation, len(sp.Tags)),
	}
	for i, t := range sp.Tags {
		j.Annotations[i] = Annotation{string(t.Key), string(t.Value)}
	}
	return j
}

// TraceQuery filters a trace search. Durations are in ms; zero values do
// not filter. Start and End bound span start times (Unix ms).
type TraceQuery struct {
	Service, Operation       string
	MinDuration, MaxDuration int64
	Error                    *bool
	Start, End               int64
	Limit                    int
}

// TraceSummary is one trace search hit.
type TraceSummary struct {
	TraceID       string   `json:"traceId"`
	StartMs       int64    `json:"startMs"`
	DurationMs    int64    `json:"durationMs"`
	RootService   string   `json:"rootService"`
	RootOperation string   `json:"rootOperation"`
	Services      []string `json:"services"`
	SpanCount     int      `json:"spanCount"`
	Error         bool     `json:"error"`
}

// searchTraces returns the newest traces with a span matching q. It walks
// the service index when a service is given, else the time index,
// newest first, and filters on the index values.
func (s *kvStore) searchTraces(ctx context.Context, q TraceQuery, dec *wavefront.Decoder) ([]TraceSummary, error) {
	var ids []string
	seen := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		var c *bbolt.Cursor
		var prefix []byte
		if q.Service != "" {
			c, prefix = tx.Bucket(bSpanSvc).Cursor(), append([]byte(q.Service), 0)
		} else {
			c = tx.Bucket(bSpanTime).Cursor()
		}
		lo, hi := be64(slices.Clone(prefix), q.Start), be64(slices.Clone(prefix), q.End+1)
		k, v := c.Seek(hi)
		if k == nil {
			k, v = c.Last()
		}
		for n := 0; k != nil && bytes.Compare(k, lo) >= 0; k, v = c.Prev() {
			if bytes.Compare(k, hi) >= 0 {
				continue
			}
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			dur, isErr, _, op := parseMeta(v)
			switch {
			case q.Operation != "" && op != q.Operation,
				q.MinDuration > 0 && dur < q.MinDuration,
				q.MaxDuration > 0 && dur > q.MaxDuration,
				q.Error != nil && isErr != *q.Error:
				continue
			}
			rest := k[len(prefix)+8:]
			id := string(rest[:bytes.IndexByte(rest, 0)])
			if !seen[id] {
				seen[id] = true
				if ids = append(ids, id); len(ids) >= q.Limit {
					return nil
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]TraceSummary, 0, len(ids))
	for _, id := range ids {
		spans, err := s.trace(id, dec)
		if err != nil {
			return nil, err
		}
		if len(spans) > 0 {
			out = append(out, summarize(id, spans))
		}
	}
	return out, nil
}

func summarize(id string, spans []SpanJSON) TraceSummary {
	t := TraceSummary{TraceID: id, StartMs: math.MaxInt64, SpanCount: len(spans)}
	ids := make(map[string]bool, len(spans))
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	end := int64(math.MinInt64)
	svcs := map[string]bool{}
	for _, sp := range spans {
		t.StartMs = min(t.StartMs, sp.StartMs)
		end = max(end, sp.StartMs+sp.DurationMs)
		root := true
		for _, a := range sp.Annotations {
			switch a.Key {
			case "parent":
				root = root && !ids[a.Value]
			case "service":
				svcs[a.Value] = true
			case "error":
				t.Error = t.Error || strings.EqualFold(a.Value, "true")
			}
		}
		if root && t.RootOperation == "" {
			t.RootOperation = sp.Name
			for _, a := range sp.Annotations {
				if a.Key == "service" {
					t.RootService = a.Value
					break
				}
			}
		}
	}
	t.DurationMs = end - t.StartMs
	for s := range svcs {
		t.Services = append(t.Services, s)
	}
	slices.Sort(t.Services)
	return t
}

// cleanup deletes spans, span logs and distributions older than cutoff
// (Unix ms), at most batch keys per transaction so writers are not held
// up. It returns the number of entries deleted.
func (s *kvStore) cleanup(ctx context.Context, cutoff int64, dec *wavefront.Decoder) (int, error) {
	const batch = 10000
	total := 0
	for _, step := range []func(*bbolt.Tx) (int, error){
		func(tx *bbolt.Tx) (int, error) { return cleanupSpans(tx, cutoff, batch, dec) },
		func(tx *bbolt.Tx) (int, error) { return cleanupLogs(tx, cutoff, batch) },
		func(tx *bbolt.Tx) (int, error) { return cleanupDists(tx, cutoff, batch) },
	} {
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			var n int
			err := s.db.Update(func(tx *bbolt.Tx) (err error) {
				n, err = step(tx)
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

// collectRange returns up to n keys of b in [from, limit); bbolt cursors
// must not see deletions, so callers delete afterwards.
func collectRange(b *bbolt.Bucket, from, limit []byte, n int) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(from); k != nil && bytes.Compare(k, limit) < 0 && len(keys) < n; k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	return keys
}

func cleanupSpans(tx *bbolt.Tx, cutoff int64, n int, dec *wavefront.Decoder) (int, error) {
	spans, st, ss := tx.Bucket(bSpans), tx.Bucket(bSpanTime), tx.Bucket(bSpanSvc)
	keys := collectRange(st, nil, be64(nil, cutoff), n)
	var (
		sp  wavefront.Span
		buf []byte
	)
	for _, k := range keys {
		sk := k[8:]
		if line, err := unpacked(&buf, spans.Get(sk)); err == nil && len(line) > 0 && dec.DecodeSpan(line, &sp) == nil {
			r := spanRecOf(&sp, nil)
			if err := ss.Delete(r.svcKey()); err != nil {
				return 0, err
			}
		}
		if err := spans.Delete(sk); err != nil {
			return 0, err
		}
		if err := st.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func cleanupLogs(tx *bbolt.Tx, cutoff int64, n int) (int, error) {
	logs, lt := tx.Bucket(bLogs), tx.Bucket(bLogTime)
	keys := collectRange(lt, nil, be64(nil, cutoff), n)
	for _, k := range keys {
		if err := logs.Delete(k[8:]); err != nil {
			return 0, err
		}
		if err := lt.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func cleanupDists(tx *bbolt.Tx, cutoff int64, n int) (int, error) {
	dists, dn := tx.Bucket(bDists), tx.Bucket(bDistNames)
	deleted := 0
	var emptied [][]byte
	c := dn.Cursor()
	for name, _ := c.First(); name != nil && deleted < n; name, _ = c.Next() {
		prefix := append(slices.Clone(name), 0)
		keys := collectRange(dists, prefix, be64(slices.Clone(prefix), cutoff), n-deleted)
		for _, k := range keys {
			if err := dists.Delete(k); err != nil {
				return 0, err
			}
			deleted++
		}
		if k, _ := dists.Cursor().Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
			emptied = append(emptied, slices.Clone(name))
		}
	}
	for _, name := range emptied {
		if err := dn.Delete(name); err != nil {
			return 0, err
		}
	}
	return deleted, nil
}
