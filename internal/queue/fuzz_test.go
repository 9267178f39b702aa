package queue

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecover writes arbitrary bytes as the only segment file: Open must
// not fail or panic, and what it recovers must be a prefix of the file,
// record for record.
func FuzzRecover(f *testing.F) {
	valid := []byte(segMagic)
	for i := range 3 {
		r := rec(i, 20+i)
		var h [recHdrSize]byte
		putRecHeader(h[:], r)
		valid = append(append(valid, h[:]...), r...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(append(bytes.Clone(valid), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4))
	f.Add([]byte(segMagic))
	f.Add([]byte("MWQ"))
	f.Add([]byte{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		q, err := Open(dir, Options{Logger: log})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer q.Close()
		var framed []byte
		for q.Len() > 0 {
			b := readBatch(t, q, 1<<20)
			for _, r := range b.Records {
				var h [recHdrSize]byte
				putRecHeader(h[:], r)
				framed = append(append(framed, h[:]...), r...)
			}
			if err := q.Ack(b); err != nil {
				t.Fatal(err)
			}
		}
		if len(framed) > 0 && !bytes.HasPrefix(data, append([]byte(segMagic), framed...)) {
			t.Fatalf("recovered records are not a prefix of the segment")
		}
		// The recovered queue is usable.
		if err := q.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if b := readBatch(t, q, 100); string(b.Records[len(b.Records)-1]) != "after" {
			t.Fatalf("append after recovery read back %q", b.Records)
		}
	})
}
