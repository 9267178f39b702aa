// Package benchmark measures meshwave's scrape path against the two parsers
// it is judged by: Prometheus' own model/textparse (the fastest Go parser of
// the text format) and the reference collector's expfmt-based path.
//
// Every path processes the same generated Istio /federate payload, so the
// numbers are per sample and comparable. PeakHeap measures the whole
// collector's heap while it scrapes a large endpoint served by a separate
// process. `meshwave bench` runs everything and prints a table; the Go
// benchmarks in this package run the same code under `go test -bench`.
package benchmark
