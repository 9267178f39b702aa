// Package promtext reads the Prometheus text exposition format (and
// OpenMetrics text) as a stream: it pulls one line at a time from an
// io.Reader and hands out samples whose byte slices stay valid until the next
// call, so a scrape of any size needs memory for one line, not one response.
//
// It reads every line the way Prometheus' model/textparse does (a
// differential fuzz test proves it), resolves each sample's family and type
// the way the reference collector's expfmt-based parser does, and — unlike
// both — reports a malformed or over-long line as a line error and carries on
// with the next line instead of giving up on the rest of the body.
package promtext
