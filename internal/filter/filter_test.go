package filter

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/glob"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// tags builds tags from alternating keys and values.
func tags(kv ...string) []wavefront.Tag {
	out := make([]wavefront.Tag, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, wavefront.Tag{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

func tagString(ts []wavefront.Tag) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.Write(t.Key)
		b.WriteByte('=')
		b.Write(t.Value)
	}
	return b.String()
}

func mustNew(t *testing.T, c Config) *Filter {
	t.Helper()
	f, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return f
}

// TestWorkedExamples covers every row of collector.md §4.5.
func TestWorkedExamples(t *testing.T) {
	tagAllow := Config{MetricTagAllowList: map[string][]string{"env": {"prod*"}, "team": {"core"}}}
	tagDeny := Config{MetricTagDenyList: map[string][]string{"response_code": {"5*"}}}
	for _, tc := range []struct {
		name   string
		c      Config
		metric string
		tags   []wavefront.Tag
		keep   bool
		after  string // tags after FilterTags, when checked
	}{
		{"allow suffix", Config{MetricAllowList: []string{"app.*.count"}}, "app.latency.seconds.count", nil, true, ""},
		{"allow anchored", Config{MetricAllowList: []string{"app.*.count"}}, "app.latency.seconds.count.value", nil, false, ""},
		{"deny bucket", Config{MetricDenyList: []string{"*.bucket.value"}}, "x.bucket.value", tags("le", "5"), false, ""},
		{"tagAllow one key", tagAllow, "m", tags("team", "core"), true, ""},
		{"tagAllow wrong value", tagAllow, "m", tags("env", "dev"), false, ""},
		{"tagAllow no tags", tagAllow, "m", nil, false, ""},
		{"tagDeny 503", tagDeny, "m", tags("response_code", "503"), false, ""},
		{"tagDeny 200", tagDeny, "m", tags("response_code", "200"), true, ""},
		{"tagDeny absent", tagDeny, "m", tags("pod", "p"), true, ""},
		{"tagDeny any value", Config{MetricTagDenyList: map[string][]string{"destination_principal": {"*"}}}, "m",
			tags("a", "b", "destination_principal", "spiffe://x"), false, ""},
		{"tagInclude", Config{TagInclude: []string{"le", "app*"}}, "m", tags("le", "1", "app", "x", "pod", "p"), true, "le=1 app=x"},
		{"tagExclude guarantee", Config{TagExclude: []string{"label.*"}, TagGuaranteeList: []string{"label.app"}}, "m",
			tags("label.app", "a", "label.tier", "b", "pod", "p"), true, "label.app=a pod=p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustNew(t, tc.c)
			if got := f.Keep([]byte(tc.metric), tc.tags); got != tc.keep {
				t.Errorf("Keep(%q, %s) = %v, want %v", tc.metric, tagString(tc.tags), got, tc.keep)
			}
			if tc.after != "" {
				if got := tagString(f.FilterTags(tc.tags)); got != tc.after {
					t.Errorf("FilterTags = %q, want %q", got, tc.after)
				}
			}
		})
	}
}

// TestBadPatternIsError is the last row of §4.5: the reference silently
// disables the list; we reject it naming the pattern and its index.
func TestBadPatternIsError(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{MetricAllowList: []string{"istio.*", "[bad"}}, `metricAllowList[1]: pattern "[bad"`},
		{Config{MetricDenyList: []string{"[a"}}, `metricDenyList[0]: pattern "[a"`},
		{Config{MetricTagAllowList: map[string][]string{"env": {"ok", "[x"}}}, `metricTagAllowList.env[1]: pattern "[x"`},
		{Config{MetricTagDenyList: map[string][]string{"env": {"[x"}}}, `metricTagDenyList.env[0]`},
		{Config{TagInclude: []string{"[!"}}, `tagInclude[0]`},
		{Config{TagExclude: []string{"a", "b", "[c-"}}, `tagExclude[2]`},
	} {
		f, err := New(tc.c)
		var pe *PatternError
		if f != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, %v; want PatternError containing %q", tc.c, f, err, tc.want)
		}
	}
}

