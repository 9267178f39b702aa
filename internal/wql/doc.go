// Package wql parses and evaluates the subset of the Wavefront Query Language
// that the Istio Data Plane and Control Plane dashboards need (istio.md §10).
//
// # Grammar
//
// Whitespace is free between tokens. Keywords and, or, not are
// case-insensitive; function names are not.
//
//	query      = expr .
//	expr       = term { ("+" | "-") term } .
//	term       = unary { ("*" | "/") unary } .
//	unary      = "-" unary | postfix .
//	postfix    = primary { ".orElse" "(" expr ")" } .
//	primary    = number | "(" expr ")" | call .
//	call       = "ts" "(" word [ "," filter ] ")"
//	           | "time" "(" ")"
//	           | ("rate" | "deriv") "(" expr ")"
//	           | aggregate "(" expr { "," tag } [ by ] ")" [ by ]
//	           | "percentile" "(" signed "," expr { "," tag } [ by ] ")" [ by ]
//	           | histfn "(" hs { "," tag } [ by ] ")" [ by ]
//	           | "percentile" "(" signed "," hs { "," tag } [ by ] ")" [ by ]
//	           | "mavg" "(" duration "," expr ")"
//	           | "last" "(" [ duration "," ] expr ")"
//	           | "default" "(" [ duration "," ] signed "," expr ")"
//	           | "align" "(" duration "," [ summarizer "," ] expr ")" .
//	aggregate  = "sum" | "avg" | "min" | "max" | "count"
//	           | "rawsum" | "rawavg" | "rawmin" | "rawmax" | "rawcount" .
//	summarizer = "mean" | "sum" | "min" | "max" | "count" | "first" | "last" .
//	histfn     = "median" | "count" | "sum" | "avg" | "min" | "max" .
//	hs         = "hs" "(" word [ "," filter ] ")" .   (word ends in .m, .h or .d)
//	by         = "by" "(" tag { "," tag } ")" .
//	tag        = keychar { keychar } .       (a tag name, or sources | metrics | pointTags)
//	filter     = conj { "or" conj } .
//	conj       = neg { "and" neg } .
//	neg        = "not" neg | "(" filter ")" | key ("=" | "!=") word .
//	key        = keychar { keychar } .       ("source" or "host" is the series source)
//	word       = wordchar { wordchar } | '"' { char } '"' | "'" { char } "'" .
//	number     = digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ] .
//	signed     = [ "-" ] number .
//	duration   = digits ("s" | "m" | "h" | "d" | "w") .
//	keychar    = letter | digit | "_" | "." | "-" | "~" .
//	wordchar   = any byte above space except , ( ) " ' = ! .
//
// Inside quotes, a backslash escapes the next character. In metric names and
// tag values '*' matches any run of characters, dots included; matching is
// case-sensitive. Dashboard variables ${name} are replaced by their value
// (which may be "*", a literal, or even a sub-query) before parsing; an
// unknown variable is an error at its "${". hs() is valid only as the
// argument of a histogram function (percentile, median, count, sum, avg,
// min, max). Anything else (other functions, comparison operators, raw*
// over hs(), 1vw/1bw windows) is an *Error at the offending position.
//
// # Semantics
//
// Eval works on a grid of Options.Step buckets covering [Start, End]; a
// result point carries its bucket's start time. Raw samples are averaged per
// bucket. Where a function needs earlier data (rate: one bucket, mavg/align/
// default: their window, last without a window: one chart width), Eval reads
// that much before Start.
//
//   - ts(metric, filter): one series per (metric, source, tags). key=v on a
//     tag the series lacks does not match, so key=* means "has the tag" and
//     not key=v matches series without it.
//   - rate(x): per-second change between consecutive samples, at the later
//     one; a decrease (counter reset, or a pod leaving a federated sum) yields
//     no point. deriv(x) is the same but keeps decreases. On raw input this
//     runs before bucketing; on aggregated input between non-empty buckets.
//   - sum, avg, min, max, count group by the listed tags (pseudo-tags:
//     sources, metrics, pointTags); a series lacking a group tag forms its
//     own group without it. Wavefront interpolates series at each other's
//     timestamps; meshwave's buckets already align series, and the non-raw
//     forms additionally carry a series' value forward into one following
//     empty bucket, so scrape jitter does not make sums dip while a series
//     that stopped reporting drops out after one bucket. raw* forms do no
//     carry-forward. A result keeps the metric name only if all its inputs
//     share it.
//   - percentile(p, x[, tags]) is Prometheus' histogram_quantile(p/100)
//     over series tagged le, compared numerically ("1" and "1.0" are one
//     bucket, "+Inf" is infinity): linear interpolation in the bucket holding
//     the rank, the highest finite bound when the rank falls in +Inf, no
//     point without a +Inf bucket or observations. Bucket values may be
//     counts or per-second rates (the federated *.bucket.value are rates);
//     for cumulative counters use percentile(p, rate(ts(...))). Without tags
//     each (metric, source, tags minus le) is one histogram; with tags,
//     buckets are summed per group and le first.
//   - hs(metric.g, filter) selects Wavefront histograms (t-digest
//     centroids per minute, hour or day bin; the suffix .m, .h or .d picks
//     the granularity, as in Wavefront, e.g. the proxy's RED
//     tracing.derived.<app>.<service>.<op>.duration.micros.m). A histogram
//     function turns them into time series: the bins of one histogram
//     series that start in a bucket (several with a coarse step) are
//     merged, and percentile(p, ...) / median(...) take the quantile of the
//     merged t-digest (compression 100, centroids added in value order so
//     the answer does not depend on storage order; with few centroids they
//     are kept as they are and the quantile interpolates between centroid
//     centres), count(...) the number of values, sum(...) their sum
//     (centroid mean × count), avg(...) sum/count, min(...) and max(...)
//     the smallest and largest centroid mean. With group tags the
//     histograms of a group are merged first (Wavefront's merge()), so
//     percentile(95, hs(m.m), service) is the 95th percentile of every
//     value of the service. sum(count(hs(...))) etc. then aggregate the
//     resulting series as usual.
//   - mavg(w, x): mean of the non-empty buckets in the trailing window w.
//   - last([w,] x): fills empty buckets with the last value, for up to w.
//   - default([w,] v, x): fills empty buckets with v; with w only up to w
//     after a value, without w everywhere. Series that do not exist stay
//     absent: use x.orElse(v) for "0 when there is no data at all".
//   - align(i, [summarizer,] x): one point per i-aligned interval, at its
//     first bucket, summarising the bucket values (mean by default); an
//     interval at or below Step leaves x unchanged.
//   - Arithmetic: a constant applies to every series; between two series
//     sets, a side with a single series applies to every series of the other,
//     otherwise series pair up on identical source and tags and unmatched
//     ones are dropped. A bucket empty on either side, or x/0, has no point.
//     time() is the bucket start in epoch seconds. A constant-only query
//     yields one series with the constant in every bucket.
//
// Eval streams: the store hands over one series at a time in a reused
// buffer, a series flows through element-wise functions one at a time,
// aggregations keep one accumulator per group, and only both sides of a
// series-by-series operation are materialised; those two sides are read
// concurrently.
package wql
