package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/meshwave/meshwave/internal/filter"
)

// This file maps every key of collector.md §1.2-§1.8 to its decoder.

func (d *decoder) top(n *yaml.Node, c *Config, seen map[string]*yaml.Node) {
	f := map[string]setter{
		"clusterName":               func(v *yaml.Node, p string) { c.ClusterName = d.str(v, p) },
		"enableDiscovery":           func(v *yaml.Node, p string) { c.EnableDiscovery = d.bool(v, p) },
		"enableEvents":              func(v *yaml.Node, p string) { c.EnableEvents = d.bool(v, p) },
		"flushInterval":             func(v *yaml.Node, p string) { c.FlushInterval = d.duration(v, p) },
		"defaultCollectionInterval": func(v *yaml.Node, p string) { c.DefaultCollectionInterval = d.duration(v, p) },
		"sinkExportDataTimeout":     func(v *yaml.Node, p string) { c.SinkExportDataTimeout = d.duration(v, p) },
		"sinks": func(v *yaml.Node, p string) {
			c.Sinks, d.sinkEventsUnset = nil, nil
			d.list(v, p, func(e *yaml.Node, p string) { c.Sinks = append(c.Sinks, d.sink(e, p, len(c.Sinks))) })
		},
		"sources":   func(v *yaml.Node, p string) { c.Sources = d.sources(v, p) },
		"discovery": func(v *yaml.Node, p string) { c.Discovery = d.discovery(v, p) },
		"events": func(v *yaml.Node, p string) {
			d.warnf(d.key, "%s: accepted, not implemented (ignored)", p)
			c.Events = d.events(v, p)
		},
		"omitBucketSuffix": func(v *yaml.Node, p string) { c.OmitBucketSuffix = d.bool(v, p) },
		"experimental":     func(v *yaml.Node, p string) { c.Experimental = d.strList(v, p) },
	}
	// Remember where each top-level key is, for validation messages.
	for k, set := range f {
		f[k] = func(v *yaml.Node, p string) { seen[k] = v; set(v, p) }
	}
	d.mapping(n, "", f, "")
}

// transform adds the §1.3 keys to f.
func (d *decoder) transform(f map[string]setter, t *Transform) {
	f["source"] = func(v *yaml.Node, p string) { t.Source = d.str(v, p) }
	f["prefix"] = func(v *yaml.Node, p string) { t.Prefix = d.str(v, p) }
	f["tags"] = func(v *yaml.Node, p string) { t.Tags = d.strMap(v, p) }
	f["convertHistograms"] = func(v *yaml.Node, p string) { t.ConvertHistograms = d.bool(v, p) }
	f["filters"] = func(v *yaml.Node, p string) { t.Filters, t.Filter = d.filters(v, p) }
}

func (d *decoder) collection(f map[string]setter, c *Collection) {
	f["collection"] = func(v *yaml.Node, p string) {
		*c = Collection{}
		d.mapping(v, p, map[string]setter{
			"interval": func(v *yaml.Node, p string) { c.Interval = d.duration(v, p) },
			"timeout":  func(v *yaml.Node, p string) { c.Timeout = d.duration(v, p) },
		}, "")
	}
}

