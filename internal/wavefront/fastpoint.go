package wavefront

import "strconv"

// This file is the single-pass path for the metric lines that SDKs,
// collectors and agents actually send: printable ASCII, names and keys that
// need no sanitising, no escapes, no duplicate or renamed tags. Such a line
// is scanned once and its canonical form is written directly, skipping the
// token list, the Point and the byte-by-byte re-encoding of DecodePoint +
// AppendPoint. Everything else is declined, never rejected, so the general
// path stays the only place that decides and explains rejections.

// AppendCanonicalPoint validates line like DecodePoint and, if the line is
// in the common subset it handles, appends exactly what AppendPoint would
// write for the decoded point and reports true. It reports false, with dst
// unchanged, for anything outside that subset, valid or not: the caller
// then uses DecodePoint (and AppendPoint), which gives the precise error.
// So a false is never a rejection, and a true implies DecodePoint would
// have accepted the line with a finite value.
//
// The subset: printable ASCII separated by single or repeated spaces; an
// unquoted or double-quoted name that is already valid; an unquoted finite
// value; an optional unquoted timestamp; tags written key=value with the key
// unquoted or double-quoted and the value unquoted or double-quoted without
// backslashes or surrounding blanks; no duplicate keys, no "tag" key and not
// both "source" and "host". Like DecodePoint, it checks the timestamp
// window and the limits, sets TimestampMillis and resolves the source.
func (d *Decoder) AppendCanonicalPoint(dst, line []byte) ([]byte, bool) {
	orig := line // for the default source, as resolveSource sees it
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	lim := d.limits()
	i := skipSpaces(line, 0)

	name, i, ok := scanFastName(line, i)
	if !ok || len(name) > lim.MaxNameLength {
		return dst, false
	}
	if i = skipSpaces(line, i); i >= len(line) {
		return dst, false
	}

	// The value: integers that print back as themselves are copied, the
	// rest goes through the Java-syntax parser and AppendValue.
	vs := i
	for i < len(line) && line[i] != ' ' {
		if line[i] == '=' || !printable(line[i]) {
			return dst, false
		}
		i++
	}
	valTok := line[vs:i]
	verbatim := plainInteger(valTok)
	var val float64
	if !verbatim {
		v, ok := parseJavaDouble(valTok)
		if !ok || v-v != 0 { // v-v is NaN for ±Inf and NaN
			return dst, false
		}
		val = v
	}

	// An optional timestamp: the next token, if it starts with a digit.
	i = skipSpaces(line, i)
	if i < len(line) && line[i] == '"' && i+1 < len(line) && isDigit(line[i+1]) {
		return dst, false // a quoted token starting with a digit is a timestamp too; rare
	}
	if i < len(line) && isDigit(line[i]) {
		ts := i
		for i < len(line) && line[i] != ' ' {
			if line[i] == '=' || !printable(line[i]) {
				return dst, false
			}
			i++
		}
		ms, ok := fastTimestampMillis(line[ts:i])
		if !ok {
			return dst, false
		}
		d.millis = ms
	} else {
		d.millis = d.nowMillis()
	}
	if d.CheckTime(d.millis) != nil {
		return dst, false
	}

	tags, ok := d.scanFastTags(line, i)
	if !ok {
		return dst, false
	}
	src, skip, ok := d.fastSource(orig, line, tags)
	n := len(tags)
	if skip >= 0 {
		n--
	}
	if !ok || n > lim.MaxTags || len(trimSpace(src)) == 0 || utf16Len(src) > lim.MaxSourceLength {
		return dst, false
	}
	for j, t := range tags {
		kl, vl := t.k1-t.k0, t.v1-t.v0
		if j != skip && (kl+vl > lim.MaxTagLength || kl > lim.MaxTagKeyLength || vl > lim.MaxTagValueLength) {
			return dst, false
		}
	}

	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ' ')
	if verbatim {
		dst = append(dst, valTok...)
	} else {
		dst = AppendValue(dst, val)
	}
	if ts := d.millis / 1000; ts != 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ts, 10)
	}
	dst = append(dst, " source="...)
	dst = appendQuotedValue(dst, src)
	for j, t := range tags {
		if j == skip {
			continue
		}
		dst = append(dst, ' ', '"')
		dst = append(dst, line[t.k0:t.k1]...)
		dst = append(dst, '"', '=', '"')
		dst = append(dst, line[t.v0:t.v1]...)
		dst = append(dst, '"')
	}
	return append(dst, '\n'), true
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// printable is ASCII from '!' to '~'.
func printable(c byte) bool { return '!' <= c && c <= '~' }

// plainValueByte and quotedValueByte are the bytes an unquoted or quoted
// tag value may hold and be written back inside double quotes as they are:
// printable ASCII (plus the space when quoted) without '"' and '\\', and
// without the '=' that would end an unquoted token.
var plainValueByte, quotedValueByte = func() (plain, quoted [256]bool) {
	for c := ' '; c <= '~'; c++ {
		quoted[c] = c != '"' && c != '\\'
		plain[c] = quoted[c] && c != ' ' && c != '='
	}
	return plain, quoted
}()

