package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/meshwave/meshwave/internal/metricsreg"
)

// Leader-election defaults of the reference collector (collector.md §2.1).
const (
	DefaultLeaseName     = "wf-collector-leader"
	DefaultLeaseDuration = 60 * time.Second
	DefaultRenewDeadline = 45 * time.Second
	DefaultRetryPeriod   = 30 * time.Second
)

// LeaderOptions configure RunLeaderElection. Zero durations and an empty
// LeaseName take the defaults above. client-go requires LeaseDuration >
// RenewDeadline > 1.2 × RetryPeriod.
type LeaderOptions struct {
	Namespace     string // $POD_NAMESPACE_NAME
	Identity      string // $POD_NODE_NAME
	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	Logger        *slog.Logger
	// Registerer, if set, receives kubernetes_collector_leaderelection_leading
	// (gauge 0/1) and kubernetes_collector_leaderelection_error (counter of
	// failed lease reads and writes).
	Registerer prometheus.Registerer
}

// RunLeaderElection takes part in the election for a coordination.k8s.io
// Lease until ctx ends, calling onChange on every transition. It calls
// onChange(false) first, so the caller starts as a follower, and never calls
// onChange concurrently.
//
// Unlike the reference, which never marks a process that lost the lease as
// not leading (so two replicas scrape the federation URL), losing the lease
// calls onChange(false) and re-enters the election. When ctx ends while
// leading, the lease is released (ReleaseOnCancel) so another replica takes
// over at its next retry instead of after LeaseDuration.
//
// It returns an error only for invalid options; nil once ctx ends.
func RunLeaderElection(ctx context.Context, client kubernetes.Interface, opts LeaderOptions, onChange func(leading bool)) error {
	if opts.Namespace == "" || opts.Identity == "" {
		return errors.New("leader election needs a namespace ($POD_NAMESPACE_NAME) and an identity ($POD_NODE_NAME)")
	}
	if opts.LeaseName == "" {
		opts.LeaseName = DefaultLeaseName
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = DefaultRetryPeriod
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("lease", opts.Namespace+"/"+opts.LeaseName, "identity", opts.Identity)
	leadingGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubernetes_collector_leaderelection_leading",
		Help: "1 while this collector holds the leader lease, else 0.",
	})
	errCount := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubernetes_collector_leaderelection_error",
		Help: "Failed reads and writes of the leader lease.",
	})
	if r := opts.Registerer; r != nil {
		leadingGauge = metricsreg.Register(r, leadingGauge)
		errCount = metricsreg.Register(r, errCount)
	}

	lock := &countingLock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
		},
		errs: errCount,
	}
	// client-go logs through klog; route its contextual logs to ours.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(log.Handler()))

	// One mutex for all rounds keeps onChange calls serial.
	var mu sync.Mutex
	change := func(leading bool) {
		if leading {
			leadingGauge.Set(1)
		} else {
			leadingGauge.Set(0)
		}
		onChange(leading)
	}
	// newElector builds one round of the election. Per-round state:
	// client-go calls OnStartedLeading on its own goroutine, so it can run
	// after OnStoppedLeading when the lease is lost at once; stopped makes
	// that late call a no-op.
	newElector := func() (*leaderelection.LeaderElector, error) {
		var leading, stopped bool
		return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            opts.LeaseName,
			LeaseDuration:   opts.LeaseDuration,
			RenewDeadline:   opts.RenewDeadline,
			RetryPeriod:     opts.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					mu.Lock()
					defer mu.Unlock()
					if stopped || lctx.Err() != nil {
						return
					}
					leading = true
					log.Info("leader election: became leader; scraping static sources")
					change(true)
				},
				OnStoppedLeading: func() {
					mu.Lock()
					defer mu.Unlock()
					stopped = true
					if leading {
						leading = false
						log.Info("leader election: stopped leading; static sources stopped")
						change(false)
					}
				},
				OnNewLeader: func(id string) {
					if id != opts.Identity {
						log.Info("leader election: another replica leads", "leader", id)
					}
				},
			},
		})
	}
	le, err := newElector() // validates the timings before anything runs
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	mu.Lock()
	change(false)
	mu.Unlock()
	log.Info("leader election: started", "lease_duration", opts.LeaseDuration,
		"renew_deadline", opts.RenewDeadline, "retry_period", opts.RetryPeriod)
	for {
		le.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("leader election: lease lost; re-entering the election")
		if le, err = newElector(); err != nil {
			return fmt.Errorf("leader election: %w", err) // unreachable: same options
		}
	}
}

// countingLock counts failed lease operations; client-go only logs them.
// A missing Lease on Get is the normal first-start case, not an error.
type countingLock struct {
	resourcelock.Interface
	errs prometheus.Counter
}

func (l *countingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		l.errs.Inc()
	}
	return rec, raw, err
}

func (l *countingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.count(ctx, l.Interface.Create(ctx, ler))
}

func (l *countingLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.count(ctx, l.Interface.Update(ctx, ler))
}

func (l *countingLock) count(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil {
		l.errs.Inc()
	}
	return err
}