// filters decodes a filter block (§4.1), resolves the deprecated aliases
// (the new key wins when non-empty) and compiles it, mapping a pattern
// error back to the pattern's line.
func (d *decoder) filters(n *yaml.Node, path string) (filter.Config, *filter.Filter) {
	// parsed is one key's value; for the tag maps, nodes maps each tag key
	// to its list node so pattern errors can name the line.
	type parsed struct {
		nodes map[string]*yaml.Node
		lists []string
		maps  map[string][]string
	}
	nodes := map[string]*yaml.Node{}
	var raw [11]parsed
	names := []string{"metricAllowList", "metricDenyList", "metricTagAllowList", "metricTagDenyList",
		"tagInclude", "tagExclude", "tagGuaranteeList",
		"metricWhitelist", "metricBlacklist", "metricTagWhitelist", "metricTagBlacklist"}
	f := map[string]setter{}
	for i, name := range names {
		isMap := name == "metricTagAllowList" || name == "metricTagDenyList" ||
			name == "metricTagWhitelist" || name == "metricTagBlacklist"
		f[name] = func(v *yaml.Node, p string) {
			nodes[name] = d.deref(v)
			raw[i] = parsed{}
			if isMap {
				raw[i].nodes = map[string]*yaml.Node{}
				raw[i].maps = map[string][]string{}
				d.anyMap(v, p, func(k string, v *yaml.Node, p string) {
					raw[i].nodes[k] = d.deref(v)
					raw[i].maps[k] = d.strList(v, p)
				})
				return
			}
			raw[i].lists = d.strList(v, p)
		}
	}
	d.mapping(n, path, f, "")

	// pick resolves one alias pair and remembers which key won, so errors
	// point at the right line.
	used := map[string]string{}
	pickList := func(newKey, oldKey string, ni, oi int) []string {
		if len(raw[ni].lists) > 0 || raw[oi].lists == nil {
			used[newKey] = newKey
			if raw[oi].lists != nil && len(raw[ni].lists) > 0 {
				d.warnf(nodes[oldKey], "%s: ignored, %s is set", join(path, oldKey), newKey)
			}
			return raw[ni].lists
		}
		used[newKey] = oldKey
		return raw[oi].lists
	}
	pickMap := func(newKey, oldKey string, ni, oi int) map[string][]string {
		if len(raw[ni].maps) > 0 || raw[oi].maps == nil {
			used[newKey] = newKey
			if raw[oi].maps != nil && len(raw[ni].maps) > 0 {
				d.warnf(nodes[oldKey], "%s: ignored, %s is set", join(path, oldKey), newKey)
			}
			return raw[ni].maps
		}
		used[newKey] = oldKey
		return raw[oi].maps
	}
	c := filter.Config{
		MetricAllowList:    pickList("metricAllowList", "metricWhitelist", 0, 7),
		MetricDenyList:     pickList("metricDenyList", "metricBlacklist", 1, 8),
		MetricTagAllowList: pickMap("metricTagAllowList", "metricTagWhitelist", 2, 9),
		MetricTagDenyList:  pickMap("metricTagDenyList", "metricTagBlacklist", 3, 10),
		TagInclude:         raw[4].lists,
		TagExclude:         raw[5].lists,
		TagGuaranteeList:   raw[6].lists,
	}
	flt, err := filter.New(c)
	var pe *filter.PatternError
	if errors.As(err, &pe) {
		key := pe.List
		if u, ok := used[key]; ok {
			key = u
		}
		node := nodes[key]
		p := join(path, key)
		for i, name := range names {
			if name == key && pe.Key != "" && raw[i].nodes[pe.Key] != nil {
				node = raw[i].nodes[pe.Key]
				p = join(p, pe.Key)
			}
		}
		if node != nil && node.Kind == yaml.SequenceNode && pe.Index >= 0 && pe.Index < len(node.Content) {
			node = node.Content[pe.Index]
			p = fmt.Sprintf("%s[%d]", p, pe.Index)
		}
		if node == nil {
			node = n
		}
		if pe.Index >= 0 {
			d.errorf(node, p, "pattern %q does not compile: %v", pe.Pattern, pe.Err)
		} else {
			d.errorf(node, p, "patterns do not compile as one alternation %q: %v", pe.Pattern, pe.Err)
		}
		return c, nil
	}
	return c, flt
}

