package preprocessor

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// actionSpec describes one action name: what it compiles to and which
// keys it accepts besides rule, action and if.
type actionSpec struct {
	kind        actionKind
	span        bool
	ifNotExists bool
	keys        []string
}

var actionSpecs = map[string]actionSpec{
	"replaceRegex":          {kind: actReplace, keys: []string{"scope", "search", "replace", "match", "iterations"}},
	"forceLowercase":        {kind: actLowercase, keys: []string{"scope", "match"}},
	"block":                 {kind: actBlock, keys: []string{"scope", "match"}},
	"blacklistRegex":        {kind: actBlock, keys: []string{"scope", "match"}},
	"allow":                 {kind: actAllow, keys: []string{"scope", "match"}},
	"whitelistRegex":        {kind: actAllow, keys: []string{"scope", "match"}},
	"addTag":                {kind: actAddTag, keys: []string{"tag", "value"}},
	"addTagIfNotExists":     {kind: actAddTag, ifNotExists: true, keys: []string{"tag", "value"}},
	"dropTag":               {kind: actDropTag, keys: []string{"tag", "match"}},
	"renameTag":             {kind: actRenameTag, keys: []string{"tag", "newtag", "match"}},
	"extractTag":            {kind: actExtract, keys: []string{"tag", "source", "search", "replace", "replaceSource", "replaceInput", "match"}},
	"extractTagIfNotExists": {kind: actExtract, ifNotExists: true, keys: []string{"tag", "source", "search", "replace", "replaceSource", "replaceInput", "match"}},
	"limitLength":           {kind: actLimit, keys: []string{"scope", "actionSubtype", "maxLength", "match"}},
	"count":                 {kind: actCount, keys: []string{"scope", "match"}},

	"spanReplaceRegex":                 {kind: actReplace, span: true, keys: []string{"scope", "search", "replace", "match", "iterations", "firstMatchOnly"}},
	"spanForceLowercase":               {kind: actLowercase, span: true, keys: []string{"scope", "match", "firstMatchOnly"}},
	"spanAddAnnotation":                {kind: actAddTag, span: true, keys: []string{"key", "value"}},
	"spanAddTag":                       {kind: actAddTag, span: true, keys: []string{"key", "value"}},
	"spanAddAnnotationIfNotExists":     {kind: actAddTag, span: true, ifNotExists: true, keys: []string{"key", "value"}},
	"spanAddTagIfNotExists":            {kind: actAddTag, span: true, ifNotExists: true, keys: []string{"key", "value"}},
	"spanDropAnnotation":               {kind: actDropTag, span: true, keys: []string{"key", "match", "firstMatchOnly"}},
	"spanDropTag":                      {kind: actDropTag, span: true, keys: []string{"key", "match", "firstMatchOnly"}},
	"spanAllowAnnotation":              {kind: actAllowTags, span: true, keys: []string{"allow"}},
	"spanWhitelistAnnotation":          {kind: actAllowTags, span: true, keys: []string{"allow"}},
	"spanWhitelistTag":                 {kind: actAllowTags, span: true, keys: []string{"allow"}},
	"spanExtractAnnotation":            {kind: actExtract, span: true, keys: []string{"key", "input", "search", "replace", "replaceInput", "match", "firstMatchOnly"}},
	"spanExtractTag":                   {kind: actExtract, span: true, keys: []string{"key", "input", "search", "replace", "replaceInput", "match", "firstMatchOnly"}},
	"spanExtractAnnotationIfNotExists": {kind: actExtract, span: true, ifNotExists: true, keys: []string{"key", "input", "search", "replace", "replaceInput", "match", "firstMatchOnly"}},
	"spanExtractTagIfNotExists":        {kind: actExtract, span: true, ifNotExists: true, keys: []string{"key", "input", "search", "replace", "replaceInput", "match", "firstMatchOnly"}},
	"spanRenameAnnotation":             {kind: actRenameTag, span: true, keys: []string{"key", "newkey", "match", "firstMatchOnly"}},
	"spanRenameTag":                    {kind: actRenameTag, span: true, keys: []string{"key", "newkey", "match", "firstMatchOnly"}},
	"spanLimitLength":                  {kind: actLimit, span: true, keys: []string{"scope", "actionSubtype", "maxLength", "match", "firstMatchOnly"}},
	"spanCount":                        {kind: actCount, span: true, keys: []string{"scope", "match"}},
	"spanBlock":                        {kind: actBlock, span: true, keys: []string{"scope", "match"}},
	"spanBlacklistRegex":               {kind: actBlock, span: true, keys: []string{"scope", "match"}},
	"spanAllow":                        {kind: actAllow, span: true, keys: []string{"scope", "match"}},
	"spanWhitelistRegex":               {kind: actAllow, span: true, keys: []string{"scope", "match"}},
}

