package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/kube"
)

// agentRole is what an --agent type does with the one configuration file
// (collector.md §1.10).
type agentRole struct {
	pods     bool // discover pods
	allPods  bool // every pod in the cluster, not just this node's
	election bool // takes part in leader election; static sources and services only while leading
}

var agentRoles = map[string]agentRole{
	"node":    {pods: true},
	"cluster": {election: true},
	"legacy":  {pods: true, election: true},
	"all":     {pods: true, allPods: true, election: true},
}

// kubeSettings are the collector command's Kubernetes flags.
type kubeSettings struct {
	agent      string
	kubeconfig string
	shards     int
	shardIndex int // -1: from the StatefulSet ordinal of $HOSTNAME
}

// kubeClient returns a client for --kubeconfig, or the in-cluster one when
// running in a pod; nil, nil outside a cluster without --kubeconfig.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		rc, err = rest.InClusterConfig()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	rc.UserAgent = "meshwave/" + collector.Version
	return kubernetes.NewForConfig(rc)
}

func hostname() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// resolveShard fills in the shard index from the StatefulSet ordinal of the
// pod's hostname when --shards > 1 and --shard-index is not given.
func resolveShard(ks *kubeSettings) error {
	switch {
	case ks.shards < 0:
		return fmt.Errorf("--shards %d: must be ≥ 0", ks.shards)
	case ks.shards <= 1:
		if ks.shardIndex > 0 {
			return fmt.Errorf("--shard-index %d needs --shards > %d", ks.shardIndex, ks.shardIndex)
		}
		ks.shardIndex = 0
	case ks.shardIndex < 0:
		h := hostname()
		i, ok := kube.ShardFromHostname(h)
		if !ok {
			return fmt.Errorf("--shards %d: give --shard-index, or run as a StatefulSet whose pod names end in the ordinal (hostname %q has none)", ks.shards, h)
		}
		ks.shardIndex = i
	}
	if ks.shards > 1 && ks.shardIndex >= ks.shards {
		return fmt.Errorf("shard index %d out of range for --shards %d", ks.shardIndex, ks.shards)
	}
	return nil
}

