package preprocessor

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// matchKind selects how a fullMatcher decides. Most real-world `match`
// patterns are literals, alternations of literals, or such with a leading
// or trailing ".*"; those are decided with byte comparisons, because a
// regexp full match costs ~100 ns per call and rules run per point and tag.
type matchKind uint8

const (
	matchRegexp   matchKind = iota
	matchExact              // value is one of lits
	matchPrefix             // lits[i] + ".*"
	matchSuffix             // ".*" + lits[i]
	matchContains           // ".*" + lits[i] + ".*"
)

// maxLits bounds the literal expansion of a pattern; larger sets fall back
// to the regexp.
const maxLits = 16

// fullMatcher reports whether a whole value matches a pattern, like Java's
// Matcher.matches().
type fullMatcher struct {
	kind matchKind
	lits [][]byte
	// lens has bit n set if an exact literal has length n (bit 63: 63 or
	// more), so most non-matching values are rejected by length alone.
	lens uint64
	re   *regexp.Regexp // anchored; set only for matchRegexp
	src  string
}

func compileFull(pattern string) (*fullMatcher, error) {
	re, err := regexp.Compile(`\A(?:` + pattern + `)\z`)
	if err != nil {
		// Report the error against the user's pattern, not the wrapper.
		if _, err2 := regexp.Compile(pattern); err2 != nil {
			err = err2
		}
		return nil, fmt.Errorf("bad regex %q: %v", pattern, err)
	}
	m := &fullMatcher{kind: matchRegexp, re: re, src: pattern}
	if t, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		m.analyze(t.Simplify())
	}
	return m, nil
}

// analyze switches m to a literal form when the pattern has one.
func (m *fullMatcher) analyze(t *syntax.Regexp) {
	for t.Op == syntax.OpCapture {
		t = t.Sub[0]
	}
	subs := []*syntax.Regexp{t}
	if t.Op == syntax.OpConcat {
		subs = t.Sub
	}
	// Anchors are redundant in a full match.
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		subs = subs[1:]
	}
	if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		subs = subs[:len(subs)-1]
	}
	lead := len(subs) > 0 && isDotStar(subs[0])
	if lead {
		subs = subs[1:]
	}
	trail := len(subs) > 0 && isDotStar(subs[len(subs)-1])
	if trail {
		subs = subs[:len(subs)-1]
	}
	lits := [][]byte{nil}
	for _, s := range subs {
		var ok bool
		if lits, ok = expand(lits, s); !ok {
			return
		}
	}
	for _, l := range lits {
		if (lead || trail) && bytes.IndexByte(l, '\n') >= 0 {
			return // ".*" cannot span a newline; keep exact regexp semantics
		}
	}
	m.lits = lits
	for _, l := range lits {
		m.lens |= 1 << min(len(l), 63)
	}
	switch {
	case lead && trail:
		m.kind = matchContains
	case lead:
		m.kind = matchSuffix
	case trail:
		m.kind = matchPrefix
	default:
		m.kind = matchExact
	}
}

func isDotStar(t *syntax.Regexp) bool {
	return t.Op == syntax.OpStar && t.Sub[0].Op == syntax.OpAnyCharNotNL
}

// expand returns every prefix in prefixes followed by every string t
// matches, or false if t does not match a small finite set.
func expand(prefixes [][]byte, t *syntax.Regexp) ([][]byte, bool) {
	var alts []string
	switch t.Op {
	case syntax.OpLiteral:
		if t.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		alts = []string{string(t.Rune)}
	case syntax.OpEmptyMatch:
		return prefixes, true
	case syntax.OpCapture:
		return expand(prefixes, t.Sub[0])
	case syntax.OpConcat:
		var ok bool
		for _, s := range t.Sub {
			if prefixes, ok = expand(prefixes, s); !ok {
				return nil, false
			}
		}
		return prefixes, true
	case syntax.OpAlternate:
		var out [][]byte
		for _, s := range t.Sub {
			e, ok := expand(prefixes, s)
			if !ok || len(out)+len(e) > maxLits {
				return nil, false
			}
			out = append(out, e...)
		}
		return out, true
	case syntax.OpCharClass:
		for i := 0; i+1 < len(t.Rune); i += 2 {
			for r := t.Rune[i]; r <= t.Rune[i+1]; r++ {
				if len(alts) == maxLits {
					return nil, false
				}
				alts = append(alts, string(r))
			}
		}
	default:
		return nil, false
	}
	if len(prefixes)*len(alts) > maxLits {
		return nil, false
	}
	out := make([][]byte, 0, len(prefixes)*len(alts))
	for _, p := range prefixes {
		for _, a := range alts {
			out = append(out, append(append([]byte(nil), p...), a...))
		}
	}
	return out, true
}

func (m *fullMatcher) match(v []byte) bool {
	switch m.kind {
	case matchExact:
		if m.lens&(1<<min(len(v), 63)) == 0 {
			return false
		}
		for _, l := range m.lits {
			if bytes.Equal(v, l) {
				return true
			}
		}
		return false
	case matchPrefix:
		for _, l := range m.lits {
			if bytes.HasPrefix(v, l) && bytes.IndexByte(v[len(l):], '\n') < 0 {
				return true
			}
		}
		return false
	case matchSuffix:
		for _, l := range m.lits {
			if bytes.HasSuffix(v, l) && bytes.IndexByte(v[:len(v)-len(l)], '\n') < 0 {
				return true
			}
		}
		return false
	case matchContains:
		if bytes.IndexByte(v, '\n') >= 0 {
			return false
		}
		for _, l := range m.lits {
			if bytes.Contains(v, l) {
				return true
			}
		}
		return false
	}
	return m.re.Match(v)
}

