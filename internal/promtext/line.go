package promtext

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// parseLine parses one line. ok is false for lines that yield nothing
// (blank lines, comments, HELP and TYPE).
func (p *Parser) parseLine(line []byte) (e Entry, ok bool) {
	i := skipSpace(line, 0)
	if i == len(line) {
		return 0, false
	}
	switch line[i] {
	case 0:
		// textparse's lexer reads a NUL at the start of a token as the end of
		// input; stop here too so both read the same samples.
		p.done = true
		return 0, false
	case '#':
		if msg := p.parseComment(line, i); msg != "" {
			return p.lineError("syntax", msg), true
		}
		return 0, false
	}
	p.chunkHasSample = true
	reason, msg := p.parseSample(line, i)
	if msg != "" {
		return p.lineError(reason, msg), true
	}
	if p.opts.OpenMetrics && p.isCreated() {
		return 0, false
	}
	return EntrySample, true
}

func (p *Parser) lineError(reason, msg string) Entry {
	p.lerr = LineError{Line: p.lineNo, Reason: reason, Msg: msg}
	return EntryError
}

// startChunk forgets the previous chunk's TYPE lines when a comment follows
// samples, as the reference's chunked parsing does.
func (p *Parser) startChunk() {
	if p.chunkHasSample {
		clear(p.types)
		p.chunkHasSample = false
	}
}

// parseComment handles a line starting with '#' at i and returns an error
// message for a malformed HELP or TYPE line.
func (p *Parser) parseComment(line []byte, i int) string {
	p.startChunk()
	j := i + 1
	if j == len(line) || !isSpace(line[j]) {
		return "" // "#foo": a plain comment
	}
	j = skipSpace(line, j)
	rest := line[j:]
	if p.opts.OpenMetrics && string(rest) == "EOF" {
		p.done = true
		return ""
	}
	var isType bool
	switch {
	case len(rest) > 4 && isSpace(rest[4]) && string(rest[:4]) == "TYPE":
		isType = true
	case len(rest) > 4 && isSpace(rest[4]) && string(rest[:4]) == "HELP":
	case p.opts.OpenMetrics && len(rest) > 4 && isSpace(rest[4]) && string(rest[:4]) == "UNIT":
		return ""
	default:
		return ""
	}
	j = skipSpace(line, j+5)
	name, end, ok := lexMetricName(line, j)
	if !ok {
		return "expected metric name after " + string(rest[:4])
	}
	text := line[end:]
	if len(text) > 0 {
		text = text[1:]
	}
	if !isType {
		if !utf8.Valid(text) {
			return "HELP text is not valid UTF-8"
		}
		return ""
	}
	t, ok := p.typeOf(text)
	if !ok {
		return "invalid metric type " + strconv.Quote(string(text))
	}
	p.types[string(name)] = t
	return ""
}

func (p *Parser) typeOf(text []byte) (Type, bool) {
	switch string(text) {
	case "counter":
		return Counter, true
	case "gauge":
		return Gauge, true
	case "histogram":
		return Histogram, true
	case "summary":
		return Summary, true
	case "untyped":
		return Untyped, true
	}
	if p.opts.OpenMetrics {
		switch string(text) {
		case "unknown", "gaugehistogram":
			return Untyped, true
		case "info", "stateset":
			return Gauge, true
		}
	}
	return 0, false
}

// lexMetricName reads a metric name at i: either [a-zA-Z_:][a-zA-Z0-9_:]* or
// a double-quoted string (UTF-8 names). It returns the name without quotes.
func lexMetricName(line []byte, i int) (name []byte, end int, ok bool) {
	if i >= len(line) {
		return nil, i, false
	}
	if line[i] == '"' {
		end, ok := lexQuoted(line, i)
		if !ok {
			return nil, i, false
		}
		return line[i+1 : end-1], end, true
	}
	if !isNameStart(line[i]) {
		return nil, i, false
	}
	end = i + 1
	for end < len(line) && isNameChar(line[end]) {
		end++
	}
	return line[i:end], end, true
}

