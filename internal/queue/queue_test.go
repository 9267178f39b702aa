package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/segfile"
)

func TestFIFOAcrossSegmentsAndAckDeletes(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 4 << 10})
	defer q.Close()
	const n, size = 2000, 100
	for i := 0; i < n; i += 10 {
		batch := make([][]byte, 10)
		for j := range batch {
			batch[j] = rec(i+j, size)
		}
		if err := q.Append(batch...); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	if got, want := q.Bytes(), int64(n*(recHdrSize+size)); got != want {
		t.Fatalf("Bytes = %d, want %d", got, want)
	}
	if files := segFiles(t, e.dir); len(files) < 40 {
		t.Fatalf("only %d segment files; the test needs many", len(files))
	}
	if got := counter(e.m.records); got != n {
		t.Fatalf("queue_records = %v", got)
	}
	if got := drain(t, q, 1000); !equalInts(got, seq(0, n)) {
		t.Fatalf("read %d records out of order or incomplete", len(got))
	}
	if files := segFiles(t, e.dir); len(files) != 1 {
		t.Fatalf("%d segment files left after acking everything", len(files))
	}
	if q.Len() != 0 || q.Bytes() != 0 || counter(e.m.bytes) != 0 {
		t.Fatalf("Len %d Bytes %d after drain", q.Len(), q.Bytes())
	}
	if got := counter(e.m.appended); got != n {
		t.Fatalf("queue_appended_records_total = %v", got)
	}
}

