package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
)

const (
	resyncPeriod = time.Hour // §5.1; re-evaluation is a no-op when nothing changed
	debounce     = 200 * time.Millisecond
	// watchErrorLogEvery rate-limits the log of a failing list/watch: the
	// reflector retries with back-off up to 30s, so this is about one line
	// per retry at worst.
	watchErrorLogEvery = 30 * time.Second
	// nodeRuleDelay is when node rules are evaluated after start (§5.1).
	nodeRuleDelay = 30 * time.Second
)

// Options configure a Discoverer.
type Options struct {
	Discovery                 config.Discovery
	DefaultCollectionInterval time.Duration
	// NodeName restricts pods to this node (POD_NODE_NAME on node and legacy
	// agents); "" watches every pod. It is also the default target source.
	NodeName string
	// DefaultSource, when set, replaces NodeName as the source of targets
	// whose annotation and rule set none. `all` agents watch every pod but
	// should pass $POD_NODE_NAME here, as the reference uses the collector's
	// node; with neither, a target's source is its pod or service name.
	DefaultSource string
	// DisablePods leaves pods and node rules alone, for cluster agents that
	// discover only services (§1.10).
	DisablePods bool
	// Shards and ShardIndex split pod and node targets by ShardOf(key);
	// 0 or 1 shards means no sharding.
	Shards, ShardIndex int
	Logger             *slog.Logger
	// Registerer receives the discovery self-metrics; nil keeps them
	// private.
	Registerer prometheus.Registerer
}

// Discoverer watches pods, and services while leading, and hands the
// resulting targets to apply.
type Discoverer struct {
	client    kubernetes.Interface
	opts      Options
	log       *slog.Logger
	eval      evaluator
	nodeRules bool
	nodeDelay time.Duration
	apply     func([]collector.Target)
	m         metrics
	kick      chan struct{} // buffered 1: "the target set may have changed"

	mu       sync.Mutex
	byObject map[string][]collector.Target // "kind/ns/name" → targets, unsharded
	skipped  map[string]string             // "kind/ns/name" → last skip message, to log changes only
	ctx      context.Context               // Run's; nil before Run
	stopped  bool                          // Run is returning: start nothing more
	wg       sync.WaitGroup                // informer goroutines
	services bool                          // wanted
	svcGen   int                           // bumped at each service watch start/stop; stale events are dropped
	svcStop  context.CancelFunc            // nil when the service informer is not running
}

type metrics struct {
	registered  *prometheus.GaugeVec   // {type}
	skipped     *prometheus.CounterVec // {kind, namespace, name, reason}
	rules       prometheus.Gauge
	enabled     prometheus.Gauge
	watchErrors *prometheus.CounterVec // {resource}
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var firstErr error
	// add reuses a collector already registered by an earlier
	// Discoverer (a config reload) instead of failing.
	add := func(c prometheus.Collector) prometheus.Collector {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		return c
	}
	name := func(n string) string { return "kubernetes_collector_discovery_" + n }
	m := metrics{
		registered: add(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name("targets_registered"),
			Help: "Discovered targets this collector scrapes (after sharding)."}, []string{"type"})).(*prometheus.GaugeVec),
		skipped: add(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("skipped"),
			Help: "Resources whose discovery annotations or rule settings could not be used, per resource and reason."},
			[]string{"kind", "namespace", "name", "reason"})).(*prometheus.CounterVec),
		rules: add(prometheus.NewGauge(prometheus.GaugeOpts{Name: name("rules_count"),
			Help: "Valid discovery rules."})).(prometheus.Gauge),
		enabled: add(prometheus.NewGauge(prometheus.GaugeOpts{Name: name("enabled"),
			Help: "1 while discovery runs."})).(prometheus.Gauge),
		watchErrors: add(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("watch_errors"),
			Help: "Failed list/watch calls to the Kubernetes API, per resource."}, []string{"resource"})).(*prometheus.CounterVec),
	}
	return m, firstErr
}

