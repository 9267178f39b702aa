package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/meshwave/meshwave/internal/wql"
)

// TestSelectPushDownAgreesWithMatcher: filters pushed down to the tsdb
// index must select exactly what wql's own matcher selects (MemStorage
// applies only the matcher), including Wavefront's missing-tag rules.
func TestSelectPushDownAgreesWithMatcher(t *testing.T) {
	s := start(t, Config{})
	t0 := base()
	mem := wql.NewMemStorage()
	r := rand.New(rand.NewPCG(3, 4))
	var body strings.Builder
	vals := []string{"a", "ab", "b5", "5b", "x.y"}
	for i := range 200 {
		tags := map[string]string{}
		line := fmt.Sprintf("m.%d %d %d source=h%d", i%3, i, t0/1000, i%4)
		for _, k := range []string{"k1", "k2", "__k3"} {
			if r.IntN(3) > 0 {
				v := vals[r.IntN(len(vals))]
				tags[k] = v
				line += fmt.Sprintf(" %s=%q", k, v)
			}
		}
		tags["id"] = fmt.Sprint(i)
		line += fmt.Sprintf(" id=%d\n", i)
		body.WriteString(line)
		mem.Add(wql.Series{Name: fmt.Sprintf("m.%d", i%3), Source: fmt.Sprintf("h%d", i%4), Tags: wql.TagsOf(tags),
			Points: []wql.Point{{T: t0, V: float64(i)}}})
	}
	if code, res := post(t, s.url, "wavefront", body.String()); code != http.StatusAccepted || res.Accepted != 200 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "points stored", func() bool { return len(selectAll(t, s.Server, "m.*")) == 200 })

	filters := []string{
		`k1=a`, `k1!=a`, `not k1=a`, `k1=*`, `not k1=*`, `k1!=*`, `k1=*b`, `k1!=*b`, `not k1="5*"`,
		`k1=a and k2=b5`, `k1=a or k2=b5`, `not (k1=a or k2=b5)`, `source=h1`, `host=h*`, `source!=h1 and k2=*`,
		`__k3=x.y`, `__k3!=x.y and k1=**`, `k1="" `, `k1=a and not k2=a* and __k3!="*y"`, `id=1*`, `nokey=*`, `nokey!=v`,
	}
	for _, f := range filters {
		for _, metric := range []string{"m.1", "m.*"} {
			q := fmt.Sprintf("ts(%s, %s)", metric, f)
			e, err := wql.Parse(q, nil)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			o := wql.Options{Start: t0, End: t0, Step: 60_000}
			want, err := wql.Eval(context.Background(), e, mem, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wql.Eval(context.Background(), e, queryStore{m: s.metrics, kv: s.kv}, o)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
				t.Errorf("%s: tsdb selected %d series, matcher %d", q, len(got), len(want))
			}
		}
	}
}

// TestSeriesOfSortedTags: tags come out in key order, escaped reserved
// keys ("__k" stored as "__wf__k") included, and a list kept from the
// arena is not overwritten by the next series.
func TestSeriesOfSortedTags(t *testing.T) {
	var arena tagArena
	keys := []string{"__k", "__a.b", "_x", "A", "a", "a1", "a.b", "z", "~"}
	var kept []wql.Series
	var keptWant []wql.Tags
	for i := range 50 {
		kv := []string{labelName, "m", labelSource, "h"}
		want := map[string]string{}
		for j, k := range keys {
			if (i>>j)&1 == 0 || i%7 == 0 {
				v := fmt.Sprint(i, j)
				kv = append(kv, tagLabel(k), v)
				want[k] = v
			}
		}
		s := seriesOf(labels.FromStrings(kv...), &arena)
		if s.Name != "m" || s.Source != "h" || !s.Tags.IsSorted() || !reflect.DeepEqual(s.Tags, wql.TagsOf(want)) {
			t.Fatalf("%v: %+v, want tags %v", kv, s, wql.TagsOf(want))
		}
		if i%2 == 0 {
			arena.keep(len(s.Tags))
			kept = append(kept, s)
			keptWant = append(keptWant, wql.TagsOf(want))
		}
	}
	for i, s := range kept {
		if !reflect.DeepEqual(s.Tags, keptWant[i]) {
			t.Fatalf("kept tags overwritten: %v, want %v", s.Tags, keptWant[i])
		}
	}
}
