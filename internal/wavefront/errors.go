package wavefront

import "strconv"

// Rejection codes. Where the reference proxy has a WF code we reuse it so
// dashboards and runbooks keep working; reasons are ours and always name
// the offending token so a per-code counter plus a sampled reason is enough
// to debug a client (proxy.md §10 item 5).
const (
	CodeParse           = "WF-300" // line cannot be parsed
	CodeNameChars       = "WF-400" // illegal character in metric name
	CodeTagKeyChars     = "WF-401" // illegal character in tag key
	CodeTimeframe       = "WF-402" // timestamp outside the accepted window
	CodeDelta           = "WF-404" // delta value ≤ 0; the point is discarded, not blocked
	CodeEmptyHistogram  = "WF-405" // no centroid has a non-zero count
	CodeSourceMissing   = "WF-406"
	CodeSourceTooLong   = "WF-407"
	CodeNameTooLong     = "WF-408" // points
	CodeHistNameTooLong = "WF-409" // histograms
	CodeTooManyTags     = "WF-410"
	CodeTagTooLong      = "WF-411" // key+value
	CodeTagKeyTooLong   = "WF-412"
	CodeTagValueTooLong = "WF-413"
	CodeTagValueEmpty   = "WF-414"

	CodeSpanKeyChars       = "WF-416"
	CodeSpanSourceMissing  = "WF-426"
	CodeSpanSourceTooLong  = "WF-427"
	CodeSpanNameTooLong    = "WF-428"
	CodeSpanTooManyTags    = "WF-430"
	CodeSpanKeyTooLong     = "WF-432"
	CodeSpanValueTruncated = "WF-433" // a warning: never returned as an error
	CodeSpanValueEmpty     = "WF-434"
)

// LineError is the reason a line was rejected. Code is one of the Code*
// constants and is meant as a low-cardinality counter label; Reason is the
// human-readable detail.
type LineError struct {
	Code   string
	Reason string
}

func (e *LineError) Error() string { return e.Code + ": " + e.Reason }

// Discarded reports whether the reference counts this rejection as
// "discarded" rather than "blocked" (only delta values ≤ 0, §2.6).
func (e *LineError) Discarded() bool { return e.Code == CodeDelta }

func parseErr(reason string) *LineError { return &LineError{Code: CodeParse, Reason: reason} }

// quoteTok renders a token for an error message; rejections are rare, so
// the allocation is acceptable.
func quoteTok(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
