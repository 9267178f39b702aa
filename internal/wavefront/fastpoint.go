package wavefront

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"unsafe"
)

// This file is the single-pass path for the metric lines that SDKs,
// collectors and agents actually send: printable ASCII, names and keys that
// need no sanitising, no escapes, no duplicate or renamed tags. Such a line
// is scanned once and its canonical form is written directly, skipping the
// token list, the Point and the byte-by-byte re-encoding of DecodePoint +
// AppendPoint. Everything else is declined, never rejected, so the general
// path stays the only place that decides and explains rejections.

// AppendCanonicalPoint validates line like DecodePoint and, if the line is
// in the common subset it handles, appends exactly what AppendPoint would
// write for the decoded point and reports true. It reports false, having
// appended nothing (dst's contents and length are as given; its capacity
// may have grown), for anything outside that subset, valid or not: the
// caller then uses DecodePoint (and AppendPoint), which gives the precise
// error. So a false is never a rejection, and a true implies DecodePoint
// would have accepted the line with a finite value. Its scans may read
// up to 16 bytes of line's spare capacity (and ignore them), so nothing
// may write there meanwhile. A line in a reader's buffer has such room;
// one without it is scanned more slowly (on amd64, copied first).
//
// The subset: printable ASCII separated by single or repeated spaces; an
// unquoted or double-quoted name that is already valid; an unquoted finite
// value; an optional unquoted timestamp; tags written key=value with the key
// unquoted or double-quoted and the value unquoted or double-quoted without
// backslashes or surrounding blanks; no duplicate keys, no "tag" key and not
// both "source" and "host". Like DecodePoint, it checks the timestamp
// window and the limits, sets TimestampMillis and resolves the source.
func (d *Decoder) AppendCanonicalPoint(dst, line []byte) ([]byte, bool) {
	start := len(dst)
	win := d.window()
	out, ok := d.appendFastPoint(dst, line, &win)
	if !ok {
		return out[:start], false
	}
	return out, true
}

// AppendCanonicalLines runs AppendCanonicalPoint over the lines at the
// start of buf, each ended by '\n', with one reading of the clock for all
// of them (Now is called once per call, not per line). It stops before the
// first line it declines, the first longer than maxLine bytes with its
// '\n', and a rest without '\n': the caller takes that line to the
// general path, or waits for the rest of it. It returns dst with the lines'
// canonical forms appended, how many lines it took and the bytes of buf
// they fill. Its scans may read up to 16 bytes past a line, as
// AppendCanonicalPoint's do, so buf needs spare capacity to be fast.
func (d *Decoder) AppendCanonicalLines(dst, buf []byte, maxLine int) (out []byte, lines, used int) {
	win := d.window()
	for {
		// The newline is looked for from the shortest line's end on: a
		// line the fast path takes holds no newline, so if the one found
		// ends a later line, the fast path declines the two, and only
		// then is the start searched (and the floor lowered).
		rest := buf[used:]
		floor := min(d.lineFloor, len(rest))
		nl := bytes.IndexByte(rest[floor:], '\n')
		if nl >= 0 {
			nl += floor
		}
		if (nl < 0 || nl >= maxLine) && floor > 0 {
			nl, floor = bytes.IndexByte(rest, '\n'), 0
		}
		if nl < 0 || nl >= maxLine {
			return dst, lines, used
		}
		start := len(dst)
		out, ok := d.appendFastPoint(dst, rest[:nl+1], &win)
		if !ok {
			if e := bytes.IndexByte(rest[:floor], '\n'); e >= 0 {
				d.lineFloor = e // a shorter line: take it alone
				continue
			}
			return out[:start], lines, used
		}
		if nl < d.lineFloor || d.lineFloor == 0 {
			d.lineFloor = nl
		}
		dst = out
		lines++
		used += nl + 1
	}
}

// timeWindow is the WF-402 window (CheckTime) around one reading of the
// clock, for the lines that share it.
type timeWindow struct {
	now              int64 // the clock, for lines without a timestamp
	lo, hi           int64 // a timestamp must be above lo and below hi…
	checkLo, checkHi bool  // …where they apply
}

func (d *Decoder) window() timeWindow {
	lim := d.limits()
	now := d.nowMillis()
	return timeWindow{now: now,
		lo: saturatingAdd(now, -lim.Backfill.Milliseconds()), checkLo: lim.Backfill > 0,
		hi: saturatingAdd(now, lim.Prefill.Milliseconds()), checkHi: lim.Prefill > 0}
}

// admits is CheckTime(ms) == nil.
func (w *timeWindow) admits(ms int64) bool {
	return !(w.checkLo && ms <= w.lo) && !(w.checkHi && ms >= w.hi)
}

