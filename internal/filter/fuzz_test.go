package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/gobwas/glob"
)

// FuzzGlobList checks that a one-pattern list behaves exactly like
// glob.Compile of that pattern (error for error, match for match), and that
// a two-pattern list is rejected when either pattern or the combined
// `{p1,p2}` does not compile, and otherwise matches p1 OR p2 when no comma,
// brace, backslash or NUL lets the patterns interact.
//
// It deliberately does not compare with gobwas's compiled `{p1,p2}`: its
// optimiser mis-compiles some alternations, e.g. `{*.count,.count}` matches
// neither ".count" nor "a.count" (see TestCombinedGlobQuirk).
func FuzzGlobList(f *testing.F) {
	for _, s := range [][3]string{
		{"istio.*", "istio.request.*", "istio.requests.total.value"},
		{"pilot.xds.*.reject.value", "go.*", "pilot.xds.a.b.reject.value"},
		{"a,b", "c", "a"},
		{"[!a-c]x", "{x,y}", "dx"},
		{`a\`, "x", "a}"},
		{"istio.[requests", "x", "istio."},
		{"{a", "b}", "a"},
		{"*.count", ".count", ".count"},
		{"a{", "0", "a"},
		{"label?pod?template*", "annotation_*", "label.pod-template-hash"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, p1, p2, name string) {
		g, gerr := glob.Compile(p1)
		single, err := New(Config{MetricAllowList: []string{p1}})
		if (gerr == nil) != (err == nil) {
			t.Fatalf("pattern %q: glob.Compile err %v, New err %v", p1, gerr, err)
		}
		if err == nil {
			if want, ok := match(g, name); ok && single.Keep([]byte(name), nil) != want {
				t.Fatalf("pattern %q, name %q: Keep %v, glob %v", p1, name, !want, want)
			}
		}

		list, err := New(Config{MetricAllowList: []string{p1, p2}})
		_, err2 := glob.Compile(p2)
		_, cerr := glob.Compile("{" + p1 + "," + p2 + "}")
		if gerr != nil || err2 != nil || cerr != nil {
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Fatalf("list %q %q must be rejected, got %v", p1, p2, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("list %q %q: unexpected error %v", p1, p2, err)
		}
		got := list.Keep([]byte(name), nil)
		// NUL is end-of-input to the v0.2.3 lexer, so it truncates the
		// alternation too.
		if strings.ContainsAny(p1+p2, "{},\\\x00") {
			return
		}
		g2 := glob.MustCompile(p2)
		m1, ok1 := match(g, name)
		m2, ok2 := match(g2, name)
		if ok1 && ok2 && got != (m1 || m2) {
			t.Fatalf("list %q %q, name %q: Keep %v, want %v || %v", p1, p2, name, got, m1, m2)
		}
	})
}

// match runs g.Match, reporting ok=false if gobwas panicked (a filter then
// treats the pattern as not matching; see noPanic).
func match(g glob.Glob, s string) (matched, ok bool) {
	defer func() {
		if recover() != nil {
			matched, ok = false, false
		}
	}()
	return g.Match(s), true
}
