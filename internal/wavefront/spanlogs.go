package wavefront

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// SpanLogs is one span-logs object (proxy.md §4.4). Field order matches the
// reference's output; SpanSecondaryID is written as null when nil.
type SpanLogs struct {
	Customer        string    `json:"customer,omitempty"`
	TraceID         string    `json:"traceId"`
	SpanID          string    `json:"spanId"`
	SpanSecondaryID *string   `json:"spanSecondaryId"`
	Logs            []SpanLog `json:"logs"`
	// Span is the optional span line on input; on output the proxy
	// overwrites it with _sampledByPolicy=<id|NONE>.
	Span string `json:"span,omitempty"`
}

// SpanLog is one log entry. Timestamp is in microseconds.
type SpanLog struct {
	Timestamp int64     `json:"timestamp"`
	Fields    LogFields `json:"fields"`
}

// LogFields are a log entry's fields. On input, scalar JSON values are
// accepted and kept as their text (numbers, booleans) or dropped (null), as
// the reference's Jackson mapping to Map<String,String> coerces them.
type LogFields map[string]string

// UnmarshalJSON implements the coercion described on LogFields.
func (f *LogFields) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*f = nil
		return nil
	}
	m := make(LogFields, len(raw))
	for k, v := range raw {
		switch {
		case len(v) == 0 || string(v) == "null":
			continue
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			m[k] = s
		case v[0] == '{' || v[0] == '[':
			return errors.New("log field " + strconv.Quote(k) + " is not a scalar")
		default:
			m[k] = string(v)
		}
	}
	*f = m
	return nil
}

// DecodeSpanLogs parses one span-logs JSON line. _spanSecondaryId is
// accepted as an alias of spanSecondaryId. traceId and spanId are required.
// Errors are *LineError with CodeParse.
func DecodeSpanLogs(line []byte, sl *SpanLogs) error {
	var in struct {
		SpanLogs
		AliasSecondaryID *string `json:"_spanSecondaryId"`
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return parseErr("Cannot parse span logs: " + err.Error())
	}
	if in.SpanSecondaryID == nil {
		in.SpanSecondaryID = in.AliasSecondaryID
	}
	switch {
	case in.TraceID == "":
		return parseErr("Span logs: traceId is missing")
	case in.SpanID == "":
		return parseErr("Span logs: spanId is missing")
	}
	*sl = in.SpanLogs
	return nil
}

// AppendSpanLogs appends sl as one JSON line (with a trailing newline).
func AppendSpanLogs(dst []byte, sl *SpanLogs) ([]byte, error) {
	b, err := json.Marshal(sl)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes a string field of a span-logs object (HTML-safe, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped), so span logs encoded by hand, without
// reflection or maps, equal AppendSpanLogs's byte for byte.
func AppendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	// Span logs' IDs and annotation values rarely need escaping: copy the
	// plain run found eight bytes at a time, then go byte by byte.
	start := 0
	for i := jsonPlainLen(s); i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonPlainLen returns the length of s's leading run of jsonSafe bytes.
func jsonPlainLen(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		y := x &^ highs
		bad := x | ^laneGE(y, ' ') | laneEQ(y, '"') | laneEQ(y, '\\') | laneEQ(y, '<') | laneEQ(y, '>') | laneEQ(y, '&')
		if bad &= highs; bad != 0 {
			return firstBad(i, bad)
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf && jsonSafe[s[i]] {
		i++
	}
	return i
}

// jsonSafe marks the ASCII bytes encoding/json writes as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
