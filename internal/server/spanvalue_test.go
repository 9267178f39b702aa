package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// The dictionary is part of the on-disk format: a store written with it
// cannot be read without it.
func TestSpanDictionaryIsFrozen(t *testing.T) {
	const want = "03c6669ee3661c4a8f21abb036b08b73f7efe2c4787db2412f6d11f460cc5b0a"
	if sum := sha256.Sum256(spanDictV1); hex.EncodeToString(sum[:]) != want {
		t.Fatalf("spandict.txt changed (sha256 %x): stores written with the old one would not read; give a new dictionary its own marker instead", sum)
	}
}

func testLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(data), []byte("\n"))
}

// Envoy span lines and span logs (Istio sidecars' from the simulator,
// kourier's from the captured fixtures; none of them in the dictionary)
// pack at least 3× and 2× smaller, and unpack to what they were.
func TestPackedValues(t *testing.T) {
	for _, c := range []struct {
		path string
		min  float64
	}{{"testdata/envoy-span-lines.txt", 3}, {"testdata/envoy-span-logs.txt", 2}} {
		var arena, scratch []byte
		raw, stored := 0, 0
		for _, v := range testLines(t, c.path) {
			var packed []byte
			arena, packed = appendPacked(arena, v)
			if packed[0] != valueS2Dict1 {
				t.Fatalf("%s: %q not packed", c.path, v)
			}
			got, err := unpacked(&scratch, packed)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s: unpacked %q, %v; want %q", c.path, got, err, v)
			}
			raw, stored = raw+len(v), stored+len(packed)
		}
		ratio := float64(raw) / float64(stored)
		t.Logf("%s: %d bytes stored as %d (%.1f×)", c.path, raw, stored, ratio)
		if ratio < c.min {
			t.Errorf("%s packs %.1f×, want at least %.0f×", c.path, ratio, c.min)
		}
	}
	// Too short to shrink: stored as it is.
	if _, packed := appendPacked(nil, []byte(`{}`)); string(packed) != `{}` {
		t.Errorf("short value stored as %q", packed)
	}
}

// A store written before values were packed keeps working: its spans and
// span logs read, are replaced, and are cleaned up like packed ones.
func TestUnpackedValuesStillRead(t *testing.T) {
	kv, err := openKV(t.TempDir() + "/kv.db")
	if err != nil {
		t.Fatal(err)
	}
	defer kv.close()
	lim := wavefront.DefaultLimits()
	lim.MaxSpanAnnotations = wavefront.MeshSpanAnnotations
	dec := wavefront.Decoder{Limits: &lim}
	lines, logs := testLines(t, "testdata/envoy-span-lines.txt"), testLines(t, "testdata/envoy-span-logs.txt")
	var old, sp wavefront.Span
	if err := dec.DecodeSpan(lines[0], &old); err != nil {
		t.Fatal(err)
	}
	r := spanRecOf(&old, lines[0])
	// As the previous format wrote them: the line and the JSON as they are.
	err = kv.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bSpans).Put(r.key(), lines[0]); err != nil {
			return err
		}
		if err := tx.Bucket(bSpanTime).Put(r.timeKey(), r.meta()); err != nil {
			return err
		}
		if err := tx.Bucket(bSpanSvc).Put(r.svcKey(), r.meta()); err != nil {
			return err
		}
		return tx.Bucket(bLogs).Put([]byte(r.traceID+"\x00"+r.spanID+"\x00hashhash"), logs[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := kv.trace(r.traceID, &dec)
	if err != nil || len(got) != 1 || got[0].Name != string(old.Name) || len(got[0].Logs) != 1 {
		t.Fatalf("old-format trace: %+v, %v", got, err)
	}
	// Rewriting the span (a replay) packs it and replaces its index entries.
	if err := dec.DecodeSpan(lines[0], &sp); err != nil {
		t.Fatal(err)
	}
	if err := kv.write(&kvBatch{spans: []spanRec{spanRecOf(&sp, lines[0])}}, &dec); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	kv.db.View(func(tx *bbolt.Tx) error {
		stored = bytes.Clone(tx.Bucket(bSpans).Get(r.key()))
		return nil
	})
	if len(stored) == 0 || stored[0] != valueS2Dict1 {
		t.Fatalf("rewritten span stored as %q, want packed", stored)
	}
	if got, _ := kv.trace(r.traceID, &dec); len(got) != 1 || len(got[0].Annotations) != len(old.Tags) {
		t.Fatalf("rewritten trace: %+v", got)
	}
	// Retention removes it with its index entries.
	if n, err := kv.cleanup(context.Background(), r.start+1, &dec); err != nil || n != 1 {
		t.Fatalf("cleanup: %d, %v", n, err)
	}
	kv.db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bSpans, bSpanTime, bSpanSvc} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				t.Errorf("%s still holds %q", b, k)
			}
		}
		return nil
	})
}

// Any stored bytes unpack without a panic, and anything packed unpacks to
// itself.
func FuzzPackedValue(f *testing.F) {
	for _, path := range []string{"testdata/envoy-span-lines.txt", "testdata/envoy-span-logs.txt"} {
		for _, v := range testLines(f, path)[:3] {
			f.Add(v)
			_, packed := appendPacked(nil, v)
			f.Add(packed)
		}
	}
	f.Add([]byte{valueS2Dict1})
	f.Add([]byte{valueS2Dict1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		var scratch []byte
		unpacked(&scratch, v)
		_, packed := appendPacked(nil, v)
		got, err := unpacked(&scratch, packed)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("packed %q unpacks to %q, %v", v, got, err)
		}
	})
}
