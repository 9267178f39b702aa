package wavefront

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestShapedTagsSSE2Room checks the assembly runs with the room
// appendFastTags gives it, and punts with a byte less.
func TestShapedTagsSSE2Room(t *testing.T) {
	d := fuzzDecoder()
	lim := d.limits()
	line := []byte(` a=1 "bb"="2 2" source=x`)
	if _, ok := d.appendCheckedTags(make([]byte, 0, 128), line, line, 0, lim); !ok {
		t.Fatal("declined")
	}
	var shape tagShape
	shape.learn(line, d.fastTags, d.fastSrc)
	padded := append(make([]byte, 0, len(line)+16), line...)
	for _, room := range []int{2*len(line) + 64, 2*len(line) + 63} {
		var r shapedRun
		shape.limitValues(lim)
		shapedTagsSSE2(padded, 0, make([]byte, 3+room), 3, shape.keys, &shape.raw[0], shape.src, nil, &r)
		if want := room < 2*len(line)+64; (r.fits == shapedPunt) != want {
			t.Errorf("room %d: outcome %d, punt wanted: %v", room, r.fits, want)
		}
	}
}

// TestShapedTagsSSE2Remembers checks that the assembly remembers each tag
// of an accepted line but the source, as written and as written out, and
// copies the remembered tags when they come again, and that a key whose
// values take turns keeps several of them: a loop that silently stopped
// remembering would still be correct, only slower.
func TestShapedTagsSSE2Remembers(t *testing.T) {
	d := fuzzDecoder()
	lim := d.limits()
	line := []byte(` a=1 source=x "bb"="2 2" ccc=3`)
	if _, ok := d.appendCheckedTags(make([]byte, 0, 128), line, line, 0, lim); !ok {
		t.Fatal("declined")
	}
	var shape tagShape
	shape.learn(line, d.fastTags, d.fastSrc)
	seen := []string{`a=1`, ``, `"bb"="2 2"`, `ccc=3`}
	seenOut := []string{` "a"="1"`, ``, ` "bb"="2 2"`, ` "ccc"="3"`}
	var first []byte
	for pass := range 2 {
		out := make([]byte, 256)
		r := d.shapedTagRun(line, 0, out, 0, &shape, lim)
		if r.fits != shapedOK || r.n != 4 {
			t.Fatalf("pass %d: outcome %+v", pass, r)
		}
		if pass == 0 {
			first = out[:r.w]
		} else if string(out[:r.w]) != string(first) {
			t.Errorf("wrote %q with the remembered tags, %q before", out[:r.w], first)
		}
		for i := range shape.keys {
			got, gotOut := remembered(&shape.keys[i])
			want, wantOut := []string{seen[i]}, []string{seenOut[i]}
			if seen[i] == "" {
				want, wantOut = nil, nil
			}
			if !slices.Equal(got, want) || !slices.Equal(gotOut, wantOut) {
				t.Errorf("key %d remembers %q, written out as %q; want %q and %q", i, got, gotOut, want, wantOut)
			}
		}
	}

	apps := []string{"productpage", "reviews", "ratings", "details", "frontend", "cart", "checkout", "payments"}
	for pass := range 3 {
		for _, app := range apps {
			line := []byte(` a=1 source=x "bb"="2 2" ccc=` + app)
			if r := d.shapedTagRun(line, 0, make([]byte, 256), 0, &shape, lim); r.fits != shapedOK || r.n != 4 {
				t.Fatalf("pass %d, %s: outcome %+v", pass, app, r)
			}
		}
	}
	if got, _ := remembered(&shape.keys[3]); len(got) < 4 {
		t.Errorf("remembers %q of 8 values taking turns", got)
	}

	// Tags up to 63 bytes whose output fits 64 are remembered, longer ones
	// are not.
	for _, c := range []struct {
		tag  string
		kept bool
	}{
		{`"kk"="` + strings.Repeat("v", 56) + `"`, true},  // 63 bytes, 64 out
		{`"kk"="` + strings.Repeat("v", 57) + `"`, false}, // 64 bytes
		{`kk=` + strings.Repeat("v", 54), true},           // 57 bytes, 62 out
		{`kk=` + strings.Repeat("v", 57), false},          // 60 bytes, 65 out
	} {
		line := []byte(` source=x ` + c.tag + ` z=1`)
		d := fuzzDecoder()
		if _, ok := d.appendCheckedTags(make([]byte, 0, 256), line, line, 0, lim); !ok {
			t.Fatal("declined")
		}
		var shape tagShape
		shape.learn(line, d.fastTags, d.fastSrc)
		var outs [2][]byte
		for pass := range 2 {
			outs[pass] = make([]byte, 256)
			r := d.shapedTagRun(line, 0, outs[pass], 0, &shape, lim)
			if r.fits != shapedOK {
				t.Fatalf("%s: outcome %+v", c.tag, r)
			}
			outs[pass] = outs[pass][:r.w]
		}
		if got, _ := remembered(&shape.keys[1]); (len(got) == 1 && got[0] == c.tag) != c.kept || len(got) > 1 {
			t.Errorf("%s: remembers %q", c.tag, got)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: wrote %q, then %q", c.tag, outs[0], outs[1])
		}
	}
}

// remembered lists the tags in k's slots, as written and as written out,
// and checks each slot's mask.
func remembered(k *shapeKey) (in, out []string) {
	for _, s := range k.seen {
		if s.inLen > 0 {
			in, out = append(in, string(s.in[:s.inLen])), append(out, string(s.out[:s.outLen]))
			if s.mask != 1<<s.inLen-1 {
				panic(fmt.Sprintf("mask %#x for %d bytes", s.mask, s.inLen))
			}
		}
	}
	return in, out
}
