package preprocessor

import (
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// envoySpan is shaped like a span the Zipkin port builds from Envoy.
func envoySpan() *wavefront.Span {
	sp := &wavefront.Span{
		Name:   []byte("productpage.default.svc.cluster.local:9080/productpage"),
		Source: []byte("productpage-v1-7d9b"),
		SpanID: []byte("00000000-0000-0000-1111-222222222222"), TraceID: []byte("00000000-0000-0000-3333-444444444444"),
		StartMillis: 1712000000500, DurationMillis: 25,
	}
	for _, kv := range []string{
		"application=istio", "service=productpage", "cluster=none", "shard=none",
		"node_id=sidecar~10.1.2.3~productpage-v1-7d9b.default~default.svc.cluster.local",
		"guid-x-request-id=4a6f", "http.method=GET", "http.status_code=200",
		"parent=aaaa", "parent=bbbb", "upstream_cluster=inbound|9080||",
	} {
		k, v, _ := strings.Cut(kv, "=")
		sp.Tags = append(sp.Tags, wavefront.Tag{Key: []byte(k), Value: []byte(v)})
	}
	return sp
}

func fmtSpan(sp *wavefront.Span) string {
	var b strings.Builder
	b.WriteString(string(sp.Name) + " " + string(sp.Source))
	for _, t := range sp.Tags {
		b.WriteString(" " + string(t.Key) + "=" + string(t.Value))
	}
	return b.String()
}

func TestSpanActions(t *testing.T) {
	base := fmtSpan(envoySpan())
	tests := []struct {
		name, rules string
		want        func(string) string // from the formatted input; nil: blocked
	}{
		{"rename guid-x-request-id", `
- {rule: r, action: spanRenameAnnotation, key: guid-x-request-id, newkey: request_id}`,
			func(s string) string { return strings.Replace(s, "guid-x-request-id=", "request_id=", 1) }},
		{"drop node_id", `
- {rule: r, action: spanDropAnnotation, key: "node_id|upstream_cluster"}`,
			func(s string) string {
				s = strings.Replace(s, " node_id=sidecar~10.1.2.3~productpage-v1-7d9b.default~default.svc.cluster.local", "", 1)
				return strings.Replace(s, " upstream_cluster=inbound|9080||", "", 1)
			}},
		{"drop parent firstMatchOnly", `
- {rule: r, action: spanDropTag, key: parent, firstMatchOnly: true}`,
			func(s string) string { return strings.Replace(s, " parent=aaaa", "", 1) }},
		{"drop with value match", `
- {rule: r, action: spanDropAnnotation, key: parent, match: "b+"}`,
			func(s string) string { return strings.Replace(s, " parent=bbbb", "", 1) }},
		{"replace span name", `
- {rule: r, action: spanReplaceRegex, scope: spanName, search: "\\.default\\.svc\\.cluster\\.local:\\d+", replace: ""}`,
			func(s string) string { return strings.Replace(s, ".default.svc.cluster.local:9080", "", 1) }},
		{"replace annotation firstMatchOnly", `
- {rule: r, action: spanReplaceRegex, scope: parent, search: ".", replace: "x", firstMatchOnly: true}`,
			func(s string) string { return strings.Replace(s, "parent=aaaa", "parent=xxxx", 1) }},
		{"replace annotation template", `
- {rule: r, action: spanReplaceRegex, scope: http.method, search: "GET", replace: "{{spanName}}-{{service}}"}`,
			func(s string) string {
				return strings.Replace(s, "http.method=GET", "http.method=productpage.default.svc.cluster.local:9080/productpage-productpage", 1)
			}},
		{"lowercase", `
- {rule: r, action: spanForceLowercase, scope: http.method}`,
			func(s string) string { return strings.Replace(s, "http.method=GET", "http.method=get", 1) }},
		{"add appends", `
- {rule: r, action: spanAddAnnotation, key: parent, value: cccc}`,
			func(s string) string { return s + " parent=cccc" }},
		{"add if not exists", `
- {rule: r, action: spanAddTagIfNotExists, key: parent, value: cccc}
- {rule: r2, action: spanAddAnnotationIfNotExists, key: mesh, value: istio}`,
			func(s string) string { return s + " mesh=istio" }},
		{"allow list keeps system tags", `
- {rule: r, action: spanAllowAnnotation, allow: [http.method, parent]}`,
			func(string) string {
				return "productpage.default.svc.cluster.local:9080/productpage productpage-v1-7d9b application=istio service=productpage cluster=none shard=none http.method=GET parent=aaaa parent=bbbb"
			}},
		{"allow map with value regex", `
- rule: r
  action: spanWhitelistTag
  allow:
    http.status_code: "2.."
    parent: "a+"`,
			func(string) string {
				return "productpage.default.svc.cluster.local:9080/productpage productpage-v1-7d9b application=istio service=productpage cluster=none shard=none http.status_code=200 parent=aaaa"
			}},
		{"extract annotation", `
- {rule: r, action: spanExtractAnnotation, key: namespace, input: node_id, search: "^.*~[^.]+\\.([^~]+)~.*$", replace: "$1"}`,
			func(s string) string { return s + " namespace=default" }},
		{"extract with replaceInput", `
- {rule: r, action: spanExtractTag, key: port, input: spanName, search: "^([^:]+):(\\d+)(.*)$", replace: "$2", replaceInput: "$1$3"}`,
			func(s string) string {
				return strings.Replace(s, ":9080", "", 1) + " port=9080"
			}},
		{"extract if not exists", `
- {rule: r, action: spanExtractAnnotationIfNotExists, key: service, input: spanName, search: "^([^.]+).*", replace: "$1"}`,
			func(s string) string { return s }},
		{"limit span name", `
- {rule: r, action: spanLimitLength, scope: spanName, actionSubtype: truncateWithEllipsis, maxLength: 14}`,
			func(s string) string {
				return strings.Replace(s, "productpage.default.svc.cluster.local:9080/productpage", "productpage...", 1)
			}},
		{"limit drop annotation", `
- {rule: r, action: spanLimitLength, scope: node_id, actionSubtype: drop, maxLength: 10}`,
			func(s string) string {
				return strings.Replace(s, " node_id=sidecar~10.1.2.3~productpage-v1-7d9b.default~default.svc.cluster.local", "", 1)
			}},
		{"count", `
- {rule: r, action: spanCount, if: "{{http.status_code}} = 200"}`,
			func(s string) string { return s }},
		{"block by annotation", `
- {rule: r, action: spanBlock, scope: http.status_code, match: "2.."}`, nil},
		{"block by if", `
- {rule: r, action: spanBlacklistRegex, if: "{{spanName}} contains '/productpage' and {{sourceName}} startsWith 'product'"}`, nil},
		{"allow by source", `
- {rule: r, action: spanAllow, scope: sourceName, match: "reviews.*"}`, nil},
		{"allow passes", `
- {rule: r, action: spanWhitelistRegex, scope: parent, match: "b+"}`,
			func(s string) string { return s }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, "'9411':"+strings.ReplaceAll(tc.rules, "\n", "\n  ")+"\n")
			sp := envoySpan()
			origTags := sp.Tags
			res, _ := r.ForPort("9411").Span(sp, new(Scratch))
			if tc.want == nil {
				if res != Block {
					t.Errorf("got %v, want block", res)
				}
				return
			}
			if res != Keep {
				t.Fatalf("got %v", res)
			}
			if got, want := fmtSpan(sp), tc.want(base); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if fmtSpan(&wavefront.Span{Name: envoySpan().Name, Source: envoySpan().Source, Tags: origTags}) != base {
				t.Errorf("input annotations mutated")
			}
		})
	}
}
