// Package filter implements the reference collector's point filters
// (collector.md §4): metric-name allow/deny lists, tag-value allow/deny maps
// and tag-key include/exclude/guarantee lists, all with gobwas/glob v0.2.3
// semantics compiled without separators, so `*` crosses dots and matching is
// anchored to the whole string.
//
// A list of two or more patterns is compiled as one alternation
// `{p1,p2,...}`, exactly as the reference does, so commas inside a
// multi-pattern list split alternatives while a lone pattern containing a
// comma is literal. Unlike the reference, every pattern is also compiled on
// its own first, so a bad pattern is a configuration error naming the pattern
// and its index instead of silently disabling the whole list (defect §9.8).
//
// A *Filter is immutable after New and safe for concurrent use; Keep and
// FilterTags do not allocate.
package filter