// scanFastName reads a name or tag key that is valid as written (§2.4,
// without the non-ASCII delta markers), unquoted or double-quoted, and
// returns it and the index after it. An unquoted one ends before a space,
// '=' or the end; a quoted one must be followed by one of those too.
func scanFastName(line []byte, i int) ([]byte, int, bool) {
	quoted := i < len(line) && line[i] == '"'
	if quoted {
		i++
	}
	s := i
	if i < len(line) && line[i] == '~' {
		i++
	}
	i = nameRun(line, i)
	name := line[s:i]
	if len(name) == 0 || (len(name) == 1 && name[0] == '~') {
		return nil, 0, false
	}
	if quoted {
		if i >= len(line) || line[i] != '"' {
			return nil, 0, false
		}
		i++
	}
	if i < len(line) && line[i] != ' ' && line[i] != '=' {
		return nil, 0, false
	}
	return name, i, true
}

// plainInteger reports whether AppendValue prints b's value as b itself:
// an optional '-' and 1–15 digits without a leading zero (so the value is
// exact in a float64).
func plainInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// fastTimestampMillis is parseJavaDouble + timestampMillis without the
// float parser for up to 15 digits, which a float64 holds exactly.
func fastTimestampMillis(b []byte) (int64, bool) {
	if len(b) <= 15 {
		var n int64
		for _, c := range b {
			if !isDigit(c) {
				goto general
			}
			n = n*10 + int64(c-'0')
		}
		return timestampMillis(float64(n)), true
	}
general:
	ts, ok := parseJavaDouble(b)
	if !ok {
		return 0, false
	}
	return timestampMillis(ts), true
}

// fastTag is a tag as offsets into the line: recording one stores no
// pointers, so it needs no write barrier.
type fastTag struct{ k0, k1, v0, v1 int }

func (t fastTag) key(line []byte) []byte { return line[t.k0:t.k1] }

func fastTagIndex(line []byte, tags []fastTag, key []byte) int {
	for i, t := range tags {
		if string(t.key(line)) == string(key) {
			return i
		}
	}
	return -1
}

// scanFastTags reads key=value pairs from line[i:] into d.fastTags.
// Duplicate keys and "tag" are declined: the general path's merging and
// renaming handle them.
func (d *Decoder) scanFastTags(line []byte, i int) ([]fastTag, bool) {
	tags := d.fastTags[:0]
	var seen uint64 // a filter over keys; a hit is checked exactly
	for {
		i = skipSpaces(line, i)
		if i >= len(line) {
			break
		}
		key, j, ok := scanFastName(line, i)
		if !ok || j >= len(line) || line[j] != '=' {
			return nil, false
		}
		k0 := j - len(key) // where key starts: before '=', or before its closing quote
		if line[j-1] == '"' {
			k0--
		}
		i = j + 1
		var v0 int
		if i < len(line) && line[i] == '"' {
			v0 = i + 1
			i = v0
			i = quotedValueRun(line, i)
			if i >= len(line) || line[i] != '"' || i == v0 || line[v0] == ' ' || line[i-1] == ' ' {
				return nil, false
			}
			i++
			if i < len(line) && line[i] != ' ' {
				return nil, false
			}
			tags = append(tags, fastTag{k0, k0 + len(key), v0, i - 1})
		} else {
			v0 = i
			if i < len(line) && (line[i] == '\'' || line[i] == '#') {
				return nil, false // a quote or a structural '#'
			}
			i = plainValueRun(line, i)
			if i == v0 || (i < len(line) && line[i] != ' ') {
				return nil, false
			}
			tags = append(tags, fastTag{k0, k0 + len(key), v0, i})
		}
		kl := len(key)
		if string(key) == "tag" {
			return nil, false
		}
		bit := uint64(1) << ((uint(kl) + uint(key[0]) + 7*uint(key[kl-1])) & 63)
		if seen&bit != 0 && fastTagIndex(line, tags[:len(tags)-1], key) >= 0 {
			return nil, false
		}
		seen |= bit
	}
	d.fastTags = tags
	return tags, true
}

// fastSource resolves the source like resolveSource for the tags
// scanFastTags accepts, declining "source" with "host" (which renames
// host). skip is the index of the tag that became the source, or -1.
func (d *Decoder) fastSource(orig, line []byte, tags []fastTag) (src []byte, skip int, ok bool) {
	si, hi := fastTagIndex(line, tags, keySource), fastTagIndex(line, tags, keyHost)
	switch {
	case si >= 0 && hi >= 0:
		return nil, -1, false
	case si >= 0:
		return line[tags[si].v0:tags[si].v1], si, true
	case hi >= 0:
		return line[tags[hi].v0:tags[hi].v1], hi, true
	}
	for _, k := range d.customSourceTags() {
		for _, t := range tags {
			if string(t.key(line)) == k {
				return line[t.v0:t.v1], -1, true
			}
		}
	}
	return d.defaultSource(orig), -1, true
}
