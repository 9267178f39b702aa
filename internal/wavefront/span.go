package wavefront

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Span is one Wavefront span (proxy.md §4.1). Tags are the span's
// annotations in order; unlike point tags, keys may repeat (parent,
// followsFrom). Like Point, its byte slices may alias a producer's buffers.
type Span struct {
	Name           []byte
	Source         []byte
	SpanID         []byte // a UUID string
	TraceID        []byte // a UUID string
	StartMillis    int64
	DurationMillis int64
	Tags           []Tag
}

// AppendSpan appends s in the span line format the reference forwards:
//
//	"<name>" source="<s>" spanId="<id>" traceId="<id>" "<k>"="<v>" ... <startMillis> <durationMillis>\n
//
// Strings are quoted and escaped as AppendPoint does; annotation keys are
// sanitised like tag keys. The format is only unambiguous to a decoder when
// StartMillis ≥ 1e12 (later than 2001-09) and DurationMillis < StartMillis,
// because the decoder infers units and end-vs-duration from magnitudes.
func AppendSpan(dst []byte, s *Span) []byte {
	dst = appendQuotedValue(dst, s.Name)
	dst = append(dst, " source="...)
	dst = appendQuotedValue(dst, s.Source)
	dst = append(dst, " spanId="...)
	dst = appendQuotedValue(dst, s.SpanID)
	dst = append(dst, " traceId="...)
	dst = appendQuotedValue(dst, s.TraceID)
	for _, t := range s.Tags {
		dst = append(dst, ' ')
		dst = appendSanitizedName(dst, t.Key)
		dst = append(dst, '=')
		dst = appendQuotedValue(dst, t.Value)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, s.StartMillis, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, s.DurationMillis, 10)
	return append(dst, '\n')
}

var (
	keySpanLogs   = []byte("_spanLogs")
	keySecondary  = []byte("_spanSecondaryId")
	valTrue       = []byte("true")
	errSpanFuture = &LineError{CodeTimeframe, "Span outside of reasonable timeframe"}
)

// spanMillis converts a span timestamp to milliseconds in the unit implied
// by the magnitude of first (§4.1).
func spanMillis(v, first int64) int64 {
	switch {
	case first > 999_999_999_999_999_999:
		return v / 1_000_000
	case first > 999_999_999_999_999:
		return v / 1000
	case first > 999_999_999_999:
		return v
	}
	if v > math.MaxInt64/1000 {
		return math.MaxInt64 // Java would overflow; saturate instead
	}
	return v * 1000
}

// DecodeSpan parses and validates a span line (§4.1, §4.2). Annotation
// values longer than Limits.MaxSpanValueLength are truncated rather than
// rejected: the full values are then available from TruncatedAnnotations
// and _spanLogs=true is set, so the caller can emit them as span logs
// (see TruncationSpanLogs).
func (d *Decoder) DecodeSpan(line []byte, s *Span) error {
	if e := d.parseSpan(line, s); e != nil {
		return e
	}
	if e := d.validateSpan(s); e != nil {
		return e
	}
	return nil
}

func (d *Decoder) parseSpan(line []byte, s *Span) *LineError {
	if e := d.tokenize(line); e != nil {
		return e
	}
	name, ok := d.next()
	if !ok {
		return parseErr("Span name is missing")
	}
	var src, spanID, traceID []byte
	d.tags = d.tags[:0]
	for d.pos < len(d.toks) && !(d.toks[d.pos].kind <= tokQuoted && isAllDigits(d.toks[d.pos].b)) {
		k, _ := d.next()
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
		switch {
		case bytes.Equal(k.b, keySource), bytes.Equal(k.b, keyHost):
			src = v.b
		case bytes.Equal(k.b, keySpanID):
			spanID = v.b
		case bytes.Equal(k.b, keyTraceID):
			traceID = v.b
		default:
			d.tags = append(d.tags, Tag{k.b, v.b})
		}
	}
	first, ok := d.next()
	if !ok {
		return parseErr("Span start timestamp is missing")
	}
	start, ok := parseJavaInt(first.b, 64)
	if !ok {
		return parseErr("Invalid span start timestamp: " + quoteTok(first.b))
	}
	second, ok := d.next()
	if !ok {
		return parseErr("Span end timestamp or duration is missing")
	}
	end, ok := parseJavaInt(second.b, 64)
	if !ok || second.kind > tokQuoted || !isAllDigits(second.b) {
		return parseErr("Invalid span end timestamp or duration: " + quoteTok(second.b))
	}
	if t, ok := d.next(); ok {
		return parseErr("Unexpected extra input: " + quoteTok(t.b))
	}
	if spanID == nil {
		return parseErr("spanId can't be null")
	}
	if traceID == nil {
		return parseErr("traceId can't be null")
	}
	s.Name = name.b
	s.Source = src
	if s.Source == nil {
		s.Source = d.defaultSource(line)
	}
	s.SpanID = spanID
	s.TraceID = traceID
	// Units of both numbers come from the first; the second is an end
	// timestamp unless it is smaller than the start.
	s.StartMillis = spanMillis(start, start)
	if end-start >= 0 {
		s.DurationMillis = spanMillis(end, start) - s.StartMillis
	} else {
		s.DurationMillis = spanMillis(end, start)
	}
	s.Tags = d.tags
	return nil
}

