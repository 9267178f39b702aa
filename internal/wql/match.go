package wql

import "strings"

// Match implements Matcher. A missing tag matches neither key=v nor key=*,
// so key!=v and "not key=v" both match it (Wavefront semantics).
func (f *FilterTerm) Match(source string, tags Tags) bool {
	var v string
	var ok bool
	if f.Key == "source" {
		v, ok = source, true
	} else {
		v, ok = tags.Get(f.Key)
	}
	m := ok && globMatch(f.Value, v)
	return m != f.Neg
}

// Match implements Matcher.
func (f *FilterAnd) Match(source string, tags Tags) bool {
	return f.L.Match(source, tags) && f.R.Match(source, tags)
}

// Match implements Matcher.
func (f *FilterOr) Match(source string, tags Tags) bool {
	return f.L.Match(source, tags) || f.R.Match(source, tags)
}

// Match implements Matcher.
func (f *FilterNot) Match(source string, tags Tags) bool {
	return !f.X.Match(source, tags)
}

// matchAll is the Matcher of a ts() without a filter.
type matchAll struct{}

func (matchAll) Match(string, Tags) bool { return true }

// globMatch reports whether s matches pattern, where '*' matches any run of
// bytes (dots included) and everything else is literal. It is linear-ish:
// greedy with single backtrack point, the classic wildcard algorithm.
func globMatch(pattern, s string) bool {
	if pattern == "*" {
		return true // a dashboard variable left at "all"
	}
	if strings.IndexByte(pattern, '*') < 0 {
		return pattern == s
	}
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
