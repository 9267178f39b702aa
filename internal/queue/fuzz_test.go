package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/s2"
)

// FuzzRecover writes arbitrary bytes as the only segment file: Open must
// not fail or panic, and what it recovers must be the file's valid prefix,
// record for record (compressed ones decoded), as walkFrames reads it.
func FuzzRecover(f *testing.F) {
	valid := []byte(segMagic)
	for i := range 3 {
		r := rec(i, 20+i)
		var h [recHdrSize]byte
		putRecHeader(h[:], r)
		valid = append(append(valid, h[:]...), r...)
	}
	f.Add(valid)
	compressed := append([]byte(segMagic), sealedCompressed(lineRecord(1, 30))...)
	compressed = append(compressed, sealedCompressed(rec(2, 20))...)
	f.Add(compressed)
	f.Add(compressed[:len(compressed)-30])
	f.Add(valid[:len(valid)-7])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(append(bytes.Clone(valid), make([]byte, 100)...))                 // the zeroed room a killed process leaves
	f.Add(append(append(bytes.Clone(valid), make([]byte, 100)...), 'x', 1)) // bytes after it
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
		var got [][]byte
		for q.Len() > 0 {
			b := readBatch(t, q, 1<<20)
			for _, r := range b.Records {
				got = append(got, bytes.Clone(r))
			}
			if err := q.Ack(b); err != nil {
				t.Fatal(err)
			}
		}
		if want := walkFrames(data); !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("recovered %d records, want the %d of the valid prefix", len(got), len(want))
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

// walkFrames returns the records of a segment file's valid prefix, the
// way the format is specified rather than the way segReader reads it.
func walkFrames(data []byte) [][]byte {
	p, ok := bytes.CutPrefix(data, []byte(segMagic))
	if !ok {
		return nil
	}
	var out [][]byte
	for len(p) >= recHdrSize {
		word := binary.LittleEndian.Uint32(p)
		n := int(word & lenMask)
		if len(p)-recHdrSize < n {
			break
		}
		payload := p[recHdrSize : recHdrSize+n]
		if crc32.Checksum(append(p[:4:4], payload...), crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(p[4:]) {
			break
		}
		if word&compressedFlag != 0 {
			size, err := s2.DecodedLen(payload)
			if err != nil || size > lenMask {
				break
			}
			if payload, err = s2.Decode(nil, payload); err != nil {
				break
			}
		}
		out = append(out, payload)
		p = p[recHdrSize+n:]
	}
	return out
}
