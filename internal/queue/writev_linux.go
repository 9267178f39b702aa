package queue

import (
	"os"
	"syscall"
	"unsafe"
)

// iovMax is IOV_MAX, the most buffers one writev(2) takes.
const iovMax = 1024

// vecWriter writes a commit's buffers with writev(2): one system call per
// commit, straight from the appenders' frames, instead of copying them
// into a staging buffer and writing that in pieces.
type vecWriter struct {
	iov []syscall.Iovec
}

// write writes bufs at f's offset, resuming after short writes.
func (w *vecWriter) write(f *os.File, bufs [][]byte) error {
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil
		}
		w.iov = w.iov[:0]
		for _, b := range bufs[:min(len(bufs), iovMax)] {
			if len(b) > 0 {
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				w.iov = append(w.iov, v)
			}
		}
		n, err := w.writev(f)
		clear(w.iov) // keeps no reference to the appenders' frames
		if err == nil && n == 0 {
			err = syscall.EIO // no progress: do not spin
		}
		if err != nil {
			return &os.PathError{Op: "writev", Path: f.Name(), Err: err}
		}
		for n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
			if len(bufs) == 0 {
				return nil
			}
		}
		bufs[0] = bufs[0][n:]
	}
}

func (w *vecWriter) writev(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		for {
			n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
			if errno != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
