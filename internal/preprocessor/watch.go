package preprocessor

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Watcher reloads a rule file when it changes.
type Watcher struct {
	path     string
	log      *slog.Logger
	apply    func(*Rules)
	current  atomic.Pointer[Rules]
	done     chan struct{}
	last     os.FileInfo
	lastHash [sha256.Size]byte
	stopped  context.CancelFunc
}

// Watch loads path, calls apply with the rules, and then polls the file
// every interval until ctx is done or Stop is called. A change of mtime,
// size or file identity triggers a read, and a new content hash a
// re-parse, after which apply is called with the new rules. The path is
// stat'ed rather than lstat'ed, so a Kubernetes ConfigMap update (an
// atomic swap of the ..data symlink) is seen as a change of identity.
// A parse error, or a file that disappears, is logged and the previous
// rules are kept. Writers should replace the file atomically (write and
// rename, as ConfigMaps do): a file rewritten in place may be read half
// written, and a valid prefix (even an empty file) would be applied until
// the next poll. apply is called from the polling goroutine, never
// concurrently with itself.
func Watch(ctx context.Context, path string, interval time.Duration, log *slog.Logger, apply func(*Rules)) (*Watcher, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{path: path, log: log, apply: apply, done: make(chan struct{})}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	w.last, w.lastHash = fi, sha256.Sum256(data)
	w.current.Store(r)
	apply(r)
	ctx, w.stopped = context.WithCancel(ctx)
	go w.loop(ctx, interval)
	return w, nil
}

// Current returns the rules most recently applied.
func (w *Watcher) Current() *Rules { return w.current.Load() }

// Stop ends polling and waits for the polling goroutine to exit.
func (w *Watcher) Stop() {
	w.stopped()
	<-w.done
}

func (w *Watcher) loop(ctx context.Context, interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	missing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(w.path)
		if err != nil {
			if !missing {
				w.log.Warn("preprocessor rules file unreadable; keeping previous rules", "path", w.path, "err", err)
			}
			missing = true
			continue
		}
		missing = false
		if os.SameFile(fi, w.last) && fi.ModTime().Equal(w.last.ModTime()) && fi.Size() == w.last.Size() {
			continue
		}
		w.last = fi
		data, err := os.ReadFile(w.path)
		if err != nil {
			w.log.Warn("preprocessor rules file unreadable; keeping previous rules", "path", w.path, "err", err)
			continue
		}
		h := sha256.Sum256(data)
		if h == w.lastHash {
			continue
		}
		// Remember a broken file's hash too, so it is reported once.
		w.lastHash = h
		r, err := Parse(data, w.path)
		if err != nil {
			w.log.Error("preprocessor rules not reloaded; keeping previous rules", "path", w.path, "err", err)
			continue
		}
		w.log.Info("preprocessor rules reloaded", "path", w.path)
		w.current.Store(r)
		w.apply(r)
	}
}
