//go:build !linux

package queue

import "os"

// vecWriter writes a commit's buffers one write(2) each where writev(2)
// is not used.
type vecWriter struct{}

func (*vecWriter) write(f *os.File, bufs [][]byte) error {
	for _, b := range bufs {
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	return nil
}