// New validates opts and builds a Discoverer. Invalid rules and exclusions
// are logged and skipped, as the reference does; apply receives the full
// target list each time it changes, never concurrently.
func New(client kubernetes.Interface, opts Options, apply func(targets []collector.Target)) (*Discoverer, error) {
	if client == nil || apply == nil {
		return nil, errors.New("kube: client and apply are required")
	}
	if opts.Shards < 0 || opts.ShardIndex < 0 || opts.ShardIndex >= max(opts.Shards, 1) {
		return nil, fmt.Errorf("kube: shard index %d out of range for %d shards", opts.ShardIndex, opts.Shards)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "discovery")
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("kube: registering metrics: %w", err)
	}
	d := &Discoverer{
		client: client, opts: opts, log: log, apply: apply, m: m, nodeDelay: nodeRuleDelay,
		kick:     make(chan struct{}, 1),
		byObject: map[string][]collector.Target{},
		skipped:  map[string]string{},
		eval: evaluator{
			prefix:             cmp.Or(opts.Discovery.AnnotationPrefix, config.DefaultAnnotationPrefix),
			disableAnnotations: opts.Discovery.DisableAnnotationDiscovery,
			defaultInterval:    opts.DefaultCollectionInterval,
			defaultSource:      cmp.Or(opts.DefaultSource, opts.NodeName),
		},
	}
	for _, r := range opts.Discovery.Plugins {
		cr, err := compileRule(r)
		if err != nil {
			log.Warn("error parsing plugin; rule skipped", "rule", r.Name, "line", r.Line, "err", err)
			continue
		}
		d.eval.rules = append(d.eval.rules, cr)
		d.nodeRules = d.nodeRules || cr.sel.kind == kindNode
	}
	for i, s := range opts.Discovery.AnnotationExcludes {
		sel, err := compileSelector(s, false)
		if err != nil {
			log.Warn("invalid annotation_excludes entry; skipped", "index", i, "err", err)
			continue
		}
		d.eval.excludes = append(d.eval.excludes, sel)
	}
	m.rules.Set(float64(len(d.eval.rules)))
	return d, nil
}

// Run starts the informers and feeds apply until ctx ends. An unreachable or
// forbidding API server is logged and retried by the informers; Run keeps
// going, so static sources are unaffected.
func (d *Discoverer) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.ctx != nil {
		d.mu.Unlock()
		return errors.New("kube: Run called twice")
	}
	d.ctx = ctx
	if !d.opts.DisablePods {
		d.startInformer(ctx, d.podInformer(), kindPod, 0)
		if d.nodeRules {
			d.wg.Go(func() { d.runNodeRules(ctx) })
		}
	}
	if d.services {
		d.startServicesLocked()
	}
	d.mu.Unlock()
	d.m.enabled.Set(1)
	defer d.m.enabled.Set(0)
	d.log.Info("discovery started", "rules", len(d.eval.rules), "node", d.opts.NodeName,
		"pods", !d.opts.DisablePods, "shards", max(d.opts.Shards, 1), "shard_index", d.opts.ShardIndex)

	var last []collector.Target
	applied := false
	for {
		select {
		case <-ctx.Done():
			d.stop()
			return nil
		case <-d.kick:
		}
		// Coalesce the burst of events of an initial list or a rollout.
		t := time.NewTimer(debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			d.stop()
			return nil
		case <-t.C:
		}
		list := d.snapshot()
		if applied && reflect.DeepEqual(list, last) {
			continue
		}
		d.apply(list)
		last, applied = list, true
	}
}

// stop waits for the informers, which end with Run's ctx. Marking stopped
// first keeps SetWatchServices from starting one during the wait.
func (d *Discoverer) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.wg.Wait()
}

// SetWatchServices starts or stops the service informer: only the leader
// discovers services (§5.1). Stopping drops every service target. It may be
// called before or during Run.
func (d *Discoverer) SetWatchServices(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.services == on {
		return
	}
	d.services = on
	if d.ctx == nil || d.stopped {
		return
	}
	if on {
		d.startServicesLocked()
		return
	}
	if d.svcStop != nil {
		d.svcStop()
		d.svcStop = nil
	}
	d.svcGen++
	for key := range d.byObject {
		if strings.HasPrefix(key, kindService+"/") {
			delete(d.byObject, key)
		}
	}
	for key := range d.skipped {
		if strings.HasPrefix(key, kindService+"/") {
			d.forgetSkipLocked(key)
		}
	}
	d.signal()
}

