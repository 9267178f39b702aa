package wql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Error is a query error at byte offset Pos of the original query (before
// variable substitution).
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("position %d: %s", e.Pos, e.Msg) }

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 500

// Parse substitutes ${name} dashboard variables from vars (a value may be "*"
// or a literal, and is pasted verbatim) and parses the result. Errors are
// *Error with positions in q; an error inside a substituted value points at
// its "${".
func Parse(q string, vars map[string]string) (Expr, error) {
	src, segs, err := substitute(q, vars)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, segs: segs, origLen: len(q)}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i < len(p.src) {
		return nil, p.errf(p.i, "unexpected %s", p.describe())
	}
	if h := strayHS(e); h != nil {
		return nil, p.errf(h.Pos, "hs() yields histograms: use it as the argument of percentile, median, count, sum, avg, min or max")
	}
	return e, nil
}

// strayHS finds an hs() that is not the argument of a histogram function.
func strayHS(e Expr) *HSExpr {
	var kids []Expr
	switch e := e.(type) {
	case *HSExpr:
		return e
	case *UnaryExpr:
		kids = []Expr{e.X}
	case *BinaryExpr:
		kids = []Expr{e.L, e.R}
	case *AggExpr:
		kids = []Expr{e.X}
	case *FuncExpr:
		kids = []Expr{e.X}
	case *WindowExpr:
		kids = []Expr{e.X}
	case *DefaultExpr:
		kids = []Expr{e.X}
	case *AlignExpr:
		kids = []Expr{e.X}
	case *PercentileExpr:
		kids = []Expr{e.X}
	case *OrElseExpr:
		kids = []Expr{e.X, e.Else}
	}
	for _, k := range kids {
		if h := strayHS(k); h != nil {
			return h
		}
	}
	return nil
}

// segment maps a stretch of the substituted query back to the original.
type segment struct {
	exp, orig, n int
	isVar        bool
}

func substitute(q string, vars map[string]string) (string, []segment, error) {
	if !strings.Contains(q, "${") {
		return q, nil, nil
	}
	var b strings.Builder
	var segs []segment
	last := 0
	for i := 0; i+1 < len(q); {
		if q[i] != '$' || q[i+1] != '{' {
			i++
			continue
		}
		end := strings.IndexByte(q[i+2:], '}')
		if end < 0 {
			return "", nil, &Error{Pos: i, Msg: "unterminated variable reference"}
		}
		name := q[i+2 : i+2+end]
		v, ok := vars[name]
		if !ok {
			return "", nil, &Error{Pos: i, Msg: fmt.Sprintf("unknown variable %q", name)}
		}
		segs = append(segs, segment{exp: b.Len(), orig: last, n: i - last})
		b.WriteString(q[last:i])
		segs = append(segs, segment{exp: b.Len(), orig: i, n: len(v), isVar: true})
		b.WriteString(v)
		i += end + 3
		last = i
	}
	segs = append(segs, segment{exp: b.Len(), orig: last, n: len(q) - last})
	b.WriteString(q[last:])
	return b.String(), segs, nil
}

type parser struct {
	src     string
	i       int
	segs    []segment
	origLen int
}

func (p *parser) origPos(pos int) int {
	if p.segs == nil {
		return pos
	}
	for _, s := range p.segs {
		if pos >= s.exp && pos < s.exp+s.n {
			if s.isVar {
				return s.orig
			}
			return s.orig + pos - s.exp
		}
	}
	return p.origLen
}

func (p *parser) errf(pos int, format string, a ...any) *Error {
	return &Error{Pos: p.origPos(pos), Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) describe() string {
	if p.i >= len(p.src) {
		return "end of query"
	}
	return strconv.Quote(p.src[p.i : p.i+1])
}

func (p *parser) ws() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return 0
}

func (p *parser) expect(c byte) error {
	p.ws()
	if p.peek() != c {
		return p.errf(p.i, "expected %q, found %s", string(c), p.describe())
	}
	p.i++
	return nil
}

func (p *parser) expr(depth int) (Expr, error) {
	if depth > maxDepth {
		return nil, p.errf(p.i, "query nested too deeply")
	}
	return p.binary(depth, "+-", p.mul)
}

func (p *parser) mul(depth int) (Expr, error) { return p.binary(depth, "*/", p.unary) }

