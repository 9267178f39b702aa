package preprocessor

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// Result is the outcome of running rules on an item.
type Result int

const (
	// Keep: the item passes (possibly changed).
	Keep Result = iota
	// Block: a filter dropped the item silently; count it as blocked.
	Block
	// Reject: dropped with a message; count it as rejected and log the
	// message. User rules only block, as in the reference; Reject is for
	// filters with a reason, such as the proxy's own timestamp filter.
	Reject
)

func (r Result) String() string {
	switch r {
	case Keep:
		return "keep"
	case Block:
		return "block"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Rules is a parsed rule file. It is immutable and safe for concurrent
// use; a reload produces a new *Rules.
type Rules struct {
	ports  map[string]*PortRules
	global []*rule

	mu     sync.Mutex            // guards others
	others map[string]*PortRules // ports with global rules only, made on demand
}

// ForPort returns the rules for a listener port: the port's own rules in
// file order followed by the global ones. It returns the same *PortRules for
// the same port, so counters accumulate; a nil *Rules gives a nil
// *PortRules, which keeps everything.
func (r *Rules) ForPort(port string) *PortRules {
	if r == nil {
		return nil
	}
	if p := r.ports[port]; p != nil {
		return p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.others[port]
	if p == nil {
		p = newPortRules(port, r.global)
		if r.others == nil {
			r.others = map[string]*PortRules{}
		}
		r.others[port] = p
	}
	return p
}

// Stats returns the counters of every port handed out or listed in the
// file, sorted by port and then rule order.
func (r *Rules) Stats() []RuleStats {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	all := make([]*PortRules, 0, len(r.ports)+len(r.others))
	for _, p := range r.others {
		all = append(all, p)
	}
	r.mu.Unlock()
	for _, p := range r.ports {
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b *PortRules) int { return cmp.Compare(a.port, b.port) })
	var out []RuleStats
	for _, p := range all {
		out = append(out, p.Stats()...)
	}
	return out
}

// PortRules are the rules that apply to one port, split by stage. It is
// immutable apart from its counters and safe for concurrent use. A nil
// *PortRules keeps everything.
type PortRules struct {
	port string
	// Stages in the order the reference runs them: line transforms, line
	// filters, then per object the transformers in file order followed by
	// the filters in file order.
	lineXform, lineFilter   stage
	pointXform, pointFilter stage
	spanXform, spanFilter   stage
}

// stage is a list of rules with their counters.
type stage struct {
	rules []*rule
	ctr   []counters
}

// counters are per rule per port. checked is not stored per rule: a stage
// records only where each item stopped (ended), which costs one atomic add
// per item instead of one per rule, and Stats derives the checked counts.
type counters struct {
	ended atomic.Int64
	count atomic.Int64
	nanos atomic.Int64
	_     [40]byte // keep hot counters of neighbouring rules off one cache line
}

func newPortRules(port string, rules []*rule) *PortRules {
	p := &PortRules{port: port}
	add := func(s *stage, r *rule) { s.rules = append(s.rules, r) }
	for _, r := range rules {
		switch {
		case r.line && r.filter:
			add(&p.lineFilter, r)
		case r.line:
			add(&p.lineXform, r)
		case r.span && r.filter:
			add(&p.spanFilter, r)
		case r.span:
			add(&p.spanXform, r)
		case r.filter:
			add(&p.pointFilter, r)
		default:
			add(&p.pointXform, r)
		}
	}
	for _, s := range p.stages() {
		s.ctr = make([]counters, len(s.rules))
	}
	return p
}

func (p *PortRules) stages() []*stage {
	return []*stage{&p.lineXform, &p.lineFilter, &p.pointXform, &p.pointFilter, &p.spanXform, &p.spanFilter}
}

// Empty reports whether no rule applies to the port.
func (p *PortRules) Empty() bool {
	if p == nil {
		return true
	}
	for _, s := range p.stages() {
		if len(s.rules) > 0 {
			return false
		}
	}
	return true
}

// RuleStats are one rule's counters on one port, matching the reference's
// preprocessor.<rule>.checked-count, .count and .cpu_nanos (tagged port).
type RuleStats struct {
	Port   string
	Rule   string // the rule ID
	Action string
	// Checked counts items the rule looked at; Count those it changed,
	// filtered or (count actions) matched.
	Checked, Count int64
	// CPUNanos is the time spent in the rule. For points and spans it is
	// sampled on one item in cpuSample per Scratch and scaled up, because
	// reading the clock per rule per item would cost more than most rules.
	CPUNanos int64
}

// Stats returns the port's counters in rule order (line rules, then point
// transformers and filters, then span transformers and filters). Counters
// start at zero for every parsed file; a reload starts them again.
func (p *PortRules) Stats() []RuleStats {
	if p == nil {
		return nil
	}
	var out []RuleStats
	for _, s := range p.stages() {
		var reached int64
		stats := make([]RuleStats, len(s.rules))
		for i := len(s.rules) - 1; i >= 0; i-- {
			reached += s.ctr[i].ended.Load()
			r := s.rules[i]
			stats[i] = RuleStats{Port: p.port, Rule: r.id, Action: r.action,
				Checked: reached, Count: s.ctr[i].count.Load(), CPUNanos: s.ctr[i].nanos.Load()}
		}
		out = append(out, stats...)
	}
	return out
}

// cpuSample is how often (one item in cpuSample per Scratch) rule CPU time
// is measured.
const cpuSample = 64

// Scratch is per-goroutine working memory for Point and Span: rules that
// change a name, source or tag write the new bytes here instead of into
// the caller's buffers. Reuse one per goroutine; the changed item's slices
// point into it and stay valid until the next call with the same Scratch.
// The zero value is ready to use.
type Scratch struct {
	buf      []byte
	tags     []wavefront.Tag
	ownsTags bool // item's Tags is tags, so elements may be written
	calls    uint32
	timed    bool // measure CPU time on this item
	it       item // here rather than on the stack, where it would escape
}

func (s *Scratch) reset() {
	s.buf = s.buf[:0]
	s.ownsTags = false
	s.calls++
	s.timed = s.calls%cpuSample == 0
}

// seal returns the arena bytes appended since start, with capacity capped
// so that later arena appends never overwrite them.
func (s *Scratch) seal(start int) []byte {
	return s.buf[start:len(s.buf):len(s.buf)]
}

func (s *Scratch) copyBytes(b []byte) []byte {
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.seal(start)
}

// ownTags makes *tags a slice the Scratch owns, so rules may rewrite
// elements and append without touching the caller's array.
func (s *Scratch) ownTags(tags *[]wavefront.Tag) {
	if !s.ownsTags {
		s.tags = append(s.tags[:0], *tags...)
		*tags = s.tags
		s.ownsTags = true
	}
}

// setTags records a rewritten owned slice so its capacity is reused.
func (s *Scratch) setTags(tags *[]wavefront.Tag, v []wavefront.Tag) {
	*tags = v
	s.tags = v
}

// LineFilter runs the block/allow rules scoped to pointLine on a raw line,
// before parsing. Call it on the output of TransformLine, as the reference
// filters after transforming.
func (p *PortRules) LineFilter(line []byte) (Result, string) {
	if p == nil || len(p.lineFilter.rules) == 0 {
		return Keep, ""
	}
	s := &p.lineFilter
	for i, r := range s.rules {
		start := time.Now()
		blocked := r.blocksLine(line)
		s.ctr[i].nanos.Add(int64(time.Since(start)))
		if blocked {
			s.ctr[i].count.Add(1)
			s.ctr[i].ended.Add(1)
			return Block, ""
		}
	}
	s.ctr[len(s.rules)-1].ended.Add(1)
	return Keep, ""
}

// TransformLine runs the replaceRegex rules scoped to pointLine on a raw
// line, before parsing. It returns line itself when nothing changed, and
// otherwise a line built in scratch's memory (from scratch[:0]).
func (p *PortRules) TransformLine(line []byte, scratch []byte) []byte {
	if p == nil || len(p.lineXform.rules) == 0 {
		return line
	}
	s := &p.lineXform
	buf := scratch[:0]
	for i, r := range s.rules {
		start := time.Now()
		if out, ok := r.replaceLine(line, buf); ok {
			line = out
			buf = nil // out lives in scratch now; a later change allocates
			s.ctr[i].count.Add(1)
		}
		s.ctr[i].nanos.Add(int64(time.Since(start)))
	}
	s.ctr[len(s.rules)-1].ended.Add(1)
	return line
}

// Point runs the object-level point rules: transformers in file order,
// then filters in file order (port rules before global ones in each), as
// the reference does. A nil Scratch allocates a temporary one.
func (p *PortRules) Point(pt *wavefront.Point, s *Scratch) (Result, string) {
	if p == nil || len(p.pointXform.rules)+len(p.pointFilter.rules) == 0 {
		return Keep, ""
	}
	if s == nil {
		s = new(Scratch)
	}
	s.reset()
	s.it = item{pt: pt}
	p.pointXform.run(&s.it, s, false)
	return p.pointFilter.run(&s.it, s, true), ""
}

// Span runs the span rules, in the same order as Point.
func (p *PortRules) Span(sp *wavefront.Span, s *Scratch) (Result, string) {
	if p == nil || len(p.spanXform.rules)+len(p.spanFilter.rules) == 0 {
		return Keep, ""
	}
	if s == nil {
		s = new(Scratch)
	}
	s.reset()
	s.it = item{sp: sp}
	p.spanXform.run(&s.it, s, false)
	return p.spanFilter.run(&s.it, s, true), ""
}

// run applies the stage's rules until a filter blocks the item.
func (st *stage) run(it *item, s *Scratch, filters bool) Result {
	if len(st.rules) == 0 {
		return Keep
	}
	var start time.Time
	for i, r := range st.rules {
		if s.timed {
			start = time.Now()
		}
		var acted bool
		if filters {
			acted = r.blocks(it)
		} else {
			acted = r.transform(it, s)
		}
		if s.timed {
			st.ctr[i].nanos.Add(int64(time.Since(start)) * cpuSample)
		}
		if acted {
			st.ctr[i].count.Add(1)
			if filters {
				st.ctr[i].ended.Add(1)
				return Block
			}
		}
	}
	st.ctr[len(st.rules)-1].ended.Add(1)
	return Keep
}

// portList splits a section key such as "2878, 9411".
func portList(key string) []string {
	var ports []string
	for p := range strings.SplitSeq(key, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ports = append(ports, p)
		}
	}
	return ports
}