// checkSpanTime applies the --traceDropSpansDelayMinutes and prefill
// windows.
func (d *Decoder) checkSpanTime(startMillis, durationMillis int64, lim *Limits) *LineError {
	if lim.SpanDropDelay > 0 || lim.Prefill > 0 {
		now := d.nowMillis()
		if lim.SpanDropDelay > 0 && saturatingAdd(startMillis, durationMillis) < saturatingAdd(now, -lim.SpanDropDelay.Milliseconds()) {
			return &LineError{CodeTimeframe, "span is older than acceptable delay of " +
				strconv.FormatFloat(lim.SpanDropDelay.Minutes(), 'f', -1, 64) + " minutes"}
		}
		if lim.Prefill > 0 && startMillis > saturatingAdd(now, lim.Prefill.Milliseconds()) {
			return errSpanFuture
		}
	}
	return nil
}

func (d *Decoder) validateSpan(s *Span) *LineError {
	lim := d.limits()
	if e := d.checkSpanTime(s.StartMillis, s.DurationMillis, lim); e != nil {
		return e
	}
	if i := bytes.IndexByte(s.Name, '*'); i >= 0 {
		// A copy of its own: ValidateSpan has no line to reset d.scratch
		// with, so appending there would grow it for a decoder's lifetime.
		name := bytes.Clone(s.Name)
		for j := i; j < len(name); j++ {
			if name[j] == '*' {
				name[j] = '-'
			}
		}
		s.Name = name
	}
	if len(trimSpace(s.Source)) == 0 {
		return &LineError{CodeSpanSourceMissing, "Span source/host name is required"}
	}
	if n := utf16Len(s.Source); n > lim.MaxSourceLength {
		return &LineError{CodeSpanSourceTooLong, "Span source/host name is too long" + lenDetail(n, lim.MaxSourceLength) + ": " + quoteTok(s.Source)}
	}
	if n := utf16Len(s.Name); n > lim.MaxSpanNameLength {
		return &LineError{CodeSpanNameTooLong, "Span name is too long" + lenDetail(n, lim.MaxSpanNameLength) + ": " + quoteTok(s.Name)}
	}
	if len(s.Tags) > lim.MaxSpanAnnotations {
		return &LineError{CodeSpanTooManyTags, "Span has too many annotations" + lenDetail(len(s.Tags), lim.MaxSpanAnnotations)}
	}
	d.full = d.full[:0]
	for i := range s.Tags {
		t := &s.Tags[i]
		switch n := utf16Len(t.Key); {
		case n > lim.MaxSpanKeyLength:
			return &LineError{CodeSpanKeyTooLong, "Span annotation key is too long" + lenDetail(n, lim.MaxSpanKeyLength) + ": " + quoteTok(t.Key)}
		case !validName(t.Key):
			return &LineError{CodeSpanKeyChars, "Span annotation key has illegal character(s): " + quoteTok(t.Key)}
		case len(trimSpace(t.Value)) == 0:
			// Blank, not just empty as in the reference: the encoder trims
			// values, so a blank one could not be forwarded.
			return &LineError{CodeSpanValueEmpty, "Span annotation value for " + quoteTok(t.Key) + " is empty"}
		}
		if utf16Len(t.Value) > lim.MaxSpanValueLength {
			d.full = append(d.full, *t)
			t.Value = truncateUTF16(t.Value, lim.MaxSpanValueLength)
		}
	}
	if len(d.full) > 0 {
		if i := tagIndex(s.Tags, keySpanLogs); i >= 0 {
			s.Tags[i].Value = valTrue
		} else {
			s.Tags = append(s.Tags, Tag{keySpanLogs, valTrue})
			d.tags = s.Tags
		}
	}
	return nil
}