func (d *decoder) sources(n *yaml.Node, path string) Sources {
	var s Sources
	notImpl := func(k *yaml.Node, p string) { d.warnf(k, "%s: accepted, not implemented (ignored)", p) }
	plainSrc := func(dst **PlainSource, implemented bool) setter {
		return func(v *yaml.Node, p string) {
			key := d.key
			src := &PlainSource{Line: d.line(key)}
			f := map[string]setter{}
			d.transform(f, &src.Transform)
			d.collection(f, &src.Collection)
			d.mapping(v, p, f, "")
			*dst = src
			if !implemented {
				notImpl(key, p)
			}
		}
	}
	d.mapping(n, path, map[string]setter{
		"prometheus_sources": func(v *yaml.Node, p string) {
			d.list(v, p, func(e *yaml.Node, p string) {
				s.PrometheusSources = append(s.PrometheusSources, d.promSource(e, p))
			})
		},
		"internal_stats_source":      plainSrc(&s.InternalStatsSource, true),
		"kubernetes_cadvisor_source": plainSrc(&s.KubernetesCadvisorSource, false),
		"kubernetes_state_source":    plainSrc(&s.KubernetesStateSource, false),
		"kubernetes_source": func(v *yaml.Node, p string) {
			key := d.key
			k := &KubernetesSource{Line: d.line(key)}
			f := map[string]setter{
				"url":               func(v *yaml.Node, p string) { k.URL = d.str(v, p) },
				"kubeletPort":       func(v *yaml.Node, p string) { k.KubeletPort = d.str(v, p) },
				"kubeletHttps":      func(v *yaml.Node, p string) { k.KubeletHTTPS = d.str(v, p) },
				"inClusterConfig":   func(v *yaml.Node, p string) { k.InClusterConfig = d.str(v, p) },
				"useServiceAccount": func(v *yaml.Node, p string) { k.UseServiceAccount = d.str(v, p) },
				"insecure":          func(v *yaml.Node, p string) { k.Insecure = d.str(v, p) },
				"auth":              func(v *yaml.Node, p string) { k.Auth = d.str(v, p) },
			}
			d.transform(f, &k.Transform)
			d.collection(f, &k.Collection)
			d.mapping(v, p, f, "")
			s.KubernetesSource = k
			notImpl(key, p)
		},
		"telegraf_sources": func(v *yaml.Node, p string) {
			notImpl(d.key, p)
			d.list(v, p, func(e *yaml.Node, p string) {
				t := TelegrafSource{Line: d.line(e)}
				f := map[string]setter{
					"plugins": func(v *yaml.Node, p string) { t.Plugins = d.strList(v, p) },
					"conf":    func(v *yaml.Node, p string) { t.Conf = d.str(v, p) },
				}
				d.transform(f, &t.Transform)
				d.collection(f, &t.Collection)
				d.mapping(e, p, f, "")
				s.TelegrafSources = append(s.TelegrafSources, t)
			})
		},
		"systemd_source": func(v *yaml.Node, p string) {
			key := d.key
			sd := &SystemdSource{Line: d.line(key)}
			f := map[string]setter{
				"taskMetrics":      func(v *yaml.Node, p string) { sd.TaskMetrics = d.bool(v, p) },
				"startTimeMetrics": func(v *yaml.Node, p string) { sd.StartTimeMetrics = d.bool(v, p) },
				"restartMetrics":   func(v *yaml.Node, p string) { sd.RestartMetrics = d.bool(v, p) },
				"unitAllowList":    func(v *yaml.Node, p string) { sd.UnitAllowList = d.strList(v, p) },
				"unitDenyList":     func(v *yaml.Node, p string) { sd.UnitDenyList = d.strList(v, p) },
			}
			d.transform(f, &sd.Transform)
			d.collection(f, &sd.Collection)
			d.mapping(v, p, f, "")
			s.SystemdSource = sd
			notImpl(key, p)
		},
		"kubernetes_control_plane_source": func(v *yaml.Node, p string) {
			key := d.key
			cp := &ControlPlaneSource{Line: d.line(key)}
			f := map[string]setter{}
			d.collection(f, &cp.Collection)
			d.mapping(v, p, f, "")
			s.KubernetesControlPlaneSource = cp
			notImpl(key, p)
		},
	}, "prometheus_sources")
	return s
}

