package zipkin

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
)

// modelString renders zipkin-go's decode of a span in spanString's format
// after applying the §5.2 normalisation zipkin-go does not do itself.
func modelString(m *model.SpanModel, debug bool) string {
	s := Span{
		TraceID: []byte(m.TraceID.String()),
		ID:      []byte(m.ID.String()),
		Name:    []byte(strings.ToLower(m.Name)),
		Debug:   debug,
		Shared:  m.Shared && m.Kind != model.Client,
	}
	if len(s.Name) == 0 {
		s.Name = nil
	}
	if m.ParentID != nil && *m.ParentID != 0 && *m.ParentID != m.ID {
		s.ParentID = []byte(m.ParentID.String())
	}
	s.Kind, _ = parseKind([]byte(m.Kind))
	if !m.Timestamp.IsZero() {
		s.Timestamp = m.Timestamp.UnixMicro()
	}
	s.Duration = m.Duration.Microseconds()
	for _, ep := range []struct {
		in  *model.Endpoint
		out *Endpoint
	}{{m.LocalEndpoint, &s.LocalEndpoint}, {m.RemoteEndpoint, &s.RemoteEndpoint}} {
		if ep.in == nil {
			continue
		}
		if n := strings.ToLower(ep.in.ServiceName); n != "" {
			ep.out.ServiceName = []byte(n)
		}
		for _, ip := range []net.IP{ep.in.IPv4, ep.in.IPv6} {
			if a, ok := netip.AddrFromSlice(ip); ok {
				ep.out.setIP(a)
			}
		}
		ep.out.Port = ep.in.Port
	}
	for _, a := range m.Annotations {
		s.Annotations = append(s.Annotations, Annotation{a.Timestamp.UnixMicro(), []byte(a.Value)})
	}
	s.Annotations = s.Annotations[:sortAnnotations(s.Annotations)]
	for k, v := range m.Tags {
		s.Tags = append(s.Tags, Tag{Key: []byte(k), Value: []byte(v)})
	}
	s.Tags = s.Tags[:sortTags(s.Tags)]
	return spanString(&s)
}

var alphabet = []string{"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01", "é", "É", "😀", "<", "&", "\u2028", ":", "*", "\xff", "\ufffd"}

func randString(r *rand.Rand, n int) string {
	var b strings.Builder
	for range r.IntN(n + 1) {
		if r.IntN(3) == 0 {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		} else {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	return b.String()
}

func randEndpoint(r *rand.Rand) *model.Endpoint {
	if r.IntN(3) == 0 {
		return nil
	}
	e := &model.Endpoint{ServiceName: randString(r, 12), Port: uint16(r.IntN(70000) % 65536)}
	if r.IntN(2) == 0 {
		e.IPv4 = net.IPv4(10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))).To4()
	}
	if r.IntN(3) == 0 {
		e.IPv6 = make(net.IP, 16)
		for i := range e.IPv6 {
			e.IPv6[i] = byte(r.IntN(256))
		}
		e.IPv6[0] = 0x20
	}
	return e
}

func randModel(r *rand.Rand) model.SpanModel {
	m := model.SpanModel{SpanContext: model.SpanContext{
		TraceID: model.TraceID{Low: r.Uint64() | 1},
		ID:      model.ID(r.Uint64()>>uint(r.IntN(60)) | 1),
		Debug:   r.IntN(4) == 0,
	}}
	if r.IntN(2) == 0 {
		m.TraceID.High = r.Uint64()
	}
	switch r.IntN(4) {
	case 0:
		p := model.ID(r.Uint64() | 1)
		m.ParentID = &p
	case 1:
		p := m.ID
		m.ParentID = &p
	}
	m.Name = randString(r, 20)
	m.Kind = []model.Kind{"", model.Client, model.Server, model.Producer, model.Consumer}[r.IntN(5)]
	if r.IntN(5) > 0 {
		m.Timestamp = time.UnixMicro(1_700_000_000_000_000 + r.Int64N(1e12))
	}
	m.Duration = time.Duration(r.Int64N(1e7)) * time.Microsecond
	m.Shared = r.IntN(3) == 0
	m.LocalEndpoint, m.RemoteEndpoint = randEndpoint(r), randEndpoint(r)
	for range r.IntN(4) {
		a := model.Annotation{Timestamp: time.UnixMicro(1_700_000_000_000_000 + r.Int64N(3)), Value: randString(r, 3)}
		m.Annotations = append(m.Annotations, a, a) // duplicates must collapse
	}
	if n := r.IntN(22); n > 0 {
		m.Tags = make(map[string]string, n)
		for range n {
			m.Tags[randString(r, 10)] = randString(r, 30)
		}
	}
	return m
}

