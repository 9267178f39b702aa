package preprocessor

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// item is the point or span a rule is looking at; exactly one is set.
type item struct {
	pt *wavefront.Point
	sp *wavefront.Span
}

// lookup resolves a {{placeholder}}: the name, the source, or a tag
// (the first annotation with that key for spans).
func (it *item) lookup(name string) ([]byte, bool) {
	if it.pt != nil {
		switch name {
		case "metricName":
			return it.pt.Name, true
		case "sourceName":
			return it.pt.Source, true
		}
		if i := tagIndex(it.pt.Tags, name); i >= 0 {
			return it.pt.Tags[i].Value, true
		}
		return nil, false
	}
	switch name {
	case "spanName":
		return it.sp.Name, true
	case "sourceName":
		return it.sp.Source, true
	}
	if i := tagIndex(it.sp.Tags, name); i >= 0 {
		return it.sp.Tags[i].Value, true
	}
	return nil, false
}

func tagIndex(tags []wavefront.Tag, key string) int {
	for i := range tags {
		if string(tags[i].Key) == key {
			return i
		}
	}
	return -1
}

// cond is a compiled `if:` expression.
type cond interface {
	eval(it *item) bool
}

type andCond struct{ a, b cond }
type orCond struct{ a, b cond }
type notCond struct{ a cond }

func (c *andCond) eval(it *item) bool { return c.a.eval(it) && c.b.eval(it) }
func (c *orCond) eval(it *item) bool  { return c.a.eval(it) || c.b.eval(it) }
func (c *notCond) eval(it *item) bool { return !c.a.eval(it) }

type operandKind uint8

const (
	opndString   operandKind = iota // a quoted literal
	opndNumber                      // a numeric literal
	opndTemplate                    // {{name}}
	opndValue                       // $value
)

type operand struct {
	kind operandKind
	str  []byte
	num  float64
	name string
}

func (o *operand) bytes(it *item) []byte {
	switch o.kind {
	case opndTemplate:
		v, _ := it.lookup(o.name) // a missing tag reads as ""
		return v
	case opndValue:
		return nil
	}
	return o.str
}

func (o *operand) number(it *item) (float64, bool) {
	switch o.kind {
	case opndNumber:
		return o.num, true
	case opndValue:
		if it.pt == nil {
			return 0, false
		}
		return it.pt.Value, true
	}
	f, err := strconv.ParseFloat(string(o.bytes(it)), 64)
	return f, err == nil
}

type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
	cmpEquals
	cmpStartsWith
	cmpEndsWith
	cmpContains
	cmpMatches
)

var cmpOps = map[string]cmpOp{
	"=": cmpEq, "==": cmpEq, "!=": cmpNe, "<": cmpLt, "<=": cmpLe, ">": cmpGt, ">=": cmpGe,
	"equals": cmpEquals, "startswith": cmpStartsWith, "endswith": cmpEndsWith,
	"contains": cmpContains, "matches": cmpMatches,
}

type cmpCond struct {
	l, r    operand
	op      cmpOp
	fold    bool // an …IgnoreCase operator
	numeric bool // =, != and the orderings compare numbers when a side is numeric
	re      *fullMatcher
}

func (c *cmpCond) eval(it *item) bool {
	if c.numeric {
		a, ok1 := c.l.number(it)
		b, ok2 := c.r.number(it)
		if !ok1 || !ok2 {
			return false
		}
		switch c.op {
		case cmpEq:
			return a == b
		case cmpNe:
			return a != b
		case cmpLt:
			return a < b
		case cmpLe:
			return a <= b
		case cmpGt:
			return a > b
		default:
			return a >= b
		}
	}
	a := c.l.bytes(it)
	if c.op == cmpMatches {
		return c.re.match(a)
	}
	b := c.r.bytes(it)
	switch c.op {
	case cmpEq, cmpEquals:
		if c.fold {
			return bytes.EqualFold(a, b)
		}
		return bytes.Equal(a, b)
	case cmpNe:
		return !bytes.Equal(a, b)
	case cmpLt:
		return bytes.Compare(a, b) < 0
	case cmpLe:
		return bytes.Compare(a, b) <= 0
	case cmpGt:
		return bytes.Compare(a, b) > 0
	case cmpGe:
		return bytes.Compare(a, b) >= 0
	case cmpStartsWith:
		return len(a) >= len(b) && (c.fold && bytes.EqualFold(a[:len(b)], b) || bytes.Equal(a[:len(b)], b))
	case cmpEndsWith:
		t := a[len(a)-min(len(a), len(b)):]
		return len(a) >= len(b) && (c.fold && bytes.EqualFold(t, b) || bytes.Equal(t, b))
	default: // cmpContains
		if c.fold {
			return bytes.Contains(bytes.ToLower(a), bytes.ToLower(b))
		}
		return bytes.Contains(a, b)
	}
}

// exprError is an `if:` syntax error at a 1-based column of the expression.
type exprError struct {
	col int
	msg string
}

func (e *exprError) Error() string { return fmt.Sprintf("column %d: %s", e.col, e.msg) }

