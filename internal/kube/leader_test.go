package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
)

// Short timings keep the tests fast; the lease is long enough (3 s against
// 0.2 s renewals) that a loaded machine does not lose it by accident.
var testTimings = LeaderOptions{
	Namespace:     "observability-system",
	LeaseDuration: 3 * time.Second,
	RenewDeadline: 2 * time.Second,
	RetryPeriod:   200 * time.Millisecond,
}

// replica is one collector process: a real Collector scraping the static
// source, with its own election.
type replica struct {
	name      string
	c         *collector.Collector
	reg       *prometheus.Registry
	stopElect context.CancelFunc
	elected   chan error
	stopRun   context.CancelFunc
	ran       chan error
}

// federation counts scrapes of the static source per replica; each replica's
// copy of the URL carries its name.
type federation struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newFederation(t *testing.T) *federation {
	f := &federation{hits: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.URL.Query().Get("who")]++
		f.mu.Unlock()
		_, _ = io.WriteString(w, "# TYPE up untyped\nup 1\n")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *federation) count(who string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[who]
}

func startReplica(t *testing.T, client kubernetes.Interface, f *federation, name string) *replica {
	t.Helper()
	yaml := fmt.Sprintf(`
defaultCollectionInterval: 100ms
sinks:
- file: %s
sources:
  prometheus_sources:
  - url: '%s/federate?who=%s'
`, filepath.Join(t.TempDir(), "out.wf"), f.srv.URL, name)
	cfg, _, err := config.Parse([]byte(yaml), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := collector.New(cfg, collector.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, c: c, reg: prometheus.NewRegistry(), elected: make(chan error, 1), ran: make(chan error, 1)}
	// A replica under election starts as a follower, before its first tick.
	c.SetLeading(false)
	runCtx, stopRun := context.WithCancel(context.Background())
	r.stopRun = stopRun
	go func() { r.ran <- c.Run(runCtx) }()
	electCtx, stopElect := context.WithCancel(context.Background())
	r.stopElect = stopElect
	opts := testTimings
	opts.Identity, opts.Logger, opts.Registerer = name, log, r.reg
	go func() { r.elected <- RunLeaderElection(electCtx, client, opts, c.SetLeading) }()
	t.Cleanup(func() {
		r.stopElect()
		r.stopRun()
		<-r.elected
		<-r.ran
	})
	return r
}

func (r *replica) gauge(t *testing.T, name string) float64 {
	t.Helper()
	fams, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func leaderWaitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaseHolder(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	l, err := client.CoordinationV1().Leases(testTimings.Namespace).Get(context.Background(), DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// TestLeaderElectionFailover: of two collectors sharing a Lease exactly one
// scrapes the static source; when it stops, it releases the Lease, stops
// scraping at once and the other takes over.
func TestLeaderElectionFailover(t *testing.T) {
	client := fake.NewClientset()
	f := newFederation(t)
	a := startReplica(t, client, f, "node-a")
	b := startReplica(t, client, f, "node-b")

	var leader, follower *replica
	leaderWaitFor(t, 10*time.Second, "a leader that scrapes", func() bool {
		switch {
		case f.count("node-a") >= 3:
			leader, follower = a, b
		case f.count("node-b") >= 3:
			leader, follower = b, a
		}
		return leader != nil
	})
	if h := leaseHolder(t, client); h != leader.name {
		t.Fatalf("Lease holder %q, but %s scrapes", h, leader.name)
	}
	// Give the follower many retry periods to (wrongly) join in.
	before := f.count(leader.name)
	leaderWaitFor(t, 10*time.Second, "ten more leader scrapes", func() bool { return f.count(leader.name) >= before+10 })
	if n := f.count(follower.name); n != 0 {
		t.Fatalf("follower %s scraped the static source %d times while %s led", follower.name, n, leader.name)
	}
	if g := leader.gauge(t, "kubernetes_collector_leaderelection_leading"); g != 1 {
		t.Errorf("leader's leading gauge = %v", g)
	}
	if g := follower.gauge(t, "kubernetes_collector_leaderelection_leading"); g != 0 {
		t.Errorf("follower's leading gauge = %v", g)
	}

	// Stop only the leader's election: its collector keeps running, so any
	// further scrape of the static source would be the reference's defect.
	leader.stopElect()
	select {
	case err := <-leader.elected:
		if err != nil {
			t.Fatalf("RunLeaderElection: %v", err)
		}
		leader.elected <- nil // for cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("RunLeaderElection did not return after cancel")
	}
	if h := leaseHolder(t, client); h == leader.name {
		t.Fatalf("Lease still held by %s after its election stopped (not released)", h)
	}
	time.Sleep(200 * time.Millisecond) // a request already on the wire may still land
	stopped := f.count(leader.name)
	// Released, the Lease is free at the follower's next retry, long before
	// LeaseDuration.
	leaderWaitFor(t, testTimings.LeaseDuration, "the follower to take over", func() bool { return f.count(follower.name) >= 5 })
	if h := leaseHolder(t, client); h != follower.name {
		t.Errorf("Lease holder %q after failover, want %s", h, follower.name)
	}
	if n := f.count(leader.name); n != stopped {
		t.Errorf("old leader kept scraping after its election stopped: %d → %d scrapes", stopped, n)
	}
	if g := leader.gauge(t, "kubernetes_collector_leaderelection_leading"); g != 0 {
		t.Errorf("old leader's leading gauge = %v", g)
	}
}

// TestLeaderElectionLostLease: a leader that cannot renew its Lease (a
// partition from the API server) stops scraping within RenewDeadline,
// instead of scraping on as the reference does, and leads again once the
// API server is back because it re-enters the election.
func TestLeaderElectionLostLease(t *testing.T) {
	client := fake.NewClientset()
	var partitioned atomic.Bool
	for _, verb := range []string{"get", "create", "update"} {
		client.PrependReactor(verb, "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if partitioned.Load() {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
	}
	f := newFederation(t)
	a := startReplica(t, client, f, "node-a")
	leaderWaitFor(t, 10*time.Second, "node-a to lead", func() bool { return f.count("node-a") >= 3 })

	partitioned.Store(true)
	leaderWaitFor(t, 5*testTimings.RenewDeadline, "node-a to give up leading",
		func() bool { return a.gauge(t, "kubernetes_collector_leaderelection_leading") == 0 })
	time.Sleep(200 * time.Millisecond) // a request already on the wire may still land
	stopped := f.count("node-a")
	time.Sleep(time.Second) // ten scrape intervals
	if n := f.count("node-a"); n != stopped {
		t.Errorf("node-a kept scraping after losing the Lease: %d → %d scrapes", stopped, n)
	}
	if n := a.gauge(t, "kubernetes_collector_leaderelection_error"); n == 0 {
		t.Error("failed renewals not counted in kubernetes_collector_leaderelection_error")
	}
	select {
	case err := <-a.elected:
		t.Fatalf("RunLeaderElection returned after losing the Lease (%v); it must re-enter the election", err)
	default:
	}

	partitioned.Store(false)
	leaderWaitFor(t, 10*time.Second, "node-a to lead and scrape again", func() bool { return f.count("node-a") >= stopped+3 })
}

func TestLeaderElectionOptions(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	noop := func(bool) {}
	if err := RunLeaderElection(ctx, client, LeaderOptions{Identity: "n"}, noop); err == nil {
		t.Error("no error without a namespace")
	}
	if err := RunLeaderElection(ctx, client, LeaderOptions{Namespace: "ns"}, noop); err == nil {
		t.Error("no error without an identity")
	}
	bad := LeaderOptions{Namespace: "ns", Identity: "n", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}
	if err := RunLeaderElection(ctx, client, bad, noop); err == nil {
		t.Error("no error with RenewDeadline > LeaseDuration")
	}
}
