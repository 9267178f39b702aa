package preprocessor

import (
	"bytes"
	"unicode/utf8"

	"github.com/meshwave/meshwave/internal/wavefront"
)

type actionKind uint8

const (
	actReplace actionKind = iota
	actLowercase
	actBlock
	actAllow
	actAddTag
	actDropTag
	actRenameTag
	actExtract
	actLimit
	actCount
	actAllowTags // spanAllowAnnotation
)

type scopeKind uint8

const (
	scopeNone   scopeKind = iota
	scopeName             // metricName or spanName
	scopeSource           // sourceName
	scopeTag              // a point tag or span annotation key
	scopeLine             // pointLine: the raw line
)

type scope struct {
	kind scopeKind
	key  string // for scopeTag
}

type lengthAction uint8

const (
	truncate lengthAction = iota
	truncateWithEllipsis
	dropTooLong
)

// rule is one compiled rule. Which fields are set depends on kind; see
// the build functions in config.go.
type rule struct {
	id, action string
	pos        string // file:line, for errors found after compiling
	kind       actionKind
	line       bool // runs on the raw line
	span       bool
	filter     bool // block or allow
	cond       cond // `if:`; nil means always

	scope      scope
	match      *fullMatcher // on the scope value (tag value for tag rules)
	search     *searcher
	repl       *replacement
	iterations int
	firstOnly  bool

	key         string       // tag/annotation key for add, rename and extract
	keyMatch    *fullMatcher // dropTag and spanDropAnnotation: key pattern
	value       *replacement // addTag value
	ifNotExists bool
	newKey      string
	input       scope        // extract: where to read from
	replInput   *replacement // extract: rewrite of the input; nil leaves it
	maxLength   int
	lengthAct   lengthAction
	allow       map[string]*fullMatcher // spanAllowAnnotation; nil matcher allows any value
}

// name, source and tags give access to the fields both item types share.
func (it *item) name() *[]byte {
	if it.pt != nil {
		return &it.pt.Name
	}
	return &it.sp.Name
}

func (it *item) source() *[]byte {
	if it.pt != nil {
		return &it.pt.Source
	}
	return &it.sp.Source
}

func (it *item) tags() *[]wavefront.Tag {
	if it.pt != nil {
		return &it.pt.Tags
	}
	return &it.sp.Tags
}

// field returns the name or source slot for sc, or nil for a tag scope.
func (it *item) field(sc scope) *[]byte {
	switch sc.kind {
	case scopeName:
		return it.name()
	case scopeSource:
		return it.source()
	}
	return nil
}

func (r *rule) matches(v []byte) bool { return r.match == nil || r.match.match(v) }

// blocks reports whether a block or allow rule filters the item out.
func (r *rule) blocks(it *item) bool {
	hit := r.cond == nil || r.cond.eval(it)
	if hit && r.scope.kind != scopeNone {
		hit = r.scopeHit(it)
	}
	return hit == (r.kind == actBlock)
}

// scopeHit reports whether the scope value fully matches; for tags, any
// tag with the key (spans may repeat keys).
func (r *rule) scopeHit(it *item) bool {
	if f := it.field(r.scope); f != nil {
		return r.matches(*f)
	}
	for _, t := range *it.tags() {
		if string(t.Key) == r.scope.key && r.matches(t.Value) {
			return true
		}
	}
	return false
}

func (r *rule) blocksLine(line []byte) bool {
	return r.match.match(line) == (r.kind == actBlock)
}

// replaceLine applies a pointLine replaceRegex, appending to dst.
func (r *rule) replaceLine(line, dst []byte) ([]byte, bool) {
	if !r.matches(line) || !r.search.found(line) {
		return line, false
	}
	for n := 0; n < r.iterations; n++ {
		start := len(dst)
		dst = appendReplaceAll(dst, line, r.search.re, r.repl, nil)
		line = dst[start:len(dst):len(dst)]
		if len(line) > maxGrowth || !r.search.found(line) {
			break
		}
	}
	return line, true
}

// maxGrowth stops further replaceRegex iterations once a value is this
// long, so a replacement that grows the value cannot blow up exponentially.
const maxGrowth = 1 << 16