func TestRestartResumesAtCursor(t *testing.T) {
	e := newEnv(t)
	opt := Options{SegmentBytes: 2 << 10}
	q := e.open(t, opt)
	appendN(t, q, 0, 100, 50)
	var acked []int
	for len(acked) < 30 {
		b := readBatch(t, q, 300)
		acked = append(acked, nums(t, b)...)
		if err := q.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	inflight := readBatch(t, q, 300) // delivered, never acked: must come back
	if len(inflight.Records) == 0 {
		t.Fatal("empty batch")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Read(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}

	q = e.open(t, opt)
	defer q.Close()
	if got, want := q.Len(), int64(100-len(acked)); got != want {
		t.Fatalf("Len after reopen = %d, want %d", got, want)
	}
	appendN(t, q, 100, 10, 50)
	if got := drain(t, q, 1000); !equalInts(got, seq(len(acked), 110)) {
		t.Fatalf("after restart read %v", got)
	}
}

func TestTornTail(t *testing.T) {
	const n, size = 50, 100
	cases := map[string]func(t *testing.T, path string){
		"truncated mid-record": func(t *testing.T, path string) {
			if err := os.Truncate(path, fileSize(t, path)-size/2); err != nil {
				t.Fatal(err)
			}
		},
		"flipped payload byte": func(t *testing.T, path string) {
			flip(t, path, fileSize(t, path)-3)
		},
		"flipped length byte": func(t *testing.T, path string) {
			flip(t, path, fileSize(t, path)-size-recHdrSize)
		},
		// A process killed after writing its records leaves the zeroed
		// room after them (keepZeroedAhead): cut, not counted as torn.
		"zeroed tail": func(t *testing.T, path string) {
			appendToFile(t, path, make([]byte, 4096))
		},
		// Pages written back out of order after a machine failure can
		// leave bytes after zeros: cut and counted.
		"bytes after a zeroed tail": func(t *testing.T, path string) {
			appendToFile(t, path, append(make([]byte, 4096), "x"...))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			q := e.open(t, Options{})
			appendN(t, q, 0, n, size)
			q.Close()
			files := segFiles(t, e.dir)
			damage(t, files[len(files)-1])

			q = e.open(t, Options{})
			defer q.Close()
			want, torn := n-1, 1.0
			switch name {
			case "zeroed tail":
				want, torn = n, 0
			case "bytes after a zeroed tail":
				want = n // only what follows the last record is cut
			}
			if got := q.Len(); got != int64(want) {
				t.Fatalf("Len after recovery = %d, want %d", got, want)
			}
			if torn > 0 {
				mustContain(t, e.log.String(), "truncating segment")
			}
			if got := counter(e.m.tornRec); got != torn {
				t.Fatalf("queue_torn_records_total = %v, want %v", got, torn)
			}
			if got, records := fileSize(t, files[len(files)-1]), segHdrSize+int64(want*(recHdrSize+size)); got != records {
				t.Fatalf("segment holds %d bytes after recovery, its records %d", got, records)
			}
			appendN(t, q, 1000, 1, size)
			if got := drain(t, q, 1<<20); !equalInts(got, append(seq(0, want), 1000)) {
				t.Fatalf("recovered %v", got)
			}
		})
	}
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A damaged record in a sealed segment is only found by Read (Open does
// not checksum old segments): the rest of that segment is skipped and
// counted, later segments are still delivered, and acking moves past it.
func TestReadSkipsDamagedSealedSegment(t *testing.T) {
	e := newEnv(t)
	opt := Options{SegmentBytes: 2 << 10}
	q := e.open(t, opt)
	appendN(t, q, 0, 100, 100)
	q.Close()
	files := segFiles(t, e.dir)
	flip(t, files[1], segHdrSize+recHdrSize+5) // first record of the second segment

	q = e.open(t, opt)
	defer q.Close()
	perSeg := int((opt.SegmentBytes - segHdrSize) / (recHdrSize + 100))
	got := drain(t, q, 1<<20)
	want := append(seq(0, perSeg), seq(2*perSeg, 100)...)
	if !equalInts(got, want) {
		t.Fatalf("read %v\nwant %v", got, want)
	}
	mustContain(t, e.log.String(), "damaged record")
	if c := counter(e.m.tornRec); c != 1 {
		t.Fatalf("queue_torn_records_total = %v", c)
	}
}

func TestMaxBytesDropsOldest(t *testing.T) {
	e := newEnv(t)
	const max, size, n = 64 << 10, 200, 1000
	q := e.open(t, Options{MaxBytes: max})
	defer q.Close()
	appendN(t, q, 0, 10, size)
	inflight := readBatch(t, q, 3*size)
	appendN(t, q, 10, n-10, size)

	var disk int64
	for _, f := range segFiles(t, e.dir) {
		disk += fileSize(t, f)
	}
	if disk > max {
		t.Fatalf("%d bytes on disk, bound %d", disk, max)
	}
	dropped := counter(e.m.dropped)
	if dropped == 0 || int64(dropped)+q.Len() != n {
		t.Fatalf("dropped %v + pending %d != %d", dropped, q.Len(), n)
	}
	if got, want := counter(e.m.droppedBytes), dropped*(recHdrSize+size); got != want {
		t.Fatalf("queue_dropped_bytes_total = %v, want %v", got, want)
	}
	mustContain(t, e.log.String(), "queue full: dropped")
	// The in-flight batch was dropped: acking it changes nothing.
	before := q.Len()
	if err := q.Ack(inflight); err != nil {
		t.Fatal(err)
	}
	if q.Len() != before {
		t.Fatal("Ack of a dropped batch changed Len")
	}
	if got := drain(t, q, 1<<20); !equalInts(got, seq(n-len(got), n)) {
		t.Fatalf("kept records are not the newest: %v", got)
	}
}

func TestNackRedelivers(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{})
	defer q.Close()
	appendN(t, q, 0, 20, 10)
	b1 := readBatch(t, q, 50)
	first := nums(t, b1)
	b2 := readBatch(t, q, 50) // pipelined: continues after b1
	if n := nums(t, b2); n[0] != first[len(first)-1]+1 {
		t.Fatalf("second batch starts at %d", n[0])
	}
	q.Nack(b1)
	if err := q.Ack(b2); !errors.Is(err, ErrAckOrder) {
		t.Fatalf("Ack after Nack of an earlier batch: %v", err)
	}
	again := readBatch(t, q, 50)
	if !equalInts(nums(t, again), first) {
		t.Fatalf("after Nack got %v, want %v", nums(t, again), first)
	}
	if err := q.Ack(again); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(again); err != nil { // a second Ack is a no-op
		t.Fatal(err)
	}
	if got := drain(t, q, 50); !equalInts(got, seq(len(first), 20)) {
		t.Fatalf("rest %v", got)
	}
}

func TestAckOutOfOrder(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{})
	defer q.Close()
	appendN(t, q, 0, 4, 10)
	b1 := readBatch(t, q, 20)
	b2 := readBatch(t, q, 20)
	if err := q.Ack(b2); !errors.Is(err, ErrAckOrder) {
		t.Fatalf("out-of-order Ack: %v", err)
	}
	if q.Len() != 4 {
		t.Fatal("rejected Ack changed the queue")
	}
	if err := q.Ack(b1); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(b2); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 {
		t.Fatalf("Len %d", q.Len())
	}
}

func TestConcurrentAppendersOneReader(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 32 << 10})
	defer q.Close()
	const writers, per = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := q.Append(rec(w*1_000_000+i, 64)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := make(map[int]bool)
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	for len(seen) < writers*per {
		b := readBatch(t, q, 4<<10)
		for _, n := range nums(t, b) {
			if seen[n] {
				t.Fatalf("record %d delivered twice", n)
			}
			seen[n] = true
			w, i := n/1_000_000, n%1_000_000
			if i != last[w]+1 {
				t.Fatalf("writer %d: record %d after %d", w, i, last[w])
			}
			last[w] = i
		}
		if err := q.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if q.Len() != 0 {
		t.Fatalf("Len %d after reading everything", q.Len())
	}
}

func TestLimitsAndClose(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 4 << 10})
	if err := q.Append(make([]byte, 4<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	if err := q.Append([]byte{}); err != nil {
		t.Fatalf("empty record: %v", err)
	}
	if b := readBatch(t, q, 10); len(b.Records) != 1 || len(b.Records[0]) != 0 {
		t.Fatalf("empty record read back as %q", b.Records)
	}
	if _, err := Open(e.dir, Options{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Read(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read on empty queue: %v", err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := q.Read(context.Background(), 10)
		blocked <- err
	}()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Read after Close: %v", err)
	}
	if err := q.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

// A cursor slot torn mid-write must fall back to the previous slot: that
// re-delivers one batch, never skips one.
func TestTornCursorFallsBack(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{})
	appendN(t, q, 0, 10, 10)
	for range 3 {
		if err := q.Ack(readBatch(t, q, 10)); err != nil { // one record each
			t.Fatal(err)
		}
	}
	q.Close()
	c, pos, ok, err := openCursor(e.dir)
	if err != nil || !ok {
		t.Fatal(err, ok)
	}
	c.f.Close()
	if pos.off != segHdrSize+3*(recHdrSize+10) {
		t.Fatalf("cursor at %d", pos.off)
	}
	flip(t, c.f.Name(), int64(c.gen%2)*slotStride+20) // the newest slot's offset

	q = e.open(t, Options{})
	defer q.Close()
	if got := drain(t, q, 1<<20); !equalInts(got, seq(2, 10)) {
		t.Fatalf("after torn cursor read %v, want records 2..9", got)
	}
}

// TestAppendFramesMatchesAppend writes the same records with Append to one
// queue and as sealed frames (mixed with plain Appends; sizes around the
// writer's alignment, some spanning several aligned blocks) to another:
// the segment files must be byte-identical, survive a reopen untouched and
// read back in order.
func TestAppendFramesMatchesAppend(t *testing.T) {
	plain, framed := newEnv(t), newEnv(t)
	opt := Options{SegmentBytes: 256 << 10}
	qp, qf := plain.open(t, opt), framed.open(t, opt)
	sizes := []int{10, 100, segfile.Align - recHdrSize - 1, segfile.Align - recHdrSize, 40 << 10, 3000, 200 << 10, 9}
	n := 0
	for round := range 12 {
		var recs, frames [][]byte
		for _, size := range sizes[round%3:] {
			r := rec(n, size)
			n++
			recs = append(recs, r)
			frame := append(make([]byte, FrameHeader), r...)
			Seal(frame)
			frames = append(frames, frame)
		}
		if err := qp.Append(recs...); err != nil {
			t.Fatal(err)
		}
		var err error
		if round%4 == 3 {
			err = qf.Append(recs...) // plain Appends between frames
		} else {
			err = qf.AppendFrames(frames...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	qp.Close()
	qf.Close()
	pf, ff := segFiles(t, plain.dir), segFiles(t, framed.dir)
	if len(pf) < 3 || len(pf) != len(ff) {
		t.Fatalf("%d and %d segment files; want the same number, several", len(pf), len(ff))
	}
	for i := range pf {
		a, err := os.ReadFile(pf[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ff[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("segment %s differs between Append and AppendFrames", filepath.Base(ff[i]))
		}
	}
	qf = framed.open(t, opt)
	defer qf.Close()
	if got := drain(t, qf, 1<<20); !equalInts(got, seq(0, n)) {
		t.Fatalf("read %v, want 0..%d in order", got, n-1)
	}
	if strings.Contains(framed.log.String(), "truncating") {
		t.Fatalf("reopen found damage:\n%s", framed.log.String())
	}
}

func TestAppendFramesRefusesUnsealed(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 4 << 10})
	defer q.Close()
	for _, f := range [][]byte{nil, make([]byte, FrameHeader-1), append(make([]byte, FrameHeader), "payload"...)} {
		if err := q.AppendFrames(f); !errors.Is(err, ErrNotSealed) {
			t.Errorf("AppendFrames(%q) = %v, want ErrNotSealed", f, err)
		}
	}
	big := make([]byte, FrameHeader+8<<10)
	Seal(big)
	if err := q.AppendFrames(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a frame over the segment size: %v, want ErrTooLarge", err)
	}
	if q.Len() != 0 {
		t.Errorf("Len = %d after refused frames", q.Len())
	}
}

// TestAppendFramesAsync checks that AppendFramesAsync keeps one caller's
// order, calls then once per append only after the frames are readable
// (durable), and refuses with ErrClosed after Close.
func TestAppendFramesAsync(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 64 << 10})
	const n = 300
	results := make(chan error, n)
	var durable sync.WaitGroup
	durable.Add(n)
	for i := range n {
		frame := append(make([]byte, FrameHeader), rec(i, 100+i*7)...)
		Seal(frame)
		q.AppendFramesAsync(func(err error) {
			if err == nil && q.Len() < int64(i+1) {
				err = fmt.Errorf("append %d reported before it was readable (Len %d)", i, q.Len())
			}
			results <- err
			durable.Done()
		}, frame)
	}
	durable.Wait()
	for range n {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := drain(t, q, 1<<20); !equalInts(got, seq(0, n)) {
		t.Fatalf("read %v, want 0..%d in order", got, n-1)
	}
	q.AppendFramesAsync(func(err error) { results <- err }, append(make([]byte, FrameHeader), "x"...))
	if err := <-results; !errors.Is(err, ErrNotSealed) {
		t.Fatalf("an unsealed frame: %v, want ErrNotSealed", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	frame := append(make([]byte, FrameHeader), "late"...)
	Seal(frame)
	q.AppendFramesAsync(func(err error) { results <- err }, frame)
	if err := <-results; !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// TestAppendFramesWrittenAsync checks that written appends keep their
// order among durable ones, are readable when then is called, and are
// all there after Close and Open; a short WrittenSync makes the
// background fsync run between them.
func TestAppendFramesWrittenAsync(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 64 << 10, WrittenSync: time.Millisecond})
	const n = 300
	var written sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		frame := append(make([]byte, FrameHeader), rec(i, 100+i*7)...)
		Seal(frame)
		if i%50 == 49 {
			// A durable append among written ones: it keeps its place.
			if err := q.AppendFrames(frame); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if i%20 == 0 {
			time.Sleep(2 * time.Millisecond) // let a background fsync run
		}
		written.Add(1)
		q.AppendFramesWrittenAsync(func(err error) {
			if err == nil && q.Len() < int64(i+1) {
				err = fmt.Errorf("append %d reported before it was readable (Len %d)", i, q.Len())
			}
			if err != nil {
				errs <- err
			}
			written.Done()
		}, frame)
	}
	written.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = e.open(t, Options{SegmentBytes: 64 << 10})
	if got := drain(t, q, 1<<20); !equalInts(got, seq(0, n)) {
		t.Fatalf("read %v, want 0..%d in order", got, n-1)
	}
}

// TestWrittenRecordsAreSynced checks that records only written are fsync'd
// in the background, with no durable append to take them along.
func TestWrittenRecordsAreSynced(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{WrittenSync: 5 * time.Millisecond})
	defer q.Close()
	fsyncs := func() float64 { return counter(e.m.syncs) }
	before := fsyncs()
	written := make(chan error, 1)
	frame := append(make([]byte, FrameHeader), rec(1, 100)...)
	Seal(frame)
	q.AppendFramesWrittenAsync(func(err error) { written <- err }, frame)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); fsyncs() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a written record was not fsync'd within 5 s (WrittenSync 5 ms)")
		}
	}
}

// TestWrittenAfterDurableAreSynced checks the fsync of records written on
// the appender's goroutine while the writer goroutine's timer runs from
// earlier ones a durable Append has since fsync'd: they must not be left
// unsynced.
func TestWrittenAfterDurableAreSynced(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{WrittenSync: 20 * time.Millisecond})
	defer q.Close()
	fsyncs := func() float64 { return counter(e.m.syncs) }
	frame := append(make([]byte, FrameHeader), rec(1, 100)...)
	Seal(frame)
	written := make(chan error, 1)
	for range 5 {
		q.AppendFramesWrittenAsync(func(err error) { written <- err }, frame)
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		if err := q.Append(rec(2, 10)); err != nil {
			t.Fatal(err)
		}
		before := fsyncs()
		q.AppendFramesWrittenAsync(func(err error) { written <- err }, frame)
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); fsyncs() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a written record was not fsync'd within 5 s (WrittenSync 20 ms)")
			}
		}
	}
}

