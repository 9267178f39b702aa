package zipkin

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/bits"
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

// Tags placed by key id (readIDTags, readPlainTags, addTag) against
// encoding/json, in one Decoder over many bodies: separators with and
// without spaces and other whitespace, duplicate keys (the last value
// wins), escaped keys and values, numbers, empty and long keys, keys at
// the body's end, and more keys than the key table holds, so that spans
// leave the slots half way and the table is cleared.
func TestTagsByIDMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var pool []string
	for i := range 300 {
		switch i % 10 {
		case 0:
			pool = append(pool, strings.Repeat("k", i%40)) // "" and keys of up to 39 bytes
		case 1:
			pool = append(pool, fmt.Sprintf("esc\\u00e9%d", i)) // escaped in the body
		default:
			pool = append(pool, fmt.Sprintf("%s.%d", []string{"http", "istio.canonical", "upstream_cluster", "a"}[i%4], i))
		}
	}
	seps := []string{", ", ",", " , ", ",\n "}
	seqKeys := map[uint64]string{}
	var d Decoder
	for round := range 300 {
		keys := pool[:20+r.IntN(len(pool)-20)] // a small key set in most rounds, all of it in some
		if round%3 != 0 {
			keys = keys[:20]
		}
		var body strings.Builder
		body.WriteString("[")
		nSpans := 1 + r.IntN(8)
		for s := range nSpans {
			if s > 0 {
				body.WriteString(", ")
			}
			fmt.Fprintf(&body, `{"traceId":"%x","id":"%x","tags":{`, s+1, s+1)
			sep := seps[0]
			if r.IntN(4) == 0 {
				sep = seps[r.IntN(len(seps))]
			}
			for i := range r.IntN(40) {
				if i > 0 {
					body.WriteString(sep)
				}
				k := keys[r.IntN(len(keys))]
				if r.IntN(3) == 0 {
					k = keys[r.IntN(min(len(keys), 5))] // duplicates
				}
				switch r.IntN(12) {
				case 0:
					fmt.Fprintf(&body, `"%s":%d`, k, r.IntN(1000))
				case 1:
					fmt.Fprintf(&body, `"%s":"v\"%d"`, k, i)
				case 2:
					fmt.Fprintf(&body, `"%s" : "v%d"`, k, i)
				default:
					fmt.Fprintf(&body, `"%s":"v%d"`, k, i)
				}
			}
			body.WriteString("}}")
		}
		if r.IntN(4) == 0 { // a short key as the body's last bytes
			fmt.Fprintf(&body, `, {"traceId":"1","id":"2","tags":{"ab":"1", "a":"2"}}`)
			nSpans++
		}
		body.WriteString("]")

		var ref []map[string]any
		dec := json.NewDecoder(strings.NewReader(body.String()))
		dec.UseNumber()
		var raw []struct{ Tags map[string]any }
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, body.String())
		}
		for _, s := range raw {
			ref = append(ref, s.Tags)
		}
		i := 0
		err := d.Decode([]byte(body.String()), JSONV2, func(s *Span) error {
			var got, exp, keys []string
			for _, tag := range s.Tags {
				got = append(got, string(tag.Key)+"="+string(tag.Value))
				keys = append(keys, string(tag.Key))
			}
			for _, k := range slices.Sorted(maps.Keys(ref[i])) {
				exp = append(exp, fmt.Sprintf("%s=%v", k, ref[i][k]))
			}
			if !slices.Equal(got, exp) {
				t.Fatalf("round %d, span %d: tags\n%q\nwant\n%q\nbody %s", round, i, got, exp, body.String())
			}
			ks := strings.Join(keys, "\x00")
			if old, ok := seqKeys[s.keySeq]; ok && s.keySeq != 0 && old != ks {
				t.Fatalf("key sequence %d names %q and %q", s.keySeq, old, ks)
			}
			seqKeys[s.keySeq] = ks
			i++
			return nil
		})
		if err != nil || i != nSpans {
			t.Fatalf("round %d: %d spans, %v", round, i, err)
		}
	}
}

