package wavefront

import (
	"bytes"
	"iter"
	"strconv"
	"time"
)

// Decoder parses and validates Wavefront lines with the reference proxy's
// rules. Configure the exported fields before the first call; a Decoder is
// not safe for concurrent use (give each connection or worker its own).
//
// Decoded byte slices alias the input line, the decoder's scratch buffers or
// the decoder's configuration, and are valid until the next call; callers
// must treat them as read-only and copy what they keep. In steady state
// decoding a valid line does not allocate.
type Decoder struct {
	// Limits for validation; nil means DefaultLimits().
	Limits *Limits
	// Now is the clock for missing timestamps and the WF-402 window; nil
	// means time.Now. The reference syncs its clock with the backend.
	Now func() time.Time
	// DefaultSource is used when a line names no source (§2.3): the proxy
	// sets it to the client's rDNS name or IP. Empty means "unknown".
	DefaultSource []byte
	// CustomSourceTags are consulted for points, in order, when neither
	// source nor host is present (§2.2 step 3). nil means {"fqdn"}; set an
	// empty non-nil slice to disable.
	CustomSourceTags []string
	// SourceSubstringQuirk reproduces the reference annotator's substring
	// test (§2.3): if the raw line merely contains e.g. "resource=x", the
	// default source is not applied and the source becomes "unknown". Off by
	// default: meshwave decides on the parsed tags instead.
	SourceSubstringQuirk bool
	// LenientNonFinite also accepts inf, +Inf, -Infinity, nan etc. in any
	// case as values (§10 item 6); the reference rejects all but NaN and
	// [+-]Infinity, including the +Inf that AppendValue writes.
	LenientNonFinite bool

	toks    []token
	pos     int
	scratch []byte
	tags    []Tag
	full    []Tag
	millis  int64

	fastTags  []fastTag // AppendCanonicalPoint's tags
	fastSrc   int       // the index of its source tag in fastTags, or -1
	shapes    *[shapes]tagShape
	padded    []byte // a line copied for shapedTagRun's overhanging loads
	run       shapedRun
	lastName  lastName
	lineFloor int // AppendCanonicalLines: the shortest line it took, without its '\n'
}

var (
	keySource  = []byte("source")
	keyHost    = []byte("host")
	keyTag     = []byte("tag")
	keyHostRen = []byte("_host")
	keyTagRen  = []byte("_tag")
	keyTraceID = []byte("traceId")
	keySpanID  = []byte("spanId")
	unknownSrc = []byte("unknown")
)

var defaultCustomSourceTags = []string{"fqdn"}

func (d *Decoder) limits() *Limits {
	if d.Limits != nil {
		return d.Limits
	}
	return &defaultLimits
}

