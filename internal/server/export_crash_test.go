package server

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestExportCrashLosesNothing SIGKILLs a server process while clients post
// and it exports to a remote that refuses a third of its requests,
// restarts it on the same data directory, and checks that every point of
// every 202 reaches the remote (at least once).
func TestExportCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	sink := &rwSink{seen: map[string]int{}}
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.N(3) == 0 {
			http.Error(w, "flaky for the test", http.StatusServiceUnavailable)
			return
		}
		sink.ServeHTTP(w, r)
	})
	sink.up.Store(true)
	remote := httptest.NewServer(flaky)
	defer remote.Close()

	dir := t.TempDir()
	cmd, url := startChild(t, os.Args[0], dir, childRemoteWriteEnv+"="+remote.URL)
	t0 := base()
	const perReq = 100
	acked := postUntilKilled(t, cmd, url, func(_, r int) string {
		var b strings.Builder
		for i := range perReq {
			fmt.Fprintf(&b, "crash.exp %d %d source=r%d\n", i, t0+int64(i)*1000, r)
		}
		return b.String()
	})

	cmd, _ = startChild(t, os.Args[0], dir, childRemoteWriteEnv+"="+remote.URL)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	missing := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, r := range acked {
			for i := range perReq {
				key := fmt.Sprintf("__name__=crash_exp,source=r%d %d %d", r, t0+int64(i)*1000, i)
				if sink.seen[key] == 0 {
					n++
				}
			}
		}
		return n
	}
	eventually(t, "every acknowledged point at the remote", func() bool { return missing() == 0 })
	sink.mu.Lock()
	dups := 0
	for _, n := range sink.seen {
		dups += n - 1
	}
	sink.mu.Unlock()
	t.Logf("%d acknowledged requests (%d points) all exported across a SIGKILL; %d duplicates", len(acked), len(acked)*perReq, dups)
}
