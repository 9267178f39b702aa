package queue

import (
	"os"
	"syscall"
	"testing"
)

// TestPreallocatedSegments checks that the write segment has its blocks
// before it is written (where the file system can preallocate) and that a
// sealed segment gives back the ones it did not use, so the disk holds
// what the segments' sizes say.
func TestPreallocatedSegments(t *testing.T) {
	e := newEnv(t)
	const segBytes = 1 << 20
	q := e.open(t, Options{SegmentBytes: segBytes})
	defer q.Close()
	allocated := func(path string) (size, blocks int64) {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Size, st.Blocks * 512
	}
	files := segFiles(t, e.dir)
	if _, blocks := allocated(files[0]); blocks < segBytes {
		t.Skipf("the file system did not preallocate (%d bytes allocated)", blocks)
	}
	// Two records of 0.6 MB: the second does not fit, so the first
	// segment is sealed with 0.4 MB of its preallocation unused.
	appendN(t, q, 0, 2, 600_000)
	files = segFiles(t, e.dir)
	if len(files) < 2 {
		t.Fatalf("%d segment files; the test needs a sealed one", len(files))
	}
	size, blocks := allocated(files[0])
	if page := int64(os.Getpagesize()); blocks > (size+page-1)/page*page {
		t.Fatalf("sealed segment of %d bytes holds %d bytes of blocks", size, blocks)
	}
	if _, blocks := allocated(files[len(files)-1]); blocks < segBytes {
		t.Fatalf("write segment holds %d bytes of blocks, want at least %d", blocks, segBytes)
	}
}
