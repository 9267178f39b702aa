package zipkin

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonSpan re-encodes a decoded Span as Zipkin v2 JSON via encoding/json.
type jsonSpan struct {
	TraceID        string            `json:"traceId"`
	ID             string            `json:"id"`
	ParentID       string            `json:"parentId,omitempty"`
	Name           string            `json:"name,omitempty"`
	Kind           string            `json:"kind,omitempty"`
	Timestamp      int64             `json:"timestamp,omitempty"`
	Duration       int64             `json:"duration,omitempty"`
	Debug          bool              `json:"debug,omitempty"`
	Shared         bool              `json:"shared,omitempty"`
	LocalEndpoint  jsonEndpoint      `json:"localEndpoint"`
	RemoteEndpoint jsonEndpoint      `json:"remoteEndpoint"`
	Annotations    []jsonAnnotation  `json:"annotations,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
}

type jsonEndpoint struct {
	ServiceName string `json:"serviceName,omitempty"`
	IPv4        string `json:"ipv4,omitempty"`
	IPv6        string `json:"ipv6,omitempty"`
	Port        uint16 `json:"port,omitempty"`
}

type jsonAnnotation struct {
	Timestamp int64  `json:"timestamp"`
	Value     string `json:"value"`
}

func toJSONEndpoint(e *Endpoint) jsonEndpoint {
	j := jsonEndpoint{ServiceName: string(e.ServiceName), Port: e.Port}
	if e.IPv4.IsValid() {
		j.IPv4 = e.IPv4.String()
	}
	if e.IPv6.IsValid() {
		j.IPv6 = e.IPv6.String()
	}
	return j
}

func toJSONSpan(s *Span) jsonSpan {
	j := jsonSpan{
		TraceID: string(s.TraceID), ID: string(s.ID), ParentID: string(s.ParentID), Name: string(s.Name),
		Kind: s.Kind.String(), Timestamp: s.Timestamp, Duration: s.Duration, Debug: s.Debug, Shared: s.Shared,
		LocalEndpoint: toJSONEndpoint(&s.LocalEndpoint), RemoteEndpoint: toJSONEndpoint(&s.RemoteEndpoint),
	}
	for _, a := range s.Annotations {
		j.Annotations = append(j.Annotations, jsonAnnotation{a.Timestamp, string(a.Value)})
	}
	if len(s.Tags) > 0 {
		j.Tags = make(map[string]string, len(s.Tags))
		for _, t := range s.Tags {
			j.Tags[string(t.Key)] = string(t.Value)
		}
	}
	return j
}

// checkInvariants asserts what normalisation (§5.2) guarantees.
func checkInvariants(t *testing.T, s *Span) {
	t.Helper()
	if n := len(s.TraceID); n != 16 && n != 32 || len(s.ID) != 16 || s.ParentID != nil && len(s.ParentID) != 16 {
		t.Fatalf("ID lengths: %s", spanString(s))
	}
	if s.Timestamp < 0 || s.Duration < 0 || s.Kind > KindConsumer {
		t.Fatalf("fields: %s", spanString(s))
	}
	for i := 1; i < len(s.Tags); i++ {
		if string(s.Tags[i-1].Key) >= string(s.Tags[i].Key) {
			t.Fatalf("tags not sorted and unique: %s", spanString(s))
		}
	}
	for i := 1; i < len(s.Annotations); i++ {
		if compareAnnotations(s.Annotations[i-1], s.Annotations[i]) >= 0 {
			t.Fatalf("annotations not sorted and unique: %s", spanString(s))
		}
	}
}

func FuzzDecodeJSONV2(f *testing.F) {
	f.Add([]byte(istioBody))
	f.Add([]byte(`[{"traceId":"1","id":"2","name":"\u00c9\ud83d\ude00","tags":{"a":1e3,"b":"\\"},"localEndpoint":{"ipv6":"::1"}}]`))
	// The same sorted keys in other orders, with a duplicate, with a key
	// missing: the key-set cache's ranks, after the sort that fills it.
	f.Add([]byte(`[{"traceId":"1","id":"2","tags":{"b":"1","a":"2","c":"3"}},{"traceId":"1","id":"3","tags":{"c":"1", "a":"2", "b":"3"}},` +
		`{"traceId":"1","id":"4","tags":{"c":"1","a":"2","c":"4"}},{"traceId":"1","id":"5","tags":{"c":"1","b":"2","a":"4","a":"5"}},{"traceId":"1","id":"6","tags":{"a":"1","b":"2"}}]`))
	var d1, d2 Decoder
	// seqKeys remembers the keys each key sequence number of d1 named:
	// d1 keeps its caches across inputs, and a number must never name two.
	seqKeys := map[uint64]string{}
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		body = atPageEnd(body)
		first := []jsonSpan{} // "[]", not "null", for an empty list
		var firstStr, raw []string
		err := d1.Decode(body, JSONV2, func(s *Span) error {
			checkInvariants(t, s)
			var keys strings.Builder
			for _, tag := range s.Tags {
				keys.Write(tag.Key)
				keys.WriteByte(0)
			}
			if k, ok := seqKeys[s.keySeq]; ok && s.keySeq != 0 && k != keys.String() {
				t.Fatalf("key sequence %d names %q and %q", s.keySeq, k, keys.String())
			}
			if len(seqKeys) >= 1<<16 {
				clear(seqKeys) // bounded memory over a long run
			}
			seqKeys[s.keySeq] = keys.String()
			raw = append(raw, spanString(s))
			first = append(first, toJSONSpan(s))
			// Normalisation is not idempotent for a 17- to 31-digit trace
			// ID whose padding to 32 leaves the upper half zero: the
			// reference keeps it at 32 digits, but decoding those 32
			// shortens them to 16, as for any ID sent that way.
			if id := s.TraceID; len(id) == 32 && string(id[:16]) == "0000000000000000" {
				c := *s
				c.TraceID = id[16:]
				s = &c
			}
			firstStr = append(firstStr, spanString(s))
			return nil
		})
		if err != nil {
			return
		}
		enc, err := json.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		err = d2.Decode(enc, JSONV2, func(s *Span) error {
			if got := spanString(s); i >= len(firstStr) || got != firstStr[i] {
				t.Fatalf("unstable span %d via %s\n got %s", i, enc, got)
			}
			i++
			return nil
		})
		if err != nil || i != len(firstStr) {
			t.Fatalf("re-decode of %s: %d spans, %v", enc, i, err)
		}
		// A Decoder that has seen no other input, so its caches differ,
		// decodes the same spans and tags.
		i = 0
		err = (&Decoder{}).Decode(body, JSONV2, func(s *Span) error {
			if got := spanString(s); i >= len(raw) || got != raw[i] {
				t.Fatalf("span %d differs in a fresh Decoder: %s", i, got)
			}
			i++
			return nil
		})
		if err != nil || i != len(raw) {
			t.Fatalf("fresh Decoder: %d spans, %v", i, err)
		}
	})
}

func FuzzDecodeJSONV1(f *testing.F) {
	f.Add([]byte(`[{"traceId":"1","id":"2","timestamp":1,"duration":2,"annotations":[{"timestamp":1,"value":"cs","endpoint":{"serviceName":"a"}},` +
		`{"timestamp":2,"value":"sr","endpoint":{"serviceName":"b"}},{"timestamp":3,"value":"ss","endpoint":{"serviceName":"b"}}],` +
		`"binaryAnnotations":[{"key":"ca","value":true,"endpoint":{"serviceName":"a","ipv4":"1.2.3.4"}},{"key":"k","value":"v"}]}]`))
	f.Add([]byte(`[{"traceId":"1","id":"2","annotations":[{"timestamp":1,"value":"ms","endpoint":{"serviceName":"a"}},{"timestamp":2,"value":"mr","endpoint":{"serviceName":"a"}},{"timestamp":1,"value":"wr","endpoint":{"port":1}}]}]`))
	var d Decoder
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = d.Decode(atPageEnd(body), JSONV1, func(s *Span) error {
			checkInvariants(t, s)
			return nil
		})
	})
}

func FuzzDecodeProto3(f *testing.F) {
	f.Add([]byte{0x0a, 0x16, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 2, 0x20, 2})
	f.Add([]byte{0x0a, 0x1e, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 2, 0x5a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v', 0x42, 0x00})
	var d Decoder
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = d.Decode(atPageEnd(body), Proto3, func(s *Span) error {
			checkInvariants(t, s)
			return nil
		})
	})
}
