package preprocessor

import (
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yml string
		want      []string // substrings of the error
	}{
		{"unknown action", `
'2878':
  - rule: r1
    action: frobnicate
`, []string{"rules.yaml:4:", `rule "r1"`, `unknown action "frobnicate"`}},
		{"missing rule ID", `
'2878':
  - action: block
    scope: metricName
    match: x
`, []string{"rules.yaml:3:", `missing "rule"`}},
		{"bad regex", `
'2878':
  - rule: r1
    action: block
    scope: metricName
    match: "a(?=b)"
`, []string{"rules.yaml:6:", `rule "r1"`, "bad regex"}},
		{"unknown key", `
'2878':
  - rule: r1
    action: addTag
    tag: env
    value: prod
    scope: metricName
`, []string{"rules.yaml:7:", `unknown key "scope" for action addTag`}},
		{"missing key", `
'2878':
  - {rule: r1, action: replaceRegex, scope: metricName, search: x}
`, []string{"rules.yaml:3:", `missing "replace"`}},
		{"duplicate ID", `
'2878':
  - {rule: r1, action: count}
  - {rule: r1, action: count}
`, []string{"rules.yaml:4:", "duplicate rule ID"}},
		{"duplicate ID across sections", `
'2878':
  - {rule: r1, action: count}
'2878, 9411':
  - {rule: r1, action: count}
`, []string{"rules.yaml:5:", "duplicate rule ID for port 2878"}},
		{"global not last", `
global:
  - {rule: g, action: count}
'2878':
  - {rule: r1, action: count}
`, []string{"rules.yaml:4:", "global must be the last section"}},
		{"if syntax error", `
'2878':
  - rule: r1
    action: block
    if: "{{metricName}} startsWith 'a' and ("
`, []string{"rules.yaml:5:", `rule "r1"`, "if: column 36: expected an operand"}},
		{"if unknown operator", `
'2878':
  - {rule: r1, action: block, if: "{{a}} like 'x'"}
`, []string{"column 7", `unknown operator "like"`}},
		{"value in span rule", `
'2878':
  - {rule: r1, action: spanBlock, if: "$value > 1"}
`, []string{"$value is not available for spans"}},
		{"if with pointLine", `
'2878':
  - {rule: r1, action: block, scope: pointLine, match: x, if: "{{a}} = 'b'"}
`, []string{"if can't be used with pointLine"}},
		{"pointLine unsupported action", `
'2878':
  - {rule: r1, action: forceLowercase, scope: pointLine}
`, []string{"pointLine scope is only supported"}},
		{"drop on metricName", `
'2878':
  - {rule: r1, action: limitLength, scope: metricName, actionSubtype: drop, maxLength: 3}
`, []string{"drop can only be used with a tag scope"}},
		{"bad group reference", `
'2878':
  - {rule: r1, action: replaceRegex, scope: metricName, search: "(a)", replace: "$2"}
`, []string{"no group 2"}},
		{"not a list", `
'2878': {rule: r1}
`, []string{"rules.yaml:2:", "expected a list of rules"}},
		{"several errors", `
'2878':
  - {rule: r1, action: nope}
  - {rule: r2, action: block, scope: metricName, match: "("}
`, []string{"rules.yaml:3:", "rules.yaml:4:"}},
		{"yaml syntax", "'2878': [\n", []string{"rules.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "rules.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIfExpressions(t *testing.T) {
	pt := mkPoint("istio_requests_total web-1 reporter=source code=503 $value=42")
	tests := []struct {
		expr string
		want bool
	}{
		{"{{metricName}} startsWith 'istio_'", true},
		{"{{metricName}} endsWith '_total'", true},
		{"{{metricName}} contains 'requests'", true},
		{"{{metricName}} equals 'istio_requests_total'", true},
		{"{{metricName}} equalsIgnoreCase 'ISTIO_REQUESTS_TOTAL'", true},
		{"{{metricName}} startsWithIgnoreCase 'ISTIO'", true},
		{"{{metricName}} containsIgnoreCase 'REQ'", true},
		{"{{metricName}} matches 'istio_.*'", true},
		{"{{metricName}} matches 'istio'", false},
		{"{{sourceName}} = 'web-1'", true},
		{"{{sourceName}} != 'web-1'", false},
		{"{{reporter}} = \"source\"", true},
		{"{{missing}} = ''", true},
		{"$value = 42", true},
		{"$value >= 42 and $value <= 42", true},
		{"$value > 42 or $value < 42", false},
		{"{{code}} >= 500", true},
		{"{{reporter}} > 1", false}, // not a number
		{"'b' > 'a'", true},
		{"not {{code}} = 503", false},
		{"not ({{code}} = 503) or ({{reporter}} = 'source' and $value != 0)", true},
		{"({{metricName}} startsWith 'a') and ($value = 0)", false},
		{"{{a}} = '' OR {{b}} = 'x' AND {{c}} = 'y'", true}, // and binds tighter
	}
	for _, tc := range tests {
		c, err := parseCond(tc.expr, false)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got := c.eval(&item{pt: pt}); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{"", "(", "{{a}} =", "{{a}} = 'x' and", "{{a}} = 'x')", "'unterminated", "{{}} = 'a'",
		"{{a}} matches {{b}}", "{{a}} matches '('", "$value startsWith 'a'", "{{a}} = 'b' 'c'", "{{a"} {
		if _, err := parseCond(bad, false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFullMatcher(t *testing.T) {
	tests := []struct {
		pattern string
		kind    matchKind
		yes, no []string
	}{
		{"abc", matchExact, []string{"abc"}, []string{"abcd", "xabc", ""}},
		{"a|bc|d", matchExact, []string{"a", "bc", "d"}, []string{"ab", "b"}},
		{"(source|destination)_rev", matchExact, []string{"source_rev", "destination_rev"}, []string{"source_revx"}},
		{"^envoy_.*$", matchPrefix, []string{"envoy_", "envoy_x"}, []string{"envoy", "xenvoy_", "envoy_\nx"}},
		{".*_bucket", matchSuffix, []string{"a_bucket", "_bucket"}, []string{"a_buckets", "a\nb_bucket"}},
		{".*(foo|bar).*", matchContains, []string{"xfooy", "bar"}, []string{"fo", "foo\n"}},
		{".*", matchSuffix, []string{"", "anything"}, []string{"a\nb"}},
		{"web-\\d+", matchRegexp, []string{"web-12"}, []string{"web-", "web-1x"}},
		{"(?i)abc", matchRegexp, []string{"ABC"}, []string{"abcd"}},
		{"a[bc]", matchExact, []string{"ab", "ac"}, []string{"ad"}},
		{"", matchExact, []string{""}, []string{"a"}},
	}
	for _, tc := range tests {
		m, err := compileFull(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if m.kind != tc.kind {
			t.Errorf("%q: kind %d, want %d", tc.pattern, m.kind, tc.kind)
		}
		for _, s := range tc.yes {
			if !m.match([]byte(s)) || !m.re.MatchString(s) {
				t.Errorf("%q should match %q", tc.pattern, s)
			}
		}
		for _, s := range tc.no {
			if m.match([]byte(s)) || m.re.MatchString(s) {
				t.Errorf("%q should not match %q", tc.pattern, s)
			}
		}
	}
}
