package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/sink"
	"github.com/meshwave/meshwave/internal/wavefront"
)

func tags(kv ...string) []wavefront.Tag {
	var t []wavefront.Tag
	for i := 0; i < len(kv); i += 2 {
		t = append(t, wavefront.Tag{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return t
}

// exportLines runs points through one exporter into a real file sink and
// returns the lines written, with the tags of each line sorted.
func exportLines(t *testing.T, e func(w sink.Writer, m *Metrics) *exporter, points ...*wavefront.Point) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.wf")
	m := NewMetrics()
	w, err := sink.NewFile(path, sink.Options{}, m.sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := e(w, m).newBatch()
	for _, p := range points {
		b.WritePoint(p)
	}
	b.flush()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		n := slices.IndexFunc(f, func(s string) bool { return strings.HasPrefix(s, "source=") }) + 1
		head, rest := f[:n], f[n:]
		slices.Sort(rest)
		out = append(out, strings.Join(append(head, rest...), " "))
	}
	return out
}

// The example of collector.md §6.3.
func TestExportExample(t *testing.T) {
	got := exportLines(t, func(w sink.Writer, m *Metrics) *exporter {
		return newExporter("t", "prod-east", ".k8s.", map[string]string{"env": "prod", "app": "ignored"}, nil, nil, w, w, m)
	}, &wavefront.Point{
		Name: []byte("istio.requests.total.value"), Value: 42, Timestamp: 1712000000, Source: []byte("node-a"),
		Tags: tags("app", "reviews", "cluster", "old", "hostname", "h1", "response_flags", "-", "key with space", `v"q`),
	})
	want := []string{`"k8s.istio.requests.total.value" 42 1712000000 source="node-a" "app"="reviews" "cluster"="prod-east" "env"="prod" "key-with-space"="v\"q"`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestExportFilterNodenameAndNonFinite(t *testing.T) {
	f, err := filter.New(filter.Config{MetricDenyList: []string{"*.drop"}})
	if err != nil {
		t.Fatal(err)
	}
	inf := 1.0
	for range 2000 {
		inf *= 10
	}
	got := exportLines(t, func(w sink.Writer, m *Metrics) *exporter {
		return newExporter("t", "c", "", nil, f, nil, w, w, m)
	},
		&wavefront.Point{Name: []byte("a.drop"), Value: 1, Source: []byte("s")},
		&wavefront.Point{Name: []byte("a.keep"), Value: 1, Source: []byte("s"), Tags: tags("nodename", "n1")},
		&wavefront.Point{Name: []byte("a.inf"), Value: inf, Source: []byte("s")},
	)
	want := []string{`"a.keep" 1 source="n1" "cluster"="c" "nodename"="n1"`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestExportTruncatesLongTagValues(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := exportLines(t, func(w sink.Writer, m *Metrics) *exporter {
		return newExporter("t", "c", "", nil, nil, nil, w, w, m)
	}, &wavefront.Point{Name: []byte("m"), Value: 1, Source: []byte("s"), Tags: tags("annotation", long)})
	want := `"annotation"="` + strings.Repeat("é", 254-len("annotation")) + `"`
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("got %q", got)
	}
}

// The example of collector.md §6.2.
func TestCleanTagsTrimsLabelsOnly(t *testing.T) {
	var kv []string
	for i := range 16 {
		kv = append(kv, fmt.Sprintf("k%02d", i), "v")
	}
	kv = append(kv, "label.app", "web", "label.tier", "web")
	out := cleanTags(tags(kv...), nil)
	if len(out) != 17 || tagIndex(out, "label.app") >= 0 || tagIndex(out, "label.tier") < 0 {
		t.Errorf("got %d tags: %v", len(out), out)
	}
}

func TestCleanTagsDedupesAndPrefersAlphaBeta(t *testing.T) {
	var kv []string
	for i := range 15 {
		kv = append(kv, fmt.Sprintf("k%02d", i), "v")
	}
	kv = append(kv, "label.beta.kubernetes.io/arch", "amd64x", "label.kubernetes.io/arch", "amd64x", "label.z", "zz")
	out := cleanTags(tags(kv...), nil)
	if tagIndex(out, "label.beta.kubernetes.io/arch") >= 0 || tagIndex(out, "label.kubernetes.io/arch") < 0 || len(out) != 17 {
		t.Errorf("got %v", out)
	}
}

func TestVersionValue(t *testing.T) {
	if v := versionValue("1.31.2"); v != 1.312 {
		t.Errorf("got %v", v)
	}
	if v := versionValue("1.2"); v != 0 {
		t.Errorf("got %v", v)
	}
}