// TestTrailingBackslash: `a\` compiles alone (the dangling escape is
// dropped), but in a list it escapes the joining character, as in the
// reference: ['x', 'a\'] becomes `{x,a\}`, i.e. x or the literal `a}`.
func TestTrailingBackslash(t *testing.T) {
	single := mustNew(t, Config{MetricAllowList: []string{`a\`}})
	list := mustNew(t, Config{MetricAllowList: []string{"x", `a\`}})
	for _, tc := range []struct {
		f    *Filter
		name string
		keep bool
	}{
		{single, "a", true},
		{list, "a", false},
		{list, "a}", true},
		{list, "x", true},
	} {
		if got := tc.f.Keep([]byte(tc.name), nil); got != tc.keep {
			t.Errorf("Keep(%q) = %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// TestGlobSemantics pins gobwas/glob v0.2.3 behaviour that §4.2 relies on.
func TestGlobSemantics(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		name     string
		match    bool
	}{
		{[]string{"istio.*"}, "istio.requests.total.value", true},
		{[]string{"istio.request.*"}, "istio.requests.total.value", false},
		{[]string{"istio.requests.*", "istio.request.*"}, "istio.requests.total.value", true},
		{[]string{"istio.requests.*", "istio.request.*"}, "istio.request.bytes.bucket.value", true},
		{[]string{"pilot.xds.*.reject.value"}, "pilot.xds.cds.reject.value", true},
		{[]string{"pilot.xds.*.reject.value"}, "pilot.xds.a.b.reject.value", true},
		// v0.2.3 quirk: prefix and suffix may share the dot, so `*` can
		// match "less than nothing".
		{[]string{"pilot.xds.*.reject.value"}, "pilot.xds.reject.value", true},
		{[]string{"pilot.xds.*.reject.value"}, "pilot.xdsreject.value", false},
		{[]string{"foo"}, "foo", true},
		{[]string{"foo"}, "foobar", false},
		{[]string{"foo"}, "xfoo", false},
		{[]string{"foo*"}, "foo", true},
		{[]string{"foo*"}, "foobar", true},
		{[]string{"*"}, "", true},
		{[]string{""}, "", true},
		{[]string{""}, "a", false},
		{[]string{"a?c"}, "abc", true},
		{[]string{"a?c"}, "ac", false},
		{[]string{"a?c"}, "a.c", true},
		{[]string{"a?c"}, "aébc", false},
		{[]string{"?"}, "é", true},      // ? is one rune...
		{[]string{"a?c"}, "aéc", false}, // ...but a fixed-length row compares byte length (v0.2.3 quirk)
		{[]string{"a*c"}, "aéc", true},
		{[]string{"[abc]x"}, "bx", true},
		{[]string{"[a-c]x"}, "cx", true},
		{[]string{"[a-c]x"}, "dx", false},
		{[]string{"[!a-c]x"}, "dx", true},
		{[]string{"[!a-c]x"}, "ax", false},
		{[]string{"{x,y}.z"}, "y.z", true},
		{[]string{"{x,y}.z"}, "w.z", false},
		{[]string{`a\*b`}, "a*b", true},
		{[]string{`a\*b`}, "axb", false},
		{[]string{`\[x\]`}, "[x]", true},
		{[]string{`a\,b`, "c"}, "a,b", true},
		{[]string{`a\,b`, "c"}, "a", false},
		// Commas: literal in a lone pattern, alternatives inside a list.
		{[]string{"a,b"}, "a,b", true},
		{[]string{"a,b"}, "a", false},
		{[]string{"a,b", "c"}, "a", true},
		{[]string{"a,b", "c"}, "b", true},
		{[]string{"a,b", "c"}, "a,b", false},
		{[]string{"a,b", "c"}, "c", true},
		// A lone `}` is literal text outside braces, and an unclosed `{`
		// is accepted by v0.2.3.
		{[]string{"a}"}, "a}", true},
		{[]string{"{a"}, "a", true},
		{[]string{"{a"}, "{a", false},
		{[]string{"{a,b"}, "b", true},
		// Nested alternation inside a list.
		{[]string{"{x,y}.z", "w"}, "x.z", true},
		{[]string{"{x,y}.z", "w"}, "w", true},
		{[]string{"{x,y}.z", "w"}, "x", false},
		{[]string{"label?pod?template*"}, "label.pod-template-hash", true},
	} {
		f := mustNew(t, Config{MetricAllowList: tc.patterns})
		if got := f.Keep([]byte(tc.name), nil); got != tc.match {
			t.Errorf("allow %q, name %q: Keep = %v, want %v", tc.patterns, tc.name, got, tc.match)
		}
		f = mustNew(t, Config{MetricDenyList: tc.patterns})
		if got := f.Keep([]byte(tc.name), nil); got == tc.match {
			t.Errorf("deny %q, name %q: Keep = %v, want %v", tc.patterns, tc.name, got, !tc.match)
		}
	}
}

// TestAlternativesMatchCombined proves that matching a list as the OR of its
// top-level alternatives gives the same answers as gobwas's compiled
// `{p1,p2,...}` (what the reference runs); FuzzGlobList extends this.
func TestAlternativesMatchCombined(t *testing.T) {
	names := []string{
		"", "a", "a,b", "istio.requests.total.value", "istio.request.bytes.bucket.value",
		"pilot.xds.cds.reject.value", "pilot.xds.reject.value", "pilot.conflict.inbound.listener.value",
		"label.pod-template-hash", "label.controller-revision-hash", "annotation_x", "go.goroutines.value",
		"sidecar.injection.requests.total.value", "x.bucket.value", "é", "aéc",
	}
	lists := [][]string{
		seedConfig.MetricAllowList,
		seedConfig.TagExclude,
		{"a,b", "c"},
		{"*.bucket.value", "*.count"},
		{"a?c", "[!x]*", "{a,b}*"},
		{"x", `a\`},
		{"{a", "b}"},
	}
	for _, l := range lists {
		f := mustNew(t, Config{MetricAllowList: l})
		ref := glob.MustCompile("{" + strings.Join(l, ",") + "}")
		for _, n := range names {
			if got, want := f.Keep([]byte(n), nil), ref.Match(n); got != want {
				t.Errorf("list %q, name %q: Keep = %v, combined glob = %v", l, n, got, want)
			}
		}
	}
}

// TestCombinedGlobQuirk pins where we deliberately differ from the
// reference: gobwas v0.2.3 factors `{*.count,.count}` into a fixed-length row
// that matches nothing, while the list means "*.count or .count".
func TestCombinedGlobQuirk(t *testing.T) {
	ref := glob.MustCompile("{*.count,.count}")
	f := mustNew(t, Config{MetricAllowList: []string{"*.count", ".count"}})
	for _, n := range []string{".count", "a.count"} {
		if ref.Match(n) {
			t.Errorf("gobwas quirk gone: combined glob matches %q", n)
		}
		if !f.Keep([]byte(n), nil) {
			t.Errorf("Keep(%q) = false, want true", n)
		}
	}
}

// TestMatcherPanic: v0.2.3 compiles `a{` into a matcher that panics on
// "a"; the filter treats it as no match instead of crashing.
func TestMatcherPanic(t *testing.T) {
	allow := mustNew(t, Config{MetricAllowList: []string{"a{"}})
	if allow.Keep([]byte("a"), nil) {
		t.Error("a panicking allow pattern must not match")
	}
	deny := mustNew(t, Config{MetricDenyList: []string{"z", "a{"}})
	if !deny.Keep([]byte("a"), nil) || deny.Keep([]byte("z"), nil) {
		t.Error("a panicking deny alternative must not match; the others still work")
	}
}

func TestEmptyAndNil(t *testing.T) {
	f, err := New(Config{})
	if f != nil || err != nil {
		t.Fatalf("New(empty) = %v, %v; want nil, nil", f, err)
	}
	ts := tags("a", "b")
	if !f.Keep([]byte("x"), ts) || f.FiltersTags() || len(f.FilterTags(ts)) != 1 {
		t.Fatal("nil filter must keep everything")
	}
	if !(Config{MetricTagAllowList: map[string][]string{}}).Empty() {
		t.Error("empty map should count as empty")
	}
	if (Config{TagGuaranteeList: []string{"a"}}).Empty() {
		t.Error("guarantee list is a list")
	}
	g := mustNew(t, Config{TagGuaranteeList: []string{"a"}})
	if g.FiltersTags() || !g.Keep([]byte("x"), nil) {
		t.Error("guarantee-only filter changes nothing")
	}
}

// TestTagMapEmptyKeys: keys with no patterns are dropped, but the map stays
// "set" (§4.2): an allow map then drops everything, a deny map nothing.
func TestTagMapEmptyKeys(t *testing.T) {
	allow := mustNew(t, Config{MetricTagAllowList: map[string][]string{"env": nil}})
	if allow.Keep([]byte("m"), tags("env", "prod")) {
		t.Error("tag allow map with only empty keys must drop every point")
	}
	deny := mustNew(t, Config{MetricTagDenyList: map[string][]string{"env": {}}})
	if !deny.Keep([]byte("m"), tags("env", "prod")) {
		t.Error("tag deny map with only empty keys must drop nothing")
	}
	mixed := mustNew(t, Config{MetricTagAllowList: map[string][]string{"env": {}, "team": {"core"}}})
	if !mixed.Keep([]byte("m"), tags("team", "core")) || mixed.Keep([]byte("m"), tags("env", "")) {
		t.Error("remaining keys must still work")
	}
}

// TestOrder: allow, then deny, then tag allow, then tag deny (§4.3).
func TestOrder(t *testing.T) {
	f := mustNew(t, Config{
		MetricAllowList:    []string{"istio.*"},
		MetricDenyList:     []string{"istio.build.value"},
		MetricTagAllowList: map[string][]string{"reporter": {"destination"}},
		MetricTagDenyList:  map[string][]string{"response_code": {"5*"}},
	})
	for _, tc := range []struct {
		name string
		tags []wavefront.Tag
		keep bool
	}{
		{"pilot.x", tags("reporter", "destination"), false},
		{"istio.build.value", tags("reporter", "destination"), false},
		{"istio.requests.total.value", tags("reporter", "source"), false},
		{"istio.requests.total.value", tags("reporter", "destination", "response_code", "503"), false},
		{"istio.requests.total.value", tags("reporter", "destination", "response_code", "200"), true},
	} {
		if got := f.Keep([]byte(tc.name), tc.tags); got != tc.keep {
			t.Errorf("Keep(%q, %s) = %v, want %v", tc.name, tagString(tc.tags), got, tc.keep)
		}
	}
}

func TestFilterTagsInPlace(t *testing.T) {
	f := mustNew(t, Config{TagExclude: []string{"pod", "label?pod?template*"}})
	ts := tags("pod", "p", "app", "a", "label.pod-template-hash", "h", "ns", "n")
	out := f.FilterTags(ts)
	if got := tagString(out); got != "app=a ns=n" {
		t.Fatalf("FilterTags = %q", got)
	}
	if &out[0] != &ts[0] {
		t.Error("FilterTags must reuse the input array")
	}
	if ts[2].Key != nil || ts[3].Key != nil {
		t.Error("tail must be cleared")
	}
}

func TestConcurrentUse(t *testing.T) {
	f := mustNew(t, seedConfig)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				ts := tags("destination_principal", "x", "app", "a")
				if f.Keep([]byte("istio.requests.total.value"), ts) {
					t.Error("destination_principal must be denied")
					return
				}
				if !f.Keep([]byte("pilot.xds.cds.reject.value"), ts[1:]) {
					t.Error("pilot.xds.cds.reject.value must pass")
					return
				}
				f.FilterTags(ts)
			}
		})
	}
	wg.Wait()
}

// seedConfig is the Istio source filter of the integration's seed config,
// plus tag filters so FilterTags has work to do.
var seedConfig = Config{
	MetricAllowList: []string{
		"istio.requests.*", "istio.request.*", "istio.response.*", "istio.tcp.*",
		"go.goroutines.value", "go.memstats.alloc.bytes.value", "go.memstats.heap.alloc.bytes.value",
		"go.memstats.heap.inuse.bytes.value", "go.memstats.heap.sys.bytes.value",
		"go.memstats.stack.inuse.bytes.value", "istio.build.value", "pilot.conflict.*.listener.*",
		"pilot.proxy.convergence.time.bucket.value", "pilot.services.value",
		"pilot.total.xds.internal.errors.value", "pilot.total.xds.rejects.value", "pilot.virt.services.value",
		"pilot.xds.*.reject.value", "pilot.xds.push.context.errors.value", "pilot.xds.pushes.value",
		"pilot.xds.write.timeout.value", "pilot.xds.value", "process.cpu.seconds.total.value",
		"process.resident.memory.bytes.value", "process.virtual.memory.bytes.value",
		"citadel.server.*", "galley.validation.*", "sidecar.*",
	},
	MetricTagDenyList: map[string][]string{"destination_principal": {"*"}},
	TagExclude:        []string{"label?controller?revision*", "label?pod?template*", "annotation_*"},
	TagGuaranteeList:  []string{"label.pod-template-hash"},
}

func BenchmarkKeep(b *testing.B) {
	f, err := New(seedConfig)
	if err != nil {
		b.Fatal(err)
	}
	names := [][]byte{
		[]byte("istio.requests.total.value"),
		[]byte("istio.request.duration.milliseconds.bucket.value"),
		[]byte("pilot.conflict.outbound.listener.tcp.over.current.http.value"),
		[]byte("pilot.xds.cds.reject.value"),
		[]byte("envoy.cluster.upstream.cx.total.value"),
		[]byte("process.virtual.memory.bytes.value"),
	}
	ts := tags("reporter", "destination", "source_workload", "productpage-v1",
		"destination_workload", "reviews-v1", "response_code", "200", "le", "+Inf")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Keep(names[i%len(names)], ts)
	}
}

func BenchmarkFilterTags(b *testing.B) {
	f, err := New(seedConfig)
	if err != nil {
		b.Fatal(err)
	}
	src := tags("app", "reviews", "label.pod-template-hash", "5d9", "label.controller-revision-hash", "x",
		"annotation_kubectl_kubernetes_io_last_applied_configuration", "{}", "pod", "reviews-v1-1", "namespace", "bookinfo")
	ts := make([]wavefront.Tag, len(src))
	b.ReportAllocs()
	for b.Loop() {
		copy(ts, src)
		if n := len(f.FilterTags(ts)); n != 4 {
			b.Fatalf("kept %d tags, want 4", n)
		}
	}
}

// TestZeroAllocs guards the allocation-free promise outside benchmarks.
func TestZeroAllocs(t *testing.T) {
	f := mustNew(t, seedConfig)
	names := [][]byte{
		[]byte("istio.requests.total.value"),
		[]byte("pilot.conflict.outbound.listener.tcp.over.current.http.value"),
		[]byte("pilot.xds.a.b.reject.value"),
		[]byte("envoy.cluster.upstream.cx.total.value"),
	}
	ts := tags("reporter", "destination", "label.pod-template-hash", "h", "label.controller-revision-hash", "x")
	buf := make([]wavefront.Tag, len(ts))
	allocs := testing.AllocsPerRun(200, func() {
		for _, n := range names {
			f.Keep(n, ts)
		}
		copy(buf, ts)
		f.FilterTags(buf)
	})
	if allocs != 0 {
		t.Errorf("Keep/FilterTags allocated %v times per run", allocs)
	}
}
