//go:build !amd64

package wavefront

func (d *Decoder) shapedTagRun(line []byte, i int, out []byte, w int, shape *tagShape, lim *Limits) *shapedRun {
	d.run = d.shapedTagRunGo(line, i, out, w, shape, lim)
	return &d.run
}

func nameRunCopy(b []byte, i int, out []byte, w int) int { return nameRunCopyGo(b, i, out, w) }

func plainValueEnd(b []byte, i int) int { return plainValueEndGo(b, i) }