// searcher finds a pattern anywhere in a value (Java's Matcher.find()).
type searcher struct {
	re *regexp.Regexp
	// lit, when set, must occur in any matching value: a cheap pre-check
	// that keeps the no-match path free of regexp work.
	lit      []byte
	complete bool // the pattern is exactly lit
}

func compileSearch(pattern string) (*searcher, error) {
	if pattern == "" {
		return nil, fmt.Errorf("search can't be blank")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("bad regex %q: %v", pattern, err)
	}
	s := &searcher{re: re}
	if p, complete := re.LiteralPrefix(); p != "" {
		s.lit, s.complete = []byte(p), complete
	}
	return s, nil
}

func (s *searcher) found(v []byte) bool {
	if s.lit != nil {
		if !bytes.Contains(v, s.lit) {
			return false
		}
		if s.complete {
			return true
		}
	}
	return s.re.Match(v)
}

// replacement is a parsed Java replacement string: literal text, group
// references ($1, ${name}) and {{placeholder}} templates.
type replacement struct {
	segs []segment
}

type segment struct {
	lit   []byte
	group int    // >= 0: capture group reference
	tmpl  string // non-empty: {{tmpl}} placeholder
}

// parseReplacement parses s as the reference does: with templates,
// {{...}} placeholders are expanded first (pointLine rules have none);
// then Java's Matcher.replaceAll syntax applies ($n with the longest group
// number that exists, ${name}, and \x for a literal x). re is nil for a
// value with no regexp (addTag's value), where $ and \ are literal.
func parseReplacement(s string, re *regexp.Regexp, templates bool) (*replacement, error) {
	r := &replacement{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			r.segs = append(r.segs, segment{lit: lit, group: -1})
			lit = nil
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case templates && strings.HasPrefix(s[i:], "{{"):
			end := strings.Index(s[i+2:], "}}")
			if end <= 0 {
				lit = append(lit, "{{"...)
				i += 2
				continue
			}
			flush()
			r.segs = append(r.segs, segment{tmpl: s[i+2 : i+2+end], group: -1})
			i += end + 4
		case re != nil && c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("character to be escaped is missing in %q", s)
			}
			lit = append(lit, s[i+1])
			i += 2
		case re != nil && c == '$':
			g, n, err := parseGroupRef(s[i+1:], re)
			if err != nil {
				return nil, fmt.Errorf("replacement %q: %v", s, err)
			}
			flush()
			r.segs = append(r.segs, segment{group: g})
			i += 1 + n
		default:
			lit = append(lit, c)
			i++
		}
	}
	flush()
	return r, nil
}

// parseGroupRef parses what follows '$': the group number and how many
// bytes it used.
func parseGroupRef(s string, re *regexp.Regexp) (group, n int, err error) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, 0, fmt.Errorf("named capturing group is missing trailing '}'")
		}
		name := s[1:end]
		if g := re.SubexpIndex(name); g >= 0 {
			return g, end + 1, nil
		}
		return 0, 0, fmt.Errorf("no group with name {%s}", name)
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, 0, fmt.Errorf("illegal group reference")
	}
	group, n = int(s[0]-'0'), 1
	// Java takes more digits only while the number still names a group.
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		next, err := strconv.Atoi(s[:n+1])
		if err != nil || next > re.NumSubexp() {
			break
		}
		group, n = next, n+1
	}
	if group > re.NumSubexp() {
		return 0, 0, fmt.Errorf("no group %d", group)
	}
	return group, n, nil
}

// appendExpanded appends r for one match (m from FindSubmatchIndex on src;
// nil when there is no regexp).
func (r *replacement) appendExpanded(dst, src []byte, m []int, it *item) []byte {
	for _, s := range r.segs {
		switch {
		case s.tmpl != "":
			if v, ok := it.lookup(s.tmpl); ok {
				dst = append(dst, v...)
			} else {
				// The reference leaves an unknown placeholder as is.
				dst = append(dst, "{{"...)
				dst = append(dst, s.tmpl...)
				dst = append(dst, "}}"...)
			}
		case s.group >= 0:
			if 2*s.group+1 < len(m) && m[2*s.group] >= 0 {
				dst = append(dst, src[m[2*s.group]:m[2*s.group+1]]...)
			}
		default:
			dst = append(dst, s.lit...)
		}
	}
	return dst
}

// appendReplaceAll appends src with every match of re replaced by r, like
// Java's Matcher.replaceAll.
func appendReplaceAll(dst, src []byte, re *regexp.Regexp, r *replacement, it *item) []byte {
	last := 0
	for _, m := range re.FindAllSubmatchIndex(src, -1) {
		dst = append(dst, src[last:m[0]]...)
		dst = r.appendExpanded(dst, src, m, it)
		last = m[1]
	}
	return append(dst, src[last:]...)
}
