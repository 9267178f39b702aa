package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return Parse(data, path)
}

// Parse parses a collector configuration, either a plain collector.yaml or
// a Kubernetes manifest (possibly several `---` documents) holding it in a
// ConfigMap under data key config.yaml or collector.yaml. filename is used
// in messages. Warnings are returned even when err is non-nil.
func Parse(data []byte, filename string) (*Config, []Warning, error) {
	d := &decoder{file: filename}
	docs, err := parseAll(d, data)
	if err != nil {
		return nil, nil, err
	}
	if len(docs) == 0 {
		return nil, nil, &Error{File: filename, Line: 1, Msg: "empty configuration"}
	}
	root := docs[0]
	if isManifest(d, root) {
		if root, err = d.fromManifest(docs, data); err != nil {
			return nil, d.warns, err
		}
	} else if len(docs) > 1 {
		return nil, nil, &Error{File: filename, Line: d.line(docs[1]),
			Msg: "more than one YAML document; expected a collector configuration or a Kubernetes manifest with a ConfigMap"}
	}
	c := &Config{File: filename, ClusterName: DefaultClusterName}
	seen := map[string]*yaml.Node{}
	d.top(root, c, seen)
	d.finish(c, root, seen)
	if len(d.errs) > 0 {
		return nil, d.warns, errors.Join(d.errs...)
	}
	return c, d.warns, nil
}

// parseAll decodes every document of data into its root node.
func parseAll(d *decoder, data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, d.yamlError(err)
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			docs = append(docs, n.Content[0])
		}
	}
}

// parseOne decodes data that must hold exactly one document.
func parseOne(d *decoder, data []byte) (*yaml.Node, error) {
	docs, err := parseAll(d, data)
	switch {
	case err != nil:
		return nil, err
	case len(docs) == 0:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: 1}, nil
	case len(docs) > 1:
		return nil, &Error{File: d.file, Line: d.line(docs[1]), Msg: "more than one YAML document"}
	}
	return docs[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError rewrites a yaml.v3 syntax error as file:line, with the line
// mapped into the file.
func (d *decoder) yamlError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: d.file, Line: line + d.lineOff, Msg: "invalid YAML: " + msg[len(m[0]):]}
	}
	return &Error{File: d.file, Line: 1 + d.lineOff, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// isManifest reports whether root looks like a Kubernetes object; a
// collector configuration has neither key.
func isManifest(d *decoder, root *yaml.Node) bool {
	return lookup(d, root, "apiVersion") != nil && lookup(d, root, "kind") != nil
}

func lookup(d *decoder, n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	n = d.deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := d.deref(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return d.deref(n.Content[i+1])
		}
	}
	return nil
}

// configKeys are the ConfigMap data keys that hold the configuration:
// operator era first, then manual era (§1.10).
var configKeys = [...]string{"config.yaml", "collector.yaml"}

// fromManifest finds the configuration embedded in a ConfigMap and parses
// it with line numbers mapped into the manifest file.
func (d *decoder) fromManifest(docs []*yaml.Node, file []byte) (*yaml.Node, error) {
	var found *yaml.Node
	for _, doc := range docs {
		kind := lookup(d, doc, "kind")
		if kind == nil || kind.Value != "ConfigMap" {
			continue
		}
		data := lookup(d, doc, "data")
		for _, key := range configKeys {
			v := lookup(d, data, key)
			if v == nil {
				continue
			}
			if found != nil {
				d.warnf(v, "data.%s: ignored, the configuration at line %d is used", key, d.line(found))
				continue
			}
			if v.Kind != yaml.ScalarNode {
				return nil, &Error{File: d.file, Line: d.line(v), Key: "data." + key, Msg: "expected a string (use `" + key + ": |`)"}
			}
			found = v
		}
	}
	if found == nil {
		return nil, &Error{File: d.file, Line: 1,
			Msg: "Kubernetes manifest without a ConfigMap holding data key config.yaml or collector.yaml"}
	}
	d.lineOff = blockOffset(found, 0)
	d.colOff = blockIndent(found, file)
	return parseOne(d, []byte(found.Value))
}

// blockOffset is what to add to a line of n's string value to get a line
// of the file: a block scalar's content starts on the line after its `|`.
func blockOffset(n *yaml.Node, lineOff int) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + lineOff
	}
	return n.Line - 1 + lineOff
}

