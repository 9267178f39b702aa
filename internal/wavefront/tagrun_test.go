package wavefront

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// shapedRunsAgree learns a tag shape from the tags of shapeLine (through
// the checked path, as appendFastTags does), runs shapedTagRun and
// shapedTagRunGo over the tags of line with it, and fails unless both
// come to the same outcome and, for an accepted line, write the same
// bytes and the same result and custom source tags. On amd64 that
// compares the assembly with the Go loop; elsewhere the two are one.
// line is run as given (its loads may overhang into its capacity) and as
// a copy without spare capacity (the wrapper then copies it).
// It returns the outcome, or -1 if shapeLine has no shape.
func shapedRunsAgree(t *testing.T, lim *Limits, shapeLine, line []byte) (fits int) {
	t.Helper()
	d := fuzzDecoder()
	d.Limits = lim
	var shape tagShape
	shapeLine = append([]byte{' '}, shapeLine...) // learn looks before each key for its quote
	if _, ok := d.appendCheckedTags(make([]byte, 0, 2*len(shapeLine)+24), shapeLine, shapeLine, 0, lim); !ok || len(d.fastTags) == 0 {
		return -1
	}
	shape.learn(shapeLine, d.fastTags, d.fastSrc)
	// The shape's own line first, so the assembly meets line's tags with
	// those it remembered from it (see shapeKey.seen).
	for _, l := range [][]byte{shapeLine, line, slices.Clip(bytes.Clone(line))} {
		const at = 5 // tags go after some bytes, as after a name and value
		run := func(f func([]byte, int, []byte, int, *tagShape, *Limits) shapedRun) (shapedRun, []byte, []fastTag) {
			out := make([]byte, at+2*len(l)+64) // as appendFastTags grows it
			copy(out, "12345")
			d.fastTags = d.fastTags[:0]
			r := f(l, 0, out, at, &shape, lim)
			if r.fits != shapedOK {
				return shapedRun{fits: r.fits}, nil, nil
			}
			var tags []fastTag
			if shape.src < 0 {
				tags = slices.Clone(d.fastTags)
			}
			return r, out[:r.w], tags
		}
		got, gotOut, gotTags := run(func(line []byte, i int, out []byte, w int, shape *tagShape, lim *Limits) shapedRun {
			return *d.shapedTagRun(line, i, out, w, shape, lim)
		})
		want, wantOut, wantTags := run(d.shapedTagRunGo)
		if got != want || !bytes.Equal(gotOut, wantOut) || !slices.Equal(gotTags, wantTags) {
			t.Fatalf("shape from %q, line %q:\n got %+v %q %v\nwant %+v %q %v", shapeLine, l, got, gotOut, gotTags, want, wantOut, wantTags)
		}
		fits = got.fits
	}
	return fits
}

// shapedRunLimits are the limit sets the loops are compared under: the
// defaults and ones small enough for generated tags to cross them.
func shapedRunLimits() []*Limits {
	small := Limits{MaxSourceLength: 8, MaxNameLength: 8, MaxTags: 20, MaxTagLength: 24, MaxTagKeyLength: 12, MaxTagValueLength: 17,
		Backfill: time.Hour, Prefill: time.Minute}
	def := DefaultLimits()
	return []*Limits{&def, &small}
}

