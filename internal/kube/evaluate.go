package kube

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshwave/meshwave/internal/collector"
	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/filter"
)

// Resource kinds, as used in target names and tags (collector.md §5.4).
const (
	kindPod     = "pod"
	kindService = "service"
	kindNode    = "node"
)

// podTemplateHash is skipped in tags: it changes on every rollout and would
// split every series (§5.4).
const podTemplateHash = "pod-template-hash"

// resource is what discovery needs of a pod, service or node.
type resource struct {
	kind, namespace, name, ip string
	labels, annotations       map[string]string
	images                    []string // spec.containers only, as the reference
}

// podResource reports whether p is eligible (§5.1): Running, with an IP, and
// on nodeName when that is set. The node check repeats the informer's field
// selector so that a client ignoring it (the fake clientset) stays correct.
func podResource(p *corev1.Pod, nodeName string) (resource, bool) {
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.Status.PodIP == "None" {
		return resource{}, false
	}
	if nodeName != "" && p.Spec.NodeName != nodeName {
		return resource{}, false
	}
	images := make([]string, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		images[i] = c.Image
	}
	return resource{kind: kindPod, namespace: p.Namespace, name: p.Name, ip: p.Status.PodIP,
		labels: p.Labels, annotations: p.Annotations, images: images}, true
}

// serviceResource reports whether s has a ClusterIP; headless services are
// skipped (§5.1).
func serviceResource(s *corev1.Service) (resource, bool) {
	if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == "None" {
		return resource{}, false
	}
	return resource{kind: kindService, namespace: s.Namespace, name: s.Name, ip: s.Spec.ClusterIP,
		labels: s.Labels, annotations: s.Annotations}, true
}

// nodeResource reports whether n is Ready with an address. Only its name is
// kept: the reference sees no namespace, labels or annotations for nodes.
func nodeResource(n *corev1.Node) (resource, bool) {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	var internal, external string
	for _, a := range n.Status.Addresses {
		switch {
		case a.Type == corev1.NodeInternalIP && internal == "":
			internal = a.Address
		case a.Type == corev1.NodeExternalIP && external == "":
			external = a.Address
		}
	}
	ip := internal
	if ip == "" {
		ip = external
	}
	if !ready || ip == "" {
		return resource{}, false
	}
	return resource{kind: kindNode, name: n.Name, ip: ip}, true
}

// selector is a compiled config.Selector. A nil filter leaves its field
// unconstrained; filter's allow-list semantics are exactly §4.2's globs.
type selector struct {
	kind       string
	images     *filter.Filter
	namespaces *filter.Filter
	labels     map[string]*filter.Filter // nil: no labels condition
}

func compileSelector(s config.Selector, rule bool) (selector, error) {
	sel := selector{kind: s.ResourceType}
	if sel.kind == "" {
		sel.kind = kindPod
	}
	switch sel.kind {
	case kindPod, kindService:
	case kindNode:
		if rule {
			return sel, nil // nodes carry no images, labels or namespace
		}
		return sel, fmt.Errorf("resourceType node is not valid in annotation_excludes")
	default:
		return sel, fmt.Errorf("invalid resourceType %q (want pod, service or node)", s.ResourceType)
	}
	if len(s.Images) == 0 && len(s.Labels) == 0 && len(s.Namespaces) == 0 {
		return sel, fmt.Errorf("no selectors specified")
	}
	var err error
	if sel.images, err = filter.New(filter.Config{MetricAllowList: s.Images}); err != nil {
		return sel, fmt.Errorf("images: %w", err)
	}
	if sel.namespaces, err = filter.New(filter.Config{MetricAllowList: s.Namespaces}); err != nil {
		return sel, fmt.Errorf("namespaces: %w", err)
	}
	if len(s.Labels) > 0 {
		sel.labels = make(map[string]*filter.Filter, len(s.Labels))
		for k, globs := range s.Labels {
			if sel.labels[k], err = filter.New(filter.Config{MetricAllowList: globs}); err != nil {
				return sel, fmt.Errorf("labels.%s: %w", k, err)
			}
		}
	}
	return sel, nil
}