// lexQuoted returns the index just past the closing quote of the string
// starting at line[i] == '"'. A backslash escapes any following byte.
func lexQuoted(line []byte, i int) (end int, ok bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(line[j:], '"')
		if k < 0 {
			return i, false
		}
		q := j + k
		// The quote closes the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for p := q - 1; p > i && line[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// parseSample parses a sample line starting at i into p.sample.
func (p *Parser) parseSample(line []byte, i int) (reason, msg string) {
	s := &p.sample
	*s = Sample{Line: p.lineNo, Labels: p.labels[:0]}
	if cap(p.scratch) < len(line) {
		p.scratch = make([]byte, 0, len(line)+len(line)/4)
	}
	p.scratch = p.scratch[:0]

	j := i
	if line[j] != '{' {
		if !isNameStart(line[j]) {
			return "syntax", "expected a metric name or '{', got " + quoteByte(line[j])
		}
		j++
		for j < len(line) && isNameChar(line[j]) {
			j++
		}
		s.Name = line[i:j]
		j = skipSpace(line, j)
	}
	if j < len(line) && line[j] == '{' {
		var r, m string
		if j, r, m = p.parseLabels(line, j+1); m != "" {
			return r, m
		}
		j = skipSpace(line, j)
	}
	p.labels = s.Labels
	if s.Name == nil {
		return "syntax", "metric name not set"
	}

	// Value: a run of bytes up to whitespace or '{'.
	v := j
	for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '{' {
		j++
	}
	if v == j {
		return "syntax", "expected value after metric"
	}
	val, err := parseFloat(line[v:j])
	if err != nil {
		return "invalid_value", "invalid value " + strconv.Quote(string(line[v:j]))
	}
	s.Value = val

	j = skipSpace(line, j)
	if p.opts.OpenMetrics {
		if msg := p.parseOMTail(line, j); msg != "" {
			return "syntax", msg
		}
	} else if j < len(line) {
		t := j
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		if t == j {
			return "syntax", "expected timestamp or end of line, got " + quoteByte(line[t])
		}
		ts, err := strconv.ParseInt(unsafeString(line[t:j]), 10, 64)
		if err != nil {
			return "invalid_timestamp", "invalid timestamp " + strconv.Quote(string(line[t:j]))
		}
		s.Timestamp, s.HasTimestamp = ts, true
		if j = skipSpace(line, j); j < len(line) {
			return "syntax", "unexpected text after timestamp"
		}
	}
	return p.resolveFamily()
}

// parseOMTail reads OpenMetrics' optional timestamp (float seconds) and
// exemplar after the value. Exemplars are ignored.
func (p *Parser) parseOMTail(line []byte, j int) string {
	if j == len(line) || line[j] == '#' {
		return ""
	}
	t := j
	for j < len(line) && !isSpace(line[j]) {
		j++
	}
	ts, err := strconv.ParseFloat(unsafeString(line[t:j]), 64)
	if err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) {
		return "invalid timestamp " + strconv.Quote(string(line[t:j]))
	}
	p.sample.Timestamp, p.sample.HasTimestamp = int64(ts*1000), true
	if j = skipSpace(line, j); j < len(line) && line[j] != '#' {
		return "unexpected text after timestamp"
	}
	return ""
}

// parseLabels parses the label set after '{' at i and returns the index
// after '}'. It follows textparse's grammar: commas between pairs are
// optional, a trailing comma is allowed, and a quoted string not followed by
// '=' is the metric name.
func (p *Parser) parseLabels(line []byte, i int) (end int, reason, msg string) {
	s := &p.sample
	for {
		i = skipSpace(line, i)
		if i == len(line) {
			return i, "syntax", "unterminated label set"
		}
		var name []byte
		quoted := false
		switch c := line[i]; {
		case c == '}':
			return i + 1, "", ""
		case c == '"':
			e, ok := lexQuoted(line, i)
			if !ok {
				return i, "syntax", "unterminated quoted label name"
			}
			name, quoted = line[i+1:e-1], true
			i = e
		case isLabelStart(c):
			e := i + 1
			for e < len(line) && isLabelChar(line[e]) {
				e++
			}
			name, i = line[i:e], e
		default:
			return i, "syntax", "expected label name, got " + quoteByte(c)
		}
		i = skipSpace(line, i)
		if quoted && i < len(line) && (line[i] == ',' || line[i] == '}') {
			if s.Name != nil {
				return i, "syntax", "metric name already set"
			}
			s.Name = p.unescape(name)
			if line[i] == ',' {
				i++
			}
			continue
		}
		if i == len(line) || line[i] != '=' {
			return i, "syntax", "expected '=' after label name " + strconv.Quote(string(name))
		}
		i = skipSpace(line, i+1)
		if i == len(line) || line[i] != '"' {
			return i, "syntax", "expected quoted label value for " + strconv.Quote(string(name))
		}
		e, ok := lexQuoted(line, i)
		if !ok {
			return i, "syntax", "unterminated label value for " + strconv.Quote(string(name))
		}
		raw := line[i+1 : e-1]
		if !utf8.Valid(raw) {
			return i, "invalid_utf8", "label value for " + strconv.Quote(string(name)) + " is not valid UTF-8"
		}
		if quoted {
			name = p.unescape(name)
		}
		s.Labels = append(s.Labels, Label{Name: name, Value: p.unescape(raw)})
		if i = skipSpace(line, e); i < len(line) && line[i] == ',' {
			i++
		}
	}
}

// unescape resolves \" \\ and \n like textparse; any other backslash is
// kept. The result lives in p.scratch, which was sized so appends never move
// it.
func (p *Parser) unescape(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	start := len(p.scratch)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) {
			switch b[i+1] {
			case '"', '\\':
				c = b[i+1]
				i++
			case 'n':
				c = '\n'
				i++
			}
		}
		p.scratch = append(p.scratch, c)
	}
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

