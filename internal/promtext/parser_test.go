package promtext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// series is a sample in a form both parsers can be compared in.
type series struct {
	labels string // sorted name="value" pairs, __name__ first
	value  float64
	ts     int64
	hasTS  bool
}

func (s series) equal(o series) bool {
	sameValue := s.value == o.value || math.IsNaN(s.value) && math.IsNaN(o.value)
	return s.labels == o.labels && sameValue && s.ts == o.ts && s.hasTS == o.hasTS
}

// canonicalBound makes le/quantile values comparable: textparse rewrites
// them in typed families (and, on broken input, sometimes elsewhere).
func canonicalBound(name, value string) string {
	if name != "le" && name != "quantile" {
		return value
	}
	if f, err := strconv.ParseFloat(value, 64); err == nil && !strings.ContainsAny(value, "pP_") {
		return "float:" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return value
}

func labelString(name string, pairs [][2]string) string {
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "__name__=%q", name)
	for _, p := range pairs {
		fmt.Fprintf(&b, ",%s=%q", p[0], canonicalBound(p[0], p[1]))
	}
	return b.String()
}

// readTextparse returns textparse's series and whether it stopped on an error.
func readTextparse(t testing.TB, b []byte) (out []series, failed bool, multiline bool) {
	p := textparse.NewPromParser(append([]byte(nil), b...), labels.NewSymbolTable(), false)
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, false, multiline
		}
		if err != nil {
			return out, true, multiline
		}
		if e != textparse.EntrySeries {
			continue
		}
		raw, ts, v := p.Series()
		if bytes.IndexByte(raw, '\n') >= 0 {
			multiline = true
		}
		var ls labels.Labels
		p.Labels(&ls)
		var pairs [][2]string
		ls.Range(func(l labels.Label) {
			if l.Name != "__name__" {
				pairs = append(pairs, [2]string{l.Name, l.Value})
			}
		})
		s := series{labels: labelString(ls.Get("__name__"), pairs), value: v}
		if ts != nil {
			s.ts, s.hasTS = *ts, true
		}
		out = append(out, s)
	}
}

// readOurs returns our series up to the first line error.
func readOurs(b []byte, opts Options) (out []series, failed bool) {
	p := NewParser(bytes.NewReader(b), opts)
	for {
		switch p.Next() {
		case EntryEOF:
			return out, false
		case EntryError:
			return out, true
		}
		s := p.Sample()
		var pairs [][2]string
		for _, l := range s.Labels {
			pairs = append(pairs, [2]string{string(l.Name), string(l.Value)})
		}
		out = append(out, series{labels: labelString(string(s.Name), pairs), value: s.Value, ts: s.Timestamp, hasTS: s.HasTimestamp})
	}
}

func fixtures(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("../../testdata/fixtures/exposition/*.prom")
	more, _ := filepath.Glob("../../testdata/fixtures/exposition/*.txt")
	files = append(files, more...)
	files = append(files, mustGlob(t, "testdata/*.prom")...)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func mustGlob(t testing.TB, pattern string) []string {
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFixturesMatchTextparse(t *testing.T) {
	fx := fixtures(t)
	if len(fx) == 0 {
		t.Fatal("no fixtures found")
	}
	for name, b := range fx {
		t.Run(name, func(t *testing.T) {
			want, wantFail, _ := readTextparse(t, b)
			got, gotFail := readOurs(b, Options{})
			if wantFail || gotFail {
				t.Fatalf("unexpected failure: textparse %v, ours %v", wantFail, gotFail)
			}
			compareSeries(t, got, want)
		})
	}
}

func compareSeries(t testing.TB, got, want []series) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d series, textparse %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].equal(want[i]) {
			t.Fatalf("series %d:\n ours      %+v\n textparse %+v", i, got[i], want[i])
		}
	}
}

// FuzzDifferential proves the parser reads every input as textparse does:
// the same series up to textparse's first error, and an error where
// textparse stops. The one deliberate difference: a quoted string that
// spans lines, which a line-at-a-time reader rejects.
func FuzzDifferential(f *testing.F) {
	for _, b := range fixtures(f) {
		f.Add(b)
	}
	for _, s := range []string{
		"a 1\n", "a{b=\"c\"} 1 2\n", "{\"a.b\",c=\"d\"} NaN\n", "a{b=\"\\\\\\\"\\n\\t\"} +Inf\n",
		"# TYPE a histogram\na_bucket{le=\"1\"} 2\n", "a{b=\"c\" d=\"e\",} 1\n", "a 0x1p3\n", "a 1_0\n",
		"\x00a 1\n", "a 1\r\n", "# HELP a \xff\n", "a{le=\"x\"} 1\n", "a 1 -1\n", "a  1 \t2  \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantFail, multiline := readTextparse(t, b)
		if multiline {
			t.Skip("quoted string spanning lines")
		}
		got, gotFail := readOurs(b, Options{})
		if wantFail {
			if !gotFail || len(got) != len(want) {
				t.Fatalf("textparse failed after %d series; ours read %d, failed=%v", len(want), len(got), gotFail)
			}
		} else if gotFail {
			t.Fatalf("ours failed after %d series; textparse read %d without error", len(got), len(want))
		}
		compareSeries(t, got, want)
	})
}