// transform applies a transforming rule and reports whether it acted.
func (r *rule) transform(it *item, s *Scratch) bool {
	if r.cond != nil && !r.cond.eval(it) {
		return false
	}
	switch r.kind {
	case actReplace:
		return r.eachValue(it, s, func(v []byte) ([]byte, bool) { return r.replace(v, r.repl, it, s) })
	case actLowercase:
		return r.eachValue(it, s, func(v []byte) ([]byte, bool) { return lower(v, s) })
	case actLimit:
		return r.limit(it, s)
	case actAddTag:
		return r.addTag(it, s)
	case actDropTag:
		return r.dropTags(it, s)
	case actRenameTag:
		return r.rename(it, s)
	case actExtract:
		return r.extract(it, s)
	case actAllowTags:
		return r.allowTags(it, s)
	case actCount:
		return r.scope.kind == scopeNone || r.scopeHit(it)
	}
	return false
}

// eachValue rewrites the scope value with fn when it matches r.match; for
// tags, every tag with the key, or only the first one changed with
// firstMatchOnly.
func (r *rule) eachValue(it *item, s *Scratch, fn func([]byte) ([]byte, bool)) bool {
	if f := it.field(r.scope); f != nil {
		if !r.matches(*f) {
			return false
		}
		v, ok := fn(*f)
		if ok {
			*f = v
		}
		return ok
	}
	tags := it.tags()
	acted := false
	for i := range *tags {
		t := &(*tags)[i]
		if string(t.Key) != r.scope.key || !r.matches(t.Value) {
			continue
		}
		v, ok := fn(t.Value)
		if !ok {
			continue
		}
		s.ownTags(tags)
		(*tags)[i].Value = v
		acted = true
		if r.firstOnly {
			break
		}
	}
	return acted
}

// replace is Java's find-then-replaceAll, repeated up to r.iterations
// times while the pattern still occurs. It reports false, without
// allocating, when the pattern does not occur.
func (r *rule) replace(v []byte, repl *replacement, it *item, s *Scratch) ([]byte, bool) {
	if !r.search.found(v) {
		return v, false
	}
	for n := 0; n < r.iterations; n++ {
		start := len(s.buf)
		s.buf = appendReplaceAll(s.buf, v, r.search.re, repl, it)
		v = s.seal(start)
		if len(v) > maxGrowth || !r.search.found(v) {
			break
		}
	}
	return v, true
}