func (d *decoder) promSource(n *yaml.Node, path string) PrometheusSource {
	s := PrometheusSource{Line: d.line(n)}
	urlNode := n
	f := map[string]setter{
		"url":        func(v *yaml.Node, p string) { s.URL = d.str(v, p); urlNode = v },
		"name":       func(v *yaml.Node, p string) { s.Name = d.str(v, p) },
		"httpConfig": func(v *yaml.Node, p string) { s.HTTPConfig = d.httpConfig(v, p) },
	}
	d.transform(f, &s.Transform)
	d.collection(f, &s.Collection)
	d.mapping(n, path, f, "")
	up := join(path, "url")
	if s.URL == "" {
		d.errorf(urlNode, up, "required")
		return s
	}
	u, err := url.ParseRequestURI(s.URL)
	switch {
	case err != nil:
		d.errorf(urlNode, up, "invalid URL %q: %v", s.URL, errors.Unwrap(err))
	case u.Scheme == "" || u.Host == "":
		d.warnf(urlNode, "%s: %q has no scheme://host; every scrape of it will fail", up, s.URL)
	}
	return s
}

func (d *decoder) httpConfig(n *yaml.Node, path string) HTTPConfig {
	var h HTTPConfig
	var tlsNode *yaml.Node
	d.mapping(n, path, map[string]setter{
		"bearer_token":      func(v *yaml.Node, p string) { h.BearerToken = d.str(v, p) },
		"bearer_token_file": func(v *yaml.Node, p string) { h.BearerTokenFile = d.str(v, p) },
		"tls_config": func(v *yaml.Node, p string) {
			tlsNode = v
			t := &h.TLSConfig
			*t = TLSConfig{}
			d.mapping(v, p, map[string]setter{
				"ca_file":              func(v *yaml.Node, p string) { t.CAFile = d.str(v, p) },
				"cert_file":            func(v *yaml.Node, p string) { t.CertFile = d.str(v, p) },
				"key_file":             func(v *yaml.Node, p string) { t.KeyFile = d.str(v, p) },
				"server_name":          func(v *yaml.Node, p string) { t.ServerName = d.str(v, p) },
				"insecure_skip_verify": func(v *yaml.Node, p string) { t.InsecureSkipVerify = d.bool(v, p) },
			}, "")
		},
		"proxy_url":  func(v *yaml.Node, p string) { h.ProxyURL = d.proxyURL(v, p) },
		"basic_auth": func(v *yaml.Node, p string) { h.BasicAuth = d.basicAuth(v, p) },
	}, "")
	if (h.TLSConfig.CertFile == "") != (h.TLSConfig.KeyFile == "") {
		d.errorf(tlsNode, join(path, "tls_config"), "cert_file and key_file must be given together")
	}
	return h
}

// proxyURL accepts a URL string (our fix, §9.12) or the reference's nested
// form mirroring Go's url.URL fields.
func (d *decoder) proxyURL(n *yaml.Node, path string) string {
	n = d.deref(n)
	if n.Kind == yaml.MappingNode {
		var u url.URL
		d.mapping(n, path, map[string]setter{
			"url": func(v *yaml.Node, p string) {
				u = url.URL{}
				d.mapping(v, p, map[string]setter{
					"scheme":      func(v *yaml.Node, p string) { u.Scheme = d.str(v, p) },
					"opaque":      func(v *yaml.Node, p string) { u.Opaque = d.str(v, p) },
					"host":        func(v *yaml.Node, p string) { u.Host = d.str(v, p) },
					"path":        func(v *yaml.Node, p string) { u.Path = d.str(v, p) },
					"rawpath":     func(v *yaml.Node, p string) { u.RawPath = d.str(v, p) },
					"forcequery":  func(v *yaml.Node, p string) { u.ForceQuery = d.bool(v, p) },
					"rawquery":    func(v *yaml.Node, p string) { u.RawQuery = d.str(v, p) },
					"fragment":    func(v *yaml.Node, p string) { u.Fragment = d.str(v, p) },
					"rawfragment": func(v *yaml.Node, p string) { u.RawFragment = d.str(v, p) },
				}, "")
			},
		}, "")
		if u == (url.URL{}) {
			return ""
		}
		return u.String()
	}
	s := d.str(n, path)
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err != nil || u.Scheme == "" || u.Host == "" {
		d.errorf(n, path, "invalid proxy URL %q: expected scheme://host[:port]", s)
	}
	return s
}

