package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	childEnv = "MESHWAVE_SERVER_TEST_CHILD"
	// childProfileEnv names a file for the child's CPU profile, written
	// when it is stopped with SIGTERM: the server's share of a benchmark
	// cannot be profiled from the client process.
	childProfileEnv = "MESHWAVE_SERVER_TEST_CPUPROFILE"
	// childRemoteWriteEnv gives the child a remote-write exit to this URL.
	childRemoteWriteEnv = "MESHWAVE_SERVER_TEST_REMOTE_WRITE"
)

// TestMain lets the test binary double as a server process for the crash
// test and the ingestion benchmark: with childEnv set to a data directory
// it serves until killed, or until SIGTERM, which closes it cleanly.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := serveChild(dir, os.Getenv(childProfileEnv)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveChild(dir, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := Config{DataDir: dir, Logger: quietLogger()}
	if remote := os.Getenv(childRemoteWriteEnv); remote != "" {
		cfg.RemoteWrite = fastExport(remote)
	}
	s, err := Open(cfg)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Println(ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return s.Serve(ctx, ln)
}

// startChild runs the server binary bin (a test binary of this package,
// possibly of another version) on dir and returns it with its base URL.
func startChild(t testing.TB, bin, dir string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("child: %v", err)
	}
	return cmd, "http://" + strings.TrimSpace(line)
}

// TestCrashLosesNothingAcknowledged SIGKILLs a server process while
// clients are posting, restarts it on the same data directory and checks
// that every point of every 202 is queryable.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	cmd, url := startChild(t, os.Args[0], dir)
	t0 := base()
	const perReq = 100
	acked := postUntilKilled(t, cmd, url, func(w, r int) string {
		var b strings.Builder
		for i := range perReq {
			fmt.Fprintf(&b, "crash.req%d %d %d source=s%d\n", r, i, t0+int64(i)*1000, w)
		}
		return b.String()
	})

	cmd, _ = startChild(t, os.Args[0], dir)
	cmd.Process.Signal(syscall.SIGKILL) // it replays on Open; we check in-process below
	cmd.Wait()

	s := start(t, Config{DataDir: dir})
	want := map[string]bool{}
	for _, r := range acked {
		want[fmt.Sprintf("crash.req%d", r)] = true
	}
	eventually(t, "acknowledged points after restart", func() bool {
		n := 0
		for _, ser := range selectAll(t, s.Server, "crash.*") {
			if want[ser.Name] && len(ser.Points) == perReq {
				n++
			}
		}
		return n == len(want)
	})
	t.Logf("%d acknowledged requests (%d points) all present after SIGKILL", len(acked), len(acked)*perReq)
}

// postUntilKilled posts body(worker, request) from 4 concurrent clients to
// the server process cmd at url, SIGKILLs it once 40 requests were
// answered 202, and returns the numbers of those requests.
func postUntilKilled(t *testing.T, cmd *exec.Cmd, url string, body func(w, r int) string) []int {
	t.Helper()
	var (
		mu    sync.Mutex
		acked []int
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for r := w; ; r += 4 {
				resp, err := client.Post(url+"/report?f=wavefront", "text/plain", strings.NewReader(body(w, r)))
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					acked = append(acked, r)
					mu.Unlock()
				}
			}
		})
	}
	eventually(t, "some acknowledgments", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 40 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()
	return acked
}
