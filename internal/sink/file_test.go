package sink

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestFileAppends(t *testing.T) {
	checkLeaks(t)
	path := filepath.Join(t.TempDir(), "points.txt")
	if err := os.WriteFile(path, []byte("existing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := testMetrics()
	opt := testOptions(t)
	opt.FlushInterval = time.Hour
	w, err := NewFile(path, opt, m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	want := testLines(3000) // more than one block
	writeAll(w, want, 13)
	if err := w.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, []byte("existing\n"+strings.Join(want, ""))) {
		t.Errorf("file has %d bytes, not the existing line plus the %d written", len(got), len(want))
	}
	w.Write([]byte(want[0]))
	mustClose(t, w) // Close flushes
	got, _ = os.ReadFile(path)
	if !bytes.HasSuffix(got, []byte(want[2999]+want[0])) {
		t.Error("Close did not write the last line")
	}
	if got := counter(m.sent, t); got != 3001 {
		t.Errorf("sent = %v, want 3001", got)
	}
}

func TestFileCreatesWithMode0644(t *testing.T) {
	checkLeaks(t)
	path := filepath.Join(t.TempDir(), "new.txt")
	w, err := NewFile(path, testOptions(t), testMetrics(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The umask may only remove bits.
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Errorf("mode %v, want 0644 (less umask)", perm)
	}
}

func TestFileBadPath(t *testing.T) {
	if _, err := NewFile(filepath.Join(t.TempDir(), "missing", "x"), testOptions(t), nil, testLogger(t)); err == nil {
		t.Error("NewFile succeeded on a missing directory")
	}
}

func TestFileStdout(t *testing.T) {
	checkLeaks(t)
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := os.Stdout
	os.Stdout = pw
	w, err := NewFile("-", testOptions(t), testMetrics(), testLogger(t))
	os.Stdout = old
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(testLines(4), "")
	w.Write([]byte(want))
	mustClose(t, w)
	if err := pw.Close(); err != nil {
		t.Errorf("the writer closed stdout: %v", err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != want {
		t.Errorf("stdout got %q, want %q", got, want)
	}
}
