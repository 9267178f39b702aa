package config

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	suggestpkg "github.com/meshwave/meshwave/internal/suggest"
)

// maxErrors bounds how many errors one load reports.
const maxErrors = 20

// maxAliases bounds alias dereferences, so a document of nested aliases
// cannot make the walk exponential.
const maxAliases = 10000

// decoder walks yaml.v3 nodes with the reference's strictness and YAML 1.1
// scalar rules, collecting errors and warnings.
type decoder struct {
	file    string
	lineOff int // added to node lines: the embedded block's offset in the file
	colOff  int
	errs    []error
	warns   []Warning
	aliases int
	// sinkEventsUnset lists the sinks without enableEvents; they inherit the
	// top-level value, which may come later in the file.
	sinkEventsUnset []int
	// key is the key whose setter is running, so a setter can report at
	// the key's line rather than its value's.
	key *yaml.Node
}

// setter decodes the value of one key; path is the key's dotted path.
type setter func(v *yaml.Node, path string)

func (d *decoder) line(n *yaml.Node) int { return n.Line + d.lineOff }

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errAt(d.line(n), 0, path, fmt.Sprintf(format, args...))
}

func (d *decoder) errAt(line, col int, path, msg string) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Key: path, Msg: msg})
	}
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: d.line(n), Message: fmt.Sprintf(format, args...)})
}

// deref follows aliases.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		d.aliases++
		if d.aliases > maxAliases {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// plain reports whether a scalar was written without quotes, block style
// or an explicit tag, i.e. whether YAML 1.1 type resolution applies.
func plain(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if plain(n) {
			return strconv.Quote(n.Value)
		}
		return "quoted string " + strconv.Quote(n.Value)
	}
	return "an alias"
}

// mapping walks a mapping node, calling fields[key] for each pair. Unknown
// keys and repeated keys are errors, except that a repeated merge key's
// setter simply runs again (the caller appends) and a warning names both
// lines.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]setter, merge string) {
	n = d.deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.deref(n.Content[i]), n.Content[i+1]
		kp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.errAt(d.line(k), k.Column+d.colOff, path, "keys must be strings, got "+kindName(k))
			continue
		}
		set, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else if k.Value == "<<" {
				msg = "merge keys (<<) are not supported"
			}
			d.errAt(d.line(k), k.Column+d.colOff, kp, msg)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if k.Value != merge {
				d.errAt(d.line(k), k.Column+d.colOff, kp,
					fmt.Sprintf("duplicate key: already set at line %d, again at line %d", first, d.line(k)))
				continue
			}
			d.warnf(k, "%s: key repeated at lines %d and %d; both lists are kept, in file order (a last-wins YAML reader would drop the first)",
				kp, first, d.line(k))
		} else {
			seen[k.Value] = d.line(k)
		}
		d.key = k
		set(v, kp)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known key closest to key, or "" when nothing is close.
func suggest(key string, fields map[string]setter) string {
	return suggestpkg.Closest(key, slices.Collect(maps.Keys(fields)))
}

// scalar returns n as a scalar, or reports a type error and returns nil.
func (d *decoder) scalar(n *yaml.Node, path, want string) *yaml.Node {
	n = d.deref(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", want, kindName(n))
		return nil
	}
	return n
}

// str reads a string key: any scalar's literal text (`port: 9090` is
// "9090"); an empty value resets to "".
func (d *decoder) str(n *yaml.Node, path string) string {
	s := d.scalar(n, path, "a string")
	if s == nil || isNull(s) {
		return ""
	}
	return s.Value
}

// bool reads a bool key with yaml.v2's YAML 1.1 table; a quoted value is a
// type error, as in the reference.
func (d *decoder) bool(n *yaml.Node, path string) bool {
	s := d.scalar(n, path, "a boolean")
	if s == nil || isNull(s) {
		return false
	}
	if plain(s) {
		switch s.Value {
		case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
			return true
		case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
			return false
		}
	}
	hint := ""
	if !plain(s) {
		hint = " (remove the quotes)"
	}
	d.errorf(s, path, "expected a boolean, got %s%s", kindName(s), hint)
	return false
}

func (d *decoder) int(n *yaml.Node, path string) int {
	s := d.scalar(n, path, "an integer")
	if s == nil || isNull(s) {
		return 0
	}
	if plain(s) {
		if i, err := strconv.ParseInt(strings.ReplaceAll(s.Value, "_", ""), 0, 64); err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
			return int(i)
		}
	}
	d.errorf(s, path, "expected an integer, got %s", kindName(s))
	return 0
}

func (d *decoder) float(n *yaml.Node, path string) float64 {
	s := d.scalar(n, path, "a number")
	if s == nil || isNull(s) {
		return 0
	}
	if plain(s) {
		if f, err := strconv.ParseFloat(strings.ReplaceAll(s.Value, "_", ""), 64); err == nil {
			return f
		}
	}
	d.errorf(s, path, "expected a number, got %s", kindName(s))
	return 0
}

var unsupportedUnit = regexp.MustCompile(`[0-9.]\s*([dwy])\b`)

// duration reads a Go duration string; a bare number is nanoseconds (a
// fraction truncated), exactly as yaml.v2 decodes into time.Duration.
func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	s := d.scalar(n, path, "a duration")
	if s == nil || isNull(s) {
		return 0
	}
	if plain(s) {
		v := strings.ReplaceAll(s.Value, "_", "")
		if i, err := strconv.ParseInt(v, 0, 64); err == nil {
			return time.Duration(i)
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= math.MinInt64 && f < math.MaxInt64 {
			return time.Duration(f)
		}
	}
	dur, err := time.ParseDuration(s.Value)
	if err == nil {
		return dur
	}
	if m := unsupportedUnit.FindStringSubmatch(s.Value); m != nil {
		d.errorf(s, path, "invalid duration %q: unit %q is not supported; use ns, us, ms, s, m or h (e.g. 24h for a day)", s.Value, m[1])
	} else {
		d.errorf(s, path, "invalid duration %q: expected a Go duration such as 30s, 5m or 1h30m", s.Value)
	}
	return 0
}

func (d *decoder) strList(n *yaml.Node, path string) []string {
	n = d.deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, d.str(e, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

// strMap reads a string-to-string map. Keys may repeat only as errors.
func (d *decoder) strMap(n *yaml.Node, path string) map[string]string {
	out := map[string]string{}
	d.anyMap(n, path, func(k string, v *yaml.Node, p string) { out[k] = d.str(v, p) })
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) strListMap(n *yaml.Node, path string) map[string][]string {
	out := map[string][]string{}
	d.anyMap(n, path, func(k string, v *yaml.Node, p string) { out[k] = d.strList(v, p) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// anyMap walks a mapping with free-form keys (tags, labels).
func (d *decoder) anyMap(n *yaml.Node, path string, set func(key string, v *yaml.Node, path string)) {
	n = d.deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.deref(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.errAt(d.line(k), k.Column+d.colOff, path, "keys must be strings, got "+kindName(k))
			continue
		}
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errAt(d.line(k), k.Column+d.colOff, kp,
				fmt.Sprintf("duplicate key: already set at line %d, again at line %d", first, d.line(k)))
			continue
		}
		seen[k.Value] = d.line(k)
		key := k.Value
		if isNull(k) {
			key = ""
		}
		set(key, n.Content[i+1], kp)
	}
}

// list walks a sequence, calling item for each element.
func (d *decoder) list(n *yaml.Node, path string, item func(e *yaml.Node, path string)) {
	n = d.deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	for i, e := range n.Content {
		item(d.deref(e), fmt.Sprintf("%s[%d]", path, i))
	}
}
