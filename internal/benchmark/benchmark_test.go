package benchmark

import (
	"context"
	"testing"
)

func defaultPayload(tb testing.TB) *Payload {
	tb.Helper()
	p, err := DefaultPayload()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func BenchmarkMeshwavePath(b *testing.B)    { Benchmark(Paths[0], defaultPayload(b))(b) }
func BenchmarkTextparse(b *testing.B)       { Benchmark(Paths[1], defaultPayload(b))(b) }
func BenchmarkExpfmtReference(b *testing.B) { Benchmark(Paths[2], defaultPayload(b))(b) }

// TestPathsAgree proves every path reads every sample of the payload, so
// the benchmarks compare the same work.
func TestPathsAgree(t *testing.T) {
	p, err := NewPayload(2000)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(p); err != nil {
		t.Fatal(err)
	}
	// The seed filter must keep some points and drop others, or meshwave's
	// path would skip the encoding or the filtering the others are
	// compared against.
	r, err := newMeshwavePath()
	if err != nil {
		t.Fatal(err)
	}
	m := r.(*meshwavePath)
	if _, err := m.run(p.Body); err != nil {
		t.Fatal(err)
	}
	if st := m.conv.Stats; st.Collected == 0 || st.Filtered == 0 || m.enc.encoded == 0 {
		t.Fatalf("stats %+v, %d bytes encoded: want points both kept and filtered, and encoded", st, m.enc.encoded)
	}
}

// TestNextChunk pins the reference's chunking: comments and blank lines
// open a chunk, the next comment line after samples closes it.
func TestNextChunk(t *testing.T) {
	body := "# HELP a x\n# TYPE a gauge\n\na 1\na{b=\"#\"} 2\n# TYPE c counter\nc 3\n"
	want := []string{"# HELP a x\n# TYPE a gauge\n\na 1\na{b=\"#\"} 2\n", "# TYPE c counter\nc 3\n"}
	var got []string
	for rest := []byte(body); len(rest) > 0; {
		var c []byte
		c, rest = nextChunk(rest)
		got = append(got, string(c))
	}
	if len(got) != len(want) {
		t.Fatalf("chunks %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chunk %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestPeakHeap runs the whole measurement, child simulator included, on a
// small endpoint.
func TestPeakHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	res, err := PeakHeap(context.Background(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Series < 1900 || res.Points == 0 || res.Readings == 0 || res.PeakHeap < res.BaselineHeap {
		t.Fatalf("implausible result %+v", res)
	}
}
