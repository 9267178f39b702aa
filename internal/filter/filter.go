package filter

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/gobwas/glob"
	"github.com/gobwas/glob/compiler"
	"github.com/gobwas/glob/syntax"
	"github.com/gobwas/glob/syntax/ast"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Config is the raw filter configuration shared by every level that filters
// (prometheus_sources[], discovery rules, sinks, internal_stats_source), with
// the deprecated aliases already resolved.
type Config struct {
	MetricAllowList, MetricDenyList          []string
	MetricTagAllowList, MetricTagDenyList    map[string][]string
	TagInclude, TagExclude, TagGuaranteeList []string
}

// Empty reports whether every list and map is empty, which the reference
// treats as "no filter".
func (c Config) Empty() bool {
	return len(c.MetricAllowList) == 0 && len(c.MetricDenyList) == 0 &&
		len(c.MetricTagAllowList) == 0 && len(c.MetricTagDenyList) == 0 &&
		len(c.TagInclude) == 0 && len(c.TagExclude) == 0 && len(c.TagGuaranteeList) == 0
}

// Filter is a compiled Config. The zero of *Filter (nil) keeps everything.
type Filter struct {
	allow, deny glob.Glob // nil when the list is unset
	// Per-key globs; keys with an empty pattern list are absent.
	tagAllow, tagDeny map[string]glob.Glob
	// tagAllowSet stays true when every key was dropped for having no
	// patterns: the reference then drops every point (§4.2).
	tagAllowSet      bool
	include, exclude glob.Glob
	guarantee        map[string]struct{}
}

// PatternError is a filter pattern that does not compile. The config loader
// uses List, Key and Index to point at the offending line.
type PatternError struct {
	List    string // config key, e.g. "metricAllowList"
	Key     string // tag key for metricTagAllowList/metricTagDenyList, else ""
	Index   int    // position in the list; -1 when only the combined alternation fails
	Pattern string // the pattern, or the combined alternation when Index is -1
	Err     error
}

func (e *PatternError) Error() string {
	where := e.List
	if e.Key != "" {
		where += "." + e.Key
	}
	if e.Index < 0 {
		return fmt.Sprintf("%s: patterns do not compile as one alternation %q: %v", where, e.Pattern, e.Err)
	}
	return fmt.Sprintf("%s[%d]: pattern %q does not compile: %v", where, e.Index, e.Pattern, e.Err)
}

func (e *PatternError) Unwrap() error { return e.Err }

// New compiles c. It returns (nil, nil) for an empty config, so callers can
// skip filtering entirely; the nil *Filter keeps every point and tag.
func New(c Config) (*Filter, error) {
	if c.Empty() {
		return nil, nil
	}
	f := &Filter{tagAllowSet: len(c.MetricTagAllowList) > 0}
	var err error
	if f.allow, err = compileList("metricAllowList", "", c.MetricAllowList); err != nil {
		return nil, err
	}
	if f.deny, err = compileList("metricDenyList", "", c.MetricDenyList); err != nil {
		return nil, err
	}
	if f.tagAllow, err = compileMap("metricTagAllowList", c.MetricTagAllowList); err != nil {
		return nil, err
	}
	if f.tagDeny, err = compileMap("metricTagDenyList", c.MetricTagDenyList); err != nil {
		return nil, err
	}
	if f.include, err = compileList("tagInclude", "", c.TagInclude); err != nil {
		return nil, err
	}
	if f.exclude, err = compileList("tagExclude", "", c.TagExclude); err != nil {
		return nil, err
	}
	if len(c.TagGuaranteeList) > 0 {
		f.guarantee = make(map[string]struct{}, len(c.TagGuaranteeList))
		for _, k := range c.TagGuaranteeList {
			f.guarantee[k] = struct{}{}
		}
	}
	return f, nil
}