func (d *decoder) basicAuth(n *yaml.Node, path string) *BasicAuth {
	b := &BasicAuth{}
	d.mapping(n, path, map[string]setter{
		"username":      func(v *yaml.Node, p string) { b.Username = d.str(v, p) },
		"password":      func(v *yaml.Node, p string) { b.Password = d.str(v, p) },
		"password_file": func(v *yaml.Node, p string) { b.PasswordFile = d.str(v, p) },
	}, "")
	if b.Password != "" && b.PasswordFile != "" {
		d.errorf(n, path, "password and password_file are mutually exclusive")
	}
	if b.Username == "" {
		d.errorf(n, path, "username required")
	}
	return b
}

func (d *decoder) selector(n *yaml.Node, path string) Selector {
	var s Selector
	d.mapping(n, path, map[string]setter{
		"resourceType": func(v *yaml.Node, p string) { s.ResourceType = d.str(v, p) },
		"images":       func(v *yaml.Node, p string) { s.Images = d.strList(v, p) },
		"labels":       func(v *yaml.Node, p string) { s.Labels = d.strListMap(v, p) },
		"namespaces":   func(v *yaml.Node, p string) { s.Namespaces = d.strList(v, p) },
	}, "")
	return s
}

func (d *decoder) discovery(n *yaml.Node, path string) Discovery {
	var ds Discovery
	var intervalNode *yaml.Node
	d.mapping(n, path, map[string]setter{
		"discovery_interval": func(v *yaml.Node, p string) {
			ds.DiscoveryInterval = d.duration(v, p)
			if !isNull(d.deref(v)) {
				intervalNode = v
			}
		},
		"annotation_prefix": func(v *yaml.Node, p string) { ds.AnnotationPrefix = d.str(v, p) },
		"annotation_excludes": func(v *yaml.Node, p string) {
			ds.AnnotationExcludes = nil
			d.list(v, p, func(e *yaml.Node, p string) {
				s := d.selector(e, p)
				if msg := s.invalid(false); msg != "" {
					d.warnf(e, "%s: %s; entry skipped", p, msg)
					return
				}
				ds.AnnotationExcludes = append(ds.AnnotationExcludes, s)
			})
		},
		"enable_runtime_plugins": func(v *yaml.Node, p string) {
			ds.EnableRuntimePlugins = d.bool(v, p)
			if ds.EnableRuntimePlugins {
				d.warnf(v, "%s: accepted, not implemented (ignored)", p)
			}
		},
		"disable_annotation_discovery": func(v *yaml.Node, p string) { ds.DisableAnnotationDiscovery = d.bool(v, p) },
		"plugins": func(v *yaml.Node, p string) {
			ds.Plugins = nil
			d.list(v, p, func(e *yaml.Node, p string) {
				if r, ok := d.pluginRule(e, p); ok {
					ds.Plugins = append(ds.Plugins, r)
				}
			})
		},
		"global": func(v *yaml.Node, p string) {
			d.warnf(d.key, "%s: deprecated, ignored in this file", p)
			g := &DiscoveryGlobal{}
			d.mapping(v, p, map[string]setter{
				"discovery_interval": func(v *yaml.Node, p string) { g.DiscoveryInterval = d.duration(v, p) },
			}, "")
			ds.Global = g
		},
		"prom_configs": func(v *yaml.Node, p string) {
			d.warnf(d.key, "%s: deprecated, ignored in this file", p)
			d.list(v, p, func(e *yaml.Node, p string) { ds.PromConfigs = append(ds.PromConfigs, d.promConfig(e, p)) })
		},
	}, "")
	if intervalNode != nil && ds.DiscoveryInterval <= 0 {
		d.errorf(intervalNode, join(path, "discovery_interval"), "must be positive, got %v", ds.DiscoveryInterval)
	}
	if ds.DiscoveryInterval == 0 {
		ds.DiscoveryInterval = DefaultDiscoveryInterval
	}
	if ds.AnnotationPrefix == "" {
		ds.AnnotationPrefix = DefaultAnnotationPrefix
	}
	return ds
}