// maxIterations bounds replaceRegex's iterations; the reference has no
// bound, which lets one rule loop for minutes.
const maxIterations = 1000

// spanSystemTags are kept by spanAllowAnnotation whatever the allow list
// says, as in the reference.
var spanSystemTags = []string{"service", "application", "cluster", "shard"}

// Load reads and parses the rule file at path (--preprocessorConfigFile).
func Load(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses a rule file; filename is used in error messages. All
// problems found are reported, joined, each as "file:line: rule "ID": …".
func Parse(data []byte, filename string) (*Rules, error) {
	p := &parser{file: filename}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", filename, err)
	}
	r := &Rules{ports: map[string]*PortRules{}}
	if len(doc.Content) == 0 {
		return r, nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return r, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "", "expected a map from port to a list of rules")
	}
	byPort := map[string][]*rule{}
	var portOrder []string
	ids := map[string]map[string]bool{} // port → rule IDs
	sawGlobal := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.add(p.errorf(k, "", "port key must be a string such as '2878', '2878, 9411' or global"))
			continue
		}
		if sawGlobal {
			p.add(p.errorf(k, "", "section %q after global: global must be the last section", k.Value))
		}
		var ports []string
		if k.Value == "global" {
			sawGlobal = true
			ports = []string{"global"}
		} else if ports = portList(k.Value); len(ports) == 0 {
			p.add(p.errorf(k, "", "empty port key"))
			continue
		}
		rules := p.section(v)
		for _, port := range ports {
			if ids[port] == nil {
				ids[port] = map[string]bool{}
				if port != "global" {
					portOrder = append(portOrder, port)
				}
			}
			for _, ru := range rules {
				if ids[port][ru.id] {
					p.add(fmt.Errorf("%s: rule %q: duplicate rule ID for port %s", ru.pos, ru.id, port))
				}
				ids[port][ru.id] = true
			}
			byPort[port] = append(byPort[port], rules...)
		}
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	r.global = byPort["global"]
	for _, port := range portOrder {
		r.ports[port] = newPortRules(port, append(slices.Clip(byPort[port]), r.global...))
	}
	return r, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

func (p *parser) pos(n *yaml.Node) string { return fmt.Sprintf("%s:%d", p.file, n.Line) }

func (p *parser) errorf(n *yaml.Node, id, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if id != "" {
		return fmt.Errorf("%s: rule %q: %s", p.pos(n), id, msg)
	}
	return fmt.Errorf("%s: %s", p.pos(n), msg)
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func (p *parser) section(v *yaml.Node) []*rule {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.add(p.errorf(v, "", "expected a list of rules"))
		return nil
	}
	var rules []*rule
	seen := map[string]bool{}
	for _, n := range v.Content {
		if ru := p.rule(resolve(n)); ru != nil {
			if seen[ru.id] {
				p.add(p.errorf(n, ru.id, "duplicate rule ID"))
				continue
			}
			seen[ru.id] = true
			rules = append(rules, ru)
		}
	}
	return rules
}

// ruleNode is one rule's keys while it is being compiled.
type ruleNode struct {
	p      *parser
	n      *yaml.Node
	id     string
	fields map[string]*yaml.Node
	keys   map[string]*yaml.Node // key nodes, for positions
	failed bool
}

func (rn *ruleNode) fail(n *yaml.Node, format string, args ...any) {
	if n == nil { // the problem is a missing key: point at the rule
		n = rn.n
	}
	rn.p.add(rn.p.errorf(n, rn.id, format, args...))
	rn.failed = true
}

func (rn *ruleNode) has(key string) bool { return rn.fields[key] != nil }

// str returns a scalar value; required reports a missing key.
func (rn *ruleNode) str(key string, required bool) (string, bool) {
	v := rn.fields[key]
	if v == nil {
		if required {
			rn.fail(rn.n, "missing %q", key)
		}
		return "", false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		rn.fail(v, "%q must be a string", key)
		return "", false
	}
	return v.Value, true
}

func (rn *ruleNode) int(key string, def int) int {
	s, ok := rn.str(key, false)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		rn.fail(rn.fields[key], "%q must be an integer, got %q", key, s)
		return def
	}
	return n
}

