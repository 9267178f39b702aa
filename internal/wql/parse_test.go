package wql

import (
	"errors"
	"strings"
	"testing"
)

func TestDashboardQueriesParse(t *testing.T) {
	all := append(append([]dashQuery(nil), dataPlaneQueries...), controlPlaneQueries...)
	for _, q := range all {
		e, err := Parse(q.query, dashVars)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", q.chart, q.query, err)
			continue
		}
		assertRoundTrip(t, e)
	}
}

// Queries of the reference Kubernetes dashboard JSON that fall inside the
// supported grammar (syntax examples of real WQL).
func TestReferenceDashboardSyntax(t *testing.T) {
	vars := map[string]string{"cluster_name": "*", "node_name": "*"}
	for _, q := range []string{
		`rate(sum(ts(kube.apiserver.apiserver.request.total.counter, cluster=${cluster_name} and (code="4*" OR code="5*")), verb))`,
		`rate(ts(kube.coredns.coredns.dns.responses.total.counter, not rcode=NOERROR and cluster=${cluster_name}))`,
		`sum(rate(ts(kube.apiserver.apiserver.request.total.counter, cluster=${cluster_name})), verb)`,
		`ts("kubernetes.node.filesystem.usage", cluster="${cluster_name}" and nodename="${node_name}") / ts("kubernetes.node.filesystem.limit", cluster="${cluster_name}" and nodename="${node_name}")`,
		`sum(align(1m, rate(ts(kube.apiserver.apiserver.request.duration.seconds.bucket, cluster=${cluster_name}))), le)`,
		`rawsum(align(60s, mean, mavg(5m, rate(ts(kube.apiserver.etcd.request.duration.seconds.bucket, cluster=${cluster_name})))) by (le))`,
	} {
		e, err := Parse(q, vars)
		if err != nil {
			t.Errorf("%q: %v", q, err)
			continue
		}
		assertRoundTrip(t, e)
	}
}

func assertRoundTrip(t *testing.T, e Expr) {
	t.Helper()
	s := e.String()
	e2, err := Parse(s, nil)
	if err != nil {
		t.Fatalf("canonical form %q does not parse: %v", s, err)
	}
	if s2 := e2.String(); s2 != s {
		t.Fatalf("round trip changed the query:\n %s\n %s", s, s2)
	}
}

func TestCanonicalForm(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`ts( a.b ,x=1)`, `ts(a.b, x=1)`},
		{`ts("a b", source=h1 and host=h2)`, `ts("a b", source=h1 and source=h2)`},
		{`ts(m, a=1 AND (b=2 OR c=3) and not d="x\"y")`, `ts(m, a=1 and (b=2 or c=3) and not d="x\"y")`},
		{`ts(m, not (a=1 or b=2))`, `ts(m, not (a=1 or b=2))`},
		{`ts(m, a=1 and (b=2 and c=3))`, `ts(m, a=1 and (b=2 and c=3))`},
		{`ts(m, a!=1 or (b=2 or c=3))`, `ts(m, a!=1 or (b=2 or c=3))`},
		{`ts(m, instance=10.64.3.13:15014 and le=+Inf)`, `ts(m, instance=10.64.3.13:15014 and le=+Inf)`},
		{`ts(m, a='single')`, `ts(m, a="single")`},
		{`1 - (2 - 3)`, `1 - (2 - 3)`},
		{`(1 - 2) - 3`, `1 - 2 - 3`},
		{`(1 + 2) * 3`, `(1 + 2) * 3`},
		{`1 + 2 * 3`, `1 + 2 * 3`},
		{`-(1+2)`, `-(1 + 2)`},
		{`- -1.5e3`, `--1.5e3`},
		{`sum(ts(m)) by (app, le)`, `sum(ts(m), app, le)`},
		{`rawsum(ts(m), sources)`, `rawsum(ts(m), sources)`},
		{`rawsum(ts(m) by (le))`, `rawsum(ts(m), le)`},
		{`percentile(99.9, ts(m.bucket), app)`, `percentile(99.9, ts(m.bucket), app)`},
		{`mavg(5m,ts(m))`, `mavg(5m, ts(m))`},
		{`last(ts(m))`, `last(ts(m))`},
		{`last(1h, ts(m))`, `last(1h, ts(m))`},
		{`default(0, ts(m))`, `default(0, ts(m))`},
		{`default(10m, -1, ts(m))`, `default(10m, -1, ts(m))`},
		{`align(1m, ts(m))`, `align(1m, ts(m))`},
		{`align(60s, mean, ts(m))`, `align(60s, mean, ts(m))`},
		{`(ts(a) + 1).orElse(0)`, `(ts(a) + 1).orElse(0)`},
		{`ts(a).orElse(ts(b)).orElse(0)`, `ts(a).orElse(ts(b)).orElse(0)`},
		{`ts(x) - time()`, `ts(x) - time()`},
		{`deriv(ts(x))`, `deriv(ts(x))`},
	} {
		e, err := Parse(c.in, nil)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("%q printed as %q, want %q", c.in, got, c.want)
		}
		assertRoundTrip(t, e)
	}
}

