package queue

import (
	"context"
	"testing"
	"time"
)

// A Read that ends exactly at the end of the write segment, followed by a
// rotation and the Ack of that batch (which deletes the segment), left the
// read position in a deleted segment at the ack index: the next Read spun
// forever without looking at ctx. Found by the proxy's TCP benchmark.
func TestReadAfterAckDeletesReadSegment(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 4 << 10})
	defer q.Close()
	if err := q.Append(rec(1, 100)); err != nil {
		t.Fatal(err)
	}
	b, err := q.Read(context.Background(), 1<<20)
	if err != nil || len(b.Records) != 1 {
		t.Fatalf("first read: %d records, %v", len(b.Records), err)
	}
	// Does not fit in the first segment: rotates and seals it.
	if err := q.Append(rec(2, 4000)); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan Batch, 1)
	go func() {
		b, _ := q.Read(ctx, 1<<20)
		done <- b
	}()
	select {
	case b := <-done:
		if len(b.Records) != 1 || recNum(t, b.Records[0]) != 2 {
			t.Fatalf("second read: %d records", len(b.Records))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read spins after its segment was deleted by Ack")
	}
}