// TruncatedAnnotations returns the annotations the last DecodeSpan
// truncated (WF-433), with their full values, in span order. Valid until
// the next call.
func (d *Decoder) TruncatedAnnotations() []Tag { return d.full }

// TruncationSpanLogs builds the span-logs object the reference emits for a
// span whose annotation values were truncated (§4.2): one log entry with
// timestamp -1 mapping each truncated key to its full value.
func TruncationSpanLogs(s *Span, full []Tag) *SpanLogs {
	fields := make(map[string]string, len(full))
	for _, t := range full {
		fields[string(t.Key)] = string(t.Value)
	}
	sl := &SpanLogs{
		TraceID: string(s.TraceID),
		SpanID:  string(s.SpanID),
		Logs:    []SpanLog{{Timestamp: -1, Fields: fields}},
	}
	if i := tagIndex(s.Tags, keySecondary); i >= 0 {
		id := string(s.Tags[i].Value)
		sl.SpanSecondaryID = &id
	}
	return sl
}

func isAllDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// AppendCanonicalSpan is ValidateSpan followed by AppendSpan in one pass,
// for the spans tracers and the Zipkin converter actually produce: it
// validates s like ValidateSpan and, if s is in the common subset it
// handles, appends exactly what AppendSpan would write and reports true.
// It reports false, with dst and s unchanged, for anything outside that
// subset, valid or not; the caller then uses ValidateSpan and AppendSpan,
// which give the precise error or the truncated annotations. So a false is
// never a rejection, and TruncatedAnnotations is empty after a true.
//
// The subset: the name, source, IDs and annotation values are ASCII without
// '"', '\\' or newlines and without surrounding blanks, the name has no '*',
// annotation keys need no sanitising (and so have no '~' or delta prefix),
// and every limit holds without truncation.
func (d *Decoder) AppendCanonicalSpan(dst []byte, s *Span) ([]byte, bool) {
	if len(s.Tags) > d.limits().MaxSpanAnnotations {
		return dst, false
	}
	l, ok := d.BeginCanonicalSpan(dst, s.Name, s.Source, s.SpanID, s.TraceID, false, false, s.StartMillis, s.DurationMillis)
	if !ok {
		return dst, false
	}
	for i := range s.Tags {
		if !l.Tag(s.Tags[i].Key, s.Tags[i].Value) {
			return l.Discard(), false
		}
	}
	return l.End(), true
}

// SpanLine is AppendCanonicalSpan for a producer that has no Span: it
// writes the line as its parts arrive, so a converter can go from its own
// representation to the line without building a Span first. Begin with
// BeginCanonicalSpan, add the annotations in order with Tag or Tags, then
// End; a false from any means the span is outside AppendCanonicalSpan's subset,
// and Discard then returns the buffer without the partial line.
type SpanLine struct {
	d                           *Decoder
	lim                         *Limits
	dst                         []byte
	start                       int // where the line begins in dst
	tags                        int
	startMillis, durationMillis int64
}

// BeginCanonicalSpan starts a span line on dst after the checks of
// AppendCanonicalSpan that do not involve annotations. plainSource and
// plainIDs say that source, and spanID and traceID, are known to be
// non-empty ASCII without blanks, '"', '\\' or '\n' (a converter's constant
// source, its UUIDs of hex IDs), so they are copied without being checked
// (but for the source's length). On false, dst is unchanged.
func (d *Decoder) BeginCanonicalSpan(dst, name, source, spanID, traceID []byte, plainSource, plainIDs bool, startMillis, durationMillis int64) (SpanLine, bool) {
	lim := d.limits()
	if d.checkSpanTime(startMillis, durationMillis, lim) != nil ||
		len(name) > lim.MaxSpanNameLength || len(source) > lim.MaxSourceLength {
		return SpanLine{}, false
	}
	start := len(dst)
	var ok bool
	if dst, ok = appendPlainName(dst, name); !ok {
		return SpanLine{}, false
	}
	if plainSource {
		dst = append(dst, ` source="`...)
		dst = append(dst, source...)
		dst = append(dst, '"')
	} else if dst, ok = appendPlainValue(append(dst, " source="...), source); !ok {
		return SpanLine{}, false
	}
	if plainIDs {
		dst = append(dst, ` spanId="`...)
		dst = append(dst, spanID...)
		dst = append(dst, `" traceId="`...)
		dst = append(dst, traceID...)
		dst = append(dst, '"')
		return SpanLine{d: d, lim: lim, dst: dst, start: start, startMillis: startMillis, durationMillis: durationMillis}, true
	}
	dst = append(dst, " spanId="...)
	if dst, ok = appendPlainValue(dst, spanID); !ok {
		return SpanLine{}, false
	}
	dst = append(dst, " traceId="...)
	if dst, ok = appendPlainValue(dst, traceID); !ok {
		return SpanLine{}, false
	}
	return SpanLine{d: d, lim: lim, dst: dst, start: start, startMillis: startMillis, durationMillis: durationMillis}, true
}

