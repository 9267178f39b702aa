package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSegmentZeroedAhead checks the zeroed room the write segment
// keeps after its records: commits inside it leave the file's size alone
// (what makes their fdatasync cheap), one that reaches its end writes the
// next zeroAhead bytes, the room stops at SegmentBytes, and Close cuts it.
func TestWriteSegmentZeroedAhead(t *testing.T) {
	e := newEnv(t)
	skipUnlessOverwritesInPlace(t, e.dir)
	const segBytes = 3 * zeroAhead
	q := e.open(t, Options{SegmentBytes: segBytes})
	const size = 100_000
	recs := func(n int) int64 { return segHdrSize + int64(n)*(recHdrSize+size) }
	appendN(t, q, 0, 1, size)
	path := segFiles(t, e.dir)[0]
	if got, want := fileSize(t, path), recs(1)+zeroAhead; got != want {
		t.Fatalf("after one record: file size %d, want %d (records and the zeroed room)", got, want)
	}
	tail := make([]byte, zeroAhead)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(tail, recs(1)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, zeros[:]) {
		t.Fatal("the room after the records is not zeros")
	}
	appendN(t, q, 1, 10, size) // 11 records end just short of the room's end
	if got, want := fileSize(t, path), recs(1)+zeroAhead; got != want {
		t.Fatalf("records inside the room changed the file size to %d, want %d", got, want)
	}
	appendN(t, q, 11, 1, size)
	if got, want := fileSize(t, path), recs(12)+zeroAhead; got != want {
		t.Fatalf("after the room was used up: file size %d, want %d", got, want)
	}
	appendN(t, q, 12, 14, size) // 26 records: the room stops at SegmentBytes
	if got := fileSize(t, path); got != segBytes {
		t.Fatalf("near the segment's end: file size %d, want %d", got, segBytes)
	}
	if got := drain(t, q, 1<<20); !equalInts(got, seq(0, 26)) {
		t.Fatalf("read back %v", got)
	}
	q.Close()
	if got, want := fileSize(t, path), recs(26); got != want {
		t.Fatalf("after Close: file size %d, want %d", got, want)
	}
}

// TestZeroedRoomAfterKill opens a copy of a queue's files taken while it
// was open, as a killed process leaves them: the zeroed room is cut
// without counting a torn record, every record is there, and new ones
// follow the last of them.
func TestZeroedRoomAfterKill(t *testing.T) {
	e := newEnv(t)
	skipUnlessOverwritesInPlace(t, e.dir)
	q := e.open(t, Options{})
	appendN(t, q, 0, 20, 300)
	killed := killedCopy(t, e, segHdrSize+20*(recHdrSize+300))
	q.Close()

	q = killed.open(t, Options{})
	defer q.Close()
	if got := counter(killed.m.tornRec); got != 0 {
		t.Fatalf("queue_torn_records_total = %v after a clean zeroed room", got)
	}
	if log := killed.log.String(); log != "" {
		t.Fatalf("recovery logged: %s", log)
	}
	appendN(t, q, 20, 5, 300)
	if got := drain(t, q, 1<<20); !equalInts(got, seq(0, 25)) {
		t.Fatalf("read back %v", got)
	}
}

// TestNoZeroedRoomForLargeCommits checks that the write segment stops
// keeping zeros ahead once fsyncs cover more than zeroAheadBelow bytes
// each: there the extra copy of the zeros costs more than it saves.
func TestNoZeroedRoomForLargeCommits(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 8 << 20})
	defer q.Close()
	const size = 2 * zeroAheadBelow
	appendN(t, q, 0, 15, size) // one fsync each
	if got, want := fileSize(t, segFiles(t, e.dir)[0]), segHdrSize+15*(recHdrSize+int64(size)); got != want {
		t.Fatalf("file size %d, want %d: the records and no zeroed room", got, want)
	}
	if got := drain(t, q, 1<<20); !equalInts(got, seq(0, 15)) {
		t.Fatalf("read back %v", got)
	}
}

// TestNoZeroedRoomOnTmpfs checks that the room is only written where it
// saves work: on tmpfs fdatasync costs nothing, so zeros would only be
// copied twice.
func TestNoZeroedRoomOnTmpfs(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "queue-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if overwritesInPlace(dir) {
		t.Skip("/dev/shm is not tmpfs here")
	}
	e := newEnv(t)
	e.dir = dir
	q := e.open(t, Options{})
	defer q.Close()
	appendN(t, q, 0, 3, 100)
	if got, want := fileSize(t, segFiles(t, dir)[0]), segHdrSize+3*(recHdrSize+100); got != want {
		t.Fatalf("file size %d, want %d: the records and no zeroed room", got, want)
	}
}

func skipUnlessOverwritesInPlace(t *testing.T, dir string) {
	t.Helper()
	if !overwritesInPlace(dir) {
		t.Skip("the test directory is not on ext4 or XFS: no zeroed room is written there")
	}
}

// TestEmptyRecordHeaderIsNotZero pins what finding the records' end at
// the first all-zero header relies on: an empty record's header is not
// all zeros, because the CRC of its four zero length bytes is not 0.
func TestEmptyRecordHeaderIsNotZero(t *testing.T) {
	var h [recHdrSize]byte
	putRecHeader(h[:], nil)
	if h == [recHdrSize]byte{} {
		t.Fatal("an empty record's header is all zeros")
	}
	e := newEnv(t)
	skipUnlessOverwritesInPlace(t, e.dir)
	q := e.open(t, Options{})
	for range 3 {
		if err := q.Append([]byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	killed := killedCopy(t, e, segHdrSize+3*(2*recHdrSize+1))
	q.Close()
	q = killed.open(t, Options{})
	defer q.Close()
	if got := q.Len(); got != 6 {
		t.Fatalf("Len after recovery = %d, want the 6 records, the empty last one included", got)
	}
}

// killedCopy copies e's segment files, taken while its queue is open, as
// a killed process leaves them, to a new env; each must be longer than
// records bytes, i.e. hold zeroed room after them.
func killedCopy(t *testing.T, e *env, records int64) *env {
	t.Helper()
	killed := newEnv(t)
	for _, p := range segFiles(t, e.dir) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) <= records {
			t.Fatalf("%s has %d bytes: no zeroed room to recover from", p, len(data))
		}
		if err := os.WriteFile(filepath.Join(killed.dir, filepath.Base(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return killed
}