// runKubeCollector runs the long-lived collector: the Supervisor (live
// reload) plus, when a cluster is reachable, discovery and leader election
// as the --agent type says.
func runKubeCollector(ctx context.Context, sup *collector.Supervisor, ks kubeSettings, log *slog.Logger) error {
	role, ok := agentRoles[ks.agent]
	if !ok {
		return fmt.Errorf("--agent %q: want all, node, cluster or legacy", ks.agent)
	}
	if err := resolveShard(&ks); err != nil {
		return err
	}
	node, namespace := os.Getenv("POD_NODE_NAME"), os.Getenv("POD_NAMESPACE_NAME")
	if !role.election {
		// A node agent never scrapes static sources (§2.1).
		sup.SetLeading(false)
	}
	client, err := kubeClient(ks.kubeconfig)
	if err != nil {
		return err
	}
	if client == nil {
		if !role.election {
			log.Warn("not in a Kubernetes cluster and no --kubeconfig: discovery is off, and a node agent scrapes no static sources", "agent", ks.agent)
		} else {
			log.Warn("not in a Kubernetes cluster and no --kubeconfig: discovery and leader election are off; scraping static sources as leader", "agent", ks.agent)
		}
		return sup.Run(ctx)
	}
	// The reference dies without these too (§1.10).
	if (ks.agent == "node" || ks.agent == "legacy") && node == "" {
		return fmt.Errorf("--agent %s needs POD_NODE_NAME (set it from spec.nodeName with the downward API)", ks.agent)
	}
	if role.election && (node == "" || namespace == "") {
		return fmt.Errorf("--agent %s runs leader election, which needs POD_NODE_NAME and POD_NAMESPACE_NAME (set them with the downward API), or use --agent node", ks.agent)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &discovery{client: client, sup: sup, ctx: ctx, log: log, services: role.election}
	d.base = kube.Options{
		Shards: ks.shards, ShardIndex: ks.shardIndex, DisablePods: !role.pods,
		Logger: log, Registerer: sup.Registerer(),
	}
	if role.allPods {
		d.base.DefaultSource = node
	} else {
		d.base.NodeName = node
	}
	if err := d.apply(sup.Config()); err != nil {
		return err
	}
	sup.OnReload(func(cfg *config.Config) {
		if err := d.apply(cfg); err != nil {
			log.Error("discovery not restarted with the new configuration; previous targets kept", "err", err)
		}
	})
	defer d.stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	electErr := make(chan error, 1)
	if role.election {
		sup.SetLeading(false) // until elected
		// The pod name makes the identity unique: with $POD_NODE_NAME alone
		// (the reference's), two replicas on one node — a Deployment rollout
		// or two shards — would both believe they hold the lease.
		identity := node
		if h := hostname(); h != "" {
			identity += "_" + h
		}
		opts := kube.LeaderOptions{Namespace: namespace, Identity: identity, Logger: log, Registerer: sup.Registerer()}
		wg.Go(func() {
			if err := kube.RunLeaderElection(ctx, client, opts, d.setLeading); err != nil {
				electErr <- err
				cancel()
			}
		})
	} else {
		log.Info("leader election not run for a node agent; static sources and services are left to the cluster agent", "agent", ks.agent)
	}
	err = sup.Run(ctx)
	select {
	case e := <-electErr:
		return e
	default:
	}
	return err
}

// discovery owns the running Discoverer and restarts it when a reload
// changes its settings; its targets reach every Collector through the
// Supervisor.
type discovery struct {
	client   kubernetes.Interface
	sup      *collector.Supervisor
	ctx      context.Context
	log      *slog.Logger
	base     kube.Options
	services bool // watch services while leading

	mu      sync.Mutex
	leading bool
	running *kube.Discoverer
	cancel  context.CancelFunc
	done    chan struct{}
	applied *config.Config
}

type discoverySettings struct {
	enabled  bool
	d        config.Discovery
	interval time.Duration
}

func settingsOf(c *config.Config) discoverySettings {
	return discoverySettings{c.EnableDiscovery, c.Discovery, c.DefaultCollectionInterval}
}

// apply (re)starts discovery for cfg, or stops it when cfg disables it.
func (d *discovery) apply(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied != nil && reflect.DeepEqual(settingsOf(d.applied), settingsOf(cfg)) {
		return nil
	}
	var next *kube.Discoverer
	if cfg.EnableDiscovery {
		opts := d.base
		opts.Discovery, opts.DefaultCollectionInterval = cfg.Discovery, cfg.DefaultCollectionInterval
		var err error
		// Build first: a failure keeps the running Discoverer.
		if next, err = kube.New(d.client, opts, func(t []collector.Target) { d.sup.SetTargets("discovery", t) }); err != nil {
			return err
		}
	}
	d.stopLocked()
	d.applied = cfg
	if next == nil {
		d.sup.SetTargets("discovery", nil)
		d.log.Info("discovery is off (enableDiscovery: false)")
		return nil
	}
	// The Supervisor keeps the old targets until the new informers have
	// listed, so a restart leaves no gap in scraping.
	next.SetWatchServices(d.services && d.leading)
	ctx, cancel := context.WithCancel(d.ctx)
	done := make(chan struct{})
	d.running, d.cancel, d.done = next, cancel, done
	go func() {
		defer close(done)
		if err := next.Run(ctx); err != nil {
			d.log.Error("discovery stopped", "err", err)
		}
	}()
	return nil
}

// setLeading is the election's callback: static sources and, for agents
// that discover them, services follow the lease.
func (d *discovery) setLeading(leading bool) {
	d.sup.SetLeading(leading)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leading = leading
	if d.running != nil && d.services {
		d.running.SetWatchServices(leading)
	}
}

func (d *discovery) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *discovery) stopLocked() {
	if d.running == nil {
		return
	}
	d.cancel()
	<-d.done
	d.running = nil
}