func (d *Decoder) nowMillis() int64 {
	if d.Now != nil {
		return d.Now().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// TimestampMillis returns the timestamp of the last decoded point or
// histogram in Unix milliseconds. Point.Timestamp holds whole seconds (the
// wire format); the window check and histogram binning use milliseconds,
// as the reference does.
func (d *Decoder) TimestampMillis() int64 { return d.millis }

// DecodePoint parses line into p, checks the timestamp window and validates
// it: ParsePoint, CheckTime and Limits.ValidatePoint in the reference's
// order. A missing timestamp is taken from the clock. Every error is a
// *LineError.
func (d *Decoder) DecodePoint(line []byte, p *Point) error {
	if err := d.ParsePoint(line, p); err != nil {
		return err
	}
	if err := d.CheckTime(d.millis); err != nil {
		return err
	}
	return d.limits().ValidatePoint(p)
}

// ParsePoint parses and resolves the source of a metric line (§2.1, §2.2)
// without validating it, for callers that rewrite points (e.g. --prefix)
// before validation.
func (d *Decoder) ParsePoint(line []byte, p *Point) error {
	if e := d.parsePoint(line, p); e != nil {
		return e
	}
	return nil
}

func (d *Decoder) parsePoint(line []byte, p *Point) *LineError {
	if e := d.tokenize(line); e != nil {
		return e
	}
	name, ok := d.next()
	if !ok {
		return parseErr("Metric name is missing")
	}
	val, ok := d.next()
	if !ok {
		return parseErr("Value is missing")
	}
	v, ok := d.parseValue(val.b)
	if !ok {
		return parseErr("Invalid value: " + quoteTok(val.b))
	}
	if e := d.parseTimestamp(); e != nil {
		return e
	}
	if e := d.parseTags(); e != nil {
		return e
	}
	p.Name = name.b
	p.Value = v
	p.Timestamp = d.millis / 1000
	p.Source, p.Tags = d.resolveSource(line, d.tags, true)
	return nil
}

// CheckTime applies the WF-402 window to a timestamp in milliseconds.
func (d *Decoder) CheckTime(ms int64) error {
	lim := d.limits()
	now := d.nowMillis()
	if (lim.Backfill > 0 && ms <= saturatingAdd(now, -lim.Backfill.Milliseconds())) ||
		(lim.Prefill > 0 && ms >= saturatingAdd(now, lim.Prefill.Milliseconds())) {
		return &LineError{CodeTimeframe, "Point outside of reasonable timeframe: " + strconv.FormatInt(ms, 10) + " ms"}
	}
	return nil
}

// DecodeDistribution parses and validates a histogram line (§3.1): like
// DecodePoint, but the timestamp is floored to the granularity's bin.
func (d *Decoder) DecodeDistribution(line []byte, h *Distribution) error {
	if e := d.parseDistribution(line, h); e != nil {
		return e
	}
	if err := d.CheckTime(d.millis); err != nil {
		return err
	}
	return d.limits().ValidateDistribution(h)
}

func (d *Decoder) parseDistribution(line []byte, h *Distribution) *LineError {
	if e := d.tokenize(line); e != nil {
		return e
	}
	g, ok := d.next()
	if !ok || g.kind != tokWord {
		return parseErr("Histogram granularity is missing")
	}
	switch string(g.b) {
	case "!M":
		h.Granularity = Minute
	case "!H":
		h.Granularity = Hour
	case "!D":
		h.Granularity = Day
	default:
		return parseErr("Invalid histogram granularity: " + quoteTok(g.b))
	}
	if e := d.parseTimestamp(); e != nil {
		return e
	}
	bin := h.Granularity.Millis()
	d.millis = floorDiv(d.millis, bin) * bin
	cs := h.Centroids[:0]
	for d.peekKind(tokHash) {
		d.pos++
		ct, ok := d.next()
		if !ok {
			return parseErr("Centroid count is missing")
		}
		// The reference accepts negative counts; they would corrupt any
		// digest downstream, so they are rejected here.
		n, ok := parseJavaInt(ct.b, 32)
		if !ok || n < 0 {
			return parseErr("Invalid centroid count: " + quoteTok(ct.b))
		}
		mt, ok := d.next()
		if !ok {
			return parseErr("Centroid mean is missing")
		}
		m, ok := d.parseValue(mt.b)
		if !ok {
			return parseErr("Invalid centroid mean: " + quoteTok(mt.b))
		}
		cs = append(cs, Centroid{Count: int(n), Mean: m})
	}
	h.Centroids = cs
	if len(cs) == 0 {
		return parseErr("Empty histogram (no centroids)")
	}
	name, ok := d.next()
	if !ok {
		return parseErr("Metric name is missing")
	}
	if e := d.parseTags(); e != nil {
		return e
	}
	h.Name = name.b
	h.Timestamp = d.millis / 1000
	h.Source, h.Tags = d.resolveSource(line, d.tags, false)
	return nil
}

func (d *Decoder) next() (token, bool) {
	if d.pos >= len(d.toks) {
		return token{}, false
	}
	t := d.toks[d.pos]
	d.pos++
	return t, true
}

func (d *Decoder) peekKind(k tokKind) bool {
	return d.pos < len(d.toks) && d.toks[d.pos].kind == k
}

func (d *Decoder) parseValue(b []byte) (float64, bool) {
	if v, ok := parseJavaDouble(b); ok {
		return v, true
	}
	if d.LenientNonFinite {
		return parseLenientNonFinite(b)
	}
	return 0, false
}

// parseTimestamp consumes an optional timestamp: the next token counts as
// one only if it starts with a digit (§2.1). It sets d.millis, from the
// clock when absent.
func (d *Decoder) parseTimestamp() *LineError {
	if d.pos >= len(d.toks) || d.toks[d.pos].kind == tokEq || d.toks[d.pos].kind == tokHash ||
		len(d.toks[d.pos].b) == 0 || !isDigit(d.toks[d.pos].b[0]) {
		d.millis = d.nowMillis()
		return nil
	}
	t := d.toks[d.pos]
	d.pos++
	ts, ok := parseJavaDouble(t.b)
	if !ok {
		if d.peekKind(tokEq) {
			// Kept for compatibility (§10 item 7), with a clearer message.
			return parseErr("Invalid timestamp value: " + quoteTok(t.b) +
				" looks like a tag key, but a token starting with a digit right after the value is read as a timestamp")
		}
		return parseErr("Invalid timestamp value: " + quoteTok(t.b))
	}
	d.millis = timestampMillis(ts)
	return nil
}

// parseTags reads key=value pairs to the end of the line into d.tags; the
// last of duplicate keys wins, in the position of the first.
func (d *Decoder) parseTags() *LineError {
	d.tags = d.tags[:0]
	for d.pos < len(d.toks) {
		k := d.toks[d.pos]
		d.pos++
		if k.kind == tokEq || k.kind == tokHash {
			return parseErr("Unexpected " + quoteTok(k.b) + " where a tag key was expected")
		}
		if !d.peekKind(tokEq) {
			return parseErr("Tag keys and values must be separated by '=': " + quoteTok(k.b))
		}
		d.pos++
		v, ok := d.next()
		if !ok || v.kind == tokEq || v.kind == tokHash {
			return parseErr("Value missing for " + quoteTok(k.b))
		}
		d.tags = setTag(d.tags, k.b, v.b)
	}
	return nil
}

func setTag(tags []Tag, k, v []byte) []Tag {
	for i := range tags {
		if bytes.Equal(tags[i].Key, k) {
			tags[i].Value = v
			return tags
		}
	}
	return append(tags, Tag{k, v})
}

func tagIndex(tags []Tag, k []byte) int {
	for i := range tags {
		if bytes.Equal(tags[i].Key, k) {
			return i
		}
	}
	return -1
}

func removeTag(tags []Tag, i int) []Tag {
	return append(tags[:i], tags[i+1:]...)
}

// renameTag renames tags[i] to key, replacing any tag already named key, as
// the reference's map put does.
func renameTag(tags []Tag, i int, key []byte) []Tag {
	v := tags[i].Value
	tags = removeTag(tags, i)
	return setTag(tags, key, v)
}

// resolveSource applies §2.2 and the default of §2.3. custom selects whether
// CustomSourceTags apply (points only).
func (d *Decoder) resolveSource(line []byte, tags []Tag, custom bool) ([]byte, []Tag) {
	var src []byte
	if i := tagIndex(tags, keySource); i >= 0 {
		src = tags[i].Value
		tags = removeTag(tags, i)
		if j := tagIndex(tags, keyHost); j >= 0 {
			tags = renameTag(tags, j, keyHostRen)
		}
	} else if i := tagIndex(tags, keyHost); i >= 0 {
		src = tags[i].Value
		tags = removeTag(tags, i)
	} else if custom {
		for _, k := range d.customSourceTags() {
			if i := tagIndexString(tags, k); i >= 0 {
				src = tags[i].Value
				break
			}
		}
	}
	if i := tagIndex(tags, keyTag); i >= 0 {
		tags = renameTag(tags, i, keyTagRen)
	}
	if src == nil {
		src = d.defaultSource(line)
	}
	return src, tags
}

func (d *Decoder) customSourceTags() []string {
	if d.CustomSourceTags == nil {
		return defaultCustomSourceTags
	}
	return d.CustomSourceTags
}

func tagIndexString(tags []Tag, k string) int {
	for i := range tags {
		if string(tags[i].Key) == k {
			return i
		}
	}
	return -1
}

func (d *Decoder) defaultSource(line []byte) []byte {
	if len(d.DefaultSource) == 0 || (d.SourceSubstringQuirk && d.looksSourced(line)) {
		return unknownSrc
	}
	return d.DefaultSource
}

// looksSourced is the reference annotator's test: the first occurrence of
// each of source=, host=, "source"=, "host"= and <customSourceTag>= is
// followed by a non-space character.
func (d *Decoder) looksSourced(line []byte) bool {
	for _, k := range [...]string{"source", "host", `"source"`, `"host"`} {
		if followedByNonSpace(line, k) {
			return true
		}
	}
	for _, k := range d.customSourceTags() {
		if followedByNonSpace(line, k) {
			return true
		}
	}
	return false
}

func followedByNonSpace(line []byte, key string) bool {
	for i := 0; i+len(key) < len(line); i++ {
		if line[i+len(key)] == '=' && string(line[i:i+len(key)]) == key {
			j := i + len(key) + 1
			return j < len(line) && line[j] != ' '
		}
	}
	return false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Lines yields the lines of a body of newline-separated lines, without
// their '\n'. Empty lines are yielded too, so a caller can number lines as
// the sender wrote them; a final '\n' does not start another line.
func Lines(body []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(body) > 0 {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			if !yield(line) {
				return
			}
		}
	}
}