type token struct {
	text string
	pos  int  // byte offset
	str  bool // a quoted string; text is unescaped
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{text: s[i : i+1], pos: i})
			i++
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, &exprError{i + 1, "unterminated string"}
			}
			toks = append(toks, token{text: b.String(), pos: i, str: true})
			i = j + 1
		case strings.HasPrefix(s[i:], "{{"):
			end := strings.Index(s[i:], "}}")
			if end < 0 {
				return nil, &exprError{i + 1, "unterminated {{"}
			}
			toks = append(toks, token{text: s[i : i+end+2], pos: i})
			i += end + 2
		case strings.IndexByte("=!<>", c) >= 0:
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			toks = append(toks, token{text: s[i:j], pos: i})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()'\"=!<>", rune(s[j])) && !strings.HasPrefix(s[j:], "{{") {
				j++
			}
			if j == i {
				return nil, &exprError{i + 1, fmt.Sprintf("unexpected %q", s[i])}
			}
			toks = append(toks, token{text: s[i:j], pos: i})
			i = j
		}
	}
	return toks, nil
}

type exprParser struct {
	toks  []token
	i     int
	end   int  // len of the source, for errors at the end
	spans bool // $value is a point-only operand
}

// parseCond compiles an `if:` expression for a point rule or, with spans,
// a span rule.
func parseCond(s string, spans bool) (cond, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks, end: len(s), spans: spans}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errAt(fmt.Sprintf("unexpected %q", p.toks[p.i].text))
	}
	return c, nil
}

func (p *exprParser) errAt(msg string) error {
	col := p.end + 1
	if p.i < len(p.toks) {
		col = p.toks[p.i].pos + 1
	}
	return &exprError{col, msg}
}

func (p *exprParser) keyword(w string) bool {
	if p.i < len(p.toks) && !p.toks[p.i].str && strings.EqualFold(p.toks[p.i].text, w) {
		p.i++
		return true
	}
	return false
}

func (p *exprParser) or() (cond, error) {
	c, err := p.and()
	for err == nil && p.keyword("or") {
		var r cond
		if r, err = p.and(); err == nil {
			c = &orCond{c, r}
		}
	}
	return c, err
}

func (p *exprParser) and() (cond, error) {
	c, err := p.not()
	for err == nil && p.keyword("and") {
		var r cond
		if r, err = p.not(); err == nil {
			c = &andCond{c, r}
		}
	}
	return c, err
}

func (p *exprParser) not() (cond, error) {
	if p.keyword("not") {
		c, err := p.not()
		if err != nil {
			return nil, err
		}
		return &notCond{c}, nil
	}
	if p.i < len(p.toks) && !p.toks[p.i].str && p.toks[p.i].text == "(" {
		p.i++
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.i == len(p.toks) || p.toks[p.i].text != ")" || p.toks[p.i].str {
			return nil, p.errAt("expected )")
		}
		p.i++
		return c, nil
	}
	return p.comparison()
}

func (p *exprParser) comparison() (cond, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.i == len(p.toks) || p.toks[p.i].str {
		return nil, p.errAt("expected a comparison operator")
	}
	opText := p.toks[p.i].text
	name := strings.ToLower(opText)
	fold := false
	if n, ok := strings.CutSuffix(name, "ignorecase"); ok && n != "matches" {
		name, fold = n, true
	}
	op, ok := cmpOps[name]
	if !ok || fold && op < cmpEquals {
		return nil, p.errAt(fmt.Sprintf("unknown operator %q", opText))
	}
	p.i++
	opPos := p.i
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	c := &cmpCond{l: l, r: r, op: op, fold: fold}
	c.numeric = op <= cmpGe && (isNumeric(l) || isNumeric(r))
	if op == cmpMatches {
		if r.kind != opndString {
			p.i = opPos
			return nil, p.errAt("matches needs a quoted regex")
		}
		if c.re, err = compileFull(string(r.str)); err != nil {
			p.i = opPos
			return nil, p.errAt(err.Error())
		}
	}
	if !c.numeric && (l.kind == opndValue || r.kind == opndValue) {
		p.i = opPos - 1
		return nil, p.errAt("$value can only be compared with =, !=, <, <=, >, >=")
	}
	return c, nil
}

func isNumeric(o operand) bool { return o.kind == opndNumber || o.kind == opndValue }

func (p *exprParser) operand() (operand, error) {
	if p.i == len(p.toks) {
		return operand{}, p.errAt("expected an operand")
	}
	t := p.toks[p.i]
	switch {
	case t.str:
		p.i++
		return operand{kind: opndString, str: []byte(t.text)}, nil
	case strings.HasPrefix(t.text, "{{"):
		name := t.text[2 : len(t.text)-2]
		if name == "" {
			return operand{}, p.errAt("empty {{}}")
		}
		p.i++
		return operand{kind: opndTemplate, name: name}, nil
	case t.text == "$value":
		if p.spans {
			return operand{}, p.errAt("$value is not available for spans")
		}
		p.i++
		return operand{kind: opndValue}, nil
	}
	if f, err := strconv.ParseFloat(t.text, 64); err == nil {
		p.i++
		return operand{kind: opndNumber, num: f}, nil
	}
	return operand{}, p.errAt(fmt.Sprintf("unexpected %q; expected {{name}}, $value, a number or a quoted string", t.text))
}