// invalid returns why the reference would reject s ("" if valid). Node
// rules need no images/labels/namespaces.
func (s *Selector) invalid(rule bool) string {
	switch s.ResourceType {
	case "", "pod", "service":
	case "node":
		if rule {
			return ""
		}
	default:
		return fmt.Sprintf("invalid resourceType %q (want pod, service or node)", s.ResourceType)
	}
	if len(s.Images) == 0 && len(s.Labels) == 0 && len(s.Namespaces) == 0 {
		return "no selectors specified"
	}
	return ""
}

func (d *decoder) pluginRule(n *yaml.Node, path string) (PluginRule, bool) {
	r := PluginRule{Line: d.line(n)}
	var confNode *yaml.Node
	f := map[string]setter{
		"name":          func(v *yaml.Node, p string) { r.Name = d.str(v, p) },
		"type":          func(v *yaml.Node, p string) { r.Type = d.str(v, p) },
		"selectors":     func(v *yaml.Node, p string) { r.Selectors = d.selector(v, p) },
		"port":          func(v *yaml.Node, p string) { r.Port = d.str(v, p) },
		"scheme":        func(v *yaml.Node, p string) { r.Scheme = d.str(v, p) },
		"path":          func(v *yaml.Node, p string) { r.Path = d.str(v, p) },
		"conf":          func(v *yaml.Node, p string) { r.Conf = d.str(v, p); confNode = d.deref(v) },
		"includeLabels": func(v *yaml.Node, p string) { r.IncludeLabels = d.str(v, p) },
	}
	d.transform(f, &r.Transform)
	d.collection(f, &r.Collection)
	d.mapping(n, path, f, "")
	if r.Scheme == "" {
		r.Scheme = "http"
	}
	if r.Path == "" {
		r.Path = "/metrics"
	}
	if r.IncludeLabels == "" {
		r.IncludeLabels = "true"
	}
	skip := func(format string, args ...any) (PluginRule, bool) {
		d.warnf(n, "%s: %s; the reference skips this rule, so do we", path, fmt.Sprintf(format, args...))
		return r, false
	}
	isProm := strings.Contains(r.Type, "prometheus")
	if !isProm && !strings.Contains(r.Type, "telegraf") {
		return skip("invalid type %q (must contain prometheus or telegraf)", r.Type)
	}
	if r.Port != "" {
		if _, err := strconv.ParseInt(r.Port, 10, 32); err != nil {
			return skip("invalid port %q", r.Port)
		}
	}
	if msg := r.Selectors.invalid(true); msg != "" {
		return skip("%s", msg)
	}
	if !isProm {
		d.warnf(n, "%s: telegraf rules are accepted, not implemented (ignored)", path)
	}
	if isProm && r.Conf != "" && confNode != nil {
		r.ConfHTTP = d.embeddedHTTPConfig(confNode, join(path, "conf"))
	}
	return r, true
}

