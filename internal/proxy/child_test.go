package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv carries a childConfig (JSON) to TestProxyChild in a re-executed
// test binary, so crash and memory tests measure a real, separate proxy
// process that can be SIGKILLed.
const childEnv = "MESHWAVE_PROXY_CHILD"

type childConfig struct {
	Buffer         string
	Server         string
	PortFile       string // the child writes a childPorts here once listening
	PushPorts      string // default "0,0": one port for HTTP, one for TCP, so each has its own counters
	BufferMaxBytes int64
	CPUProfile     string // if set, the child profiles itself until SIGTERM (see child.stop)
}

type childPorts struct {
	Push    []string // bound push addresses, in PushPorts order
	Zipkin  string
	Metrics string
}

// TestProxyChild is the child half of the process tests, not a test on
// its own: it runs a proxy until it is killed.
func TestProxyChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("only run as a child of the process tests")
	}
	var cc childConfig
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Server = cc.Server
	cfg.Buffer = cc.Buffer
	cfg.PushListenerPorts = cmpOr(cc.PushPorts, "0,0")
	cfg.TraceZipkinListenerPorts = "0"
	cfg.ListenerBindAddress = "127.0.0.1"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Hostname = "child-proxy"
	if cc.BufferMaxBytes > 0 {
		cfg.BufferMaxBytes = cc.BufferMaxBytes
	}
	if cc.CPUProfile != "" {
		f, err := os.Create(cc.CPUProfile)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	p, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ports childPorts
	for _, l := range p.push {
		ports.Push = append(ports.Push, l.ln.Addr().String())
	}
	ports.Zipkin = p.Addr("zipkin", "0").String()
	ports.Metrics = p.addrs["metrics"].String()
	data, _ := json.Marshal(ports)
	// Written then renamed, so the parent never reads half a file.
	if err := os.WriteFile(cc.PortFile+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cc.PortFile+".tmp", cc.PortFile); err != nil {
		t.Fatal(err)
	}
	// An orphaned child (parent killed) must not run on.
	parent := os.Getppid()
	for os.Getppid() == parent {
		time.Sleep(200 * time.Millisecond)
	}
	os.Exit(3)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// child is a running proxy process.
type child struct {
	cmd   *exec.Cmd
	ports childPorts
}

// startChild re-executes the test binary as TestProxyChild and waits until
// its listeners are bound.
func startChild(t testing.TB, cc childConfig) *child {
	t.Helper()
	return startChildBinary(t, os.Args[0], cc)
}

// startChildBinary runs bin, a proxy test binary, as TestProxyChild.
func startChildBinary(t testing.TB, bin string, cc childConfig) *child {
	t.Helper()
	_ = os.Remove(cc.PortFile)
	raw, _ := json.Marshal(cc)
	cmd := exec.Command(bin, "-test.run=^TestProxyChild$", "-test.timeout=5m", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(cc.PortFile), "child.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	c := &child{cmd: cmd}
	t.Cleanup(func() { c.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(cc.PortFile)
		if err == nil {
			if err := json.Unmarshal(data, &c.ports); err != nil {
				t.Fatal(err)
			}
			return c
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(cc.PortFile), "child.log"))
			t.Fatalf("child proxy did not start:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill SIGKILLs the child and reaps it; calling it again is harmless.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// stop ends the child with SIGTERM, so a CPU profile gets written, and
// reaps it.
func (c *child) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// rssKiB reads the child's resident set size from /proc.
func (c *child) rssKiB() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", c.cmd.Process.Pid)
}

// metric scrapes one series from the child's /metrics; the selector is the
// text between the name and the value, e.g. `{entity="points",port="123"}`.
func (c *child) metric(client *http.Client, name, selector string) (float64, error) {
	resp, err := client.Get("http://" + c.ports.Metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+selector) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, nil // not incremented yet
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
