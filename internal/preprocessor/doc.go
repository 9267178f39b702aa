// Package preprocessor implements the proxy's preprocessor rules
// (proxy.md §8): a YAML file mapping ports to rule lists that rewrite,
// filter and count points and spans, reloaded when the file changes.
//
// # File format
//
// The file is a map from a port key to a list of rules. A key is a port
// ('2878'), a comma-separated list ('2878, 9411'), or global, which
// applies to every port after its own rules and must be the last section.
// Each rule has a rule ID (unique per port), an action and action-specific
// keys; an unknown action or key is a load error. Errors name
// file:line, the rule ID and the problem; every problem in the file is
// reported, not only the first.
//
// # Order
//
// As in the reference: pointLine transforms (TransformLine) and then
// pointLine filters (LineFilter) run on the raw line before parsing. On the
// parsed item, all transforming rules run in file order, and then all
// filters (block/allow) in file order; in both, port rules come before
// global rules. So a block rule sees the item as every transformer left it,
// wherever it is in the file.
//
// # Actions
//
// Points: replaceRegex, forceLowercase, block (blacklistRegex), allow
// (whitelistRegex), addTag, addTagIfNotExists, dropTag, renameTag,
// extractTag, extractTagIfNotExists, limitLength, count. Scopes are
// metricName, sourceName, pointLine (alias inputText; replaceRegex, block
// and allow only, without if) or a tag key.
//
// Spans: spanReplaceRegex, spanForceLowercase, spanAddAnnotation
// (spanAddTag) and their IfNotExists forms, spanDropAnnotation
// (spanDropTag), spanAllowAnnotation (spanWhitelistAnnotation,
// spanWhitelistTag), spanExtractAnnotation (spanExtractTag) and its
// IfNotExists form, spanRenameAnnotation (spanRenameTag), spanLimitLength,
// spanCount, spanBlock (spanBlacklistRegex), spanAllow
// (spanWhitelistRegex). Scopes are spanName, sourceName or an annotation
// key; annotation rules act on every annotation with the key unless
// firstMatchOnly is true.
//
// Regex semantics follow Java's: match (and a map value in
// spanAllowAnnotation, and the dropTag key) must match the whole value;
// search is found anywhere and every occurrence is replaced, repeated up to
// iterations times while it still occurs. Replacements use Java syntax ($1,
// ${name}, \$ for a literal $) and {{metricName}} / {{spanName}},
// {{sourceName}} and {{<tag key>}} placeholders, which are expanded first;
// an unknown placeholder is left as written. Patterns are Go RE2 syntax:
// Java-only constructs (lookaround, backreferences, possessive
// quantifiers, \p{Alpha}-style classes) are load errors, and '.' excludes
// only '\n' (Java also excludes '\r' and Unicode line separators).
//
// Every allow rule must match or the item is blocked. block and allow take
// scope plus match, an if expression, or both (both must hold).
//
// # if expressions
//
// Supported grammar (keywords are case-insensitive):
//
//	expr    = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | "(" expr ")" | operand op operand
//	operand = "{{" name "}}" | "$value" | number | 'string' | "string"
//	op      = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "equals" |
//	          "startsWith" | "endsWith" | "contains" | "matches"
//	          (the word operators also with an "IgnoreCase" suffix, except matches)
//
// {{name}} is metricName (spanName for spans), sourceName, or a tag /
// annotation value; a missing tag reads as "" (the reference leaves the
// placeholder text). The symbolic operators compare numerically when
// either side is a number or $value (an operand that does not parse as a
// number makes the comparison false), and byte-wise as strings otherwise.
// matches takes a quoted regex and is a full match. $value is a point's
// value and is a load error in span rules. Syntax errors are load errors
// with the column. Not supported from the reference's language: the in
// operator, any/all/none list forms, arithmetic, functions, string
// templates inside quotes, and the YAML-map form of if.
//
// # Not supported
//
// metricsFilter, the log* rules, backend-supplied rules and the legacy
// --allowRegex/--blockRegex flags (the proxy can express them as pointLine
// rules). Lengths in limitLength are runes, not UTF-16 units.
//
// # Memory
//
// Items' byte slices may alias the caller's buffers and are never written.
// A rule that changes a name, source or tag writes the new bytes into the
// Scratch passed to Point or Span (and copies the tag slice there before
// changing it), so the item's slices are valid until the next call with
// the same Scratch. When nothing changes, Point and Span do not allocate.
//
// # Counters
//
// PortRules.Stats and Rules.Stats report per rule and port the
// reference's preprocessor.<rule>.checked-count, .count and .cpu_nanos.
// CPU time is sampled on one item in 64 per Scratch and scaled. Counters
// belong to one parsed file: after a reload they start from zero, so an
// exporter should treat them like a restarted process's counters.
package preprocessor