// BeginCanonicalSpanText is BeginCanonicalSpan for a producer that keeps
// what follows the name as one text: ` source="<source>" spanId="<id>"
// traceId="<id>"`, the source sourceLen bytes long, then n annotations as
// Annotations takes them. The caller vouches for the text as plainSource,
// plainIDs and Annotations have it vouch for its parts, so it is copied
// whole after the name and the limits are checked. plainName says that
// name is known to be in AppendCanonicalSpan's subset (non-empty ASCII
// without '"', '\\', '\n' or '*' and without blanks at either end), as a
// producer knows of a name it has checked before; it is then copied
// without being checked again.
func (d *Decoder) BeginCanonicalSpanText(dst, name []byte, plainName bool, sourceLen int, text []byte, n, longestKey, longestValue int, startMillis, durationMillis int64) (SpanLine, bool) {
	lim := d.limits()
	if d.checkSpanTime(startMillis, durationMillis, lim) != nil ||
		len(name) > lim.MaxSpanNameLength || sourceLen > lim.MaxSourceLength ||
		n > lim.MaxSpanAnnotations || longestKey > lim.MaxSpanKeyLength || longestValue > lim.MaxSpanValueLength {
		return SpanLine{}, false
	}
	start := len(dst)
	if plainName {
		dst = append(append(append(dst, '"'), name...), '"')
	} else {
		var ok bool
		if dst, ok = appendPlainName(dst, name); !ok {
			return SpanLine{}, false
		}
	}
	return SpanLine{d: d, lim: lim, dst: append(dst, text...), start: start, tags: n, startMillis: startMillis, durationMillis: durationMillis}, true
}

// Tag appends one annotation; on false nothing was appended.
func (l *SpanLine) Tag(k, v []byte) bool {
	for _, c := range k {
		if !allowedNameByte[c] {
			return false
		}
	}
	if l.tags++; l.tags > l.lim.MaxSpanAnnotations ||
		len(k) == 0 || len(k) > l.lim.MaxSpanKeyLength || len(v) > l.lim.MaxSpanValueLength {
		return false
	}
	at := len(l.dst)
	l.dst = append(append(append(l.dst, ' ', '"'), k...), '"', '=')
	return l.value(at, v)
}

// value appends v as appendPlainValue does, or else cuts dst back to at.
func (l *SpanLine) value(at int, v []byte) bool {
	var ok bool
	if l.dst, ok = appendPlainValue(l.dst, v); !ok {
		l.dst = l.dst[:at]
	}
	return ok
}

// AppendSpanKey appends the text SpanTag.KeyText holds for key k: ` "k"="`,
// up to the value's opening quote.
func AppendSpanKey(dst, k []byte) []byte {
	dst = append(dst, ' ', '"')
	dst = append(dst, k...)
	return append(dst, '"', '=', '"')
}

// End finishes the line and returns the buffer with it.
func (l *SpanLine) End() []byte {
	dst := append(l.dst, ' ')
	dst = AppendInt(dst, l.startMillis)
	dst = append(dst, ' ')
	dst = AppendInt(dst, l.durationMillis)
	l.d.full = l.d.full[:0]
	return append(dst, '\n')
}

// Discard returns the buffer without the unfinished line.
func (l *SpanLine) Discard() []byte { return l.dst[:l.start] }

