package zipkin

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// tagsString is s's tags as key=value pairs with plainValue.
func tagsString(s *Span) string {
	var b strings.Builder
	for _, t := range s.Tags {
		fmt.Fprintf(&b, "%q=%q(%v) ", t.Key, t.Value, t.plainValue)
	}
	return b.String()
}

// Spans whose tags come in a fresh order each time, as Envoy sends them,
// must decode to the same tags as in their first order, and the same
// sorted keys must keep one key sequence number: the key-set cache places
// them by rank. Duplicate keys, keys the set lacks and sets of another
// size fall back to sorting, with the last value of a key winning.
func TestShuffledTagsShareKeySets(t *testing.T) {
	body := envoyBody(t)
	var d Decoder
	want, err := decodeAs(&d, body, JSONV2)
	if err != nil {
		t.Fatal(err)
	}
	wantTags := make([]string, len(want))
	for i := range want {
		wantTags[i] = tagsString(&want[i])
		if want[i].keySeq == 0 {
			t.Fatalf("span %d: no key sequence number", i)
		}
	}
	for seed := range uint64(20) {
		got, err := decodeAs(&d, shuffleTags(body, seed), JSONV2)
		if err != nil || len(got) != len(want) {
			t.Fatalf("seed %d: %d spans, %v", seed, len(got), err)
		}
		for i := range got {
			if s := tagsString(&got[i]); s != wantTags[i] {
				t.Fatalf("seed %d, span %d: tags\n%s\nwant\n%s", seed, i, s, wantTags[i])
			}
			if got[i].keySeq != want[i].keySeq {
				t.Errorf("seed %d, span %d: key sequence %d, want %d", seed, i, got[i].keySeq, want[i].keySeq)
			}
		}
	}

	// Tags of a known set with one key duplicated, replaced, dropped or
	// added, in random orders, against the same tags sorted by the
	// general path in a fresh Decoder.
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"component", "http.method", "http.status_code", "istio.canonical_revision", "node_id", "a", "zz", "upstream_cluster.name"}
	spanOf := func(id int, tags [][2]string) string {
		var b strings.Builder
		fmt.Fprintf(&b, `{"traceId":"1","id":"%x","tags":{`, id)
		for i, kv := range tags {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q:%q", kv[0], kv[1])
		}
		b.WriteString("}}")
		return b.String()
	}
	var spans []string
	for id := 1; id < 400; id++ {
		tags := make([][2]string, len(keys))
		for i, k := range keys {
			tags[i] = [2]string{k, fmt.Sprint(id, i)}
		}
		switch id % 5 {
		case 1:
			tags = append(tags, [2]string{keys[r.IntN(len(keys))], "dup"})
		case 2:
			tags[r.IntN(len(tags))][0] = "other"
		case 3:
			tags = slices.Delete(tags, 0, 1)
		case 4:
			tags[r.IntN(len(tags))][0] = keys[r.IntN(len(keys))]
		}
		r.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
		spans = append(spans, spanOf(id, tags))
	}
	got, err := decodeAs(&d, []byte("["+strings.Join(spans, ",")+"]"), JSONV2)
	if err != nil {
		t.Fatal(err)
	}
	seqKeys := map[uint64]string{}
	for i := range got {
		ref, err := decodeAs(&Decoder{}, []byte("["+spans[i]+"]"), JSONV2)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := tagsString(&got[i]), tagsString(&ref[0]); g != w {
			t.Fatalf("span %s: tags\n%s\nwant\n%s", spans[i], g, w)
		}
		var ks string
		for _, tag := range got[i].Tags {
			ks += string(tag.Key) + "\x00"
		}
		if seq := got[i].keySeq; seq != 0 {
			if k, ok := seqKeys[seq]; ok && k != ks {
				t.Fatalf("key sequence %d names %q and %q", seq, k, ks)
			}
			seqKeys[seq] = ks
		}
	}
}

// The Converter caches a plan per key sequence number (planFor): with
// Envoy's shuffled tag orders it must build one per kind of span, not one
// per span.
func TestShuffledTagsHitConverterPlans(t *testing.T) {
	body := envoyBody(t)
	var d Decoder
	c := Converter{SpanLogs: true}
	wd := meshDecoder()
	var out wavefront.Span
	var buf []byte
	spans, builds := 0, 0
	seqs := map[uint64]bool{}
	for seed := range uint64(10) {
		err := d.Decode(shuffleTags(body, seed), JSONV2, func(z *Span) error {
			spans++
			seqs[z.keySeq] = true
			if z.keySeq == 0 || c.plans == nil || c.plans[z.keySeq&15].seq != z.keySeq {
				builds++
			}
			buf, _, _ = c.AppendCanonicalSpan(buf[:0], z, &out, wd)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// One build per kind of span: the body's spans have four sets of keys.
	if builds != len(seqs) || len(seqs) != 4 {
		t.Errorf("%d plans built for %d spans with %d key sequence numbers", builds, spans, len(seqs))
	}
}
