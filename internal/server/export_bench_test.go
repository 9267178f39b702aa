package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/export"
)

// BenchmarkIngestExport measures what the remote-write exit costs the
// server: process CPU per point for /report → WAL → tsdb, with the exit
// off (the in-run baseline) and on. With it on, the clock also covers the
// exporter's queue fsyncs, the conversion and posting to a loopback
// receiver that only reads the body, and stops once everything is both
// stored and delivered. The client's CPU is counted in both.
func BenchmarkIngestExport(b *testing.B) {
	const pointsPerBody, series = 10000, 1000
	for _, withExport := range []bool{false, true} {
		b.Run(fmt.Sprintf("export=%t", withExport), func(b *testing.B) {
			cfg := Config{DataDir: b.TempDir()}
			if withExport {
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusNoContent)
				}))
				defer sink.Close()
				cfg.RemoteWrite = export.Config{URL: sink.URL}
			}
			s := start(b, cfg)
			t0 := base()
			bodies := make([]string, b.N)
			for n := range bodies {
				var sb strings.Builder
				for i := range pointsPerBody {
					fmt.Fprintf(&sb, "istio.requests.total.value %d %d source=pod-%d app=reviews destination_service=reviews.default.svc.cluster.local response_code=200 reporter=destination\n",
						i, t0+int64(n*pointsPerBody+i), i%series)
				}
				bodies[n] = sb.String()
			}
			b.ResetTimer()
			cpu := cpuclock.Self()
			for _, body := range bodies {
				if code, res := post(b, s.url, "wavefront", body); code != 202 || res.Accepted != pointsPerBody {
					b.Fatalf("POST: %d %+v", code, res)
				}
			}
			// Both variants poll alike, so the polling costs them the same.
			total := float64(b.N * pointsPerBody)
			for counterValue(b, s, "meshwave_server_lines_stored_total") < total || withExport && counterValue(b, s, "meshwave_export_sent_total") < total {
				time.Sleep(10 * time.Millisecond)
			}
			b.ReportMetric(float64((cpuclock.Self()-cpu).Nanoseconds())/total, "cpu-ns/point")
		})
	}
}

// counterValue sums the counter called name in the server's registry.
func counterValue(tb testing.TB, s *testServer, name string) float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
