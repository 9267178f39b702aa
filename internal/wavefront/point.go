package wavefront

import (
	"math"
	"strconv"
)

// Tag is one point tag. Key and Value may alias buffers owned by the
// producer; they are valid only for the duration of the call that hands the
// point over, so a stage that keeps a tag must copy it.
type Tag struct {
	Key, Value []byte
}

// Point is one Wavefront metric sample. Like Tag, its byte slices may alias
// a producer's buffers.
type Point struct {
	Name      []byte
	Value     float64
	Timestamp int64 // Unix seconds; 0 means "let the receiver assign it"
	Source    []byte
	Tags      []Tag
}

// AppendPoint appends p in the canonical line format the reference collector
// sends (collector.md §6.3):
//
//	"<name>" <value> [<ts>] source="<source>" "<k>"="<v>" ...\n
//
// Names and tag keys are sanitised byte by byte; source and tag values are
// trimmed and have '"' and newlines escaped (see appendQuotedValue).
func AppendPoint(dst []byte, p *Point) []byte {
	dst = appendSanitizedName(dst, p.Name)
	dst = append(dst, ' ')
	dst = AppendValue(dst, p.Value)
	if p.Timestamp != 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, p.Timestamp, 10)
	}
	dst = appendSourceAndTags(dst, p.Source, p.Tags)
	return append(dst, '\n')
}

func appendSourceAndTags(dst, source []byte, tags []Tag) []byte {
	dst = append(dst, " source="...)
	dst = appendQuotedValue(dst, source)
	for _, t := range tags {
		dst = append(dst, ' ')
		dst = appendSanitizedName(dst, t.Key)
		dst = append(dst, '=')
		dst = appendQuotedValue(dst, t.Value)
	}
	return dst
}

// AppendValue writes v as the shortest decimal without an exponent, and
// non-finite values as NaN, +Inf and -Inf.
func AppendValue(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// Delta markers that may start a metric name: ∆ (U+2206) and Δ (U+0394).
const (
	DeltaIncrement = "\u2206"
	DeltaGreek     = "\u0394"
)

// allowedNameByte reports whether c may appear in a metric name or tag key
// after its first character: A–Z a–z 0–9 _ , - . /
var allowedNameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := ','; /* 44 */ c <= '9'; /* 57 */ c++ {
		t[c] = true
	}
	t['_'] = true
	return t
}()

// appendSanitizedName quotes name, replacing every disallowed byte with '-'
// but keeping a leading '~' or delta marker, and a '~' right after a delta
// marker (proxy.md §2.4), so every valid name is written unchanged.
func appendSanitizedName(dst, name []byte) []byte {
	dst = append(dst, '"')
	i := 0
	switch {
	case len(name) > 0 && name[0] == '~':
		i = 1
	case hasPrefix(name, DeltaIncrement):
		i = len(DeltaIncrement)
	case hasPrefix(name, DeltaGreek):
		i = len(DeltaGreek)
	}
	if i > 1 && i < len(name) && name[i] == '~' {
		i++
	}
	dst = append(dst, name[:i]...)
	for i < len(name) {
		j := i
		for j < len(name) && allowedNameByte[name[j]] {
			j++
		}
		dst = append(dst, name[i:j]...)
		for ; j < len(name) && !allowedNameByte[name[j]]; j++ {
			dst = append(dst, '-')
		}
		i = j
	}
	return append(dst, '"')
}

// appendQuotedValue trims v and writes it double-quoted with '"' as \" and
// a newline as \n, like the reference SDK. The reference cannot represent
// a backslash before a quote, before the closing quote or before an 'n'
// unambiguously, so a run of backslashes followed by '"', 'n', a newline or
// the end of the value is doubled; Decoder reads that back exactly, and for
// values without such runs the output is byte-identical to the reference.
func appendQuotedValue(dst, v []byte) []byte {
	v = trimSpace(v)
	dst = append(dst, '"')
	for i := 0; i < len(v); i++ {
		j := i
		for j < len(v) && !quoteSpecial[v[j]] {
			j++
		}
		dst = append(dst, v[i:j]...)
		if i = j; i == len(v) {
			break
		}
		switch c := v[i]; c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\\':
			j := i
			for j < len(v) && v[j] == '\\' {
				j++
			}
			n := j - i
			if j == len(v) || v[j] == '"' || v[j] == 'n' || v[j] == '\n' {
				n *= 2
			}
			dst = appendBackslashes(dst, n)
			i = j - 1
		}
	}
	return append(dst, '"')
}

var quoteSpecial = [256]bool{'"': true, '\n': true, '\\': true}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