// match ANDs every condition of §5.2.
func (s *selector) match(r *resource) bool {
	if s.kind != r.kind {
		return false
	}
	if r.kind == kindNode {
		return true
	}
	if s.labels != nil {
		if len(r.labels) == 0 {
			return false
		}
		for k, f := range s.labels {
			v, ok := r.labels[k]
			if !ok || !f.Keep([]byte(v), nil) {
				return false
			}
		}
	}
	if s.namespaces != nil && !s.namespaces.Keep([]byte(r.namespace), nil) {
		return false
	}
	if s.images != nil {
		for _, img := range r.images {
			if s.images.Keep([]byte(img), nil) {
				return true
			}
		}
		return false
	}
	return true
}

// rule is a validated prometheus plugin rule with its selector and filter
// compiled once, so that re-evaluations yield identical Filter pointers and
// the collector sees unchanged targets as unchanged.
type rule struct {
	config.PluginRule
	sel    selector
	filter *filter.Filter
}

func compileRule(r config.PluginRule) (rule, error) {
	out := rule{PluginRule: r, filter: r.Filter}
	if !strings.Contains(r.Type, "prometheus") {
		return out, fmt.Errorf("type %q is not a prometheus rule (telegraf rules are not implemented)", r.Type)
	}
	if r.Port != "" {
		if _, err := parsePort(r.Port); err != nil {
			return out, err
		}
	}
	if r.Scheme != "" {
		if _, err := parseScheme(r.Scheme); err != nil {
			return out, err
		}
	}
	var err error
	if out.sel, err = compileSelector(r.Selectors, true); err != nil {
		return out, err
	}
	if out.filter == nil {
		if out.filter, err = filter.New(r.Filters); err != nil {
			return out, err
		}
	}
	return out, nil
}

// skipError is why a resource produced no target, with a stable reason for
// the skipped counter.
type skipError struct {
	reason string // bad_port, bad_scheme, bad_interval, bad_timeout, bad_conf
	msg    string
}

func (e *skipError) Error() string { return e.msg }

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, &skipError{"bad_port", fmt.Sprintf("port %q is not a number in 1-65535", s)}
	}
	return n, nil
}

// parseScheme accepts http and https in any case, as url.Parse lowercases
// schemes in the reference; anything else could never be scraped.
func parseScheme(s string) (string, error) {
	if l := strings.ToLower(s); l == "http" || l == "https" {
		return l, nil
	}
	return "", &skipError{"bad_scheme", fmt.Sprintf("scheme %q is not http or https", s)}
}

// evaluator turns resources into targets (§5.2-§5.4). It holds no mutable
// state, so the informer handlers call it concurrently.
type evaluator struct {
	rules              []rule
	excludes           []selector
	prefix             string // annotation prefix, without the '/'
	disableAnnotations bool
	defaultInterval    time.Duration
	defaultSource      string // the collector's node, normally
}

// evaluate returns r's targets, and why targets it should have had were not
// produced. Rules come first; annotation mode only when no rule produced a
// target and r is not excluded. A later target with an earlier one's key
// replaces it, as a later provider of the same name does in the reference.
func (e *evaluator) evaluate(r *resource) ([]collector.Target, []*skipError) {
	var out []collector.Target
	var skips []*skipError
	add := func(t collector.Target, err error) {
		if err != nil {
			var se *skipError
			if !errors.As(err, &se) {
				se = &skipError{"error", err.Error()}
			}
			for _, s := range skips {
				if *s == *se {
					return
				}
			}
			skips = append(skips, se)
			return
		}
		for i := range out {
			if out[i].Key == t.Key {
				out[i] = t
				return
			}
		}
		out = append(out, t)
	}
	scrape := r.annotations[e.prefix+"/scrape"] == "true"
	for i := range e.rules {
		rl := &e.rules[i]
		if !rl.sel.match(r) || (rl.Name == "" && !scrape) {
			continue
		}
		add(e.encode(r, rl))
	}
	if len(out) == 0 && scrape && !e.disableAnnotations && !e.excluded(r) {
		add(e.encode(r, nil))
	}
	return out, skips
}

func (e *evaluator) excluded(r *resource) bool {
	for i := range e.excludes {
		if e.excludes[i].match(r) {
			return true
		}
	}
	return false
}