// compareWithModel decodes body with our decoder and checks every span
// against zipkin-go's decode (want), field by field.
func compareWithModel(t *testing.T, body []byte, enc Encoding, want []model.SpanModel, debug func(i int) bool) {
	t.Helper()
	got, err := decodeAs(&Decoder{}, body, enc)
	if err != nil {
		t.Fatalf("decode %.200q: %v", body, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d spans, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := spanString(&got[i]), modelString(&want[i], debug(i)); g != w {
			t.Fatalf("span %d of %.300q\n got %s\nwant %s", i, body, g, w)
		}
	}
}

func TestDifferentialJSONV2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		in := make([]model.SpanModel, 1+r.IntN(5))
		for i := range in {
			in[i] = randModel(r)
		}
		body, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var want []model.SpanModel
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		compareWithModel(t, body, JSONV2, want, func(i int) bool { return want[i].Debug })
	}
}

func TestDifferentialFixtures(t *testing.T) {
	bodies := fixtures(t)
	bodies["istio"] = []byte(istioBody)
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var want []model.SpanModel
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatal(err)
			}
			compareWithModel(t, body, JSONV2, want, func(i int) bool { return want[i].Debug })
			// And the same spans through zipkin-go's proto3 encoder.
			blob := proto3Body(t, want)
			got, err := zipkin_proto3.ParseSpans(blob, false)
			if err != nil {
				t.Fatal(err)
			}
			compareWithModel(t, blob, Proto3, derefModels(got), func(i int) bool { return want[i].Debug })
		})
	}
}

func proto3Body(t testing.TB, spans []model.SpanModel) []byte {
	ptrs := make([]*model.SpanModel, len(spans))
	for i := range spans {
		ptrs[i] = &spans[i]
	}
	blob, err := zipkin_proto3.SpanSerializer{}.Serialize(ptrs)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

func derefModels(p []*model.SpanModel) []model.SpanModel {
	out := make([]model.SpanModel, len(p))
	for i := range p {
		out[i] = *p[i]
	}
	return out
}

func TestDifferentialProto3(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		in := make([]model.SpanModel, 1+r.IntN(5))
		for i := range in {
			in[i] = randModel(r)
			// proto3 strings must be valid UTF-8 for zipkin-go to parse them.
			in[i].Name = strings.ToValidUTF8(in[i].Name, "?")
			fixTags(&in[i])
		}
		blob := proto3Body(t, in)
		got, err := zipkin_proto3.ParseSpans(blob, false)
		if err != nil {
			t.Fatal(err)
		}
		// zipkin-go's parser ignores the debug field; compare with the input.
		compareWithModel(t, blob, Proto3, derefModels(got), func(i int) bool { return in[i].Debug })
	}
}

func fixTags(m *model.SpanModel) {
	tags := make(map[string]string, len(m.Tags))
	for k, v := range m.Tags {
		tags[strings.ToValidUTF8(k, "?")] = strings.ToValidUTF8(v, "?")
	}
	m.Tags = tags
	for i := range m.Annotations {
		m.Annotations[i].Value = strings.ToValidUTF8(m.Annotations[i].Value, "?")
	}
	for _, e := range []*model.Endpoint{m.LocalEndpoint, m.RemoteEndpoint} {
		if e != nil {
			e.ServiceName = strings.ToValidUTF8(e.ServiceName, "?")
		}
	}
}

func TestProto3Errors(t *testing.T) {
	good := proto3Body(t, []model.SpanModel{{SpanContext: model.SpanContext{TraceID: model.TraceID{Low: 1}, ID: 2}}})
	for name, body := range map[string][]byte{
		"truncated":    good[:len(good)-1],
		"short id":     {0x0a, 0x0c, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0x01, 1},
		"zero trace":   {0x0a, 0x14, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1},
		"no id":        {0x0a, 0x0a, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1},
		"bad kind":     append(slices.Clone(good), 0x0a, 0x16, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 9),
		"wire type":    {0x0a, 0x02, 0x0d, 0x00},
		"list type":    {0x08, 0x01},
		"bad tag type": {0x0a, 0x18, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x5a, 0x02, 0x08, 0x01},
	} {
		if _, err := decodeAs(&Decoder{}, body, Proto3); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Unknown fields at both levels are skipped.
	span := append(slices.Clone(good[2:]), 0xf8, 0x01, 0x05) // field 31, varint
	body := append([]byte{0x12, 0x01, 'x', 0x0a, byte(len(span))}, span...)
	if spans, err := decodeAs(&Decoder{}, body, Proto3); err != nil || len(spans) != 1 || string(spans[0].ID) != "0000000000000002" {
		t.Errorf("unknown fields: %d spans, %v", len(spans), err)
	}
}
