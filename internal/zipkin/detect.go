package zipkin

import (
	"bytes"
	"errors"
	"strconv"
)

// Encoding is the wire encoding of a Zipkin span list.
type Encoding uint8

// Encodings Detect can report.
const (
	JSONV2 Encoding = iota + 1
	JSONV1
	Proto3
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case JSONV2:
		return "json-v2"
	case JSONV1:
		return "json-v1"
	case Proto3:
		return "proto3"
	}
	return "unknown"
}

// ErrThrift is returned by Detect for Thrift bodies, which we do not decode.
var ErrThrift = errors.New("thrift encoding is not supported")

var (
	errEmptyBody       = errors.New("empty body: expected a list of spans")
	errNotList         = errors.New("expected json, proto3 or thrift list encoding")
	errUnknownEncoding = errors.New("unknown span encoding")
)

// Detect picks the encoding from the body the way the reference does
// (proxy.md §5.1); the Content-Type header plays no part. A body that is
// not a span list, or is Thrift, yields an error fit for a 400 reason.
func Detect(body []byte) (Encoding, error) {
	if len(body) == 0 {
		return 0, errEmptyBody
	}
	switch b0 := body[0]; {
	case b0 <= 0x10 || b0 >= 0x80:
		if b0 == 0x0A && len(body) > 1 && body[1] != 0 {
			return Proto3, nil
		}
		if b0 == 0x0C || b0 == 0x0B {
			return 0, ErrThrift
		}
		return 0, errNotList
	case b0 == '[':
		if bytes.Contains(body, []byte(`Endpoint"`)) || bytes.Contains(body, []byte(`"tags"`)) {
			return JSONV2, nil
		}
		return JSONV1, nil
	}
	return 0, errNotList
}

// Decode errors. Messages name the field so the 400 reason is actionable.
var (
	errMissingBoth    = errors.New("missing traceId and id")
	errMissingTraceID = errors.New("missing traceId")
	errMissingID      = errors.New("missing id")
	errEmptyTraceID   = errors.New("traceId is empty")
	errLongTraceID    = errors.New("traceId is longer than 32 characters")
	errTraceID15      = errors.New("traceId has 15 characters, which the reference rejects")
	errZeroTraceID    = errors.New("traceId is all zeros")
	errEmptyID        = errors.New("id is empty")
	errLongID         = errors.New("id is longer than 16 characters")
	errZeroID         = errors.New("id is all zeros")
	errEmptyParentID  = errors.New("parentId is empty")
	errLongParentID   = errors.New("parentId is longer than 16 characters")
)

func hexError(field string, id []byte) error {
	return errors.New(field + " " + strconv.Quote(string(id)) + " should be lower-hex encoded with no prefix")
}

// SpanError locates a decode error: Index is the 0-based position of the
// span in the list (for JSON v1, of the v1 span).
type SpanError struct {
	Index int
	Err   error
}

func (e *SpanError) Error() string { return "span " + strconv.Itoa(e.Index) + ": " + e.Err.Error() }

func (e *SpanError) Unwrap() error { return e.Err }
