package wavefront

import "testing"

// istioLine is a typical federated Istio sample after the collector: ~300
// bytes with 12 tags.
const istioLine = `"istio.istio_requests_total.value" 1842 1712000000 source="ip-10-1-2-3.ec2.internal" ` +
	`"cluster"="prod-east" "connection_security_policy"="mutual_tls" "destination_app"="reviews" ` +
	`"destination_service"="reviews.default.svc.cluster.local" "destination_version"="v2" ` +
	`"reporter"="destination" "request_protocol"="http" "response_code"="200" "response_flags"="-" ` +
	`"source_app"="productpage" "source_version"="v1" "namespace"="default"`

func BenchmarkDecodePoint(b *testing.B) {
	d := newTestDecoder()
	line := []byte(istioLine)
	var p Point
	if err := d.DecodePoint(line, &p); err != nil || len(p.Tags) != 12 {
		b.Fatal(err, len(p.Tags))
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodePoint(line, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPoint(b *testing.B) {
	var p Point
	if err := newTestDecoder().DecodePoint([]byte(istioLine), &p); err != nil {
		b.Fatal(err)
	}
	buf := AppendPoint(nil, &p)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPoint(buf[:0], &p)
	}
}

func BenchmarkDecodeSpan(b *testing.B) {
	d := newTestDecoder()
	line := []byte(`"ratings.default.svc.cluster.local:9080/*" source="zipkin" spanId="00000000-0000-0000-00f0-67aa0ba902b7" traceId="4bf92f35-77b3-4da6-a3ce-929d0e0e4736" "parent"="00000000-0000-0000-b7ad-6b7169203331" "span.kind"="server" "service"="ratings.default" "component"="proxy" "http.method"="GET" "http.status_code"="503" "application"="Zipkin" "cluster"="none" "shard"="none" 1712000000123 2`)
	var s Span
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeSpan(line, &s); err != nil {
			b.Fatal(err)
		}
	}
}
