//go:build linux

// Linux only: the Prometheus the test drives comes from the Debian package,
// and Pdeathsig is what stops children outliving a test binary that the
// -timeout panic kills before any t.Cleanup can run.

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a child process that is killed when the test ends. Its output goes
// to a log file, which is printed if the test fails.
type proc struct {
	name string
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), done: make(chan struct{})}
	p.log = filepath.Join(t.TempDir(), p.name+".log")
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	// t.Context is cancelled just before the cleanups run, which kills the
	// process; the cleanup then only reaps it.
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		<-p.done
		if t.Failed() {
			t.Logf("%s log (last 4 KiB):\n%s", p.name, p.tail(4096))
		}
	})
	return p
}

func (p *proc) tail(n int64) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, int64(len(b))-n):])
}

// exited reports whether the process has already died, and how.
func (p *proc) exited() (string, bool) {
	select {
	case <-p.done:
		return p.name + " exited: " + errString(p.err) + "\n" + p.tail(4096), true
	default:
		return "", false
	}
}

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// waitFor polls cond every 500 ms until it holds, failing the test after
// timeout or as soon as one of procs dies. cond's message says what is still
// missing.
func waitFor(t *testing.T, timeout time.Duration, what string, procs []*proc, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		for _, p := range procs {
			if m, dead := p.exited(); dead {
				t.Fatalf("waiting for %s: %s", what, m)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v: %s", what, timeout, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// freePort returns a port nothing listens on right now. Prometheus must know
// its own address before it starts (the federate job scrapes it), so it
// cannot simply be given port 0.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// get fetches url and returns the body of a 200 answer.
func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, err
}

// buildMeshwave builds the command into dir.
//
// go test caches a pass keyed on the test binary and on the files the test
// opened, and this test runs code it does not import. So it reads the
// directories of the command's packages in this module, and go.mod and
// go.sum: changing a file in them makes go test rerun it.
func buildMeshwave(t *testing.T, dir string) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	list := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if .Main}}{{$.Dir}}{{end}}{{end}}", "./cmd/meshwave")
	list.Dir = root
	dirs, err := list.Output()
	if err != nil {
		t.Fatalf("go list ./cmd/meshwave: %v", err)
	}
	for _, d := range strings.Fields(string(dirs)) {
		if _, err := os.ReadDir(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "meshwave")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/meshwave")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/meshwave: %v\n%s", err, out)
	}
	return bin
}

// run runs a command to completion and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}
