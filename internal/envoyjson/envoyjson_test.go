package envoyjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// A shuffled document says the same, in Envoy's spacing, and different
// seeds give different orders.
func TestShuffle(t *testing.T) {
	doc := []byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","kind":"SERVER","timestamp":1689241786526291,` +
		`"tags":{"http.method":"GET","http.status_code":"200","node_id":"sidecar~10.1.1.1","upstream_cluster":"inbound|9080||"},` +
		`"localEndpoint":{"serviceName":"reviews","ipv4":"10.1.1.1"},"annotations":[{"timestamp":1689241786526291,"value":"ss"}]}]`)
	var want any
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	orders := map[string]bool{}
	for seed := range uint64(8) {
		out, err := Shuffle(doc, seed)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("seed %d: %v in %s", seed, err, out)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d changed the document:\n%s", seed, out)
		}
		if !bytes.Contains(out, []byte(`":"`)) || bytes.Contains(out, []byte(`,"`)) {
			t.Fatalf("seed %d: not Envoy's spacing: %s", seed, out)
		}
		orders[string(out)] = true
	}
	if len(orders) < 4 {
		t.Fatalf("8 seeds gave %d orders", len(orders))
	}
	if _, err := Shuffle([]byte(`{"a":`), 1); err == nil {
		t.Fatal("a broken document shuffled without error")
	}
}