// startServicesLocked runs a fresh informer: a stopped one cannot restart.
func (d *Discoverer) startServicesLocked() {
	d.svcGen++
	ctx, cancel := context.WithCancel(d.ctx)
	d.svcStop = cancel
	inf := coreinformers.NewFilteredServiceInformer(d.client, metav1.NamespaceAll, resyncPeriod, cache.Indexers{}, nil)
	d.startInformer(ctx, inf, kindService, d.svcGen)
}

func (d *Discoverer) podInformer() cache.SharedIndexInformer {
	var tweak func(*metav1.ListOptions)
	if d.opts.NodeName != "" {
		sel := fields.OneTermEqualSelector("spec.nodeName", d.opts.NodeName).String()
		tweak = func(o *metav1.ListOptions) { o.FieldSelector = sel }
	}
	return coreinformers.NewFilteredPodInformer(d.client, metav1.NamespaceAll, resyncPeriod, cache.Indexers{}, tweak)
}

func (d *Discoverer) startInformer(ctx context.Context, inf cache.SharedIndexInformer, kind string, gen int) {
	// Managed fields are large and never read; dropping them saves memory
	// on big meshes.
	_ = inf.SetTransform(func(obj any) (any, error) {
		if o, ok := obj.(metav1.Object); ok {
			o.SetManagedFields(nil)
		}
		return obj, nil
	})
	_ = inf.SetWatchErrorHandler(d.watchErrorHandler(kind))
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.upsert(kind, gen, obj) },
		UpdateFunc: func(_, obj any) { d.upsert(kind, gen, obj) },
		DeleteFunc: func(obj any) { d.remove(kind, gen, obj) },
	})
	d.wg.Go(func() { inf.RunWithContext(ctx) })
}

// watchErrorHandler logs list/watch failures clearly, at most once per
// watchErrorLogEvery; the reflector retries on its own. Each informer has
// its own handler, called from its one reflector goroutine.
func (d *Discoverer) watchErrorHandler(kind string) cache.WatchErrorHandler {
	var last time.Time
	suppressed := 0
	return func(_ *cache.Reflector, err error) {
		// As client-go's default handler: a closed or expired watch is
		// routine and simply re-established.
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) ||
			apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			d.log.Debug("watch restarted", "resource", kind, "err", err)
			return
		}
		d.m.watchErrors.WithLabelValues(kind).Inc()
		if !last.IsZero() && time.Since(last) < watchErrorLogEvery {
			suppressed++
			return
		}
		last = time.Now()
		hint := "is the API server reachable? retrying with back-off"
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			hint = fmt.Sprintf("grant the collector's service account list and watch on %ss; retrying with back-off", kind)
		}
		d.log.Error("cannot list/watch "+kind+"s; discovered "+kind+" targets are stale, static sources are unaffected",
			"err", err, "hint", hint, "suppressed_since_last_log", suppressed)
		suppressed = 0
	}
}

