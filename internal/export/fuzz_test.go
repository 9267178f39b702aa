package export

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// FuzzRemoteWriteConvert: any queue record converts without panicking, and
// every body decodes to the number of samples its send call claims.
func FuzzRemoteWriteConvert(f *testing.F) {
	f.Add(byte(Points), []byte("\"a.b\" 1 1700000000000 source=\"s\" \"k\"=\"v\"\n"))
	f.Add(byte(Histograms), []byte("!M 1700000040000 #2 10 #3 20 \"h\" source=\"s\"\n"))
	f.Fuzz(func(t *testing.T, kind byte, lines []byte) {
		c := newRWConverter(3, newMetrics(nil, "fuzz"))
		// A line without a timestamp gets the clock's: keep it still.
		c.dec.Now = func() time.Time { return time.UnixMilli(1700000000000) }
		rec := append([]byte{kind}, lines...)
		var first [][]byte
		err := c.convert([][]byte{rec}, whole(t, func(body []byte, n int) error {
			first = append(first, bytes.Clone(body))
			samples := 0
			for _, ts := range decodeRW(t, body).Timeseries {
				samples += len(ts.Samples)
				for _, l := range ts.Labels {
					if l.Name == "" || l.Name != LabelName(l.Name) && l.Name != labelMetricName {
						t.Errorf("invalid label name %q", l.Name)
					}
				}
			}
			if samples != n {
				t.Errorf("send says %d samples, body has %d", n, samples)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		// Again, now from the series cache (and, for canonical lines,
		// without decoding): the same requests.
		i := 0
		err = c.convert([][]byte{rec}, whole(t, func(body []byte, n int) error {
			if i >= len(first) || !bytes.Equal(body, first[i]) {
				t.Errorf("request %d differs when converted from the cache", i)
			}
			i++
			return nil
		}))
		if err != nil || i != len(first) {
			t.Fatalf("second conversion: %d requests, want %d (%v)", i, len(first), err)
		}
	})
}

// FuzzOTLPConvert: any span or span-logs record converts without
// panicking into bodies that decode to the claimed number of spans, with
// IDs of the lengths OTLP requires.
func FuzzOTLPConvert(f *testing.F) {
	f.Add(byte(Spans), []byte("\"op\" source=\"s\" spanId=\"00000000-0000-0000-0000-000000000001\" traceId=\"x\" \"parent\"=\"2\" 1700000000000 5\n"))
	f.Add(byte(SpanLogs), []byte(`{"traceId":"x","spanId":"1","logs":[{"timestamp":1,"fields":{"event":"e"}}]}`+"\n"))
	f.Fuzz(func(t *testing.T, kind byte, lines []byte) {
		m := newMetrics(nil, "fuzz")
		c := newOTLPConverter(2, m)
		rec := append([]byte{kind}, lines...)
		err := c.convert([][]byte{rec}, whole(t, func(body []byte, n int) error {
			spans := 0
			for _, rs := range decodeOTLP(t, body).ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						spans++
						if len(s.TraceId) != 16 || len(s.SpanId) != 8 || s.ParentSpanId != nil && len(s.ParentSpanId) != 8 {
							t.Errorf("bad IDs: %x %x %x", s.TraceId, s.SpanId, s.ParentSpanId)
						}
					}
				}
			}
			if spans != n {
				t.Errorf("send says %d spans, body has %d", n, spans)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if n := testutil.ToFloat64(m.dropped.WithLabelValues("marshal_error")); n > 0 {
			t.Errorf("%v spans could not be encoded", n)
		}
	})
}