// binary parses operand { op operand }, left-associative, for the operators
// in ops; operand parses the next tighter-binding level.
func (p *parser) binary(depth int, ops string, operand func(int) (Expr, error)) (Expr, error) {
	l, err := operand(depth)
	if err != nil {
		return nil, err
	}
	for {
		p.ws()
		c := p.peek()
		if c == 0 || strings.IndexByte(ops, c) < 0 {
			return l, nil
		}
		pos := p.i
		p.i++
		r, err := operand(depth)
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{Pos: pos, Op: c, L: l, R: r}
	}
}

func (p *parser) unary(depth int) (Expr, error) {
	p.ws()
	if p.peek() == '-' {
		pos := p.i
		p.i++
		if depth > maxDepth {
			return nil, p.errf(pos, "query nested too deeply")
		}
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &UnaryExpr{Pos: pos, X: x}, nil
	}
	x, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	for {
		p.ws()
		if !strings.HasPrefix(p.src[p.i:], ".orElse") {
			return x, nil
		}
		pos := p.i
		p.i += len(".orElse")
		if err := p.expect('('); err != nil {
			return nil, err
		}
		alt, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		x = &OrElseExpr{Pos: pos, X: x, Else: alt}
	}
}

func (p *parser) primary(depth int) (Expr, error) {
	p.ws()
	c := p.peek()
	switch {
	case c == '(':
		p.i++
		x, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		return x, p.expect(')')
	case isDigit(c) || c == '.':
		n, d, err := p.numberOrDuration()
		if err != nil {
			return nil, err
		}
		if d != nil {
			return nil, p.errf(n.Pos, "duration %s is not a value here", d.Text)
		}
		return n, nil
	case isIdentStart(c):
		return p.call(depth)
	}
	return nil, p.errf(p.i, "expected expression, found %s", p.describe())
}

var aggFuncs = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true,
	"rawsum": true, "rawavg": true, "rawmin": true, "rawmax": true, "rawcount": true,
}

var summarizers = map[string]bool{
	"mean": true, "sum": true, "min": true, "max": true, "count": true, "first": true, "last": true,
}

