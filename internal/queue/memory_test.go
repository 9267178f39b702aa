package queue

import (
	"runtime"
	"testing"
)

// A 50 MB backlog is read and acked with allocations far below its size:
// records stream through the read buffer and recycled batch buffers.
func TestBacklogReadWithBoundedAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB")
	}
	e := newEnv(t)
	q := e.open(t, Options{})
	defer q.Close()
	const n, size, per = 50_000, 1 << 10, 250
	recs := make([][]byte, per)
	for i := 0; i < n; i += per {
		for j := range recs {
			recs[j] = rec(i+j, size)
		}
		if err := q.Append(recs...); err != nil {
			t.Fatal(err)
		}
	}
	backlog := q.Bytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, batches := 0, 0
	for q.Len() > 0 {
		b := readBatch(t, q, 256<<10)
		if recNum(t, b.Records[0]) != got {
			t.Fatalf("batch starts at %d, want %d", recNum(t, b.Records[0]), got)
		}
		got += len(b.Records)
		batches++
		if err := q.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("read %d records (%d MB) in %d batches: %d KB allocated, %d allocs (%.1f per batch)",
		got, backlog>>20, batches, alloc>>10, after.Mallocs-before.Mallocs, float64(after.Mallocs-before.Mallocs)/float64(batches))
	if got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}
	if alloc > uint64(backlog)/20 {
		t.Fatalf("allocated %d bytes to read a %d-byte backlog", alloc, backlog)
	}
}
