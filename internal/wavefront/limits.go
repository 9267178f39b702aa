package wavefront

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits are the validation limits of proxy.md §2.5 and §4.2. Lengths are
// Java string lengths (UTF-16 code units), as the reference measures them.
// A zero or negative duration disables that time check.
type Limits struct {
	MaxSourceLength   int // WF-407 / WF-427
	MaxNameLength     int // WF-408 / WF-409
	MaxTags           int // WF-410
	MaxTagLength      int // WF-411: key+value
	MaxTagKeyLength   int // WF-412
	MaxTagValueLength int // WF-413

	// WF-402: accept iff now−Backfill < ts < now+Prefill. Prefill also
	// bounds span start times.
	Backfill time.Duration
	Prefill  time.Duration

	MaxSpanNameLength  int // WF-428
	MaxSpanAnnotations int // WF-430
	MaxSpanKeyLength   int // WF-432
	MaxSpanValueLength int // longer values are truncated (WF-433)
	SpanDropDelay      time.Duration
}

// DefaultLimits returns the reference proxy's defaults. The Istio-friendly
// span limits of proxy.md §10 item 9 are a proxy configuration decision,
// not this package's.
func DefaultLimits() Limits {
	return Limits{
		MaxSourceLength:    1023,
		MaxNameLength:      1023,
		MaxTags:            100,
		MaxTagLength:       254,
		MaxTagKeyLength:    253,
		MaxTagValueLength:  255,
		Backfill:           8760 * time.Hour,
		Prefill:            24 * time.Hour,
		MaxSpanNameLength:  128,
		MaxSpanAnnotations: 20,
		MaxSpanKeyLength:   128,
		MaxSpanValueLength: 128,
	}
}

var defaultLimits = DefaultLimits()

// ValidatePoint applies the checks of §2.5 in the reference's order, then
// the delta rule (§2.6). It does not check the timestamp window, which the
// reference runs earlier as a preprocessor step (see Decoder.CheckTime).
func (l *Limits) ValidatePoint(p *Point) error {
	if e := l.validateCommon(p.Name, p.Source, p.Tags, CodeNameTooLong); e != nil {
		return e
	}
	if isDelta(p.Name) && !(p.Value > 0) {
		return &LineError{CodeDelta, "Delta metrics cannot be non-positive: " +
			string(AppendValue(nil, p.Value))}
	}
	return nil
}

// ValidateDistribution applies the checks of §2.5 to a histogram.
func (l *Limits) ValidateDistribution(d *Distribution) error {
	if e := l.validateCommon(d.Name, d.Source, d.Tags, CodeHistNameTooLong); e != nil {
		return e
	}
	for _, c := range d.Centroids {
		if c.Count != 0 {
			return nil
		}
	}
	return &LineError{CodeEmptyHistogram, "Empty histogram"}
}

func (l *Limits) validateCommon(name, source []byte, tags []Tag, nameCode string) *LineError {
	if len(trimSpace(source)) == 0 {
		return &LineError{CodeSourceMissing, "Source/host name is required"}
	}
	if n := utf16Len(source); n > l.MaxSourceLength {
		return &LineError{CodeSourceTooLong, "Source/host name is too long" + lenDetail(n, l.MaxSourceLength) + ": " + quoteTok(source)}
	}
	if n := utf16Len(name); n > l.MaxNameLength {
		return &LineError{nameCode, "Metric name is too long" + lenDetail(n, l.MaxNameLength) + ": " + quoteTok(name)}
	}
	if !validName(name) {
		return &LineError{CodeNameChars, "Point metric has illegal character(s): " + quoteTok(name)}
	}
	if len(tags) > l.MaxTags {
		return &LineError{CodeTooManyTags, "Too many point tags" + lenDetail(len(tags), l.MaxTags)}
	}
	for _, t := range tags {
		kl, vl := utf16Len(t.Key), utf16Len(t.Value)
		switch {
		case kl+vl > l.MaxTagLength:
			return &LineError{CodeTagTooLong, "Point tag (key+value) too long" + lenDetail(kl+vl, l.MaxTagLength) + ": " + quoteTok(t.Key)}
		case kl > l.MaxTagKeyLength:
			return &LineError{CodeTagKeyTooLong, "Point tag key is too long" + lenDetail(kl, l.MaxTagKeyLength) + ": " + quoteTok(t.Key)}
		case !validName(t.Key):
			return &LineError{CodeTagKeyChars, "Point tag key has illegal character(s): " + quoteTok(t.Key)}
		case len(trimSpace(t.Value)) == 0:
			return &LineError{CodeTagValueEmpty, "Point tag value for " + quoteTok(t.Key) + " is empty or missing"}
		case vl > l.MaxTagValueLength:
			return &LineError{CodeTagValueTooLong, "Point tag value is too long" + lenDetail(vl, l.MaxTagValueLength) + ": " + quoteTok(t.Key)}
		}
	}
	return nil
}

func lenDetail(n, limit int) string {
	return " (" + strconv.Itoa(n) + ", limit " + strconv.Itoa(limit) + ")"
}

// validName implements §2.4 for metric names and tag keys.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	i := 0
	switch {
	case b[0] == '~':
		i = 1
	case hasPrefix(b, DeltaIncrement):
		i = len(DeltaIncrement)
	case hasPrefix(b, DeltaGreek):
		i = len(DeltaGreek)
	}
	if i > 1 && i < len(b) && b[i] == '~' {
		i++ // a delta marker may be followed by '~'
	}
	for _, c := range b[i:] {
		if !allowedNameByte[c] {
			return false
		}
	}
	return true
}

func isDelta(name []byte) bool {
	return hasPrefix(name, DeltaIncrement) || hasPrefix(name, DeltaGreek)
}

// utf16Len is len(s) for the Java string the reference would hold: one unit
// per BMP rune (and per invalid byte, which Java decodes to U+FFFD), two per
// supplementary rune.
func utf16Len(b []byte) int {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	n := i
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		n++
		if r > 0xffff {
			n++
		}
		i += size
	}
	return n
}

// truncateUTF16 returns the longest prefix of b at a rune boundary that is
// at most n UTF-16 units long. Java would split a surrogate pair at the
// limit; UTF-8 cannot carry half a pair, so the whole rune is dropped.
func truncateUTF16(b []byte, n int) []byte {
	units := 0
	for i := 0; i < len(b); {
		r, size := rune(b[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(b[i:])
		}
		u := 1
		if r > 0xffff {
			u = 2
		}
		if units+u > n {
			return b[:i]
		}
		units += u
		i += size
	}
	return b
}

// saturatingAdd keeps window arithmetic sane for extreme clocks and limits.
func saturatingAdd(a, b int64) int64 {
	c := a + b
	if (b > 0 && c < a) || (b < 0 && c > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c
}

// MeshSpanAnnotations is the annotation limit meshwave's proxy and server
// use instead of the reference's 20 (which its backend raises): an Envoy
// span carries about 30 annotations once converted from Zipkin.
const MeshSpanAnnotations = 128
