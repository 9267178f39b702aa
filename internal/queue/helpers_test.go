package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// logBuf collects log output from the writer goroutine and the test.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	dir string
	log *logBuf
	m   *Metrics
}

func newEnv(t testing.TB) *env {
	return &env{dir: t.TempDir(), log: &logBuf{}, m: NewMetrics(prometheus.NewRegistry(), "test")}
}

func (e *env) open(t testing.TB, opt Options) *Queue {
	t.Helper()
	opt.Logger = slog.New(slog.NewTextHandler(e.log, nil))
	opt.Metrics = e.m
	q, err := Open(e.dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// rec is record i: its number, padded to size bytes so size is exact.
func rec(i, size int) []byte {
	b := []byte(fmt.Sprintf("%09d", i))
	if size > len(b) {
		b = append(b, bytes.Repeat([]byte{'x'}, size-len(b))...)
	}
	return b
}

func recNum(t testing.TB, r []byte) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(string(r[:9]), "%09d", &n); err != nil {
		t.Fatalf("bad record %q: %v", r, err)
	}
	return n
}

func appendN(t testing.TB, q *Queue, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := q.Append(rec(i, size)); err != nil {
			t.Fatal(err)
		}
	}
}

func readBatch(t testing.TB, q *Queue, maxBytes int) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := q.Read(ctx, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nums(t testing.TB, b Batch) []int {
	var out []int
	for _, r := range b.Records {
		out = append(out, recNum(t, r))
	}
	return out
}

// drain reads and acks until the queue is empty, returning record numbers.
func drain(t testing.TB, q *Queue, maxBytes int) []int {
	t.Helper()
	var out []int
	for q.Len() > 0 {
		b := readBatch(t, q, maxBytes)
		out = append(out, nums(t, b)...)
		if err := q.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// counter reads a gauge or counter without the registry.
func counter(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if pb.Gauge != nil {
		return pb.Gauge.GetValue()
	}
	return pb.Counter.GetValue()
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustContain(t testing.TB, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("log lacks %q:\n%s", sub, s)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