// blockIndent is the indentation stripped from a block scalar's lines, so
// columns can be mapped into the file.
func blockIndent(n *yaml.Node, file []byte) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		return 0
	}
	lines := bytes.Split(file, []byte("\n"))
	for i := n.Line; i < len(lines); i++ {
		l := bytes.TrimRight(lines[i], " \r")
		if len(l) > 0 {
			return len(l) - len(bytes.TrimLeft(l, " "))
		}
	}
	return 0
}

// sink decodes the index'th sinks entry.
func (d *decoder) sink(n *yaml.Node, path string, index int) Sink {
	s := Sink{Line: d.line(n)}
	nodes := map[string]*yaml.Node{}
	f := map[string]setter{
		"type":                func(v *yaml.Node, p string) { s.Type = d.str(v, p) },
		"proxyAddress":        func(v *yaml.Node, p string) { s.ProxyAddress = d.str(v, p) },
		"server":              func(v *yaml.Node, p string) { s.Server = d.str(v, p) },
		"token":               func(v *yaml.Node, p string) { s.Token = d.str(v, p) },
		"batchSize":           func(v *yaml.Node, p string) { s.BatchSize = d.int(v, p) },
		"maxBufferSize":       func(v *yaml.Node, p string) { s.MaxBufferSize = d.int(v, p) },
		"testMode":            func(v *yaml.Node, p string) { s.TestMode = d.bool(v, p) },
		"errorLogPercent":     func(v *yaml.Node, p string) { s.ErrorLogPercent = d.float(v, p) },
		"enableEvents":        func(v *yaml.Node, p string) { s.EnableEvents = d.bool(v, p) },
		"externalEndpointURL": func(v *yaml.Node, p string) { s.ExternalEndpointURL = d.str(v, p) },
		"file":                func(v *yaml.Node, p string) { s.File = d.str(v, p) },
	}
	d.transform(f, &s.Transform)
	for k, set := range f {
		f[k] = func(v *yaml.Node, p string) { nodes[k] = v; set(v, p) }
	}
	d.mapping(n, path, f, "")
	if nodes["enableEvents"] == nil {
		d.sinkEventsUnset = append(d.sinkEventsUnset, index)
	}
	at := func(key string) *yaml.Node {
		if v := nodes[key]; v != nil {
			return v
		}
		return n
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	} else if s.BatchSize < 0 {
		d.errorf(at("batchSize"), join(path, "batchSize"), "must be positive, got %d", s.BatchSize)
	}
	if s.MaxBufferSize == 0 {
		s.MaxBufferSize = DefaultMaxBufferSize
	} else if s.MaxBufferSize < 0 {
		d.errorf(at("maxBufferSize"), join(path, "maxBufferSize"), "must be positive, got %d", s.MaxBufferSize)
	}
	if nodes["errorLogPercent"] != nil && (s.ErrorLogPercent <= 0 || s.ErrorLogPercent > 1) {
		d.warnf(at("errorLogPercent"), "%s: %v is outside (0, 1]; using %v", join(path, "errorLogPercent"), s.ErrorLogPercent, DefaultErrorLogPercent)
	}
	if !(s.ErrorLogPercent > 0 && s.ErrorLogPercent <= 1) {
		s.ErrorLogPercent = DefaultErrorLogPercent
	}
	switch s.Kind() {
	case SinkExternal:
		d.warnf(at("type"), "%s: type external: accepted, not implemented (sink ignored)", path)
	case SinkTest:
		d.warnf(at("testMode"), "%s: testMode: accepted, not implemented (sink ignored)", path)
	case SinkProxy:
		host, port, err := splitProxyAddress(s.ProxyAddress)
		if err != nil {
			d.errorf(at("proxyAddress"), join(path, "proxyAddress"), "%v", err)
		}
		s.ProxyHost, s.ProxyPort = host, port
	case SinkDirect:
		if s.Token == "" {
			d.errorf(n, path, "token missing for Wavefront sink")
		}
		if u, err := url.Parse(s.Server); err != nil || u.Scheme == "" || u.Host == "" {
			d.errorf(at("server"), join(path, "server"), "invalid URL %q: expected https://host", s.Server)
		}
	case SinkFile:
		if s.File == "" {
			d.errorf(n, path, "proxyAddress, server or file property required for Wavefront sink")
		}
	}
	return s
}

