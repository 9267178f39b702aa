package segfile

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// writeLog records the writes a Writer makes.
type writeLog struct {
	data []byte
	ends []int // file offset after each write
}

func (l *writeLog) Write(p []byte) (int, error) {
	l.data = append(l.data, p...)
	l.ends = append(l.ends, len(l.data))
	return len(p), nil
}

// TestWriterAligns checks that between flushes every write ends at a
// multiple of Align, whatever the sizes appended after an unaligned
// header, and that the bytes arrive whole and in order.
func TestWriterAligns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	header := []byte("HEADER\x00\x01")
	l := writeLog{data: bytes.Clone(header)}
	var w Writer
	w.Reset(&l, int64(len(header)))
	want := bytes.Clone(header)
	for k := range 300 {
		p := make([]byte, r.IntN(3*Align/2))
		for i := range p {
			p[i] = byte(k + i/7)
		}
		want = append(want, p...)
		before := len(l.ends)
		if err := w.Append(p); err != nil {
			t.Fatal(err)
		}
		for _, end := range l.ends[before:] {
			if end%Align != 0 {
				t.Fatalf("a write ended at %d, not a multiple of %d", end, Align)
			}
		}
		if r.IntN(4) == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(l.data, want) {
				t.Fatal("the flushed bytes differ from those appended")
			}
		}
	}
}
