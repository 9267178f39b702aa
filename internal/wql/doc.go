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
//	           | "mavg" "(" duration "," expr ")"
//	           | "last" "(" [ duration "," ] expr ")"
//	           | "default" "(" [ duration "," ] signed "," expr ")"
//	           | "align" "(" duration "," [ summarizer "," ] expr ")" .
//	aggregate  = "sum" | "avg" | "min" | "max" | "count"
//	           | "rawsum" | "rawavg" | "rawmin" | "rawmax" | "rawcount" .
//	summarizer = "mean" | "sum" | "min" | "max" | "count" | "first" | "last" .
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
// unknown variable is an error at its "${". Anything else (other functions,
// comparison operators, hs(), 1vw/1bw windows) is an *Error at the offending
// position.
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
// Eval streams: a series flows through element-wise functions one at a
// time, aggregations keep one accumulator per group, and only both sides of
// a series-by-series operation are materialised.
package wql
