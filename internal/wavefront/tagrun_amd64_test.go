package wavefront

import "testing"

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
