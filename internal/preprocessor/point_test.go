package preprocessor

import (
	"strconv"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// mkPoint builds a point from "name source k=v ...".
func mkPoint(s string) *wavefront.Point {
	f := strings.Fields(s)
	pt := &wavefront.Point{Name: []byte(f[0]), Source: []byte(f[1]), Value: 1}
	for _, kv := range f[2:] {
		k, v, _ := strings.Cut(kv, "=")
		if k == "$value" {
			pt.Value, _ = strconv.ParseFloat(v, 64)
			continue
		}
		pt.Tags = append(pt.Tags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
	}
	return pt
}

func fmtPoint(pt *wavefront.Point) string {
	var b strings.Builder
	b.WriteString(string(pt.Name) + " " + string(pt.Source))
	for _, t := range pt.Tags {
		b.WriteString(" " + string(t.Key) + "=" + string(t.Value))
	}
	return b.String()
}

func mustParse(t testing.TB, yml string) *Rules {
	t.Helper()
	r, err := Parse([]byte(yml), "rules.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func TestPointActions(t *testing.T) {
	tests := []struct {
		name  string
		rules string // rules for port 2878, indented as list items
		in    string
		want  string // "" when blocked
	}{
		{"replaceRegex metricName find-all", `
- {rule: r, action: replaceRegex, scope: metricName, search: "_", replace: "."}`,
			"istio_requests_total h", "istio.requests.total h"},
		{"replaceRegex group ref", `
- {rule: r, action: replaceRegex, scope: metricName, search: "^istio_(.*)$", replace: "mesh.$1"}`,
			"istio_requests_total h", "mesh.requests_total h"},
		{"replaceRegex named group and escaped dollar", `
- {rule: r, action: replaceRegex, scope: metricName, search: "(?P<x>a)", replace: "\\$${x}"}`,
			"cat h", "c$at h"},
		{"replaceRegex match is full match", `
- {rule: r, action: replaceRegex, scope: metricName, match: "istio", search: "istio", replace: "x"}`,
			"istio_requests h", "istio_requests h"},
		{"replaceRegex match passes", `
- {rule: r, action: replaceRegex, scope: metricName, match: "istio.*", search: "istio", replace: "x"}`,
			"istio_requests h", "x_requests h"},
		{"replaceRegex iterations", `
- {rule: r, action: replaceRegex, scope: metricName, search: "aa", replace: "a", iterations: 3}`,
			"aaaaaaaaa h", "aa h"},
		{"replaceRegex one iteration by default", `
- {rule: r, action: replaceRegex, scope: metricName, search: "aa", replace: "a"}`,
			"aaaaaaaaa h", "aaaaa h"},
		{"replaceRegex templates", `
- {rule: r, action: replaceRegex, scope: metricName, search: "^", replace: "{{sourceName}}.{{env}}.{{nope}}."}`,
			"cpu h env=prod", "h.prod.{{nope}}.cpu h env=prod"},
		{"replaceRegex tag", `
- {rule: r, action: replaceRegex, scope: response_code, search: "^5\\d\\d$", replace: "5xx"}`,
			"m h response_code=503 x=503", "m h response_code=5xx x=503"},
		{"replaceRegex source", `
- {rule: r, action: replaceRegex, scope: sourceName, search: "\\.svc\\.cluster\\.local$", replace: ""}`,
			"m web.default.svc.cluster.local", "m web.default"},
		{"forceLowercase", `
- {rule: r, action: forceLowercase, scope: metricName}`,
			"Istio_Requests h", "istio_requests h"},
		{"forceLowercase unicode", `
- {rule: r, action: forceLowercase, scope: app}`,
			"m h app=ÄBC", "m h app=äbc"},
		{"forceLowercase match", `
- {rule: r, action: forceLowercase, scope: sourceName, match: "WEB.*"}`,
			"m DB-1", "m DB-1"},
		{"block metricName", `
- {rule: r, action: block, scope: metricName, match: "envoy_.*"}`,
			"envoy_cluster_upstream h", ""},
		{"block needs full match", `
- {rule: r, action: blacklistRegex, scope: metricName, match: "envoy"}`,
			"envoy_cluster_upstream h", "envoy_cluster_upstream h"},
		{"block on absent tag keeps", `
- {rule: r, action: block, scope: env, match: "dev"}`,
			"m h", "m h"},
		{"allow on absent tag blocks", `
- {rule: r, action: allow, scope: env, match: "prod"}`,
			"m h", ""},
		{"allow conjunction passes", `
- {rule: a, action: allow, scope: metricName, match: "istio_.*"}
- {rule: b, action: whitelistRegex, scope: sourceName, match: "web-\\d+"}`,
			"istio_x web-1", "istio_x web-1"},
		{"allow conjunction fails on second", `
- {rule: a, action: allow, scope: metricName, match: "istio_.*"}
- {rule: b, action: allow, scope: sourceName, match: "web-\\d+"}`,
			"istio_x db-1", ""},
		{"block sees transformed point regardless of order", `
- {rule: b, action: block, scope: metricName, match: "old.*"}
- {rule: r, action: replaceRegex, scope: metricName, search: "^old", replace: "new"}`,
			"old.cpu h", "new.cpu h"},
		{"addTag overwrites", `
- {rule: r, action: addTag, tag: env, value: "{{sourceName}}-prod"}`,
			"m h env=dev", "m h env=h-prod"},
		{"addTag appends", `
- {rule: r, action: addTag, tag: env, value: prod}`,
			"m h a=1", "m h a=1 env=prod"},
		{"addTagIfNotExists keeps", `
- {rule: r, action: addTagIfNotExists, tag: env, value: prod}`,
			"m h env=dev", "m h env=dev"},
		{"dropTag key regex", `
- {rule: r, action: dropTag, tag: "(source|destination)_canonical_revision"}`,
			"m h source_canonical_revision=v1 app=a destination_canonical_revision=v2", "m h app=a"},
		{"dropTag key is full match", `
- {rule: r, action: dropTag, tag: "canonical"}`,
			"m h source_canonical_revision=v1", "m h source_canonical_revision=v1"},
		{"dropTag value match", `
- {rule: r, action: dropTag, tag: "reporter", match: "source"}`,
			"m h reporter=destination", "m h reporter=destination"},
		{"renameTag", `
- {rule: r, action: renameTag, tag: app, newtag: application}`,
			"m h app=a", "m h application=a"},
		{"renameTag replaces existing", `
- {rule: r, action: renameTag, tag: app, newtag: application}`,
			"m h application=old app=a", "m h application=a"},
		{"renameTag match", `
- {rule: r, action: renameTag, tag: app, newtag: application, match: "x.*"}`,
			"m h app=a", "m h app=a"},
		{"extractTag", `
- rule: r
  action: extractTag
  tag: service
  source: metricName
  search: "^svc\\.([^.]+)\\..*$"
  replace: "$1"`,
			"svc.cart.latency h", "svc.cart.latency h service=cart"},
		{"extractTag replaceSource", `
- rule: r
  action: extractTag
  tag: service
  source: metricName
  search: "^svc\\.([^.]+)\\.(.*)$"
  replace: "$1"
  replaceSource: "svc.$2"`,
			"svc.cart.latency h", "svc.latency h service=cart"},
		{"extractTag from tag", `
- {rule: r, action: extractTag, tag: ns, source: dst, search: "^[^.]+\\.([^.]+)$", replace: "$1"}`,
			"m h dst=web.prod", "m h dst=web.prod ns=prod"},
		{"extractTag no find", `
- {rule: r, action: extractTag, tag: ns, source: metricName, search: "zzz", replace: "$0"}`,
			"m h", "m h"},
		{"extractTagIfNotExists", `
- {rule: r, action: extractTagIfNotExists, tag: ns, source: metricName, search: ".*", replace: "x"}`,
			"m h ns=a", "m h ns=a"},
		{"limitLength truncate", `
- {rule: r, action: limitLength, scope: metricName, actionSubtype: truncate, maxLength: 4}`,
			"abcdefg h", "abcd h"},
		{"limitLength ellipsis runes", `
- {rule: r, action: limitLength, scope: path, actionSubtype: truncateWithEllipsis, maxLength: 5}`,
			"m h path=ääääääää", "m h path=ää..."},
		{"limitLength drop tag", `
- {rule: r, action: limitLength, scope: path, actionSubtype: drop, maxLength: 3}`,
			"m h path=/long a=b", "m h a=b"},
		{"limitLength short", `
- {rule: r, action: limitLength, scope: path, actionSubtype: drop, maxLength: 3}`,
			"m h path=/ab", "m h path=/ab"},
		{"count changes nothing", `
- {rule: r, action: count, if: "{{env}} = 'prod'"}`,
			"m h env=prod", "m h env=prod"},
		{"if gates transform", `
- {rule: r, action: addTag, tag: big, value: "yes", if: "$value > 100 and not ({{metricName}} startsWith 'x')"}`,
			"m h $value=150", "m h big=yes"},
		{"if false skips", `
- {rule: r, action: addTag, tag: big, value: "yes", if: "$value > 100"}`,
			"m h $value=50", "m h"},
		{"block with if only", `
- {rule: r, action: block, if: "{{reporter}} equals 'source' or {{metricName}} matches 'envoy_.*'"}`,
			"m h reporter=source", ""},
		{"allow with if only", `
- {rule: r, action: allow, if: "{{env}} = 'prod'"}`,
			"m h env=dev", ""},
		{"block with scope and if both needed", `
- {rule: r, action: block, scope: metricName, match: "m", if: "{{env}} = 'dev'"}`,
			"m h env=prod", "m h env=prod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, "'2878':"+strings.ReplaceAll(tc.rules, "\n", "\n  ")+"\n")
			pt := mkPoint(tc.in)
			orig := fmtPoint(pt)
			origName, origTags := pt.Name, pt.Tags
			res, _ := r.ForPort("2878").Point(pt, new(Scratch))
			got := fmtPoint(pt)
			if res != Keep {
				got = ""
			}
			if got != tc.want {
				t.Errorf("got %q (%v), want %q", got, res, tc.want)
			}
			// The caller's name bytes and tag array are never written.
			if string(origName) != strings.Fields(orig)[0] {
				t.Errorf("input name mutated: %q", origName)
			}
			if fmtPoint(&wavefront.Point{Name: origName, Source: []byte(strings.Fields(orig)[1]), Tags: origTags}) != orig {
				t.Errorf("input tags mutated")
			}
		})
	}
}

func TestPointLineRules(t *testing.T) {
	r := mustParse(t, `
'2878':
  - {rule: fix, action: replaceRegex, scope: pointLine, search: "^old\\.", replace: "new."}
  - {rule: nodbg, action: block, scope: pointLine, match: ".*debug=true.*"}
  - {rule: onlycpu, action: allow, scope: inputText, match: "new\\..*"}
`)
	p := r.ForPort("2878")
	scratch := make([]byte, 0, 64)
	line := []byte("old.cpu 1 source=a")
	out := p.TransformLine(line, scratch)
	if string(out) != "new.cpu 1 source=a" || string(line) != "old.cpu 1 source=a" {
		t.Fatalf("TransformLine: %q (input %q)", out, line)
	}
	if res, _ := p.LineFilter(out); res != Keep {
		t.Errorf("LineFilter(%q) = %v", out, res)
	}
	for _, l := range []string{"new.cpu 1 debug=true", "other 1"} {
		if res, _ := p.LineFilter([]byte(l)); res != Block {
			t.Errorf("LineFilter(%q) = %v, want block", l, res)
		}
	}
	if got := p.TransformLine([]byte("x 1"), nil); string(got) != "x 1" {
		t.Errorf("unchanged line: %q", got)
	}
	// Object-level entry points ignore line rules.
	pt := mkPoint("old.cpu h")
	if res, _ := p.Point(pt, nil); res != Keep || string(pt.Name) != "old.cpu" {
		t.Errorf("Point ran a line rule")
	}
}

func TestPortsAndGlobal(t *testing.T) {
	r := mustParse(t, `
'2878, 9411':
  - {rule: a, action: addTag, tag: order, value: "port"}
'2879':
  - {rule: a, action: block, scope: metricName, match: ".*"}
global:
  - {rule: g, action: replaceRegex, scope: order, search: "$", replace: "+global"}
  - {rule: p, action: addTagIfNotExists, tag: order, value: "global-only"}
`)
	for port, want := range map[string]string{
		"2878": "m h order=port+global",
		"9411": "m h order=port+global",
		"4242": "m h order=global-only",
	} {
		pt := mkPoint("m h")
		if res, _ := r.ForPort(port).Point(pt, new(Scratch)); res != Keep || fmtPoint(pt) != want {
			t.Errorf("port %s: %v %q, want %q", port, res, fmtPoint(pt), want)
		}
	}
	if res, _ := r.ForPort("2879").Point(mkPoint("m h"), nil); res != Block {
		t.Errorf("2879 not blocked")
	}
	if a, b := r.ForPort("4242"), r.ForPort("4242"); a != b {
		t.Errorf("ForPort not stable for unlisted port")
	}
	var nilRules *Rules
	p := nilRules.ForPort("2878")
	if !p.Empty() {
		t.Errorf("nil rules not empty")
	}
	if res, _ := p.Point(mkPoint("m h"), nil); res != Keep {
		t.Errorf("nil PortRules blocked")
	}
	if !mustParse(t, "").ForPort("1").Empty() || !mustParse(t, "'1':\nglobal: []\n").ForPort("1").Empty() {
		t.Errorf("empty files")
	}
}

func TestStats(t *testing.T) {
	r := mustParse(t, `
'2878':
  - {rule: drop-envoy, action: block, scope: metricName, match: "envoy_.*"}
  - {rule: env, action: addTagIfNotExists, tag: env, value: prod}
  - {rule: cnt, action: count, scope: env, match: "dev"}
  - {rule: only-web, action: allow, scope: sourceName, match: "web.*"}
`)
	p := r.ForPort("2878")
	s := new(Scratch)
	for _, in := range []string{"envoy_x web", "m web env=dev", "m db", "m web"} {
		p.Point(mkPoint(in), s)
	}
	got := map[string][2]int64{}
	for _, st := range r.Stats() {
		got[st.Rule] = [2]int64{st.Checked, st.Count}
	}
	want := map[string][2]int64{
		"env":        {4, 3},
		"cnt":        {4, 1},
		"drop-envoy": {4, 1},
		"only-web":   {3, 1},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: checked,count = %v, want %v", k, got[k], w)
		}
	}
}