// splitProxyAddress accepts host:port, [v6]:port and a bare host (or bare
// IPv6 address) with the default port 2878 (§9.11).
func splitProxyAddress(addr string) (string, int, error) {
	if strings.Contains(addr, "://") {
		return "", 0, fmt.Errorf("%q is a URL; want host[:port]", addr)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		switch {
		case errors.As(err, &ae) && ae.Err == "missing port in address":
			host, portStr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), ""
		case net.ParseIP(addr) != nil: // bare IPv6 such as ::1
			host, portStr = addr, ""
		default:
			return "", 0, fmt.Errorf("invalid address %q: %v", addr, errors.Unwrap(err))
		}
	}
	if host == "" {
		return "", 0, fmt.Errorf("missing host in %q", addr)
	}
	if portStr == "" {
		return host, DefaultProxyPort, nil
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("error parsing proxy port %q in %q", portStr, addr)
	}
	return host, port, nil
}

// finish applies the top-level defaults and cross-key validation (§1.2).
func (d *decoder) finish(c *Config, root *yaml.Node, seen map[string]*yaml.Node) {
	at := func(key string) *yaml.Node {
		if v := seen[key]; v != nil {
			return v
		}
		return root
	}
	// The reference checks flushInterval before everything else.
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	} else if c.FlushInterval < MinFlushInterval {
		d.errs = append([]error{&Error{File: d.file, Line: d.line(at("flushInterval")), Key: "flushInterval",
			Msg: fmt.Sprintf("metric resolution should not be less than 5 seconds: %d", int64(c.FlushInterval))}}, d.errs...)
	}
	if c.DefaultCollectionInterval < 0 {
		d.errorf(at("defaultCollectionInterval"), "defaultCollectionInterval", "must be positive, got %v", c.DefaultCollectionInterval)
	} else if c.DefaultCollectionInterval == 0 {
		c.DefaultCollectionInterval = DefaultCollectionInterval
	}
	if c.SinkExportDataTimeout < 0 {
		d.errorf(at("sinkExportDataTimeout"), "sinkExportDataTimeout", "must be positive, got %v", c.SinkExportDataTimeout)
	} else if c.SinkExportDataTimeout == 0 {
		c.SinkExportDataTimeout = DefaultSinkExportDataTimeout
	}
	if len(c.Sinks) == 0 {
		d.errorf(at("sinks"), "sinks", "missing sink: at least one sink is required")
	}
	for _, i := range d.sinkEventsUnset {
		c.Sinks[i].EnableEvents = c.EnableEvents
	}
	if seen["sources"] == nil || isNull(d.deref(seen["sources"])) {
		d.errorf(at("sources"), "sources", "missing sources")
	}
	if c.EnableEvents {
		d.warnf(at("enableEvents"), "enableEvents: accepted, not implemented (events are not collected)")
	}
	for _, e := range c.Experimental {
		if e != ExperimentalHistogramConversion {
			d.warnf(at("experimental"), "experimental: unknown value %q ignored", e)
		}
	}
	// Providers are keyed by name, else URL: a later duplicate replaces the
	// earlier one (§1.5).
	srcs := c.Sources.PrometheusSources[:0]
	index := map[string]int{}
	for _, s := range c.Sources.PrometheusSources {
		if s.Collection.Interval < 0 || s.Collection.Timeout < 0 {
			d.errAt(s.Line, 0, "sources.prometheus_sources", "collection interval and timeout must be positive")
		}
		if s.Collection.Interval == 0 {
			s.Collection.Interval = c.DefaultCollectionInterval
		}
		if s.Collection.Timeout == 0 {
			s.Collection.Timeout = DefaultCollectionTimeout
		}
		if i, dup := index[s.Key()]; dup {
			d.warns = append(d.warns, Warning{File: d.file, Line: s.Line, Message: fmt.Sprintf(
				"sources.prometheus_sources: %q replaces the source at line %d with the same name/URL; give them distinct names to keep both",
				s.Key(), srcs[i].Line)})
			srcs[i] = s
			continue
		}
		index[s.Key()] = len(srcs)
		srcs = append(srcs, s)
	}
	c.Sources.PrometheusSources = srcs
	c.Discovery.Plugins = dedupRules(d, c.Discovery.Plugins)
}

// dedupRules applies "a later rule with the same name replaces the earlier
// one" (§1.7); unnamed rules are all kept.
func dedupRules(d *decoder, rules []PluginRule) []PluginRule {
	out := rules[:0]
	index := map[string]int{}
	for _, r := range rules {
		if i, dup := index[r.Name]; dup && r.Name != "" {
			d.warns = append(d.warns, Warning{File: d.file, Line: r.Line, Message: fmt.Sprintf(
				"discovery.plugins: rule %q replaces the rule at line %d", r.Name, out[i].Line)})
			out[i] = r
			continue
		}
		index[r.Name] = len(out)
		out = append(out, r)
	}
	return out
}