func (rn *ruleNode) bool(key string) bool {
	s, ok := rn.str(key, false)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		rn.fail(rn.fields[key], "%q must be true or false, got %q", key, s)
	}
	return b
}

func (rn *ruleNode) full(key string, required bool) *fullMatcher {
	s, ok := rn.str(key, required)
	if !ok {
		return nil
	}
	m, err := compileFull(s)
	if err != nil {
		rn.fail(rn.fields[key], "%s: %v", key, err)
	}
	return m
}

func (rn *ruleNode) rule(r *rule) *rule {
	if rn.failed {
		return nil
	}
	return r
}

func (p *parser) rule(n *yaml.Node) *rule {
	if n.Kind != yaml.MappingNode {
		p.add(p.errorf(n, "", "expected a rule (a map with rule and action)"))
		return nil
	}
	rn := &ruleNode{p: p, n: n, fields: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	if v := mapValue(n, "rule"); v != nil && v.Kind == yaml.ScalarNode {
		rn.id = v.Value
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			rn.fail(k, "rule keys must be strings")
			continue
		}
		if rn.fields[k.Value] != nil {
			rn.fail(k, "duplicate key %q", k.Value)
			continue
		}
		rn.fields[k.Value], rn.keys[k.Value] = v, k
	}
	if id, ok := rn.str("rule", true); ok && strings.TrimSpace(id) == "" {
		rn.fail(rn.fields["rule"], "rule ID can't be blank")
	}
	action, ok := rn.str("action", true)
	if !ok {
		return nil
	}
	spec, ok := actionSpecs[action]
	if !ok {
		rn.fail(rn.fields["action"], "unknown action %q", action)
		return nil
	}
	for k := range rn.fields {
		if k != "rule" && k != "action" && k != "if" && !slices.Contains(spec.keys, k) {
			rn.fail(rn.keys[k], "unknown key %q for action %s", k, action)
		}
	}
	r := &rule{id: rn.id, action: action, kind: spec.kind, span: spec.span,
		filter: spec.kind == actBlock || spec.kind == actAllow, ifNotExists: spec.ifNotExists,
		iterations: 1, pos: p.pos(n)}
	if rn.has("if") {
		r.cond = rn.cond(spec.span)
	}
	rn.build(r)
	return rn.rule(r)
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func (rn *ruleNode) cond(span bool) cond {
	v := rn.fields["if"]
	if v.Kind != yaml.ScalarNode {
		rn.fail(v, "if: only expression strings are supported")
		return nil
	}
	c, err := parseCond(v.Value, span)
	if err != nil {
		rn.fail(v, "if: %v", err)
	}
	return c
}

// scope parses a scope value for r's item type.
func (rn *ruleNode) scope(key string, span, required bool) scope {
	s, ok := rn.str(key, required)
	switch {
	case !ok:
		return scope{}
	case s == "":
		rn.fail(rn.fields[key], "%q can't be blank", key)
	case s == "sourceName":
		return scope{kind: scopeSource}
	case !span && s == "metricName", span && s == "spanName":
		return scope{kind: scopeName}
	case !span && (s == "pointLine" || s == "inputText"):
		return scope{kind: scopeLine}
	}
	return scope{kind: scopeTag, key: s}
}

func (rn *ruleNode) search(r *rule) {
	s, ok := rn.str("search", true)
	if !ok {
		return
	}
	var err error
	if r.search, err = compileSearch(s); err != nil {
		rn.fail(rn.fields["search"], "search: %v", err)
	}
}

func (rn *ruleNode) replacement(r *rule, key string, required bool) *replacement {
	s, ok := rn.str(key, required)
	if !ok || r.search == nil {
		return nil
	}
	repl, err := parseReplacement(s, r.search.re, r.scope.kind != scopeLine)
	if err != nil {
		rn.fail(rn.fields[key], "%s: %v", key, err)
	}
	return repl
}

// build fills in the action-specific fields of r.
func (rn *ruleNode) build(r *rule) {
	tagKey := "tag"
	if r.span {
		tagKey = "key"
	}
	switch r.kind {
	case actReplace:
		r.scope = rn.scope("scope", r.span, true)
		r.match = rn.full("match", false)
		rn.search(r)
		r.repl = rn.replacement(r, "replace", true)
		if r.iterations = rn.int("iterations", 1); r.iterations < 1 || r.iterations > maxIterations {
			rn.fail(rn.fields["iterations"], "iterations must be between 1 and %d", maxIterations)
		}
	case actLowercase:
		r.scope = rn.scope("scope", r.span, true)
		r.match = rn.full("match", false)
	case actBlock, actAllow, actCount:
		if rn.has("scope") || rn.has("match") || r.kind != actCount && !rn.has("if") {
			r.scope = rn.scope("scope", r.span, true)
			r.match = rn.full("match", true)
		}
	case actAddTag:
		r.key, _ = rn.str(tagKey, true)
		v, _ := rn.str("value", true)
		r.value, _ = parseReplacement(v, nil, true)
	case actDropTag:
		r.keyMatch = rn.full(tagKey, true)
		r.match = rn.full("match", false)
	case actRenameTag:
		r.key, _ = rn.str(tagKey, true)
		r.match = rn.full("match", false)
		if r.span {
			r.newKey, _ = rn.str("newkey", true)
		} else {
			r.newKey, _ = rn.str("newtag", true)
		}
	case actExtract:
		r.key, _ = rn.str(tagKey, true)
		inKey, replKey := "source", "replaceSource"
		if r.span {
			inKey = "input"
		}
		r.input = rn.scope(inKey, r.span, true)
		r.match = rn.full("match", false)
		rn.search(r)
		r.repl = rn.replacement(r, "replace", true)
		if rn.has(replKey) && rn.has("replaceInput") {
			rn.fail(rn.keys["replaceInput"], "use either replaceSource or replaceInput")
		}
		if !rn.has(replKey) {
			replKey = "replaceInput"
		}
		r.replInput = rn.replacement(r, replKey, false)
	case actLimit:
		r.scope = rn.scope("scope", r.span, true)
		r.match = rn.full("match", false)
		r.maxLength = rn.int("maxLength", 0)
		if !rn.has("maxLength") {
			rn.fail(rn.n, "missing %q", "maxLength")
		} else if r.maxLength <= 0 {
			rn.fail(rn.fields["maxLength"], "maxLength must be > 0")
		}
		switch sub, _ := rn.str("actionSubtype", true); sub {
		case "truncate":
			r.lengthAct = truncate
		case "truncateWithEllipsis":
			r.lengthAct = truncateWithEllipsis
			if r.maxLength < 3 {
				rn.fail(rn.fields["maxLength"], "maxLength must be at least 3 for truncateWithEllipsis")
			}
		case "drop":
			r.lengthAct = dropTooLong
			if r.scope.kind == scopeName || r.scope.kind == scopeSource {
				rn.fail(rn.fields["actionSubtype"], "drop can only be used with a tag scope")
			}
		case "":
		default:
			rn.fail(rn.fields["actionSubtype"], "actionSubtype must be truncate, truncateWithEllipsis or drop, got %q", sub)
		}
	case actAllowTags:
		r.allow = rn.allowList()
	}
	if r.span && rn.has("firstMatchOnly") {
		r.firstOnly = rn.bool("firstMatchOnly")
	}
	if r.scope.kind == scopeLine || r.input.kind == scopeLine {
		switch {
		case r.kind != actReplace && r.kind != actBlock && r.kind != actAllow:
			rn.fail(rn.fields["scope"], "pointLine scope is only supported by replaceRegex, block and allow")
		case r.cond != nil:
			rn.fail(rn.fields["if"], "if can't be used with pointLine scope")
		}
		r.line = true
	}
}

// allowList parses spanAllowAnnotation's allow: a list of keys, or a map
// of key to value regex (empty or null allows any value).
func (rn *ruleNode) allowList() map[string]*fullMatcher {
	v := rn.fields["allow"]
	if v == nil {
		rn.fail(rn.n, "missing %q", "allow")
		return nil
	}
	allow := map[string]*fullMatcher{}
	for _, t := range spanSystemTags {
		allow[t] = nil
	}
	switch v.Kind {
	case yaml.SequenceNode:
		for _, k := range v.Content {
			if k = resolve(k); k.Kind != yaml.ScalarNode {
				rn.fail(k, "allow: keys must be strings")
				continue
			}
			allow[k.Value] = nil
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, pat := resolve(v.Content[i]), resolve(v.Content[i+1])
			if k.Kind != yaml.ScalarNode || pat.Kind != yaml.ScalarNode {
				rn.fail(k, "allow: expected key: value-regex")
				continue
			}
			allow[k.Value] = nil
			if pat.Tag != "!!null" && pat.Value != "" {
				m, err := compileFull(pat.Value)
				if err != nil {
					rn.fail(pat, "allow %s: %v", k.Value, err)
				}
				allow[k.Value] = m
			}
		}
	default:
		rn.fail(v, "allow must be a list of keys or a map of key to value regex")
	}
	return allow
}