// embeddedHTTPConfig parses a rule's conf string strictly as httpConfig.
// The reference then produces no target for a bad conf, so problems are
// warnings; lines are mapped into the file.
func (d *decoder) embeddedHTTPConfig(n *yaml.Node, path string) *HTTPConfig {
	sub := &decoder{file: d.file, lineOff: blockOffset(n, d.lineOff), colOff: d.colOff}
	root, err := parseOne(sub, []byte(n.Value))
	var h HTTPConfig
	if err == nil {
		h = sub.httpConfig(root, path)
	}
	if err != nil || len(sub.errs) > 0 {
		for _, e := range append(sub.errs, err) {
			var ce *Error
			switch {
			case errors.As(e, &ce):
				d.warns = append(d.warns, Warning{File: d.file, Line: ce.Line,
					Message: strings.TrimPrefix(ce.Key+": ", ": ") + ce.Msg + "; this rule will produce no targets"})
			case e != nil:
				d.warnf(n, "%s: %v; this rule will produce no targets", path, e)
			}
		}
		return nil
	}
	d.warns = append(d.warns, sub.warns...)
	return &h
}

func (d *decoder) promConfig(n *yaml.Node, path string) PromConfig {
	var c PromConfig
	d.mapping(n, path, map[string]setter{
		"name":          func(v *yaml.Node, p string) { c.Name = d.str(v, p) },
		"resourceType":  func(v *yaml.Node, p string) { c.ResourceType = d.str(v, p) },
		"labels":        func(v *yaml.Node, p string) { c.Labels = d.strMap(v, p) },
		"namespace":     func(v *yaml.Node, p string) { c.Namespace = d.str(v, p) },
		"port":          func(v *yaml.Node, p string) { c.Port = d.str(v, p) },
		"path":          func(v *yaml.Node, p string) { c.Path = d.str(v, p) },
		"scheme":        func(v *yaml.Node, p string) { c.Scheme = d.str(v, p) },
		"prefix":        func(v *yaml.Node, p string) { c.Prefix = d.str(v, p) },
		"tags":          func(v *yaml.Node, p string) { c.Tags = d.strMap(v, p) },
		"source":        func(v *yaml.Node, p string) { c.Source = d.str(v, p) },
		"includeLabels": func(v *yaml.Node, p string) { c.IncludeLabels = d.str(v, p) },
		"filters":       func(v *yaml.Node, p string) { c.Filters, _ = d.filters(v, p) },
	}, "")
	return c
}

func (d *decoder) events(n *yaml.Node, path string) *Events {
	e := &Events{}
	d.mapping(n, path, map[string]setter{
		"filters": func(v *yaml.Node, p string) {
			var allow, deny, white, black map[string][]string
			var allowSets, denySets, whiteSets, blackSets []map[string][]string
			sets := func(dst *[]map[string][]string) setter {
				return func(v *yaml.Node, p string) {
					*dst = nil
					d.list(v, p, func(e *yaml.Node, p string) { *dst = append(*dst, d.strListMap(e, p)) })
				}
			}
			d.mapping(v, p, map[string]setter{
				"tagAllowList":     func(v *yaml.Node, p string) { allow = d.strListMap(v, p) },
				"tagDenyList":      func(v *yaml.Node, p string) { deny = d.strListMap(v, p) },
				"tagWhitelist":     func(v *yaml.Node, p string) { white = d.strListMap(v, p) },
				"tagBlacklist":     func(v *yaml.Node, p string) { black = d.strListMap(v, p) },
				"tagAllowListSets": sets(&allowSets),
				"tagDenyListSets":  sets(&denySets),
				"tagWhitelistSets": sets(&whiteSets),
				"tagBlacklistSets": sets(&blackSets),
			}, "")
			e.Filters = EventFilters{
				TagAllowList:     orMap(allow, white),
				TagDenyList:      orMap(deny, black),
				TagAllowListSets: orSets(allowSets, whiteSets),
				TagDenyListSets:  orSets(denySets, blackSets),
			}
		},
	}, "")
	return e
}

func orMap(a, b map[string][]string) map[string][]string {
	if len(a) > 0 {
		return a
	}
	return b
}

func orSets(a, b []map[string][]string) []map[string][]string {
	if len(a) > 0 {
		return a
	}
	return b
}