// FuzzReadKnownTags checks each version of readKnownTags this CPU runs
// (the assembly on amd64) against readKnownTagsGo: from position i of
// body, with the keys listed in keys (one per line) interned, both must
// stop at the same place, miss the same tag and place the same tags in
// the same slots. Seeds: tags objects of the Envoy fixtures' shape, keys
// of every length class, and tags crossing the index's 64-byte words.
func FuzzReadKnownTags(f *testing.F) {
	long := strings.Repeat("x", 60)
	f.Add("a\nhttp.method\nupstream_cluster.name\n"+long, []byte(`{"a":"1", "http.method":"GET","upstream_cluster.name":"`+long+`", "b":"2"}`), uint(1), true)
	f.Add("node_id\nguid:x-request-id", []byte(`x, "node_id":"sidecar~10.0.0.1", "guid:x-request-id":"`+long+`"`), uint(1), false)
	f.Add("k\n"+long, []byte(`"`+long+`":"v", "k":"`+long+long+`","k":"\u00e9"`), uint(0), true)
	f.Add("abcdefgh\nabcdefghijklmnopqrstuvwx\nabcdefghijklmnopqrstuvwxy", []byte(`"abcdefgh":"", "abcdefghijklmnopqrstuvwx":"1", "abcdefghijklmnopqrstuvwxy":"2", "abc":"3"`), uint(0), true)
	f.Add("ab", []byte(`"ab":"1", "ab":"2", "ab"`), uint(0), true)
	// Keys of 17 to 24 bytes that differ only in their middle words share
	// a slot (mix leaves those words out), so they probe past each other,
	// and a third misses after both; keys of 16 and 17 bytes have no
	// middle word and one of its own.
	mid := func(c string) string { return "aaaaaaaa" + c + "bbbbbbbbbbb" }
	f.Add(mid("X")+"\n"+mid("Y")+"\nhttp.status_code\nhttp.status_codes", []byte(`"`+mid("Y")+`":"1", "`+mid("X")+`":"2", "http.status_code":"3", "http.status_codes":"4", "`+mid("Z")+`":"5"`), uint(0), true)
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, keys string, body []byte, i uint, first bool) {
		body = atPageEnd(body)
		var want keyTable
		for k := range strings.SplitSeq(keys, "\n") {
			want.idOf([]byte(k))
		}
		from := int(i % uint(len(body)+1))
		stops := buildStops(nil, body)
		var wantBits [2]uint64
		wantNext, wantP, wantMissed := want.readKnownTagsGo(&wantBits, body, stops, from, first)
		for name, read := range readKnownTagsVariants {
			var got keyTable
			for k := range strings.SplitSeq(keys, "\n") {
				got.idOf([]byte(k))
			}
			var gotBits [2]uint64
			next, k0, k1, missed := read(&got, &gotBits, body, stops, from, first)
			p := plainTag{}
			if missed {
				p = plainTag{k0, k1, k1 + 3, next - 1}
			}
			if next != wantNext || p != wantP || missed != wantMissed {
				t.Fatalf("%s: next %d, tag %+v, missed %v; readKnownTagsGo: %d, %+v, %v", name, next, p, missed, wantNext, wantP, wantMissed)
			}
			if gotBits != wantBits {
				t.Fatalf("%s: key ids %x, readKnownTagsGo %x", name, gotBits, wantBits)
			}
			for w, word := range wantBits {
				for ; word != 0; word &= word - 1 {
					if id := w*64 + bits.TrailingZeros64(word); got.slots[id] != want.slots[id] {
						t.Fatalf("%s: key %d's tag %+v, readKnownTagsGo %+v", name, id, got.slots[id], want.slots[id])
					}
				}
			}
		}
	})
}