// resolveFamily finds the sample's family, type and kind with the rules of
// the reference's expfmt parser: an exact TYPE'd name first, then a summary
// or histogram whose _sum/_count/_bucket this is; anything else is an
// untyped family of its own.
func (p *Parser) resolveFamily() (reason, msg string) {
	s := &p.sample
	s.Family, s.Type, s.Kind = s.Name, Untyped, Plain
	if t, ok := p.types[string(s.Name)]; ok {
		s.Type = t
		switch t {
		case Histogram:
			s.Kind = Bucket
		case Summary:
			s.Kind = Quantile
		}
	} else if base, kind := cutSuffix(s.Name, false); kind != Plain && p.types[string(base)] == Summary {
		s.Family, s.Type, s.Kind = base, Summary, kind
	} else if base, kind := cutSuffix(s.Name, true); kind != Plain && p.types[string(base)] == Histogram {
		s.Family, s.Type, s.Kind = base, Histogram, kind
	} else if p.opts.OpenMetrics {
		p.resolveOpenMetrics()
	}
	switch s.Kind {
	case Bucket:
		if !s.hasBound("le") {
			return "syntax", "histogram bucket " + strconv.Quote(string(s.Name)) + " without a valid le label"
		}
	case Quantile:
		if !s.hasBound("quantile") {
			return "syntax", "summary " + strconv.Quote(string(s.Name)) + " without a valid quantile label"
		}
	}
	return "", ""
}

// resolveOpenMetrics maps OpenMetrics' suffixed counter samples onto the
// family the text format would have named, so conversion results do not
// depend on the negotiated format.
func (p *Parser) resolveOpenMetrics() {
	s := &p.sample
	if base, ok := bytes.CutSuffix(s.Name, []byte("_total")); ok && p.types[string(base)] == Counter {
		s.Type = Counter
	} else if base, ok := bytes.CutSuffix(s.Name, []byte("_info")); ok && p.types[string(base)] == Gauge {
		s.Type = Gauge
	}
}

// isCreated reports an OpenMetrics _created sample, which the text format
// does not have and meshwave drops.
func (p *Parser) isCreated() bool {
	base, ok := bytes.CutSuffix(p.sample.Name, []byte("_created"))
	if !ok {
		return false
	}
	t, typed := p.types[string(base)]
	return typed && (t == Counter || t == Histogram || t == Summary)
}

// Bound returns the sample's le or quantile label value, parsed, for Bucket
// and Quantile samples.
func (s *Sample) Bound() float64 {
	key := "le"
	if s.Kind == Quantile {
		key = "quantile"
	}
	for _, l := range s.Labels {
		if string(l.Name) == key {
			v, _ := parseFloat(l.Value)
			return v
		}
	}
	return math.NaN()
}

func (s *Sample) hasBound(key string) bool {
	for _, l := range s.Labels {
		if string(l.Name) == key {
			_, err := parseFloat(l.Value)
			return err == nil
		}
	}
	return false
}

func cutSuffix(name []byte, bucket bool) ([]byte, Kind) {
	if b, ok := bytes.CutSuffix(name, []byte("_sum")); ok {
		return b, Sum
	}
	if b, ok := bytes.CutSuffix(name, []byte("_count")); ok {
		return b, Count
	}
	if bucket {
		if b, ok := bytes.CutSuffix(name, []byte("_bucket")); ok {
			return b, Bucket
		}
	}
	return name, Plain
}

// parseFloat accepts what textparse accepts: strconv's syntax without hex
// exponents or underscores.
func parseFloat(b []byte) (float64, error) {
	s := unsafeString(b)
	if strings.ContainsAny(s, "pP_") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseFloat(s, 64)
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' }
func isNameStart(c byte) bool  { return charClass[c]&nameStart != 0 }
func isNameChar(c byte) bool   { return charClass[c]&nameChar != 0 }
func isLabelStart(c byte) bool { return charClass[c]&labelStart != 0 }
func isLabelChar(c byte) bool  { return charClass[c]&labelChar != 0 }

// Character classes of metric and label names, as a table because name
// scanning is the parser's inner loop.
const (
	labelStart = 1 << iota // [a-zA-Z_]
	labelChar              // [a-zA-Z0-9_]
	nameStart              // [a-zA-Z_:]
	nameChar               // [a-zA-Z0-9_:]
)

var charClass = func() (t [256]uint8) {
	for c := range 256 {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		digit := c >= '0' && c <= '9'
		if letter {
			t[c] |= labelStart | nameStart
		}
		if letter || digit {
			t[c] |= labelChar | nameChar
		}
		if c == ':' {
			t[c] |= nameStart | nameChar
		}
	}
	return t
}()

func quoteByte(c byte) string { return strconv.QuoteRune(rune(c)) }
