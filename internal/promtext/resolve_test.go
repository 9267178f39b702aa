package promtext

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

type got struct {
	name, family string
	typ          Type
	kind         Kind
	value        float64
}

func parseAll(t *testing.T, body string, opts Options) (out []got, errs []LineError) {
	t.Helper()
	p := NewParser(strings.NewReader(body), opts)
	for {
		switch p.Next() {
		case EntryEOF:
			if p.Err() != nil {
				t.Fatal(p.Err())
			}
			return out, errs
		case EntryError:
			errs = append(errs, *p.LineError())
		case EntrySample:
			s := p.Sample()
			out = append(out, got{string(s.Name), string(s.Family), s.Type, s.Kind, s.Value})
		}
	}
}

func TestFamilyResolution(t *testing.T) {
	body := `# TYPE jobs counter
jobs_total 5
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3
h_count 2
# TYPE s summary
s{quantile="0.5"} 1
s_sum 2
s_count 3
untyped_bucket{le="1.0"} 4
# TYPE g gauge
# TYPE c counter
g 1
c 2
# HELP next chunk
g 3
`
	out, errs := parseAll(t, body, Options{})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := []got{
		{"jobs_total", "jobs_total", Untyped, Plain, 5},
		{"h_bucket", "h", Histogram, Bucket, 1},
		{"h_bucket", "h", Histogram, Bucket, 2},
		{"h_sum", "h", Histogram, Sum, 3},
		{"h_count", "h", Histogram, Count, 2},
		{"s", "s", Summary, Quantile, 1},
		{"s_sum", "s", Summary, Sum, 2},
		{"s_count", "s", Summary, Count, 3},
		{"untyped_bucket", "untyped_bucket", Untyped, Plain, 4},
		{"g", "g", Gauge, Plain, 1},
		{"c", "c", Counter, Plain, 2},
		{"g", "g", Untyped, Plain, 3}, // a TYPE line applies only within its chunk
	}
	if len(out) != len(want) {
		t.Fatalf("got %v", out)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("sample %d: got %+v, want %+v", i, out[i], want[i])
		}
	}
}

func TestBadLinesKeepTheRest(t *testing.T) {
	body := "a 1\nb{x=\"1} 2\nc 3\n# TYPE h histogram\nh_bucket 1\nd nope\ne 5 12a\nf 6\n"
	out, errs := parseAll(t, body, Options{})
	var names []string
	for _, s := range out {
		names = append(names, s.name)
	}
	if strings.Join(names, ",") != "a,c,f" {
		t.Errorf("kept %v", names)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if len(lines) != 4 || lines[0] != 2 || lines[1] != 5 || lines[2] != 6 || lines[3] != 7 {
		t.Errorf("errors %+v", errs)
	}
}

func TestLongLines(t *testing.T) {
	big := strings.Repeat("v", 100<<10)
	huge := strings.Repeat("x", 10<<20)
	body := "a 1\nbig{l=\"" + big + "\"} 2\nhuge{l=\"" + huge + "\"} 3\nz 4\n"
	out, errs := parseAll(t, body, Options{})
	if len(out) != 3 || out[1].name != "big" || out[2].name != "z" {
		t.Fatalf("got %+v", out)
	}
	if len(errs) != 1 || errs[0].Reason != "line_too_long" || errs[0].Line != 3 {
		t.Fatalf("errors %+v", errs)
	}
}

func TestTruncatedBodyKeepsCompleteLines(t *testing.T) {
	out, errs := parseAll(t, "a 1\nb 2\nc{x=\"y", Options{})
	if len(out) != 2 || len(errs) != 1 || errs[0].Line != 3 {
		t.Fatalf("got %+v %+v", out, errs)
	}
}

type failingReader struct{ r io.Reader }

func (f failingReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestReadErrorIsReported(t *testing.T) {
	p := NewParser(failingReader{strings.NewReader("a 1\n")}, Options{})
	n := 0
	for p.Next() == EntrySample {
		n++
	}
	if n != 1 || p.Err() != io.ErrUnexpectedEOF {
		t.Fatalf("n=%d err=%v", n, p.Err())
	}
}

func TestOpenMetrics(t *testing.T) {
	body := `# TYPE jobs counter
# UNIT jobs seconds
jobs_total 5 1712000000.5 # {trace_id="x"} 1
jobs_created 1712000000
# TYPE h histogram
h_bucket{le="1"} 1
h_count 1
h_created 1
# EOF
late 1
`
	out, errs := parseAll(t, body, Options{OpenMetrics: true})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := []got{
		{"jobs_total", "jobs_total", Counter, Plain, 5},
		{"h_bucket", "h", Histogram, Bucket, 1},
		{"h_count", "h", Histogram, Count, 1},
	}
	if len(out) != len(want) {
		t.Fatalf("got %+v", out)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("sample %d: got %+v, want %+v", i, out[i], want[i])
		}
	}
}

func TestUnescape(t *testing.T) {
	p := NewParser(bytes.NewReader([]byte(`m{a="q\"u\\o\nt\e",b="x"} 1`+"\n")), Options{})
	if p.Next() != EntrySample {
		t.Fatal(p.LineError())
	}
	s := p.Sample()
	if string(s.Labels[0].Value) != "q\"u\\o\nt\\e" || string(s.Labels[1].Value) != "x" {
		t.Fatalf("%q", s.Labels)
	}
}
