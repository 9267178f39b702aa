package collector

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/meshwave/meshwave/internal/config"
)

// Target is one scrape target found at run time, by pod discovery for
// example. Its Source carries everything a prometheus_sources entry does.
type Target struct {
	// Key identifies the target across updates, e.g.
	// "shop-pod-web-1:9100/metrics" as the reference names providers.
	Key string
	// Source is the target's URL, prefix, source, tags, filter, HTTP and
	// collection settings. Its Filter must be compiled (config does this for
	// files; discovery compiles rule filters itself).
	Source config.PrometheusSource
	// Discovered is "annotation" or "rule", for self-metric tags.
	Discovered string
}

// staticGroup holds the prometheus_sources of the file; only the leader
// scrapes them.
const staticGroup = "static"

// targets runs one scrape loop per target and reconciles them with what
// discovery and leader election want, without disturbing unchanged loops.
type targets struct {
	c       *Collector
	mu      sync.Mutex
	ctx     context.Context // nil until Run starts
	wg      sync.WaitGroup
	want    map[string][]Target       // group → targets, in the order given
	running map[string]*runningTarget // group+"\x00"+key → loop
	leading bool
}

type runningTarget struct {
	target Target
	cancel context.CancelFunc
	done   chan struct{}
}

func newTargets(c *Collector) *targets {
	return &targets{c: c, want: map[string][]Target{}, running: map[string]*runningTarget{}, leading: true}
}

// set replaces the wanted targets of a group.
func (t *targets) set(group string, list []Target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want[group] = slices.Clone(list)
	t.reconcileLocked()
}

// isLeading reports whether this collector scrapes the static sources.
func (t *targets) isLeading() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leading
}

// setLeading starts or stops the static sources.
func (t *targets) setLeading(leading bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leading != leading {
		t.leading = leading
		t.c.log.Info("leadership changed", "leading", leading)
		t.reconcileLocked()
	}
}

// start begins running loops under ctx.
func (t *targets) start(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ctx = ctx
	t.reconcileLocked()
}

// wait blocks until every loop has stopped (after ctx ends).
func (t *targets) wait() { t.wg.Wait() }

func (t *targets) reconcileLocked() {
	desired := map[string]Target{}
	for group, list := range t.want {
		if group == staticGroup && !t.leading {
			continue
		}
		for _, x := range list {
			desired[group+"\x00"+x.Key] = x
		}
	}
	t.c.m.providers.Set(float64(len(desired)))
	if t.ctx == nil {
		return
	}
	for id, r := range t.running {
		if x, ok := desired[id]; !ok || !reflect.DeepEqual(x.Source, r.target.Source) {
			r.cancel()
			delete(t.running, id)
		}
	}
	for id, x := range desired {
		if _, ok := t.running[id]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(t.ctx)
		r := &runningTarget{target: x, cancel: cancel, done: make(chan struct{})}
		t.running[id] = r
		src := t.c.sourceFor(x)
		t.wg.Go(func() {
			defer close(r.done)
			src.run(ctx)
		})
	}
}

// current returns the targets that would run now, for Once: the static
// sources in file order, then each discovery group's.
func (t *targets) current() []Target {
	t.mu.Lock()
	defer t.mu.Unlock()
	groups := slices.Sorted(maps.Keys(t.want))
	var out []Target
	if t.leading {
		out = append(out, t.want[staticGroup]...)
	}
	for _, g := range groups {
		if g != staticGroup {
			out = append(out, t.want[g]...)
		}
	}
	return out
}
