package sink

import (
	"context"
	"log/slog"
	"os"
)

// NewFile returns a Writer that appends lines to path (created 0644), or to
// standard output if path is "-". Lines are buffered and written every
// FlushInterval, whenever a 64 KiB block fills, and on Flush and Close; a
// failed write is retried from where it stopped, so lines are never torn or
// doubled. A nil m or log means unregistered metrics and slog.Default().
func NewFile(path string, opt Options, m *Metrics, log *slog.Logger) (Writer, error) {
	opt = opt.withDefaults(false)
	f, owned := os.Stdout, false
	if path != "-" {
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			return nil, err
		}
		owned = true
	}
	c := newCore(opt, m, log, path)
	return c.start(&fileTransport{c: c, f: f, owned: owned}), nil
}

type fileTransport struct {
	c     *core
	f     *os.File
	owned bool
	off   int // bytes of the current block already written
}

func (t *fileTransport) send(_ context.Context, b *block) error {
	n, err := t.f.Write(b.data()[t.off:])
	t.off += n
	if err != nil {
		return err
	}
	t.off = 0
	t.c.release(b)
	return nil
}

func (t *fileTransport) pending() bool { return false }

func (t *fileTransport) close() error {
	if t.owned {
		return t.f.Close()
	}
	return nil
}