// upsert re-evaluates one object. The evaluation is pure and runs outside
// the lock; only a change of the object's targets wakes the apply loop.
func (d *Discoverer) upsert(kind string, gen int, obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	var r resource
	var ok bool
	switch o := obj.(type) {
	case *corev1.Pod:
		r, ok = podResource(o, d.opts.NodeName)
	case *corev1.Service:
		r, ok = serviceResource(o)
	default:
		return
	}
	var targets []collector.Target
	var skips []*skipError
	if ok {
		targets, skips = d.eval.evaluate(&r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(kind, gen, kind+"/"+key, targets)
	if kind == kindService && gen != d.svcGen {
		return
	}
	d.noteSkipsLocked(kind+"/"+key, &r, skips)
}

// remove deletes an object's targets. A tombstone (the watch missed the
// delete) carries the key; the reference ignored it and leaked targets.
func (d *Discoverer) remove(kind string, gen int, obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(kind, gen, kind+"/"+key, nil)
	if kind != kindService || gen == d.svcGen {
		d.forgetSkipLocked(kind + "/" + key)
	}
}

func (d *Discoverer) setLocked(kind string, gen int, key string, targets []collector.Target) {
	if kind == kindService && gen != d.svcGen {
		return // an event of a service informer already stopped
	}
	old, had := d.byObject[key]
	if len(targets) == 0 {
		if had {
			delete(d.byObject, key)
			d.signal()
		}
		return
	}
	if !had || !reflect.DeepEqual(old, targets) {
		d.byObject[key] = targets
		d.signal()
	}
}

// noteSkipsLocked logs and counts the problems of one resource when they
// change, so that status updates and resyncs of a broken pod do not flood
// the log; the counter names the resource.
func (d *Discoverer) noteSkipsLocked(key string, r *resource, skips []*skipError) {
	if len(skips) == 0 {
		if _, ok := d.skipped[key]; ok {
			d.forgetSkipLocked(key)
		}
		return
	}
	msgs := make([]string, len(skips))
	for i, s := range skips {
		msgs[i] = s.msg
	}
	msg := strings.Join(msgs, "; ")
	if d.skipped[key] == msg {
		return
	}
	d.skipped[key] = msg
	for _, s := range skips {
		d.m.skipped.WithLabelValues(r.kind, r.namespace, r.name, s.reason).Inc()
	}
	d.log.Warn("discovery skipped "+r.kind+" "+r.namespace+"/"+r.name+": "+msg,
		"kind", r.kind, "namespace", r.namespace, "name", r.name, "prefix", d.eval.prefix)
}

// forgetSkipLocked drops a deleted resource's skip state and counter
// series, so pod churn does not grow them without bound.
func (d *Discoverer) forgetSkipLocked(key string) {
	delete(d.skipped, key)
	kind, rest, _ := strings.Cut(key, "/")
	ns, name, found := strings.Cut(rest, "/")
	if !found {
		ns, name = "", rest
	}
	d.m.skipped.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": ns, "name": name})
}

func (d *Discoverer) signal() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// snapshot returns this shard's targets sorted by key. Services are not
// sharded: only the leader watches them, so it must scrape them all.
func (d *Discoverer) snapshot() []collector.Target {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []collector.Target
	for key, list := range d.byObject {
		service := strings.HasPrefix(key, kindService+"/")
		for _, t := range list {
			if service || ShardOf(t.Key, d.opts.Shards) == d.opts.ShardIndex {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b collector.Target) int { return strings.Compare(a.Key, b.Key) })
	d.m.registered.WithLabelValues("prometheus").Set(float64(len(out)))
	return out
}

// runNodeRules evaluates node rules once, nodeDelay after start (§5.1). They
// need exactly one node in view: this collector's own node, or a one-node
// cluster. A failed list is retried; a wrong count is logged as the
// reference does.
func (d *Discoverer) runNodeRules(ctx context.Context) {
	for wait := d.nodeDelay; ; wait = d.nodeDelay {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		opts := metav1.ListOptions{}
		if d.opts.NodeName != "" {
			opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", d.opts.NodeName).String()
		}
		list, err := d.client.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			if ctx.Err() == nil {
				d.m.watchErrors.WithLabelValues(kindNode).Inc()
				d.log.Error("cannot list nodes for node rules; retrying", "err", err, "retry_in", d.nodeDelay)
			}
			continue
		}
		nodes := slices.DeleteFunc(list.Items, func(n corev1.Node) bool {
			return d.opts.NodeName != "" && n.Name != d.opts.NodeName
		})
		if len(nodes) != 1 {
			d.log.Warn("invalid number of nodes found; node rules need exactly one (set the node name or run one node)",
				"nodes", len(nodes))
			return
		}
		r, ok := nodeResource(&nodes[0])
		if !ok {
			d.log.Warn("node is not Ready or has no address; node rules skipped", "node", nodes[0].Name)
			return
		}
		targets, skips := d.eval.evaluate(&r)
		d.mu.Lock()
		d.setLocked(kindNode, 0, kindNode+"/"+r.name, targets)
		d.noteSkipsLocked(kindNode+"/"+r.name, &r, skips)
		d.mu.Unlock()
		return
	}
}