// hasSpanSpecial reports whether any byte of x is '"', '\\', '\n' or not
// ASCII. It is exact: hasZeroByte's stray bits only ever come with a true
// zero byte.
func hasSpanSpecial(x uint64) bool {
	return (hasZeroByte(x^0x2222222222222222)|hasZeroByte(x^0x5c5c5c5c5c5c5c5c)|hasZeroByte(x^0x0a0a0a0a0a0a0a0a)|x)&0x8080808080808080 != 0
}

// hasNameSpecial is hasSpanSpecial or a '*' in x. '"' (0x22) and '*'
// (0x2a) differ only in bit 3, so setting it finds both with one test.
func hasNameSpecial(x uint64) bool {
	return (hasZeroByte((x|0x0808080808080808)^0x2a2a2a2a2a2a2a2a)|hasZeroByte(x^0x5c5c5c5c5c5c5c5c)|hasZeroByte(x^0x0a0a0a0a0a0a0a0a)|x)&0x8080808080808080 != 0
}

// hasZeroByte sets the high bit of each byte of x that is zero (and
// possibly of bytes above a zero one, which only ends the fast scan early).
func hasZeroByte(x uint64) uint64 { return (x - 0x0101010101010101) &^ x }

// appendPlainValue appends v between quotes if AppendSpan would copy it
// verbatim and validation would accept it whole: non-empty ASCII with no
// '"', '\\' or '\n', and no blank at either end (values are trimmed).
// Otherwise it returns false and dst with its length unchanged.
func appendPlainValue(dst, v []byte) ([]byte, bool) {
	n := len(v)
	if n == 0 || isSpace(v[0]) || isSpace(v[n-1]) {
		return dst, false
	}
	at := len(dst)
	dst = slices.Grow(dst, n+2)
	out := dst[at : at+n+2]
	out[0] = '"'
	if !copyPlain(out[1:1+n], v) {
		return dst, false
	}
	out[1+n] = '"'
	return dst[:at+n+2], true
}

// appendPlainName is appendPlainValue for a span name, which also must
// not have a '*' (validation would replace it): checked in the same pass.
func appendPlainName(dst, name []byte) ([]byte, bool) {
	n := len(name)
	if n < 8 {
		if bytes.IndexByte(name, '*') >= 0 {
			return dst, false
		}
		return appendPlainValue(dst, name)
	}
	if isSpace(name[0]) || isSpace(name[n-1]) {
		return dst, false
	}
	at := len(dst)
	dst = slices.Grow(dst, n+2)[:at+n+2]
	dst[at] = '"'
	// Words are loaded and stored within name and dst[at+1:at+1+n].
	src, out := unsafe.Pointer(unsafe.SliceData(name)), unsafe.Pointer(unsafe.SliceData(dst[at+1:]))
	for i := 0; ; i += 8 {
		if i+8 > n {
			i = n - 8 // the last word overlaps the one before
		}
		x := wordAt(src, i)
		if hasNameSpecial(x) {
			return dst[:at], false
		}
		putWordAt(out, i, x)
		if i+8 == n {
			break
		}
	}
	dst[at+1+n] = '"'
	return dst, true
}

// copyPlain copies v to out[:len(v)] if it is ASCII with no '"', '\\' or
// '\n', and otherwise reports false, having written some of out. Each word
// of v is checked as it is copied, the last one overlapping the one before.
func copyPlain(out, v []byte) bool {
	n := len(v)
	out = out[:n]
	if n < 8 {
		for i, c := range v {
			if c >= utf8.RuneSelf || quoteSpecial[c] {
				return false
			}
			out[i] = c
		}
		return true
	}
	// Words are loaded and stored within v and out[:n].
	src, dst := unsafe.Pointer(unsafe.SliceData(v)), unsafe.Pointer(unsafe.SliceData(out))
	for i := 0; i+8 < n; i += 8 {
		x := wordAt(src, i)
		if hasSpanSpecial(x) {
			return false
		}
		putWordAt(dst, i, x)
	}
	x := wordAt(src, n-8)
	if hasSpanSpecial(x) {
		return false
	}
	putWordAt(dst, n-8, x)
	return true
}

// ValidateSpan applies the span checks of proxy.md §4.2 to a span built
// elsewhere (the Zipkin port converts rather than parses). Like DecodeSpan it
// may truncate annotation values; TruncatedAnnotations then returns them.
func (d *Decoder) ValidateSpan(s *Span) error {
	if e := d.validateSpan(s); e != nil {
		return e
	}
	return nil
}
