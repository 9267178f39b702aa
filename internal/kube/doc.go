// Package kube is the collector's Kubernetes discovery (collector.md §5):
// it watches pods (and services while this process leads) through
// client-go informers, turns the annotated or rule-matched ones into
// collector.Target values, and hands the full, sorted target list to a
// callback (normally (*collector.Collector).SetTargets) whenever it
// changes. It owns the per-resource decision (§5.2), the annotations
// (§5.3), the endpoint, name and tags (§5.4), node rules (§5.1), sharding,
// and the discovery self-metrics (§7: discovery.enabled, rules.count,
// targets.registered, plus skipped and watch_errors).
//
// Differences from the reference, all deliberate (§9):
//   - A pod that leaves Running loses its targets at once; the reference
//     kept them until the pod object was deleted.
//   - Informer tombstones (DeletedFinalStateUnknown) delete their targets
//     (defect 16), and a deleted service's target is deleted (defect 15).
//   - IPv6 pod and service IPs are bracketed in URLs; a path without a
//     leading '/' gets one.
//   - A non-numeric or out-of-range port, a scheme other than http/https,
//     or an unparseable collectionInterval/timeout annotation gives no
//     target, one log line naming the resource and
//     kubernetes_collector_discovery_skipped{kind,namespace,name,reason}.
//     The log and counter fire when a resource's problems change, not on
//     every status update; a deleted resource's series is removed.
//   - Rules with an unknown scheme or a filter pattern that does not
//     compile are skipped with a log line, like the reference's invalid
//     rules.
//   - A failing or forbidden list/watch is logged at most every 30s with a
//     hint and counted in kubernetes_collector_discovery_watch_errors; the
//     informers retry with back-off and static sources are unaffected.
//
// Kept for compatibility: an annotated Service is scraped through its
// ClusterIP, so each scrape reaches one backend pod chosen by kube-proxy,
// not every pod (defect 17). Annotate the pods instead to scrape each one.
// Telegraf rules and runtime plugins are not implemented.
//
// # Scaling with shards
//
// One collector watching every pod (an `all` agent) scrapes the whole mesh
// from one process. To split a large mesh, run N collectors as a
// StatefulSet and give each --shards N; the shard index is taken from
// --shard-index or, when absent, from the StatefulSet ordinal at the end of
// the pod's hostname (meshwave-collector-3 is shard 3). Each collector keeps
// only the discovered pod and node targets whose key (such as
// shop-pod-web-1:9100/metrics) hashes to its index, using jump consistent
// hashing, so every target is scraped by exactly one shard, none twice and
// none missed, and growing from N to N+1 shards moves only about 1/(N+1) of
// the targets. Service targets and static prometheus_sources are not
// sharded: the elected leader scrapes them all. All shards must run with
// the same N; while a rollout changes N, a target may briefly be scraped by
// two shards or by none. Size N so that each shard's targets fit its
// memory and scrape budget (watch kubernetes.collector.discovery.targets.registered
// and source.manager.scrape.missed per shard), and scale by changing both
// the replica count and --shards together.
package kube