// compileList compiles patterns like the reference: one pattern alone, two
// or more as a single alternation. Each pattern is first compiled on its own
// so that an error can name it.
func compileList(list, key string, patterns []string) (glob.Glob, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	for i, p := range patterns {
		g, err := glob.Compile(p)
		if err != nil {
			return nil, &PatternError{List: list, Key: key, Index: i, Pattern: p, Err: err}
		}
		if len(patterns) == 1 {
			return noPanic{g}, nil
		}
	}
	alt := "{" + strings.Join(patterns, ",") + "}"
	tree, err := syntax.Parse(alt)
	if err != nil {
		return nil, &PatternError{List: list, Key: key, Index: -1, Pattern: alt, Err: err}
	}
	// Match the alternation as the OR of its top-level alternatives: the
	// language is the same, but gobwas compiles a factored alternation into
	// matchers whose Index allocates on every call (e.g. a btree over an
	// any_of), and Keep must not allocate. Commas inside patterns still
	// split alternatives, as in the reference.
	if len(tree.Children) == 1 && tree.Children[0].Kind == ast.KindAnyOf {
		var alts alternatives
		for _, c := range tree.Children[0].Children {
			m, err := compiler.Compile(c, nil)
			if err != nil {
				return nil, &PatternError{List: list, Key: key, Index: -1, Pattern: alt, Err: err}
			}
			alts = append(alts, noPanic{m})
		}
		return alts, nil
	}
	m, err := compiler.Compile(tree, nil)
	if err != nil {
		return nil, &PatternError{List: list, Key: key, Index: -1, Pattern: alt, Err: err}
	}
	return noPanic{m}, nil
}

// noPanic turns a panic inside a gobwas matcher into "no match". v0.2.3
// compiles some degenerate patterns into matchers that index out of range,
// e.g. `a{` panics on "a"; the reference would crash, a filter must not.
type noPanic struct{ g glob.Glob }

func (n noPanic) Match(s string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return n.g.Match(s)
}

// alternatives matches if any of its globs matches.
type alternatives []glob.Glob

func (a alternatives) Match(s string) bool {
	for _, g := range a {
		if g.Match(s) {
			return true
		}
	}
	return false
}

func compileMap(list string, m map[string][]string) (map[string]glob.Glob, error) {
	out := make(map[string]glob.Glob, len(m))
	for k, patterns := range m {
		g, err := compileList(list, k, patterns)
		if err != nil {
			return nil, err
		}
		if g != nil {
			out[k] = g
		}
	}
	return out, nil
}

// str views b as a string without copying. gobwas matchers only read their
// argument during Match and never retain it.
func str(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Keep applies steps 1-4 of §4.3 and reports whether the point survives.
// name is the metric name as seen at this filter's level (§4.4).
func (f *Filter) Keep(name []byte, tags []wavefront.Tag) bool {
	if f == nil {
		return true
	}
	if f.allow != nil && !f.allow.Match(str(name)) {
		return false
	}
	if f.deny != nil && f.deny.Match(str(name)) {
		return false
	}
	if f.tagAllowSet && !anyTagMatches(f.tagAllow, tags) {
		return false
	}
	if len(f.tagDeny) > 0 && anyTagMatches(f.tagDeny, tags) {
		return false
	}
	return true
}

func anyTagMatches(m map[string]glob.Glob, tags []wavefront.Tag) bool {
	for _, t := range tags {
		if g, ok := m[string(t.Key)]; ok && g.Match(str(t.Value)) {
			return true
		}
	}
	return false
}

// FiltersTags reports whether FilterTags can remove anything, so callers can
// skip the call. tagGuaranteeList alone only protects tags.
func (f *Filter) FiltersTags() bool {
	return f != nil && (f.include != nil || f.exclude != nil)
}

// FilterTags removes the tags that tagInclude/tagExclude reject, unless their
// key is in tagGuaranteeList. It compacts tags in place and returns the
// shortened slice; the point itself is never dropped.
func (f *Filter) FilterTags(tags []wavefront.Tag) []wavefront.Tag {
	if !f.FiltersTags() {
		return tags
	}
	out := tags[:0]
	for _, t := range tags {
		if f.keepTag(t.Key) {
			out = append(out, t)
		}
	}
	// Drop references to removed tags so the producer's buffers can be freed.
	clear(tags[len(out):])
	return out
}

func (f *Filter) keepTag(key []byte) bool {
	if _, ok := f.guarantee[string(key)]; ok {
		return true
	}
	k := str(key)
	return (f.include == nil || f.include.Match(k)) && (f.exclude == nil || !f.exclude.Match(k))
}