func (d *Decoder) appendFastPoint(dst, line []byte, win *timeWindow) ([]byte, bool) {
	orig := line // for the default source, as resolveSource sees it
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	lim := d.limits()

	// The name: the last one again (most lines), compared and copied
	// whole, or copied while it is checked (room for the 16-byte stores).
	w := len(dst)
	dst = slices.Grow(dst, len(line)+32)
	var shape *tagShape
	i := skipSpaces(line, 0)
	if m := &d.lastName; m.rawLen > 0 && m.nameLen <= lim.MaxNameLength && m.matches(line, i) && cap(dst)-w >= m.outLen+8 {
		dst = m.appendTo(dst)
		shape = m.shape
		i += m.rawLen + 1 // and the space that matches found
	} else {
		out := dst[:cap(dst)]
		out[w] = '"'
		k0, k1, next, ok := copyFastName(line, i, out, w+1)
		if !ok || k1-k0 > lim.MaxNameLength {
			return dst, false
		}
		dst = append(out[:w+1+k1-k0], '"', ' ')
		shape = d.tagShape(line[k0:k1])
		m.remember(line[i:next], dst[w:], k1-k0, shape)
		i = next
	}
	if i = skipSpaces(line, i); i >= len(line) {
		return dst, false
	}

	// The value and the timestamp. Most lines: a value of 1–7 digits, one
	// space and a timestamp of 1–15 digits, all read from words in one
	// call. Else the value: integers that print back as themselves are
	// copied, the rest goes through the Java-syntax parser and
	// AppendValue. A token is a run of plainValueByte ended by a space or
	// the end: a value or timestamp with '"' or '\\' in it would not parse
	// either.
	secFrom, secTo := 0, 0  // the timestamp, if it is whole seconds without leading zeros
	var secX0, secX1 uint64 // and its words, if read from words
	if vx, vn, tx0, tx1, tn := valueAndTimestamp(line, i); tn > 0 && cap(dst)-len(dst) >= 16 {
		dst = appendWords(dst, vx, 0, vn)
		ts := i + vn + 1
		var seconds bool
		d.millis, seconds = timestampDigitsMillis(digitsValue(tx0, tx1, tn), line[ts] != '0')
		if seconds {
			secFrom, secTo, secX0, secX1 = ts, ts+tn, tx0, tx1
		}
		i = ts + tn
	} else {
		// Digits alone without a leading zero (most values) are read in two
		// words and need no other check.
		if x0, x1, n := digitToken(line, i); n > 0 && (n == 1 || line[i] != '0') && cap(dst)-len(dst) >= 16 {
			dst = appendWords(dst, x0, x1, n)
			i += n
		} else {
			vs := i
			if i = plainValueEnd(line, i); i < len(line) && line[i] != ' ' {
				return dst, false
			}
			valTok := line[vs:i]
			if plainInteger(valTok) {
				dst = append(dst, valTok...)
			} else if out, ok := appendPlainDecimal(dst, valTok); ok {
				dst = out
			} else {
				v, ok := parseJavaDouble(valTok)
				if !ok || v-v != 0 { // v-v is NaN for ±Inf and NaN
					return dst, false
				}
				dst = AppendValue(dst, v)
			}
		}

		// An optional timestamp: the next token, if it starts with a digit.
		i = skipSpaces(line, i)
		if i < len(line) && line[i] == '"' && i+1 < len(line) && isDigit(line[i+1]) {
			return dst, false // a quoted token starting with a digit is a timestamp too; rare
		}
		if i < len(line) && isDigit(line[i]) {
			ts := i
			var ms int64
			var seconds bool
			if x0, x1, n := digitToken(line, i); n > 0 {
				// fastTimestampMillis for the usual 1–15 digits, from words.
				ms, seconds = timestampDigitsMillis(digitsValue(x0, x1, n), line[i] != '0')
				secX0, secX1 = x0, x1
				i += n
			} else {
				if i = plainValueEnd(line, i); i < len(line) && line[i] != ' ' {
					return dst, false
				}
				var ok bool
				if ms, seconds, ok = fastTimestampMillis(line[ts:i]); !ok {
					return dst, false
				}
			}
			if seconds {
				secFrom, secTo = ts, i
			}
			d.millis = ms
		} else {
			d.millis = win.now
		}
	}
	if !win.admits(d.millis) {
		return dst, false
	}
	if secTo > 0 {
		// Whole seconds as they came: what AppendInt would print.
		dst = append(dst, ' ')
		if secX0 != 0 && cap(dst)-len(dst) >= 16 {
			dst = appendWords(dst, secX0, secX1, secTo-secFrom)
		} else {
			dst = append(dst, line[secFrom:secTo]...)
		}
	} else if ts := d.millis / 1000; ts != 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ts, 10)
	}

	dst, ok := d.appendFastTags(dst, orig, line, i, lim, shape)
	if !ok {
		return dst, false
	}
	return append(dst, '\n'), true
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

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

