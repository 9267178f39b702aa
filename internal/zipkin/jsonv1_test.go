package zipkin

import (
	"strings"
	"testing"
)

// The reference library's canonical v1 → v2 example: one v1 span reported
// by a client and a server becomes a client span and a shared server span.
func TestDecodeV1SharedRPC(t *testing.T) {
	const fe = `{"serviceName":"FrontEnd","ipv4":"192.168.99.101","port":9000}`
	const be = `{"serviceName":"backend","ipv4":"192.168.99.101","port":9000}`
	body := `[{"traceId":"1","name":"GET","id":"2","parentId":"1","timestamp":1472470996199000,"duration":207000,
	 "annotations":[
	  {"timestamp":1472470996199000,"value":"cs","endpoint":` + fe + `},
	  {"timestamp":1472470996238000,"value":"ws","endpoint":` + fe + `},
	  {"timestamp":1472470996250000,"value":"sr","endpoint":` + be + `},
	  {"timestamp":1472470996350000,"value":"ss","endpoint":` + be + `},
	  {"timestamp":1472470996403000,"value":"wr","endpoint":` + fe + `},
	  {"timestamp":1472470996406000,"value":"cr","endpoint":` + fe + `}],
	 "binaryAnnotations":[
	  {"key":"http.path","value":"/api","endpoint":` + fe + `},
	  {"key":"clnt/finagle.version","value":"6.45.0","endpoint":` + fe + `},
	  {"key":"http.path","value":"/backend","endpoint":` + be + `},
	  {"key":"num","value":1,"endpoint":` + be + `},
	  {"key":"sa","value":true,"endpoint":` + be + `}]}]`
	if enc, err := Detect([]byte(body)); err != nil || enc != JSONV1 {
		t.Fatalf("Detect = %v, %v", enc, err)
	}
	spans := mustDecode(t, body)
	want := []string{
		`t=0000000000000001 id=0000000000000002 p=0000000000000001 n="get" k=CLIENT ts=1472470996199000 d=207000` +
			` ep{frontend 192.168.99.101 invalid IP 9000} ep{backend 192.168.99.101 invalid IP 9000}` +
			` a1472470996238000="ws" a1472470996403000="wr" "clnt/finagle.version"="6.45.0" "http.path"="/api"`,
		`t=0000000000000001 id=0000000000000002 p=0000000000000001 n="get" k=SERVER ts=1472470996250000 d=100000 shared` +
			` ep{backend 192.168.99.101 invalid IP 9000} ep{ invalid IP invalid IP 0} "http.path"="/backend"`,
	}
	if len(spans) != len(want) {
		t.Fatalf("%d spans", len(spans))
	}
	for i := range want {
		if got := spanString(&spans[i]); got != want[i] {
			t.Errorf("span %d\n got %s\nwant %s", i, got, want[i])
		}
	}
}

func TestDecodeV1(t *testing.T) {
	const ep = `{"serviceName":"svc","ipv4":"10.0.0.1"}`
	for _, tc := range []struct{ in, want string }{
		// Server only, no span timestamp: shared by convention.
		{`{"traceId":"a","id":"b","annotations":[{"timestamp":10,"value":"sr","endpoint":` + ep + `},{"timestamp":15,"value":"ss","endpoint":` + ep + `}]}`,
			`t=000000000000000a id=000000000000000b p= n="" k=SERVER ts=10 d=5 shared ep{svc 10.0.0.1 invalid IP 0} ep{ invalid IP invalid IP 0}`},
		// Client with explicit timing, ca/sa without core annotations on another span.
		{`{"traceId":"00000000000000010000000000000002","id":"b","parentId":"0","timestamp":5,"duration":7,"debug":true,` +
			`"annotations":[{"timestamp":5,"value":"cs","endpoint":` + ep + `},{"timestamp":12,"value":"cr","endpoint":` + ep + `},{"timestamp":6,"value":"retry"}],` +
			`"binaryAnnotations":[{"key":"lc","value":"","endpoint":` + ep + `},{"key":"error","value":"boom"}]}`,
			`t=00000000000000010000000000000002 id=000000000000000b p= n="" k=CLIENT ts=5 d=7 debug ep{svc 10.0.0.1 invalid IP 0} ep{ invalid IP invalid IP 0} a6="retry" "error"="boom"`},
		// Local span: only binary annotations; "sa" alone is a remote address.
		{`{"traceId":"a","id":"b","name":"Local","timestamp":3,"duration":4,"binaryAnnotations":[{"key":"sa","value":true,"endpoint":` + ep + `},{"key":"k","value":"v","endpoint":{"serviceName":"Me"}}]}`,
			`t=000000000000000a id=000000000000000b p= n="local" k= ts=3 d=4 ep{me invalid IP invalid IP 0} ep{svc 10.0.0.1 invalid IP 0} "k"="v"`},
		// Incomplete RPC: cs without cr keeps the start.
		{`{"traceId":"a","id":"b","annotations":[{"timestamp":9,"value":"cs","endpoint":` + ep + `}]}`,
			`t=000000000000000a id=000000000000000b p= n="" k=CLIENT ts=9 d=0 ep{svc 10.0.0.1 invalid IP 0} ep{ invalid IP invalid IP 0}`},
		// Producer with ws.
		{`{"traceId":"a","id":"b","annotations":[{"timestamp":1,"value":"ms","endpoint":` + ep + `},{"timestamp":3,"value":"ws","endpoint":` + ep + `}]}`,
			`t=000000000000000a id=000000000000000b p= n="" k=PRODUCER ts=1 d=2 ep{svc 10.0.0.1 invalid IP 0} ep{ invalid IP invalid IP 0}`},
	} {
		spans, err := decodeAs(&Decoder{}, []byte("["+tc.in+"]"), JSONV1)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		var got []string
		for i := range spans {
			got = append(got, spanString(&spans[i]))
		}
		if g := strings.Join(got, "\n"); g != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, g, tc.want)
		}
	}
	for _, in := range []string{
		`{"id":"b"}`, `{"traceId":"0","id":"b"}`, `{"traceId":"a"}`, `{"traceId":"A","id":"b"}`,
		`{"traceId":"a","id":"b","annotations":[{"value":"x"}]}`,
		`{"traceId":"a","id":"b","binaryAnnotations":[{"value":"x"}]}`,
	} {
		if _, err := decodeAs(&Decoder{}, []byte("["+in+"]"), JSONV1); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
