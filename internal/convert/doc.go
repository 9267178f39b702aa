// Package convert turns Prometheus samples (from promtext) into Wavefront
// points with the reference collector's rules: names, type suffixes,
// le/quantile formatting, NaN handling, tags and source (collector.md §3),
// then applies the source's filter (§4). It works one sample at a time and
// hands each kept point to a PointWriter; nothing is materialised.
package convert
