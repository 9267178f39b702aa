//go:build unix

package zipkin

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// pageEnd is a mapping whose last page the process cannot read: at(b)
// copies b to end right before that page, so any load past b's end
// faults instead of quietly reading whatever follows b in the heap. The
// decoder's word loads (load64 and friends, the assembly) must stay
// within what their checks found in the body.
type pageEnd struct{ mem []byte }

func newPageEnd(t *testing.T, maxLen int) *pageEnd {
	ps := os.Getpagesize()
	n := (maxLen+ps-1)/ps*ps + ps
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[n-ps:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	return &pageEnd{mem[:n-ps]}
}

func (p *pageEnd) at(b []byte) []byte {
	end := len(p.mem)
	dst := p.mem[end-len(b) : end : end]
	copy(dst, b)
	return dst
}

// TestDecodeReadsNothingPastTheBody decodes every prefix of Envoy-shaped
// bodies placed at the end of readable memory: most prefixes are bad
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
	mem := newPageEnd(t, longest)
	var d Decoder
	decodePrefixes := func(body []byte, enc Encoding) {
		for n := range len(body) + 1 {
			_ = d.Decode(mem.at(body[:n]), enc, func(*Span) error { return nil })
		}
	}
	for _, body := range bodies {
		decodePrefixes(body, JSONV2)
	}
	decodePrefixes(v1, JSONV1)
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
	mem := newPageEnd(t, len(body))
	for n := range len(body) + 1 {
		b := mem.at(body[:n])
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