// TestShapedTagRunMatchesGo compares the loops on lines made from random
// shapes: keys of 1 to 40 bytes (across the 16-byte chunks), quoted or
// not, with or without a source; values of 0 to 40 bytes, quoted or not,
// with bytes from each class's edges at random places; and lines that
// change, truncate or extend the keys.
func TestShapedTagRunMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	edges := []byte{0, 1, '\t', ' ', '!', '"', '#', '\'', ',', '-', '/', '0', '9', ':', '=', '@', 'A', 'Z', '\\', '_', 'a', 'z', '~', 0x7f, 0x80, 0xc3, 0xff}
	nameByte := func() byte { return "abcxyz_-.0189ABZ"[r.IntN(16)] }
	keyByte := func() byte { return "abcxyz_ABZ"[r.IntN(10)] }
	value := func(n int, dirty bool) []byte {
		v := make([]byte, n)
		for j := range v {
			if dirty && r.IntN(12) == 0 {
				v[j] = edges[r.IntN(len(edges))]
			} else {
				v[j] = nameByte()
			}
		}
		return v
	}
	limits := shapedRunLimits()
	var outcomes [shapedPunt]int
	for range 30000 {
		var keys [][]byte
		for range 1 + r.IntN(8) {
			k := make([]byte, 1+r.IntN(40))
			for j := range k {
				k[j] = keyByte()
			}
			switch r.IntN(10) {
			case 0:
				k = []byte("source")
			case 1:
				k = []byte("host")
			}
			keys = append(keys, k)
		}
		tagLine := func(keys [][]byte, dirty bool) []byte {
			var b []byte
			for _, k := range keys {
				b = append(b, bytes.Repeat([]byte{' '}, 1+r.IntN(2))...)
				quotedKey := r.IntN(4) == 0
				if quotedKey {
					b = append(b, '"')
				}
				b = append(b, k...)
				if quotedKey {
					b = append(b, '"')
				}
				b = append(b, '=')
				v := value(r.IntN(41), dirty)
				if r.IntN(3) == 0 {
					b = append(append(append(b, '"'), v...), '"')
				} else {
					b = append(b, v...)
				}
			}
			return b
		}
		shapeLine := tagLine(keys, false)
		lineKeys := keys
		switch r.IntN(6) {
		case 0: // a prefix
			lineKeys = keys[:r.IntN(len(keys)+1)]
		case 1: // one more key
			lineKeys = append(slices.Clone(keys), []byte("extra"))
		case 2: // a key one byte off
			lineKeys = slices.Clone(keys)
			k := slices.Clone(lineKeys[r.IntN(len(keys))])
			k[r.IntN(len(k))] ^= 1
			lineKeys[r.IntN(len(keys))] = k
		}
		line := tagLine(lineKeys, r.IntN(2) == 0)
		if r.IntN(4) == 0 {
			// The shape's line with a byte changed: most tags are
			// those the assembly remembers from it.
			line = bytes.Clone(shapeLine)
			line[r.IntN(len(line))] = edges[r.IntN(len(edges))]
		}
		if r.IntN(8) == 0 {
			line = line[:r.IntN(len(line)+1)]
		}
		for _, lim := range limits {
			if fits := shapedRunsAgree(t, lim, shapeLine, line); fits >= 0 {
				outcomes[fits]++
			}
		}
	}
	for fits, n := range outcomes {
		if n < 3000 {
			t.Errorf("outcome %d in only %d lines: %v", fits, n, outcomes)
		}
	}
}

// FuzzShapedTagRun compares shapedTagRun with shapedTagRunGo: the tags of
// the input's first line make the shape, the rest of the input is the
// line (see shapedRunsAgree).
func FuzzShapedTagRun(f *testing.F) {
	for _, s := range []string{
		"source=a k=v\nsource=b k=w",
		`source="ip-10-1-2-3.ec2.internal" "cluster"="prod-east" "destination_service"="reviews.default.svc.cluster.local"` + "\n" +
			`source="ip-10-1-2-4.ec2.internal" "cluster"="prod-west" "destination_service"="ratings.default.svc.cluster.local"`,
		"a_key_of_exactly_16=1 b=2\na_key_of_exactly_16=12345678901234567 b=\"x y\"",
		"fqdn=f k=v\nfqdn=g k=\"v\" j=w",
		"k=v\nk=v\x00w",
		"k=v\nk=\" v\"",
		"host=h k=v\nhost=h k='v'",
	} {
		f.Add([]byte(s))
	}
	limits := shapedRunLimits()
	f.Fuzz(func(t *testing.T, input []byte) {
		shapeLine, line, ok := bytes.Cut(input, []byte("\n"))
		if !ok {
			return
		}
		for _, lim := range limits {
			shapedRunsAgree(t, lim, shapeLine, line)
		}
	})
}

// TestShapedTagRunLimitsChange runs one shape under limits that change
// between lines, in place and by pointer: each line must be judged by the
// limits of its call.
func TestShapedTagRunLimitsChange(t *testing.T) {
	d := fuzzDecoder()
	line := []byte(` source=s kkk=vvvv k=v`)
	def := DefaultLimits()
	if _, ok := d.appendCheckedTags(make([]byte, 0, 128), line, line, 0, &def); !ok {
		t.Fatal("declined")
	}
	var shape tagShape
	shape.learn(line, d.fastTags, d.fastSrc)
	lim := def
	for _, c := range []struct {
		name string
		set  func(*Limits)
		fits int
	}{
		{"default", func(*Limits) {}, shapedOK},
		{"value", func(l *Limits) { l.MaxTagValueLength = 3 }, shapedBad},
		{"value back", func(l *Limits) { l.MaxTagValueLength = def.MaxTagValueLength }, shapedOK},
		{"key", func(l *Limits) { l.MaxTagKeyLength = 2 }, shapedBad},
		{"key back", func(l *Limits) { l.MaxTagKeyLength = def.MaxTagKeyLength }, shapedOK},
		{"tag", func(l *Limits) { l.MaxTagLength = 6 }, shapedBad},
		{"tag exactly", func(l *Limits) { l.MaxTagLength = 7 }, shapedOK},
		{"tag below key", func(l *Limits) { l.MaxTagLength = 2 }, shapedBad},
	} {
		c.set(&lim)
		for _, l := range []*Limits{&lim, new(lim)} { // the same Limits changed, and another
			r := d.shapedTagRun(line, 0, make([]byte, 2*len(line)+64), 0, &shape, l)
			if r.fits != c.fits {
				t.Errorf("%s: outcome %d, want %d", c.name, r.fits, c.fits)
			}
		}
	}
}