func TestVariables(t *testing.T) {
	e, err := Parse(`ts(m, cluster="${cluster}" and app=${app name})`, map[string]string{"cluster": "*", "app name": "istiod"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.String(), `ts(m, cluster="*" and app=istiod)`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// A variable may hold a whole sub-query.
	e, err = Parse(`percentile(50, ${histo})`, map[string]string{"histo": "ts(a.bucket)"})
	if err != nil || e.String() != `percentile(50, ts(a.bucket))` {
		t.Fatalf("got %v, %v", e, err)
	}
}

func TestParseErrors(t *testing.T) {
	vars := map[string]string{"c": "prod", "bad": `"open`}
	for _, c := range []struct {
		q    string
		pos  int
		frag string
	}{
		{`ts(`, 3, "metric"},
		{`foo(ts(x))`, 0, `unknown or unsupported function "foo"`},
		{`sum(hs(x))`, 7, `must end in .m, .h or .d`},
		{`hs(x.m) * 2`, 0, `hs() yields histograms`},
		{`sum(histogram(x))`, 4, `"histogram"`},
		{`ts(m, a=)`, 8, "tag value"},
		{`ts(m, a="x)`, 8, "unterminated string"},
		{`ts(m, a)`, 7, `"="`},
		{`ts(m, a=1 b=2)`, 10, `")"`},
		{`ts(m) +`, 7, "expected expression"},
		{`sum(ts(m)`, 9, `")"`},
		{`mavg(ts(m))`, 5, "time window"},
		{`percentile(101, ts(m))`, 11, "between 0 and 100"},
		{`align(1m, median, ts(m))`, 10, "summarizer"},
		{`ts(m) ts(n)`, 6, "unexpected"},
		{`5m`, 0, "duration"},
		{`2x`, 1, "after number"},
		{`ts(m, cluster=${nope})`, 14, `unknown variable "nope"`},
		{`ts(m, cluster=${c`, 14, "unterminated variable"},
		// Positions after a substitution refer to the original query.
		{`ts(m, cluster=${c} and)`, 22, "tag filter"},
		// An error inside a substituted value points at its "${".
		{`ts(m, a=${bad})`, 8, "unterminated string"},
		{strings.Repeat("(", 600) + "1" + strings.Repeat(")", 600), 501, "nested too deeply"},
	} {
		_, err := Parse(c.q, vars)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want *Error", c.q, err)
			continue
		}
		if pe.Pos != c.pos || !strings.Contains(pe.Msg, c.frag) {
			t.Errorf("%q: got %q, want position %d and %q", c.q, pe.Error(), c.pos, c.frag)
		}
	}
}
