//go:build !amd64

package wavefront

func (d *Decoder) shapedTagRun(line []byte, i int, out []byte, w int, shape *tagShape, lim *Limits) shapedRun {
	return d.shapedTagRunGo(line, i, out, w, shape, lim)
}