// copyFastName checks the name or tag key at line[i:], unquoted or
// double-quoted, that is valid as written (§2.4, without the non-ASCII
// delta markers), and copies it to out[w:], which must have room for it
// plus 8 bytes. It returns where the name is in line and the index after
// it (and its closing quote); an unquoted name ends before a space, '=' or
// the end, and a quoted one must be followed by one of those.
func copyFastName(line []byte, i int, out []byte, w int) (k0, k1, next int, ok bool) {
	quoted := i < len(line) && line[i] == '"'
	if quoted {
		i++
	}
	k0 = i
	if i < len(line) && line[i] == '~' {
		out[w] = '~'
		i++
	}
	k1 = nameRunCopy(line, i, out, w+(i-k0))
	if k1 == k0 || (k1-k0 == 1 && line[k0] == '~') {
		return 0, 0, 0, false
	}
	next = k1
	if quoted {
		if next >= len(line) || line[next] != '"' {
			return 0, 0, 0, false
		}
		next++
	}
	if next < len(line) && line[next] != ' ' && line[next] != '=' {
		return 0, 0, 0, false
	}
	return k0, k1, next, true
}

// ValueWrittenAsIs reports whether the decoder accepts the value token b
// of a point line and writes it back unchanged (AppendValue prints its
// value as b), so that a caller may copy such a token without decoding it.
func ValueWrittenAsIs(b []byte) bool {
	if plainInteger(b) {
		return true
	}
	var buf [24]byte
	out, ok := appendPlainDecimal(buf[:0], b)
	return ok && bytes.Equal(out, b)
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

// appendPlainDecimal appends what AppendValue prints for b if b is
// [-]digits.digits with at most 15 significant digits and at most 24
// bytes: such a decimal is the shortest one that reads back as its
// float64 (any two decimals of up to 15 digits are different float64s),
// and at that length it is far from subnormals, so AppendValue prints its
// digits without leading zeros before the point or trailing zeros after
// it. ok is false, with dst unchanged, for anything else.
func appendPlainDecimal(dst, b []byte) ([]byte, bool) {
	if len(b) > 24 {
		return dst, false
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	point := -1
	first, last := -1, -1 // the first and last non-zero digit
	for j, c := range b {
		switch {
		case c == '.' && point < 0:
			point = j
		case isDigit(c):
			if c != '0' {
				if first < 0 {
					first = j
				}
				last = j
			}
		default:
			return dst, false
		}
	}
	if point < 1 || point == len(b)-1 {
		return dst, false // no point, or no digit before or after it
	}
	if first >= 0 {
		n := last - first + 1
		if first < point && last > point {
			n-- // the point is not a digit
		}
		if n > 15 {
			return dst, false
		}
	}
	intPart, frac := b[:point], b[point+1:]
	for len(intPart) > 1 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, intPart...)
	if len(frac) > 0 {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst, true
}

// fastTimestampMillis is parseJavaDouble + timestampMillis without the
// float parser for up to 15 digits, which a float64 holds exactly. seconds
// reports digits without a leading zero read as seconds (below 1e12), whose
// canonical form is the token itself.
func fastTimestampMillis(b []byte) (ms int64, seconds, ok bool) {
	if len(b) <= 15 {
		var n int64
		rest := b
		if len(b) >= 8 {
			first, ok := eightDigits(binary.LittleEndian.Uint64(b))
			if !ok {
				goto general
			}
			n, rest = int64(first), b[8:]
		}
		for _, c := range rest {
			if !isDigit(c) {
				goto general
			}
			n = n*10 + int64(c-'0')
		}
		ms, seconds = timestampDigitsMillis(uint64(n), b[0] != '0')
		return ms, seconds, true
	}
general:
	ts, ok := parseJavaDouble(b)
	if !ok {
		return 0, false, false
	}
	return timestampMillis(ts), false, true
}

// timestampDigitsMillis is timestampMillis for a timestamp of up to 15
// digits whose value is n, exact in a float64; seconds reports a value
// read as seconds (below 1e12) whose digits had no leading zero
// (noLeadingZero), so that its canonical form is the token itself.
func timestampDigitsMillis(n uint64, noLeadingZero bool) (ms int64, seconds bool) {
	if n < 1e12 {
		return int64(n) * 1000, noLeadingZero // timestampMillis, exact below 2^53
	}
	return timestampMillis(float64(n)), false
}

// eightDigits reads the 8 bytes of x (little-endian, so the first digit
// is the low byte) as a decimal number, if they are all digits.
func eightDigits(x uint64) (uint64, bool) {
	const zeros, nibbles = lanes1 * '0', lanes1 * 0xf0
	if x&nibbles != zeros || (x+lanes1*6)&nibbles != zeros {
		return 0, false // a byte outside '0'–'9' (0x30–0x39)
	}
	return digitLanes(x & (lanes1 * 0x0f)), true
}

// lastName is the name token the fast path took last, as written (up to
// 40 bytes, with its quotes if quoted), and what it wrote for it (`"name" `):
// a sender's lines mostly repeat the name of the line before, which is
// then compared and copied a word at a time, and its tagShape kept.
type lastName struct {
	raw     [40]byte
	out     [48]byte
	rawLen  int // 0 for none
	outLen  int
	tail    uint64 // the bytes of raw's last word that are the token's
	nameLen int    // without quotes, for MaxNameLength
	shape   *tagShape
}

// matches reports whether line[i:] starts with the remembered token and a
// space; it needs 40 bytes of line's capacity from i for its word loads.
func (m *lastName) matches(line []byte, i int) bool {
	n := m.rawLen
	if i+n >= len(line) || line[i+n] != ' ' || cap(line)-i < len(m.raw) {
		return false
	}
	lp, rp := wordsAt(line[:cap(line)], i), unsafe.Pointer(&m.raw)
	var diff uint64
	j := 0
	for ; j+8 < n; j += 8 {
		diff |= wordAt(lp, j) ^ wordAt(rp, j)
	}
	return diff|(wordAt(lp, j)^wordAt(rp, j))&m.tail == 0
}

// appendTo appends the remembered output to dst, which must have room for
// it plus 8 bytes.
func (m *lastName) appendTo(dst []byte) []byte {
	to, from := wordsAt(dst[:cap(dst)], len(dst)), unsafe.Pointer(&m.out)
	for j := 0; j < m.outLen; j += 8 {
		putWordAt(to, j, wordAt(from, j))
	}
	return dst[:len(dst)+m.outLen]
}

// remember makes raw, written out as out, the remembered name, if it fits.
func (m *lastName) remember(raw, out []byte, nameLen int, shape *tagShape) {
	m.rawLen = 0
	if len(raw) == 0 || len(raw) > len(m.raw) || len(out) > len(m.out)-8 {
		return
	}
	copy(m.raw[:], raw)
	copy(m.out[:], out)
	m.rawLen, m.outLen, m.nameLen, m.shape = len(raw), len(out), nameLen, shape
	m.tail = ^uint64(0) >> (64 - 8*((len(raw)-1)%8+1))
}

// fastTag is a tag as offsets into the line: recording one stores no
// pointers, so it needs no write barrier.
type fastTag struct{ k0, k1, v0, v1 int }

func fastTagIndex[K []byte | string](line []byte, tags []fastTag, key K) int {
	for i, t := range tags {
		if string(line[t.k0:t.k1]) == string(key) {
			return i
		}
	}
	return -1
}

// keyHash mixes a key's length and its first and last eight bytes (or all
// of a shorter one), for the duplicate filter: keys that differ only in
// the middle collide, and a collision only costs an exact search.
func keyHash(key []byte) uint64 {
	var first, last uint64
	if n := len(key); n >= 8 {
		first, last = binary.LittleEndian.Uint64(key), binary.LittleEndian.Uint64(key[n-8:])
	} else {
		for _, c := range key {
			first = first<<8 | uint64(c)
		}
	}
	return (first*0x9e3779b97f4a7c15 ^ last + uint64(len(key))) * 0xc2b2ae3d27d4eb4f
}

// appendFastTags writes the source and the tags of line[i:] as AppendPoint
// would, copying each key and value while it is checked. The tags go out
// in line order; the source, which AppendPoint writes first, is moved to
// the front at the end unless it already is the first tag. Duplicate keys,
// "tag", and "source" with "host" are declined: the general path's
// merging and renaming handle them. A line whose keys are those of shape,
// in its order, skips the per-key checks (see tagShape); any other line
// that passes them becomes shape's new key sequence.
func (d *Decoder) appendFastTags(dst, orig, line []byte, i int, lim *Limits, shape *tagShape) ([]byte, bool) {
	// Each tag comes out at most twice as long as it went in (quotes around
	// one-byte keys and values) plus 2 (the first may have no space before
	// it), and the stores overhang by up to 8 bytes (16 in assembly).
	dst = slices.Grow(dst, 2*(len(line)-i)+64)
	if len(shape.keys) > 0 && shape.src >= 0 {
		// appendShapedTags written out for a shape with a source tag (most
		// lines), and finishFastTags' checks for a line whose source is
		// its first tag: calls and their arguments cost as much here as
		// the checks.
		tagsAt := len(dst)
		out := dst[:cap(dst)]
		r := d.shapedTagRun(line, i, out, tagsAt, shape, lim)
		if r.fits == shapedBad {
			return dst, false
		}
		if r.fits == shapedOK && r.n > shape.src {
			if r.srcFrom == tagsAt && r.n-1 <= lim.MaxTags && r.srcLen <= lim.MaxSourceLength {
				return out[:r.w], true
			}
			return d.finishFastTags(dst, out[:r.w], orig, line, tagsAt, r.n-1, true, r.srcLen, r.srcFrom, r.srcTo, lim)
		}
	} else if len(shape.keys) > 0 {
		if out, ok, fits := d.appendShapedTags(dst, orig, line, i, lim, shape); fits {
			return out, ok
		}
	}
	out, ok := d.appendCheckedTags(dst, orig, line, i, lim)
	if ok {
		shape.learn(line, d.fastTags, d.fastSrc)
	}
	return out, ok
}

// appendCheckedTags is appendFastTags checking every key. It leaves the
// tags in d.fastTags and the source tag's index (or -1) in d.fastSrc.
func (d *Decoder) appendCheckedTags(dst, orig, line []byte, i int, lim *Limits) ([]byte, bool) {
	tagsAt := len(dst)
	out := dst[:cap(dst)]
	w := tagsAt
	tags := d.fastTags[:0]
	srcTag, srcFrom, srcTo := -1, 0, 0 // the source tag and its output bytes
	var seen uint64                    // a filter over keys; a hit is checked exactly
	for {
		i = skipSpaces(line, i)
		if i >= len(line) {
			break
		}
		from := w
		out[w], out[w+1] = ' ', '"'
		w += 2
		k0, k1, next, ok := copyFastName(line, i, out, w)
		key := line[k0:k1]
		if !ok || next >= len(line) || line[next] != '=' || string(key) == "tag" {
			return dst, false
		}
		w += k1 - k0
		bit := uint64(1) << (keyHash(key) >> 58)
		if seen&bit != 0 && fastTagIndex(line, tags, key) >= 0 {
			return dst, false
		}
		seen |= bit
		isSource := string(key) == "source" || string(key) == "host"
		if isSource {
			if srcTag >= 0 {
				return dst, false // source and host: host is renamed
			}
			w = from + copy(out[from:], ` source="`)
		} else {
			out[w], out[w+1], out[w+2] = '"', '=', '"'
			w += 3
		}
		v0, v1, next, ok := copyFastValue(line, next+1, out, w)
		if !ok {
			return dst, false
		}
		i = next
		w += v1 - v0
		out[w] = '"'
		w++
		tags = append(tags, fastTag{k0, k1, v0, v1})
		if isSource {
			srcTag, srcFrom, srcTo = len(tags)-1, from, w
		} else if kl, vl := len(key), v1-v0; kl+vl > lim.MaxTagLength || kl > lim.MaxTagKeyLength || vl > lim.MaxTagValueLength {
			return dst, false
		}
	}
	d.fastTags, d.fastSrc = tags, srcTag
	n := len(tags)
	srcLen := 0
	if srcTag >= 0 {
		n--
		srcLen = tags[srcTag].v1 - tags[srcTag].v0
	}
	return d.finishFastTags(dst, out[:w], orig, line, tagsAt, n, srcTag >= 0, srcLen, srcFrom, srcTo, lim)
}

// appendShapedTags is appendFastTags for a line whose keys are a prefix of
// shape's, as written, in a shape without a source key (appendFastTags
// does this itself for one with): each key is compared with the shape's
// instead of checked, and its output form is copied from the shape. fits
// is false, with nothing appended, when the line's keys are not such a
// prefix; the caller then checks every key.
func (d *Decoder) appendShapedTags(dst, orig, line []byte, i int, lim *Limits, shape *tagShape) (_ []byte, ok, fits bool) {
	tagsAt := len(dst)
	out := dst[:cap(dst)]
	d.fastTags = d.fastTags[:0] // for the custom source tags
	r := d.shapedTagRun(line, i, out, tagsAt, shape, lim)
	if r.fits != shapedOK {
		return dst, false, r.fits == shapedBad
	}
	res, accepted := d.finishFastTags(dst, out[:r.w], orig, line, tagsAt, r.n, false, 0, 0, 0, lim)
	return res, accepted, true
}

// The outcomes of shapedTagRun.
const (
	shapedOK    = iota // the tags are written
	shapedBad          // the keys fit the shape, but the line is not in the fast path's subset
	shapedNoFit        // the keys are not a prefix of the shape's
	shapedPunt         // (shapedTagsSSE2 only) out is too short for its stores
)

// shapedRun is what shapedTagRun found: n tags written up to out[w], the
// source tag's output at out[srcFrom:srcTo] with a value of srcLen bytes.
type shapedRun struct {
	w, n, srcFrom, srcTo, srcLen int
	fits                         int
}

// shapedTagRunGo is appendShapedTags' loop over the tags of line[i:],
// writing them to out[w:], in a function of its own so that the few
// values it needs stay in registers. shapedTagRun is this or, on amd64,
// the same loop in assembly. Keys are compared with the shape's
// and copied eight bytes at a time in the same loop, values checked and
// copied likewise; it is written out here because calls per tag cost as
// much as the work.
func (d *Decoder) shapedTagRunGo(line []byte, i int, out []byte, w int, shape *tagShape, lim *Limits) (r shapedRun) {
	keys, raw, src := shape.keys, shape.raw, shape.src
	for {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		if r.n == len(keys) {
			r.fits = shapedNoFit
			return r
		}
		k := &keys[r.n]
		// AppendPoint writes a key as ` "key"="`: the raw key (`key=` or
		// `"key"=`) goes after ` "` or ` `, and `"="` overwrites its end
		// from the closing quote's place on.
		kn, quoted := int(k.raw1-k.raw0), int(k.quoted)
		from, o, k0 := w, w+2-quoted, i+quoted
		binary.LittleEndian.PutUint16(out[w:], ' '|'"'<<8)
		if kr := int(k.words) * 8; i+kr <= len(line) {
			// The kr bytes at line[i:], raw[k.raw0:] and out[o:] are
			// checked to be there once, for the unchecked word accesses.
			if int(k.raw0)+kr > len(raw) || o+kr > len(out) {
				r.fits = shapedNoFit // never: the shape pads raw, the caller grows out
				return r
			}
			lp, rp, op := wordsAt(line, i), wordsAt(raw, int(k.raw0)), wordsAt(out, o)
			var diff uint64
			j := 0
			for ; j+8 < kr; j += 8 {
				x := wordAt(lp, j)
				diff |= x ^ wordAt(rp, j)
				putWordAt(op, j, x)
			}
			x := wordAt(lp, j)
			diff |= (x ^ wordAt(rp, j)) & k.tail
			putWordAt(op, j, x)
			if diff != 0 {
				r.fits = shapedNoFit
				return r
			}
		} else if i+kn > len(line) || string(line[i:i+kn]) != string(raw[k.raw0:k.raw1]) {
			r.fits = shapedNoFit
			return r
		} else {
			copy(out[o:], raw[k.raw0:k.raw1])
		}
		if r.n == src {
			w += copy(out[w:], ` source="`)
		} else {
			w = o + kn - 1 - quoted
			binary.LittleEndian.PutUint32(out[w:], '"'|'='<<8|'"'<<16)
			w += 3
		}
		// An unquoted value is scanned here too; copyFastValue does the rest.
		v0, v1 := i+kn, i+kn
		if v0 < len(line) && plainValueByte[line[v0]] && line[v0] != '\'' && line[v0] != '#' {
			lp, op := wordsAt(line, v0), wordsAt(out, w)
			for {
				// The unchecked word accesses, checked here.
				if v1+8 > len(line) || w+(v1-v0)+8 > len(out) {
					for ; v1 < len(line) && plainValueByte[line[v1]]; v1++ {
						out[w+v1-v0] = line[v1]
					}
					break
				}
				x := wordAt(lp, v1-v0)
				putWordAt(op, v1-v0, x)
				if bad := plainValueBad(x); bad != 0 {
					v1 = firstBad(v1, bad)
					break
				}
				v1 += 8
			}
			i = v1
			if v1 < len(line) {
				if line[v1] != ' ' {
					r.fits = shapedBad
					return r
				}
				i++ // past the space that ends the value: one turn fewer of the space loop
			}
		} else {
			var next int
			var ok bool
			if v0, v1, next, ok = copyFastValue(line, v0, out, w); !ok {
				r.fits = shapedBad
				return r
			}
			i = next
		}
		w += v1 - v0
		out[w] = '"'
		w++
		if r.n == src {
			r.srcFrom, r.srcTo, r.srcLen = from, w, v1-v0
		} else if kl, vl := int(k.keyLen), v1-v0; kl+vl > lim.MaxTagLength || kl > lim.MaxTagKeyLength || vl > lim.MaxTagValueLength {
			r.fits = shapedBad
			return r
		}
		if src < 0 {
			d.fastTags = append(d.fastTags, fastTag{k0, k0 + int(k.keyLen), v0, v1})
		}
		r.n++
	}
	r.w = w
	return r
}

// finishFastTags checks the tag count and the source of the tags written
// to out[tagsAt:], n of them besides the source, and writes the source
// first: the line's own (moved from out[srcFrom:srcTo]) if hasSrc, else a
// custom source tag from d.fastTags or the default source.
func (d *Decoder) finishFastTags(dst, out, orig, line []byte, tagsAt, n int, hasSrc bool, srcLen, srcFrom, srcTo int, lim *Limits) ([]byte, bool) {
	if n > lim.MaxTags {
		return dst, false
	}
	if hasSrc {
		if srcLen > lim.MaxSourceLength {
			return dst, false
		}
		if srcFrom > tagsAt { // rotate it to the front
			seg := append(d.scratch[:0], out[srcFrom:srcTo]...)
			copy(out[tagsAt+len(seg):], out[tagsAt:srcFrom])
			copy(out[tagsAt:], seg)
			d.scratch = seg
		}
		return out, true
	}
	src := d.defaultSource(orig)
	tags := d.fastTags
	for _, k := range d.customSourceTags() {
		if j := fastTagIndex(line, tags, k); j >= 0 {
			src = line[tags[j].v0:tags[j].v1]
			break
		}
	}
	if len(trimSpace(src)) == 0 || utf16Len(src) > lim.MaxSourceLength {
		return dst, false
	}
	w := len(out)
	seg := appendQuotedValue(append(d.scratch[:0], " source="...), src)
	d.scratch = seg
	out = append(out, seg...) // room for it
	copy(out[tagsAt+len(seg):], out[tagsAt:w])
	copy(out[tagsAt:], seg)
	return out, true
}

// copyFastValue checks the tag value at line[i:], unquoted or
// double-quoted without backslashes or surrounding blanks, and copies it
// to out[w:], which must have room for it plus 8 bytes. It returns where
// the value is in line and the index after it (and its closing quote),
// which must be a space or the end.
func copyFastValue(line []byte, i int, out []byte, w int) (v0, v1, next int, ok bool) {
	if i < len(line) && line[i] == '"' {
		v0 = i + 1
		v1 = quotedValueRunCopy(line, v0, out, w)
		if v1 >= len(line) || line[v1] != '"' || v1 == v0 || line[v0] == ' ' || line[v1-1] == ' ' {
			return 0, 0, 0, false
		}
		next = v1 + 1
	} else {
		v0 = i
		if i < len(line) && (line[i] == '\'' || line[i] == '#') {
			return 0, 0, 0, false // a quote or a structural '#'
		}
		v1 = plainValueRunCopy(line, v0, out, w)
		if v1 == v0 {
			return 0, 0, 0, false
		}
		next = v1
	}
	if next < len(line) && line[next] != ' ' {
		return 0, 0, 0, false
	}
	return v0, v1, next, true
}

// shapes is how many tag key sequences a Decoder remembers, one per
// metric name hash: a sender's lines repeat a few sequences, one or a few
// per metric.
const shapes = 8

// tagShape is the sequence of tag keys of a line the fast path accepted,
// as written (unquoted or quoted, with the '='). Its keys are valid, distinct, not "tag", and at most one of them
// (src) is source or host, so the same is true of every prefix of the
// sequence: a line whose keys match one needs no per-key checks but their
// length limits, which depend on the Limits of the call.
type tagShape struct {
	raw  []byte // the keys back to back, then 16 bytes of padding for word and SSE2 loads
	keys []shapeKey
	src  int // index of the source or host key, or -1

	// The tag length limits the keys' maxValue fields were set for, if
	// limited (see limitValues).
	limited bool
	limits  [3]int
}

type shapeKey struct {
	tail       uint64 // the bytes of the key's last word in raw that are the key's
	raw0, raw1 int32  // the key in raw
	rawLen     int32  // raw1 - raw0
	keyMask    uint32 // the low rawLen bits, if rawLen ≤ 32
	words      int32  // the key's length in raw, in words rounded up
	keyLen     int32  // the key without quotes and '='
	quoted     int8   // 1 if written in double quotes
	maxValue   int    // the longest value the tag limits allow the key, -1 if none

	// Tags with this key that the assembly loop accepted (not the
	// source's, and only in shapes with one): many tags repeat from line
	// to line (namespaces, clusters, protocols), and a key's values mostly
	// come from a small set (workloads, services, codes), so such a tag is
	// compared and copied whole. A tag's slot is picked by a hash of the
	// four bytes after its key: the start of its value, or of what
	// follows a shorter one (the next key, or the next line's name). The limits they
	// were checked against are the keys' maxValue, so limitValues forgets
	// them.
	seen [seenSlots]seenTag
}

// seenSlots is how many remembered tags a key has, at 144 bytes each:
// twice the workloads or codes a sidecar's lines usually name, since a
// hash puts two values in one slot far less often then (8 slots kept
// ~2.2 more of an Istio line's 14 tags from being remembered). Only the
// slots a key's values use are touched.
const seenSlots = 16

// seenTag is a remembered tag: as written (in, the low inLen bytes of
// mask) and as the loop wrote it (out). inLen is 0 for none. Its size is
// 144 bytes (9<<4), so that the assembly finds a slot with a LEA and a
// shift.
type seenTag struct {
	in            [64]byte
	out           [64]byte
	mask          uint64 // the low inLen bits
	inLen, outLen uint16
	misses        uint32 // lines with another tag in this slot since it was remembered
}

// seenMissesToForget is how many lines with another tag in a slot make
// the assembly loop remember a new one there, so that a value met now
// and then does not push out a common one, and a value that changes for
// good is soon remembered.
const seenMissesToForget = 4

// forgetSeen empties k's slots.
func (k *shapeKey) forgetSeen() {
	for i := range k.seen {
		k.seen[i].inLen, k.seen[i].misses = 0, seenMissesToForget
	}
}

func (d *Decoder) tagShape(name []byte) *tagShape {
	if d.shapes == nil {
		d.shapes = new([shapes]tagShape)
	}
	return &d.shapes[keyHash(name)>>61]
}

// learn makes the tags the checked path accepted in line the shape.
func (s *tagShape) learn(line []byte, tags []fastTag, src int) {
	s.raw, s.keys, s.src, s.limited = s.raw[:0], s.keys[:0], src, false
	for _, t := range tags {
		var q int8
		if line[t.k0-1] == '"' {
			q = 1
		}
		k := s.addKey()
		k.raw0, k.keyLen, k.quoted, k.maxValue = int32(len(s.raw)), int32(t.k1-t.k0), q, 0
		s.raw = append(s.raw, line[t.k0-int(q):t.k1+int(q)+1]...) // with the quotes and '='
		k.raw1 = int32(len(s.raw))
		k.rawLen = k.raw1 - k.raw0
		k.keyMask = uint32(uint64(1)<<min(k.rawLen, 32) - 1)
		kn := int(k.rawLen)
		k.words, k.tail = int32((kn+7)/8), ^uint64(0)>>(64-8*((kn-1)%8+1))
		k.forgetSeen()
	}
	s.raw = append(s.raw, make([]byte, 16)...)
	// Past the keys, one that no tag fits, so that shapedTagsSSE2 needs
	// no count of them: its value would start beyond any line's end.
	end := s.addKey()
	end.raw0, end.rawLen, end.quoted = 0, 1<<30, 0
	s.keys = s.keys[:len(s.keys)-1]
}

// addKey appends a key to s.keys, reusing one in place if it can: a key
// keeps its slots' bytes, which forgetSeen makes unreadable, since zeroing
// them costs more than the rest of learn.
func (s *tagShape) addKey() *shapeKey {
	if len(s.keys) < cap(s.keys) {
		s.keys = s.keys[:len(s.keys)+1]
	} else {
		s.keys = append(s.keys, shapeKey{})
	}
	return &s.keys[len(s.keys)-1]
}

// limitValues sets each key's maxValue for lim, unless they are set for
// its tag length limits already: a value longer than maxValue breaks
// MaxTagValueLength or, with its key, MaxTagLength, and a key over
// MaxTagKeyLength allows none. So the loop checks a tag's limits with one
// comparison.
func (s *tagShape) limitValues(lim *Limits) {
	if !s.limited || s.limits != [3]int{lim.MaxTagKeyLength, lim.MaxTagValueLength, lim.MaxTagLength} {
		s.setLimitValues(lim)
	}
}

func (s *tagShape) setLimitValues(lim *Limits) {
	limits := [3]int{lim.MaxTagKeyLength, lim.MaxTagValueLength, lim.MaxTagLength}
	for i := range s.keys {
		k := &s.keys[i]
		k.forgetSeen()
		kl := int(k.keyLen)
		if k.maxValue = -1; kl <= lim.MaxTagKeyLength && kl <= lim.MaxTagLength {
			k.maxValue = min(lim.MaxTagValueLength, lim.MaxTagLength-kl)
		}
	}
	s.limited, s.limits = true, limits
}
