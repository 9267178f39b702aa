package wavefront

import (
	"slices"
	"unsafe"
)

// shapedTagsSSE2 is shapedTagRunGo in assembly (tagrun_amd64.s), writing
// its result to r. It checks the tag limits with the keys' maxValue (see
// limitValues). It reads up to 16 bytes past the end of line and past
// the last key in raw (tagShape pads raw), and the key learn puts past
// the end of keys, writes len(keys) tags at most to
// tags if src < 0, and reports shapedPunt where out lacks room for its
// overhanging stores. It writes the keys' seen fields.
//
//go:noescape
func shapedTagsSSE2(line []byte, i int, out []byte, w int, keys []shapeKey, raw *byte, src int, tags *fastTag, r *shapedRun)

// shapedTagRun runs shapedTagsSSE2 and falls back to shapedTagRunGo where
// the assembly punts. Its result is d.run, which the assembly writes in
// place: a copy of it per line costs more than reading it there.
func (d *Decoder) shapedTagRun(line []byte, i int, out []byte, w int, shape *tagShape, lim *Limits) *shapedRun {
	if cap(line)-len(line) < 16 {
		// The loop's loads overhang the line: they may run into its
		// capacity, else they read a copy.
		d.padded = append(slices.Grow(d.padded[:0], len(line)+16), line...)
		line = d.padded
	}
	var tags *fastTag
	if shape.src < 0 {
		d.fastTags = slices.Grow(d.fastTags[:0], len(shape.keys))
		tags = unsafe.SliceData(d.fastTags[:len(shape.keys)])
	}
	shape.limitValues(lim)
	r := &d.run
	*r = shapedRun{} // the source's fields stay 0 in a line without it
	shapedTagsSSE2(line, i, out, w, shape.keys, unsafe.SliceData(shape.raw), shape.src, tags, r)
	switch {
	case r.fits == shapedPunt:
		*r = d.shapedTagRunGo(line, i, out, w, shape, lim)
	case r.fits == shapedOK && shape.src < 0:
		d.fastTags = d.fastTags[:r.n]
	}
	return r
}

// shapedTagsSSE2 finds a key's slot (shapeKey.seen) with a shift: there
// are 16, of 144 bytes each. These fail to compile otherwise.
var (
	_ [seenSlots - 16]struct{}
	_ [16 - seenSlots]struct{}
	_ [unsafe.Sizeof(seenTag{}) - 144]struct{}
	_ [144 - unsafe.Sizeof(seenTag{})]struct{}
)

// nameRunSSE2 and plainValueEndSSE2 are nameRunCopyGo and plainValueEndGo
// for the n bytes at p, 16 at a time (tagrun_amd64.s); they return the
// run's length. Their loads overhang p+n by up to 16 bytes, as do
// nameRunSSE2's stores the run at out.
//
//go:noescape
func nameRunSSE2(p *byte, n int, out *byte) int

//go:noescape
func plainValueEndSSE2(p *byte, n int) int

// nameRunCopy is nameRunCopyGo, in SSE2 where b has 16 bytes of spare
// capacity and out 16 bytes of room past the longest possible run.
func nameRunCopy(b []byte, i int, out []byte, w int) int {
	if n := len(b) - i; cap(b)-len(b) >= 16 && len(out)-w >= n+16 && n > 0 {
		return i + nameRunSSE2(&b[i], n, &out[w])
	}
	return nameRunCopyGo(b, i, out, w)
}

// plainValueEnd is plainValueEndGo, in SSE2 where b has 16 bytes of spare
// capacity.
func plainValueEnd(b []byte, i int) int {
	if n := len(b) - i; cap(b)-len(b) >= 16 && n > 0 {
		return i + plainValueEndSSE2(&b[i], n)
	}
	return plainValueEndGo(b, i)
}
