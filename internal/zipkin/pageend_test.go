package zipkin

import (
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/pageend"
)

// fuzzAtPageEnd returns a function that places a fuzz input at the end
// of readable memory, so the fuzzers catch any load past its end; inputs
// over 1 MiB stay where they are.
func fuzzAtPageEnd(f *testing.F) func([]byte) []byte {
	const most = 1 << 20
	mem := pageend.New(f, most)
	return func(b []byte) []byte {
		if len(b) > most {
			return b
		}
		return mem.At(b)
	}
}

// TestDecodeReadsNothingPastTheBody decodes and converts every prefix of Envoy-shaped
// bodies placed at the end of readable memory (package pageend): most prefixes are bad
// JSON and end in an error, none may fault.
func TestDecodeReadsNothingPastTheBody(t *testing.T) {
	bodies := [][]byte{
		shuffleAll(t, envoyBody(t), 3)[:6000],
		[]byte(`[{"traceId":"0123456789abcdef","id":"0123456789abcdef","name":"get","timestamp":1,"duration":2,` +
			`"localEndpoint":{"serviceName":"a","ipv4":"10.0.0.1","port":80},` +
			`"annotations":[{"timestamp":1,"value":"ss"}],"tags":{"a":"1", "b":"2","c":"3", "d":"4"}}]`),
	}
	const ep = `{"serviceName":"FrontEnd","ipv4":"192.168.99.101","port":9000}`
	v1 := []byte(`[{"traceId":"1","name":"GET","id":"2","parentId":"1","timestamp":1472470996199000,"duration":207000,` +
		`"annotations":[{"timestamp":1472470996199000,"value":"cs","endpoint":` + ep + `},` +
		`{"timestamp":1472470996250000,"value":"sr","endpoint":` + ep + `}],` +
		`"binaryAnnotations":[{"key":"http.path","value":"/api","endpoint":` + ep + `},` +
		`{"key":"num","value":1,"endpoint":` + ep + `},{"key":"sa","value":true,"endpoint":` + ep + `}]}]`)
	longest := len(v1)
	for _, b := range bodies {
		longest = max(longest, len(b))
	}
	mem := pageend.New(t, longest)
	// checkFusedBody decodes and converts each span both ways, reading
	// the values in place, in the body.
	for _, body := range bodies {
		for n := range len(body) + 1 {
			checkFusedBody(t, mem.At(body[:n]))
		}
	}
	var d Decoder
	for n := range len(v1) + 1 {
		_ = d.Decode(mem.At(v1[:n]), JSONV1, func(*Span) error { return nil })
	}
}

// TestReadKnownTagsReadsNothingPastTheBody runs the tag loop, in Go and
// in assembly where there is one, over every prefix of a run of tags,
// from every start, at the end of readable memory.
func TestReadKnownTagsReadsNothingPastTheBody(t *testing.T) {
	long := strings.Repeat("x", 70)
	body := []byte(`"a":"1", "bb":"22","ccccccccc":"3", "` + long + `":"v", "d":"` + long + `", "a"`)
	var table keyTable
	for _, k := range []string{"a", "bb", "ccccccccc", long, "d"} {
		table.idOf([]byte(k))
	}
	mem := pageend.New(t, len(body))
	for n := range len(body) + 1 {
		b := mem.At(body[:n])
		stops := buildStops(nil, b)
		for from := range n + 1 {
			for name, read := range readKnownTagsVariants {
				for _, first := range []bool{true, false} {
					var bits [2]uint64
					if _, _, _, _ = read(&table, &bits, b, stops, from, first); t.Failed() {
						t.Fatal(name)
					}
				}
			}
		}
	}
}
