package wql

import "strings"

// Expr is a parsed query expression. String returns a canonical form that
// parses back to an identical Expr.
type Expr interface {
	String() string
	pos() int
}

// Filter is the parsed filter argument of ts(). It is exported so that a
// Storage can inspect it to push selection down to an index; every Filter is
// also a Matcher.
type Filter interface {
	Matcher
	String() string
}

// NumberLit is a numeric constant. Text keeps the spelling for printing.
type NumberLit struct {
	Pos  int
	Val  float64
	Text string
}

// TimeExpr is time(): the bucket timestamp in epoch seconds.
type TimeExpr struct{ Pos int }

// TSExpr is ts(metric[, filter]).
type TSExpr struct {
	Pos          int
	Metric       string // glob; '*' matches any run of characters, dots included
	MetricQuoted bool
	Filter       Filter // nil when absent: every series of the metric
}

// UnaryExpr is -X.
type UnaryExpr struct {
	Pos int
	X   Expr
}

// BinaryExpr is L Op R with Op one of + - * /.
type BinaryExpr struct {
	Pos  int
	Op   byte
	L, R Expr
}

// AggExpr is sum/avg/min/max/count and their raw* variants with an optional
// group-by list (tag names or the pseudo-tags sources, metrics, pointTags).
type AggExpr struct {
	Pos   int
	Fn    string
	X     Expr
	Group []string
}

// FuncExpr is a one-argument series function: rate or deriv.
type FuncExpr struct {
	Pos int
	Fn  string
	X   Expr
}

// Duration is a time window such as 5m, kept with its spelling.
type Duration struct {
	Ms   int64
	Text string
}

// WindowExpr is mavg(window, X) and last([window,] X); Window.Ms is 0 when
// last() has no window.
type WindowExpr struct {
	Pos    int
	Fn     string
	Window Duration
	X      Expr
}

// DefaultExpr is default([window,] value, X).
type DefaultExpr struct {
	Pos    int
	Window Duration // Ms == 0: fill every gap
	Value  *NumberLit
	X      Expr
}

// AlignExpr is align(interval, [summarizer,] X).
type AlignExpr struct {
	Pos        int
	Interval   Duration
	Summarizer string // "" prints nothing and means mean
	X          Expr
}

// PercentileExpr is percentile(p, X[, group...]) over le-tagged bucket series.
type PercentileExpr struct {
	Pos   int
	P     *NumberLit // 0..100
	X     Expr
	Group []string
}

// HSExpr is hs(metric[, filter]): the distribution series of a Wavefront
// histogram. Metric carries the granularity suffix (.m, .h or .d) as
// written; it is only valid as the argument of a HistExpr.
type HSExpr struct {
	Pos          int
	Metric       string
	MetricQuoted bool
	Filter       Filter
}

// HistExpr turns histograms into time series: percentile(p, hs(...)),
// median(hs(...)), or count/sum/avg/min/max(hs(...)), per histogram series
// or, with group tags, per group of merged histograms.
type HistExpr struct {
	Pos   int
	Fn    string     // percentile, median, count, sum, avg, min, max
	P     *NumberLit // percentile only
	X     *HSExpr
	Group []string
}

// OrElseExpr is X.orElse(Else): Else is used when X yields no series at all.
type OrElseExpr struct {
	Pos  int
	X    Expr
	Else Expr
}

func (e *NumberLit) pos() int      { return e.Pos }
func (e *TimeExpr) pos() int       { return e.Pos }
func (e *TSExpr) pos() int         { return e.Pos }
func (e *UnaryExpr) pos() int      { return e.Pos }
func (e *BinaryExpr) pos() int     { return e.Pos }
func (e *AggExpr) pos() int        { return e.Pos }
func (e *FuncExpr) pos() int       { return e.Pos }
func (e *WindowExpr) pos() int     { return e.Pos }
func (e *DefaultExpr) pos() int    { return e.Pos }
func (e *AlignExpr) pos() int      { return e.Pos }
func (e *PercentileExpr) pos() int { return e.Pos }
func (e *OrElseExpr) pos() int     { return e.Pos }
func (e *HSExpr) pos() int         { return e.Pos }
func (e *HistExpr) pos() int       { return e.Pos }

func (e *NumberLit) String() string { return e.Text }
func (e *TimeExpr) String() string  { return "time()" }

func (e *TSExpr) String() string { return selector("ts", e.Metric, e.MetricQuoted, e.Filter) }

// selector prints ts(…) and hs(…): a metric and an optional filter.
func selector(fn, metric string, quoted bool, filter Filter) string {
	var b strings.Builder
	b.WriteString(fn + "(")
	writeWord(&b, metric, quoted)
	if filter != nil {
		b.WriteString(", ")
		b.WriteString(filter.String())
	}
	b.WriteByte(')')
	return b.String()
}