func lower(v []byte, s *Scratch) ([]byte, bool) {
	upper := false
	for _, c := range v {
		if c >= utf8.RuneSelf {
			l := bytes.ToLower(v)
			if bytes.Equal(l, v) {
				return v, false
			}
			return s.copyBytes(l), true
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return v, false
	}
	out := s.copyBytes(v)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return out, true
}

// limit enforces maxLength, counted in runes (the reference counts UTF-16
// units; they differ only outside the Basic Multilingual Plane).
func (r *rule) limit(it *item, s *Scratch) bool {
	tooLong := func(v []byte) bool {
		return len(v) > r.maxLength && utf8.RuneCount(v) > r.maxLength
	}
	if f := it.field(r.scope); f != nil {
		if !tooLong(*f) || !r.matches(*f) {
			return false
		}
		*f = r.cut(*f, s)
		return true
	}
	tags := it.tags()
	acted := false
	for i := 0; i < len(*tags); i++ {
		t := (*tags)[i]
		if string(t.Key) != r.scope.key || !tooLong(t.Value) {
			continue
		}
		// The reference drops without consulting match.
		if r.lengthAct == dropTooLong {
			s.ownTags(tags)
			s.setTags(tags, deleteTag(*tags, i))
			i--
		} else if r.matches(t.Value) {
			s.ownTags(tags)
			(*tags)[i].Value = r.cut(t.Value, s)
		} else {
			continue
		}
		acted = true
		if r.firstOnly {
			break
		}
	}
	return acted
}

func (r *rule) cut(v []byte, s *Scratch) []byte {
	n := r.maxLength
	if r.lengthAct == truncateWithEllipsis {
		n -= 3
	}
	end := 0
	for i := 0; i < n; i++ {
		_, size := utf8.DecodeRune(v[end:])
		end += size
	}
	if r.lengthAct != truncateWithEllipsis {
		return v[:end:end]
	}
	start := len(s.buf)
	s.buf = append(append(s.buf, v[:end]...), "..."...)
	return s.seal(start)
}

func deleteTag(tags []wavefront.Tag, i int) []wavefront.Tag {
	copy(tags[i:], tags[i+1:])
	return tags[:len(tags)-1]
}

func (r *rule) addTag(it *item, s *Scratch) bool {
	tags := it.tags()
	i := tagIndex(*tags, r.key)
	if i >= 0 && r.ifNotExists {
		return false
	}
	start := len(s.buf)
	s.buf = r.value.appendExpanded(s.buf, nil, nil, it)
	v := s.seal(start)
	s.ownTags(tags)
	// Point tags are a map in the reference (addTag overwrites); span
	// annotations are a list (spanAddAnnotation appends).
	if i >= 0 && it.pt != nil {
		(*tags)[i].Value = v
		return true
	}
	s.setTags(tags, append(*tags, wavefront.Tag{Key: s.copyBytes([]byte(r.key)), Value: v}))
	return true
}

func (r *rule) dropTags(it *item, s *Scratch) bool {
	tags := it.tags()
	first := -1
	for i, t := range *tags { // a read-only pass: the common case drops nothing
		if r.keyMatch.match(t.Key) && r.matches(t.Value) {
			first = i
			break
		}
	}
	if first < 0 {
		return false
	}
	s.ownTags(tags)
	for i := first; i < len(*tags); i++ {
		t := (*tags)[i]
		if !r.keyMatch.match(t.Key) || !r.matches(t.Value) {
			continue
		}
		s.setTags(tags, deleteTag(*tags, i))
		i--
		if r.firstOnly {
			break
		}
	}
	return true
}

func (r *rule) rename(it *item, s *Scratch) bool {
	tags := it.tags()
	acted := false
	for i := range *tags {
		t := (*tags)[i]
		if string(t.Key) != r.key || !r.matches(t.Value) {
			continue
		}
		s.ownTags(tags)
		(*tags)[i].Key = s.copyBytes([]byte(r.newKey))
		acted = true
		if it.pt != nil {
			// A point has one value per key: the renamed tag replaces any
			// existing tag with the new key.
			for j := 0; j < len(*tags); j++ {
				if j != i && string((*tags)[j].Key) == r.newKey {
					s.setTags(tags, deleteTag(*tags, j))
					break
				}
			}
			break
		}
		if r.firstOnly {
			break
		}
	}
	return acted
}

// extract sets tag r.key from a rewrite of the input value, and optionally
// rewrites the input itself (replaceSource / replaceInput).
func (r *rule) extract(it *item, s *Scratch) bool {
	tags := it.tags()
	if r.ifNotExists && tagIndex(*tags, r.key) >= 0 {
		return false
	}
	if f := it.field(r.input); f != nil {
		v, ok := r.extractFrom(*f, it, s)
		if ok {
			*f = v
		}
		return ok
	}
	acted := false
	n := len(*tags) // annotations the rule adds are not inputs
	for i := 0; i < n && i < len(*tags); i++ {
		t := (*tags)[i]
		if string(t.Key) != r.input.key {
			continue
		}
		v, ok := r.extractFrom(t.Value, it, s)
		if !ok {
			continue
		}
		acted = true
		if j := r.inputIndex(*tags, i, t); j >= 0 {
			(*tags)[j].Value = v
		}
		if it.pt != nil || r.firstOnly {
			break
		}
	}
	return acted
}

// inputIndex finds the input tag again after extractFrom may have
// replaced or reordered the tag slice.
func (r *rule) inputIndex(tags []wavefront.Tag, i int, t wavefront.Tag) int {
	if i < len(tags) && string(tags[i].Key) == string(t.Key) {
		return i
	}
	return tagIndex(tags, string(t.Key))
}

// extractFrom sets the target tag if v matches, and returns v rewritten
// by replInput when one is configured.
func (r *rule) extractFrom(v []byte, it *item, s *Scratch) ([]byte, bool) {
	if !r.matches(v) || !r.search.found(v) {
		return v, false
	}
	start := len(s.buf)
	s.buf = appendReplaceAll(s.buf, v, r.search.re, r.repl, it)
	val := s.seal(start)
	tags := it.tags()
	if len(val) > 0 {
		s.ownTags(tags)
		i := tagIndex(*tags, r.key)
		if i >= 0 && it.pt != nil {
			(*tags)[i].Value = val
		} else {
			s.setTags(tags, append(*tags, wavefront.Tag{Key: s.copyBytes([]byte(r.key)), Value: val}))
		}
	}
	if r.replInput == nil {
		return v, true
	}
	start = len(s.buf)
	s.buf = appendReplaceAll(s.buf, v, r.search.re, r.replInput, it)
	return s.seal(start), true
}

func (r *rule) allowTags(it *item, s *Scratch) bool {
	tags := it.tags()
	acted := false
	for i := 0; i < len(*tags); i++ {
		t := (*tags)[i]
		m, ok := r.allow[string(t.Key)]
		if ok && (m == nil || m.match(t.Value)) {
			continue
		}
		s.ownTags(tags)
		s.setTags(tags, deleteTag(*tags, i))
		i--
		acted = true
	}
	return acted
}
