package preprocessor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/testlog"
)

// writeAtomic replaces path like a careful writer (or a ConfigMap) does;
// an in-place rewrite can be polled half-written.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func ruleFile(value string) string {
	return "'2878':\n  - {rule: env, action: addTag, tag: env, value: " + value + "}\n"
}

// envOf applies rules to a point and returns the env tag they set.
func envOf(r *Rules) string {
	pt := mkPoint("m h")
	r.ForPort("2878").Point(pt, nil)
	for _, t := range pt.Tags {
		if string(t.Key) == "env" {
			return string(t.Value)
		}
	}
	return ""
}

func startWatch(t *testing.T, path string) (*Watcher, <-chan *Rules, *testlog.Buffer) {
	t.Helper()
	applied := make(chan *Rules, 10)
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	w, err := Watch(context.Background(), path, 5*time.Millisecond, log, func(r *Rules) { applied <- r })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w, applied, logs
}

func waitApplied(t *testing.T, applied <-chan *Rules) *Rules {
	t.Helper()
	select {
	case r := <-applied:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("apply not called")
		return nil
	}
}

func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte(ruleFile("one")), 0o644); err != nil {
		t.Fatal(err)
	}
	w, applied, logs := startWatch(t, path)
	if got := envOf(waitApplied(t, applied)); got != "one" {
		t.Fatalf("initial env %q", got)
	}
	// Same size, different content: the hash, not the size, decides.
	writeAtomic(t, path, ruleFile("two"))
	if got := envOf(waitApplied(t, applied)); got != "two" {
		t.Fatalf("after change env %q", got)
	}
	writeAtomic(t, path, "'2878':\n  - {rule: x, action: nope}\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `unknown action \"nope\"`) {
		if time.Now().After(deadline) {
			t.Fatalf("parse error not logged; log: %s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := envOf(w.Current()); got != "two" {
		t.Errorf("broken file replaced rules: env %q", got)
	}
	select {
	case <-applied:
		t.Error("apply called for a broken file")
	default:
	}
}

// TestWatchConfigMapSwap mimics a Kubernetes ConfigMap volume: the file is
// a symlink through ..data, which is atomically re-pointed at a new
// timestamped directory on update.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	writeGen := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "rules.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	swap := func(name string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeGen("..2024_01", ruleFile("one"))
	swap("..2024_01")
	path := filepath.Join(dir, "rules.yaml")
	if err := os.Symlink("..data/rules.yaml", path); err != nil {
		t.Fatal(err)
	}
	_, applied, _ := startWatch(t, path)
	if got := envOf(waitApplied(t, applied)); got != "one" {
		t.Fatalf("initial env %q", got)
	}
	writeGen("..2024_02", ruleFile("two"))
	swap("..2024_02")
	if got := envOf(waitApplied(t, applied)); got != "two" {
		t.Fatalf("after swap env %q", got)
	}
}

func TestWatchInitialError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if _, err := Watch(context.Background(), path, time.Second, nil, func(*Rules) {}); err == nil {
		t.Error("missing file: no error")
	}
	if err := os.WriteFile(path, []byte("'1': [{rule: a, action: nope}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Watch(context.Background(), path, time.Second, nil, func(*Rules) {}); err == nil {
		t.Error("broken file: no error")
	}
}