func (e *UnaryExpr) String() string {
	if _, ok := e.X.(*BinaryExpr); ok {
		return "-(" + e.X.String() + ")"
	}
	return "-" + e.X.String()
}

func precedence(op byte) int {
	if op == '*' || op == '/' {
		return 2
	}
	return 1
}

func (e *BinaryExpr) String() string {
	p := precedence(e.Op)
	l, r := e.L.String(), e.R.String()
	if b, ok := e.L.(*BinaryExpr); ok && precedence(b.Op) < p {
		l = "(" + l + ")"
	}
	// Operators are left-associative, so an equal-precedence right operand
	// needs parentheses to keep its grouping.
	if b, ok := e.R.(*BinaryExpr); ok && precedence(b.Op) <= p {
		r = "(" + r + ")"
	}
	return l + " " + string(e.Op) + " " + r
}

func (e *AggExpr) String() string {
	return e.Fn + "(" + e.X.String() + groupString(e.Group) + ")"
}

func (e *FuncExpr) String() string { return e.Fn + "(" + e.X.String() + ")" }

func (e *WindowExpr) String() string {
	if e.Window.Text == "" {
		return e.Fn + "(" + e.X.String() + ")"
	}
	return e.Fn + "(" + e.Window.Text + ", " + e.X.String() + ")"
}

func (e *DefaultExpr) String() string {
	w := ""
	if e.Window.Text != "" {
		w = e.Window.Text + ", "
	}
	return "default(" + w + e.Value.Text + ", " + e.X.String() + ")"
}

func (e *AlignExpr) String() string {
	s := ""
	if e.Summarizer != "" {
		s = e.Summarizer + ", "
	}
	return "align(" + e.Interval.Text + ", " + s + e.X.String() + ")"
}

func (e *PercentileExpr) String() string {
	return "percentile(" + e.P.Text + ", " + e.X.String() + groupString(e.Group) + ")"
}

func (e *HSExpr) String() string { return selector("hs", e.Metric, e.MetricQuoted, e.Filter) }

func (e *HistExpr) String() string {
	p := ""
	if e.P != nil {
		p = e.P.Text + ", "
	}
	return e.Fn + "(" + p + e.X.String() + groupString(e.Group) + ")"
}

func (e *OrElseExpr) String() string {
	x := e.X.String()
	switch e.X.(type) {
	case *BinaryExpr, *UnaryExpr:
		x = "(" + x + ")"
	}
	return x + ".orElse(" + e.Else.String() + ")"
}

func groupString(g []string) string {
	var b strings.Builder
	for _, t := range g {
		b.WriteString(", ")
		b.WriteString(t)
	}
	return b.String()
}

// FilterTerm is key=value (or key!=value). Key "source" (alias "host")
// matches the series source; Value may contain '*' wildcards.
type FilterTerm struct {
	Pos    int
	Key    string
	Value  string
	Neg    bool
	Quoted bool
}

// FilterAnd, FilterOr and FilterNot combine terms.
type FilterAnd struct{ L, R Filter }

// FilterOr matches when either side matches.
type FilterOr struct{ L, R Filter }

// FilterNot matches when X does not.
type FilterNot struct{ X Filter }

func (f *FilterTerm) String() string {
	var b strings.Builder
	b.WriteString(f.Key)
	if f.Neg {
		b.WriteString("!=")
	} else {
		b.WriteByte('=')
	}
	writeWord(&b, f.Value, f.Quoted)
	return b.String()
}

func (f *FilterAnd) String() string {
	return filterOperand(f.L, false) + " and " + filterOperand(f.R, true)
}

func (f *FilterOr) String() string {
	r := f.R.String()
	if _, ok := f.R.(*FilterOr); ok {
		r = "(" + r + ")"
	}
	return f.L.String() + " or " + r
}

func (f *FilterNot) String() string {
	switch f.X.(type) {
	case *FilterAnd, *FilterOr:
		return "not (" + f.X.String() + ")"
	}
	return "not " + f.X.String()
}

// filterOperand parenthesises an and-operand that binds looser (or) or, on
// the right, one that would otherwise re-associate (and).
func filterOperand(f Filter, right bool) string {
	switch f.(type) {
	case *FilterOr:
		return "(" + f.String() + ")"
	case *FilterAnd:
		if right {
			return "(" + f.String() + ")"
		}
	}
	return f.String()
}

// writeWord writes s bare when it was bare in the query and is still a valid
// bare word, else double-quoted with \" and \\ escapes.
func writeWord(b *strings.Builder, s string, quoted bool) {
	if !quoted && isBareWord(s) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func isBareWord(s string) bool {
	if s == "" || isKeyword(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

func isKeyword(s string) bool {
	return strings.EqualFold(s, "and") || strings.EqualFold(s, "or") || strings.EqualFold(s, "not")
}