func (p *parser) call(depth int) (Expr, error) {
	pos := p.i
	for p.i < len(p.src) && isIdentByte(p.src[p.i]) {
		p.i++
	}
	name := p.src[pos:p.i]
	p.ws()
	if p.peek() != '(' {
		return nil, p.errf(pos, "expected function call, found identifier %q", name)
	}
	known := name == "ts" || name == "time" || aggFuncs[name] || name == "rate" || name == "deriv" ||
		name == "mavg" || name == "last" || name == "default" || name == "align" || name == "percentile" ||
		name == "hs" || name == "median"
	if !known {
		return nil, p.errf(pos, "unknown or unsupported function %q", name)
	}
	p.i++
	depth++
	switch name {
	case "ts":
		return p.ts(pos)
	case "hs":
		return p.hs(pos)
	case "median":
		x, err := p.expr(depth)
		if err != nil {
			return nil, err
		}
		h, ok := x.(*HSExpr)
		if !ok {
			return nil, p.errf(x.pos(), "median() takes hs(...)")
		}
		g, err := p.groupArgs()
		if err != nil {
			return nil, err
		}
		return &HistExpr{Pos: pos, Fn: name, X: h, Group: g}, nil
	case "time":
		return &TimeExpr{Pos: pos}, p.expect(')')
	case "rate", "deriv":
		x, err := p.expr(depth)
		if err != nil {
			return nil, err
		}
		return &FuncExpr{Pos: pos, Fn: name, X: x}, p.expect(')')
	case "mavg", "last":
		w := &WindowExpr{Pos: pos, Fn: name}
		d, err := p.optDuration(name == "mavg")
		if err != nil {
			return nil, err
		}
		if d != nil {
			w.Window = *d
		}
		if w.X, err = p.expr(depth); err != nil {
			return nil, err
		}
		return w, p.expect(')')
	case "default":
		return p.defaultCall(pos, depth)
	case "align":
		return p.alignCall(pos, depth)
	case "percentile":
		n, err := p.signedNumber()
		if err != nil {
			return nil, err
		}
		if !(n.Val >= 0 && n.Val <= 100) {
			return nil, p.errf(n.Pos, "percentile must be between 0 and 100")
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		x, err := p.expr(depth)
		if err != nil {
			return nil, err
		}
		g, err := p.groupArgs()
		if err != nil {
			return nil, err
		}
		if h, ok := x.(*HSExpr); ok {
			return &HistExpr{Pos: pos, Fn: name, P: n, X: h, Group: g}, nil
		}
		return &PercentileExpr{Pos: pos, P: n, X: x, Group: g}, nil
	}
	x, err := p.expr(depth)
	if err != nil {
		return nil, err
	}
	g, err := p.groupArgs()
	if err != nil {
		return nil, err
	}
	if h, ok := x.(*HSExpr); ok {
		if strings.HasPrefix(name, "raw") {
			return nil, p.errf(pos, "%s() does not take hs(...); use %s()", name, name[3:])
		}
		return &HistExpr{Pos: pos, Fn: name, X: h, Group: g}, nil
	}
	return &AggExpr{Pos: pos, Fn: name, X: x, Group: g}, nil
}

// hs parses the arguments of hs(): as ts(), and the metric must name the
// granularity (Wavefront stores minute, hour and day histograms apart).
func (p *parser) hs(pos int) (Expr, error) {
	start := p.i
	t, err := p.ts(pos)
	if err != nil {
		return nil, err
	}
	ts := t.(*TSExpr)
	if _, _, ok := histogramGranularity(ts.Metric); !ok {
		return nil, p.errf(start, "hs() metric %q must end in .m, .h or .d (the histogram granularity)", ts.Metric)
	}
	return &HSExpr{Pos: pos, Metric: ts.Metric, MetricQuoted: ts.MetricQuoted, Filter: ts.Filter}, nil
}

// histogramGranularity splits an hs() metric into the histogram name glob
// and its granularity, 'm', 'h' or 'd'.
func histogramGranularity(metric string) (name string, gran byte, ok bool) {
	n := len(metric)
	if n < 3 || metric[n-2] != '.' {
		return "", 0, false
	}
	switch g := metric[n-1]; g {
	case 'm', 'h', 'd':
		return metric[:n-2], g, true
	}
	return "", 0, false
}

// groupArgs parses ", tag ...)". A "by (tag, ...)" clause may come before
// or after the closing parenthesis; the reference dashboards use both.
func (p *parser) groupArgs() ([]string, error) {
	var g []string
	for {
		p.ws()
		if p.peek() == ')' {
			p.i++
			break
		}
		if p.by() {
			var err error
			if g, err = p.byList(g); err != nil {
				return nil, err
			}
			continue
		}
		if p.peek() != ',' {
			return nil, p.errf(p.i, "expected \",\" or \")\", found %s", p.describe())
		}
		p.i++
		t, err := p.tagName()
		if err != nil {
			return nil, err
		}
		g = append(g, t)
	}
	save := p.i
	if p.by() {
		return p.byList(g)
	}
	p.i = save
	return g, nil
}

// by consumes the keyword "by" when it is a whole word.
func (p *parser) by() bool {
	p.ws()
	if !strings.HasPrefix(p.src[p.i:], "by") || (p.i+2 < len(p.src) && isIdentByte(p.src[p.i+2])) {
		return false
	}
	p.i += 2
	return true
}

func (p *parser) byList(g []string) ([]string, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	for {
		t, err := p.tagName()
		if err != nil {
			return nil, err
		}
		g = append(g, t)
		p.ws()
		if p.peek() == ')' {
			p.i++
			return g, nil
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
	}
}

func (p *parser) tagName() (string, error) {
	p.ws()
	start := p.i
	for p.i < len(p.src) && isKeyByte(p.src[p.i]) {
		p.i++
	}
	if start == p.i {
		return "", p.errf(p.i, "expected tag name, found %s", p.describe())
	}
	return p.src[start:p.i], nil
}

func (p *parser) defaultCall(pos, depth int) (Expr, error) {
	d := &DefaultExpr{Pos: pos}
	p.ws()
	if isDigit(p.peek()) {
		save := p.i
		n, dur, err := p.numberOrDuration()
		if err != nil {
			return nil, err
		}
		if dur != nil {
			if dur.Ms <= 0 {
				return nil, p.errf(n.Pos, "window must be positive")
			}
			d.Window = *dur
			if err := p.expect(','); err != nil {
				return nil, err
			}
		} else {
			p.i = save // a plain number is the value, re-lexed below with its sign handling
		}
	}
	v, err := p.signedNumber()
	if err != nil {
		return nil, err
	}
	d.Value = v
	if err := p.expect(','); err != nil {
		return nil, err
	}
	if d.X, err = p.expr(depth); err != nil {
		return nil, err
	}
	return d, p.expect(')')
}

func (p *parser) alignCall(pos, depth int) (Expr, error) {
	a := &AlignExpr{Pos: pos}
	d, err := p.optDuration(true)
	if err != nil {
		return nil, err
	}
	a.Interval = *d
	p.ws()
	start := p.i
	for p.i < len(p.src) && isIdentByte(p.src[p.i]) {
		p.i++
	}
	word := p.src[start:p.i]
	p.ws()
	if word != "" && p.peek() == ',' {
		if !summarizers[word] {
			return nil, p.errf(start, "unknown summarizer %q", word)
		}
		a.Summarizer = word
		p.i++
	} else {
		p.i = start // no summarizer: the word starts the expression
	}
	if a.X, err = p.expr(depth); err != nil {
		return nil, err
	}
	return a, p.expect(')')
}

// optDuration parses "<duration>," when present; required makes it mandatory.
func (p *parser) optDuration(required bool) (*Duration, error) {
	p.ws()
	save := p.i
	if isDigit(p.peek()) {
		n, d, err := p.numberOrDuration()
		if err != nil {
			return nil, err
		}
		if d != nil {
			if d.Ms <= 0 {
				return nil, p.errf(n.Pos, "window must be positive")
			}
			return d, p.expect(',')
		}
	}
	p.i = save
	if required {
		return nil, p.errf(p.i, "expected time window such as 5m, found %s", p.describe())
	}
	return nil, nil
}

func (p *parser) signedNumber() (*NumberLit, error) {
	p.ws()
	pos := p.i
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) && p.peek() != '.' {
		return nil, p.errf(p.i, "expected number, found %s", p.describe())
	}
	n, d, err := p.numberOrDuration()
	if err != nil {
		return nil, err
	}
	if d != nil {
		return nil, p.errf(n.Pos, "expected number, found duration %s", d.Text)
	}
	if neg {
		n = &NumberLit{Pos: pos, Val: -n.Val, Text: "-" + n.Text}
	}
	return n, nil
}

var unitMs = map[byte]int64{'s': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000, 'w': 7 * 86400000}

// numberOrDuration lexes a number; when a time unit letter follows directly
// it is a duration instead (d != nil).
func (p *parser) numberOrDuration() (*NumberLit, *Duration, error) {
	start := p.i
	for p.i < len(p.src) && isDigit(p.src[p.i]) {
		p.i++
	}
	if p.peek() == '.' && p.i+1 < len(p.src) && isDigit(p.src[p.i+1]) {
		p.i++
		for p.i < len(p.src) && isDigit(p.src[p.i]) {
			p.i++
		}
	}
	if start == p.i {
		return nil, nil, p.errf(start, "expected number, found %s", p.describe())
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		j := p.i + 1
		if j < len(p.src) && (p.src[j] == '+' || p.src[j] == '-') {
			j++
		}
		if j < len(p.src) && isDigit(p.src[j]) {
			for j < len(p.src) && isDigit(p.src[j]) {
				j++
			}
			p.i = j
		}
	}
	text := p.src[start:p.i]
	n := &NumberLit{Pos: start, Text: text}
	if u, ok := unitMs[p.peek()]; ok && (p.i+1 >= len(p.src) || !isIdentByte(p.src[p.i+1])) {
		p.i++
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil || v > math.MaxInt64/u {
			return nil, nil, p.errf(start, "invalid time window %q", p.src[start:p.i])
		}
		return n, &Duration{Ms: v * u, Text: p.src[start:p.i]}, nil
	}
	if isIdentByte(p.peek()) {
		return nil, nil, p.errf(p.i, "unexpected %s after number", p.describe())
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, nil, p.errf(start, "invalid number %q", text)
	}
	n.Val = v
	return n, nil, nil
}

func (p *parser) ts(pos int) (Expr, error) {
	t := &TSExpr{Pos: pos}
	p.ws()
	start := p.i
	m, quoted, err := p.word()
	if err != nil {
		return nil, err
	}
	if m == "" {
		return nil, p.errf(start, "expected metric name, found %s", p.describe())
	}
	t.Metric, t.MetricQuoted = m, quoted
	p.ws()
	if p.peek() == ',' {
		p.i++
		if t.Filter, err = p.filterOr(0); err != nil {
			return nil, err
		}
	}
	return t, p.expect(')')
}

// word lexes a bare word or a '...'/"..." string with backslash escapes.
func (p *parser) word() (string, bool, error) {
	c := p.peek()
	if c == '"' || c == '\'' {
		start := p.i
		p.i++
		var b strings.Builder
		for p.i < len(p.src) {
			d := p.src[p.i]
			p.i++
			switch {
			case d == c:
				return b.String(), true, nil
			case d == '\\' && p.i < len(p.src):
				b.WriteByte(p.src[p.i])
				p.i++
			default:
				b.WriteByte(d)
			}
		}
		return "", false, p.errf(start, "unterminated string")
	}
	start := p.i
	for p.i < len(p.src) && isWordByte(p.src[p.i]) {
		p.i++
	}
	return p.src[start:p.i], false, nil
}

// keyword consumes and/or/not (any case) when it is a whole word.
func (p *parser) keyword(kw string) bool {
	p.ws()
	end := p.i + len(kw)
	if end > len(p.src) || !strings.EqualFold(p.src[p.i:end], kw) {
		return false
	}
	if end < len(p.src) && isWordByte(p.src[end]) {
		return false
	}
	p.i = end
	return true
}

func (p *parser) filterOr(depth int) (Filter, error) {
	if depth > maxDepth {
		return nil, p.errf(p.i, "filter nested too deeply")
	}
	l, err := p.filterAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.filterAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &FilterOr{L: l, R: r}
	}
	return l, nil
}

