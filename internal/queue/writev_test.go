package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestVecWriterManyBuffers writes more buffers than one writev takes,
// empty ones among them, and checks the file holds them all in order.
func TestVecWriterManyBuffers(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		b := bytes.Repeat([]byte{byte(i)}, i%7) // every seventh is empty
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	var w vecWriter
	if err := w.write(f, bufs); err != nil {
		t.Fatal(err)
	}
	if err := w.write(f, [][]byte{nil, {}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes, want %d (or they differ)", len(got), len(want))
	}
}