// first returns the first non-empty value: annotation > rule > default.
func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// encode builds one target; rl is nil in annotation mode.
func (e *evaluator) encode(r *resource, rl *rule) (collector.Target, error) {
	ann := func(name string) string { return r.annotations[e.prefix+"/"+name] }
	var rc config.PluginRule
	var ruleFilter *filter.Filter
	if rl != nil {
		rc, ruleFilter = rl.PluginRule, rl.filter
	}
	scheme, err := parseScheme(first(ann("scheme"), rc.Scheme, "http"))
	if err != nil {
		return collector.Target{}, err
	}
	defaultPort := ""
	if strings.Contains(r.name, "kube-state-metrics") {
		defaultPort = "8080"
	}
	port := first(ann("port"), rc.Port, defaultPort)
	if port != "" {
		if _, err := parsePort(port); err != nil {
			return collector.Target{}, err
		}
	}
	path := first(ann("path"), rc.Path, "/metrics")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // the reference would glue it to the port
	}
	interval, err := duration(ann("collectionInterval"), "collectionInterval", "bad_interval")
	if err != nil {
		return collector.Target{}, err
	}
	timeout, err := duration(ann("timeout"), "timeout", "bad_timeout")
	if err != nil {
		return collector.Target{}, err
	}
	interval = cmp.Or(interval, rc.Collection.Interval, e.defaultInterval, config.DefaultCollectionInterval)
	timeout = cmp.Or(timeout, rc.Collection.Timeout, config.DefaultCollectionTimeout)

	var httpConf config.HTTPConfig
	if rc.Conf != "" {
		if rc.ConfHTTP == nil {
			return collector.Target{}, &skipError{"bad_conf", fmt.Sprintf("rule %q: conf is not a valid httpConfig", rc.Name)}
		}
		httpConf = *rc.ConfHTTP
	} else {
		skip := true
		if v := ann("insecureSkipVerify"); v != "" {
			skip, _ = strconv.ParseBool(v) // anything unparseable means false, as the reference
		} else if ann("serverName") != "" {
			skip = false
		}
		httpConf.TLSConfig = config.TLSConfig{InsecureSkipVerify: skip, ServerName: ann("serverName")}
	}

	host := r.ip
	switch {
	case port != "":
		host = net.JoinHostPort(r.ip, port)
	case strings.Contains(r.ip, ":"):
		host = "[" + r.ip + "]" // IPv6; the reference leaves it bare and unusable
	}
	name := r.kind + "-" + r.name
	if r.namespace != "" {
		name = r.namespace + "-" + name
	}
	if port != "" {
		name += ":" + port
	}
	name += path

	tags := map[string]string{r.kind: r.name}
	if r.namespace != "" {
		tags["namespace"] = r.namespace
	}
	for k, v := range rc.Tags {
		if k != "" && v != "" && k != podTemplateHash {
			tags[k] = v
		}
	}
	if first(ann("includeLabels"), rc.IncludeLabels, "true") == "true" {
		for k, v := range r.labels {
			if k != "" && v != "" && k != podTemplateHash {
				tags["label."+k] = v
			}
		}
	}
	discovered := "annotation"
	if rc.Name != "" {
		discovered = "rule"
	}
	return collector.Target{
		Key:        name,
		Discovered: discovered,
		Source: config.PrometheusSource{
			URL:        scheme + "://" + host + path,
			Name:       name,
			HTTPConfig: httpConf,
			Transform: config.Transform{
				Source:            first(ann("source"), rc.Source, e.defaultSource, r.name),
				Prefix:            first(ann("prefix"), rc.Prefix),
				Tags:              tags,
				ConvertHistograms: rc.ConvertHistograms,
				Filters:           rc.Filters,
				Filter:            ruleFilter,
			},
			Collection: config.Collection{Interval: interval, Timeout: timeout},
			Line:       rc.Line,
		},
	}, nil
}

// duration parses a collectionInterval or timeout annotation: a Go duration
// with a unit; "" and "0s" mean unset. Unparseable or negative values are
// errors, which the reference also treats as "no target".
func duration(v, annotation, reason string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, &skipError{reason, fmt.Sprintf("%s %q is not a non-negative Go duration such as 30s", annotation, v)}
	}
	return d, nil
}
