package queue

import (
	"os"
	"syscall"
)

// datasync makes f's written data durable with fdatasync(2), which skips
// the timestamps fsync would also write but still commits every piece of
// metadata a later read needs: the file size a write past the old end set
// and the conversion of the preallocated (unwritten) extents the data went
// to. A record whose Append returned is therefore readable after a power
// failure. The directory entry is fsync'd when the segment is created
// (createSegment), so fdatasync never has to cover it.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