// TestLeadersAndWriterCloseRacing has durable Appends (which lead group
// commits on their own goroutines and hand them to each other) and
// written asynchronous Appends (committed by the writer goroutine or taken
// along by a leader) race each other and Close, across segment rotations.
// Every append must be answered exactly once, nil or ErrClosed, and every
// record answered nil must be there after reopening, each goroutine's in
// its order.
func TestLeadersAndWriterCloseRacing(t *testing.T) {
	for round := range 20 {
		e := newEnv(t)
		q := e.open(t, Options{SegmentBytes: 8 << 10, WrittenSync: time.Millisecond})
		const durable, async, per = 4, 2, 200
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := make(map[int]bool)
		for w := range durable {
			wg.Go(func() {
				for i := range per {
					n := w*1_000_000 + i
					err := q.Append(rec(n, 50+i%200))
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					stored[n] = true
					mu.Unlock()
				}
			})
		}
		for w := durable; w < durable+async; w++ {
			wg.Go(func() {
				answered := make(chan error, 1)
				for i := range per {
					n := w*1_000_000 + i
					frame := append(make([]byte, FrameHeader), rec(n, 50+i%200)...)
					Seal(frame)
					q.AppendFramesWrittenAsync(func(err error) { answered <- err }, frame)
					select {
					case err := <-answered:
						if errors.Is(err, ErrClosed) {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
					case <-time.After(10 * time.Second):
						t.Errorf("async append %d not answered in 10 s", n)
						return
					}
					mu.Lock()
					stored[n] = true
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(round%5) * 10 * time.Millisecond)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		q = e.open(t, Options{SegmentBytes: 8 << 10})
		last := make(map[int]int)
		got := drain(t, q, 1<<20)
		for _, n := range got {
			w, i := n/1_000_000, n%1_000_000
			if prev, ok := last[w]; ok && i != prev+1 || !ok && i != 0 {
				t.Fatalf("round %d: goroutine %d: record %d after %d", round, w, i, prev)
			}
			last[w] = i
			delete(stored, n)
		}
		if len(stored) > 0 {
			t.Fatalf("round %d: %d records answered nil are missing after reopening", round, len(stored))
		}
		q.Close()
	}
}