func (p *parser) filterAnd(depth int) (Filter, error) {
	l, err := p.filterNot(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.filterNot(depth)
		if err != nil {
			return nil, err
		}
		l = &FilterAnd{L: l, R: r}
	}
	return l, nil
}

func (p *parser) filterNot(depth int) (Filter, error) {
	if p.keyword("not") {
		if depth > maxDepth {
			return nil, p.errf(p.i, "filter nested too deeply")
		}
		x, err := p.filterNot(depth + 1)
		if err != nil {
			return nil, err
		}
		return &FilterNot{X: x}, nil
	}
	p.ws()
	if p.peek() == '(' {
		p.i++
		f, err := p.filterOr(depth + 1)
		if err != nil {
			return nil, err
		}
		return f, p.expect(')')
	}
	return p.term()
}

func (p *parser) term() (Filter, error) {
	p.ws()
	t := &FilterTerm{Pos: p.origPos(p.i)}
	start := p.i
	for p.i < len(p.src) && isKeyByte(p.src[p.i]) {
		p.i++
	}
	if start == p.i {
		return nil, p.errf(p.i, "expected tag filter such as key=value, found %s", p.describe())
	}
	t.Key = p.src[start:p.i]
	if t.Key == "host" {
		t.Key = "source"
	}
	p.ws()
	switch {
	case strings.HasPrefix(p.src[p.i:], "!="):
		t.Neg = true
		p.i += 2
	case p.peek() == '=':
		p.i++
	default:
		return nil, p.errf(p.i, "expected \"=\" or \"!=\" after %q, found %s", t.Key, p.describe())
	}
	p.ws()
	vpos := p.i
	v, quoted, err := p.word()
	if err != nil {
		return nil, err
	}
	if v == "" && !quoted {
		return nil, p.errf(vpos, "expected tag value, found %s", p.describe())
	}
	t.Value, t.Quoted = v, quoted
	return t, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentByte(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// isKeyByte: tag keys are identifiers that may also contain . - ~.
func isKeyByte(c byte) bool { return isIdentByte(c) || c == '.' || c == '-' || c == '~' }

// isWordByte: bare metric names and tag values run to whitespace or syntax.
func isWordByte(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	switch c {
	case ',', '(', ')', '"', '\'', '=', '!':
		return false
	}
	return true
}
