package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/meshwave/meshwave/internal/wql"
)

// Rollups: for every persisted tsdb block, a file of 5-minute windows per
// series, so that a chart over a day or more reads a few windows per
// bucket instead of every sample. Blocks never change once written, so a
// block's rollup is built once, after the tsdb writes the block, and goes
// when the block goes. A rollup is a cache: deleting it only makes
// queries read raw samples again.
//
// A window holds what the two bucket means wql needs take: the sum and
// count of the samples (ts()), and rate()'s values for the pairs of
// consecutive samples whose later sample falls in the window: the sum
// and count of those whose earlier sample is in the window too, and
// apart the one pair that enters the window from an earlier one in the
// block, which a query starting at the window must leave out. The record
// also keeps the series' labels (as references into the file's symbol
// table) and its first and last sample, so a query reads neither the
// block's index entries nor its chunks.
//
// Reading windows is most of what a day-long chart costs, so a record is
// laid out to decode in a few nanoseconds a window, a batch of values at
// a time, with no per-bit reads: window times and counts, nearly constant
// with a regular scrape, are runs; values are byte-aligned (appendFloats).
//
// File layout (little-endian):
//
//	header  "MWRU" u32 version, i64 width, i64 minT, i64 maxT
//	records per series: uvarint label count, uvarint symbol refs (name,
//	        value, ...), i64 firstT, f64 firstV, i64 lastT, f64 lastV,
//	        then 6 columns, each uvarint length + bytes:
//	        runs        uvarint windows with samples, then per run of
//	                    consecutive ones: uvarint gap (windows without
//	                    samples before it, since the previous run or
//	                    firstT's window), uvarint windows
//	        n           samples per window (appendInts)
//	        rate shape  per window, inner rate pairs << 1 | 1 if it has
//	                    an entry rate (appendInts)
//	        sum         per window, the sum of its samples (appendFloats)
//	        rate sum    per window with inner rate pairs (appendFloats)
//	        entry rate  per window with one (appendFloats)
//	symbols uvarint length + bytes each
//	table   per series, by ascending ref: u64 ref, u64 record offset
//	footer  u64 symbols offset, u32 symbols, u64 table offset,
//	        u32 series, u32 CRC-32C of all before it
const (
	rollupWidth   = 5 * 60 * 1000
	rollupMagic   = "MWRU"
	rollupVersion = 3 // 2 had a Prometheus XOR chunk per column
	rollupHeader  = 32
	rollupFooter  = 28
	rollupExt     = ".rollup"
)

// castagnoli checksums WAL frames, the WAL cursor and rollup files.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Columns of a rollup record.
const (
	colRuns      = iota // windows with samples: runs of consecutive ones
	colN                // samples per window
	colRateShape        // per window, inner rate pairs << 1 | has an entry rate
	colSum              // per window, the sum of its samples
	colRateSum          // rates of pairs inside the window, where there are
	colEntryRate        // rate of the pair from an earlier window, if rate() keeps it
	numCols
)

// rollupWindow is one window of a series while a block is read.
type rollupWindow struct {
	t        int64
	sum      float64
	n        int
	rateSum  float64 // of the pairs inside the window
	rateN    int
	entry    float64 // rate of the pair entering the window
	hasEntry bool
}

// windowAcc accumulates one series' windows while a block is read.
type windowAcc struct {
	wins  []rollupWindow
	first wql.Point
	prev  wql.Point
	count int
	ints  []uint64  // scratch for a column's values
	vals  []float64 // scratch for a column's values
	dict  dictTable // scratch for appendDict
}

func (a *windowAcc) reset() {
	a.wins, a.count = a.wins[:0], 0
}

func (a *windowAcc) add(t int64, v float64) error {
	if a.count > 0 && t <= a.prev.T {
		return fmt.Errorf("samples out of order at %d", t)
	}
	p := wql.Point{T: t, V: v}
	w := t - mod(t, rollupWidth)
	entering := len(a.wins) == 0 || a.wins[len(a.wins)-1].t != w
	if entering {
		a.wins = append(a.wins, rollupWindow{t: w})
	}
	cur := &a.wins[len(a.wins)-1]
	cur.sum += v
	cur.n++
	if a.count == 0 {
		a.first = p
	} else if r, ok := wql.RatePair(a.prev, p); ok {
		if entering {
			cur.entry, cur.hasEntry = r, true
		} else {
			cur.rateSum += r
			cur.rateN++
		}
	}
	a.prev = p
	a.count++
	return nil
}

// appendWindows appends what follows the labels in a record: the first
// and last samples and the columns, each with its length.
func (a *windowAcc) appendWindows(rec []byte) []byte {
	rec = binary.LittleEndian.AppendUint64(rec, uint64(a.first.T))
	rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(a.first.V))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(a.prev.T))
	rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(a.prev.V))
	var col []byte
	appendCol := func() {
		rec = binary.AppendUvarint(rec, uint64(len(col)))
		rec = append(rec, col...)
		col = col[:0]
	}
	col = binary.AppendUvarint(col, uint64(len(a.wins)))
	next := a.first.T - mod(a.first.T, rollupWidth)
	for i := 0; i < len(a.wins); {
		t, j := a.wins[i].t, i+1
		for j < len(a.wins) && a.wins[j].t == t+int64(j-i)*rollupWidth {
			j++
		}
		col = binary.AppendUvarint(col, uint64((t-next)/rollupWidth))
		col = binary.AppendUvarint(col, uint64(j-i))
		next, i = t+int64(j-i)*rollupWidth, j
	}
	appendCol()
	for c := colN; c < numCols; c++ {
		a.ints, a.vals = a.ints[:0], a.vals[:0]
		for _, w := range a.wins {
			switch {
			case c == colN:
				a.ints = append(a.ints, uint64(w.n))
			case c == colRateShape:
				code := uint64(w.rateN) << 1
				if w.hasEntry {
					code |= 1
				}
				a.ints = append(a.ints, code)
			case c == colSum:
				a.vals = append(a.vals, w.sum)
			case c == colRateSum && w.rateN > 0:
				a.vals = append(a.vals, w.rateSum)
			case c == colEntryRate && w.hasEntry:
				a.vals = append(a.vals, w.entry)
			}
		}
		if c < colSum {
			col = appendInts(col, a.ints)
		} else {
			col = appendFloats(col, a.vals, &a.dict)
		}
		appendCol()
	}
	return rec
}

// Encodings of a column of small integers, one per window: the first
// byte of the column.
const (
	// intsRuns: uvarint pairs (values, value). With a regular scrape the
	// column is a single run.
	intsRuns = iota
	// intsBytes: a byte per value, when that is shorter (samples missed
	// now and then, a gauge's rate pairs).
	intsBytes
)

// appendInts appends vals as a column of small integers.
func appendInts(dst []byte, vals []uint64) []byte {
	start := len(dst)
	dst = append(dst, intsRuns)
	fitsByte := true
	for i := 0; i < len(vals); {
		v, j := vals[i], i+1
		for j < len(vals) && vals[j] == v {
			j++
		}
		dst = binary.AppendUvarint(dst, uint64(j-i))
		dst = binary.AppendUvarint(dst, v)
		fitsByte = fitsByte && v <= math.MaxUint8
		i = j
	}
	if fitsByte && len(dst)-start > 1+len(vals) {
		dst = append(dst[:start], intsBytes)
		for _, v := range vals {
			dst = append(dst, byte(v))
		}
	}
	return dst
}

// Encodings of a value column: the first byte of a non-empty column.
const (
	// floatsRaw: 8 bytes a value. Rates and sums of float samples have
	// about 7 significant bytes, so XOR (Gorilla) saves nearly nothing
	// on them, and raw values decode without a serial dependency.
	floatsRaw = iota
	// floatsXOR: per value, its bits XOR the previous value's (0 before
	// the first) cut to its significant bytes: Gorilla's encoding in
	// whole bytes, for repeated values and values with few significant
	// bits. The column holds the uvarint count of values, a header byte
	// per value (significant bytes << 4 | trailing zero bytes; 0 for an
	// equal value), then the significant bytes, big-endian. With the
	// headers apart, where a value's bytes start no longer waits on
	// reading the header before it, so values decode in parallel.
	floatsXOR
	// floatsDelta and floatsDeltaOfDelta: when every value is an integer
	// of at most 2^53 in magnitude (counters, their sums and often gauges
	// are), zigzag varints of the differences, or of the differences'
	// differences: a byte or two a value.
	floatsDelta
	floatsDeltaOfDelta
	// floatsDict: when there are at most 256 distinct values (a rate of
	// a counter that moves by a few steps at a steady scrape, a gauge of
	// a few levels), the uvarint number of them, each as 8 bytes, and a
	// byte per value indexing them.
	floatsDict
)

// appendFloats appends vals as a value column: the shortest encoding,
// but raw values unless another saves at least an eighth, since they
// decode fastest. dict is scratch for appendDict.
func appendFloats(dst []byte, vals []float64, dict *dictTable) []byte {
	if len(vals) == 0 {
		return dst
	}
	start := len(dst)
	dst = appendXOR(append(dst, floatsXOR), vals)
	best := dst[start:]
	if integral(vals) {
		for _, dod := range []bool{false, true} {
			enc := byte(floatsDelta)
			if dod {
				enc = floatsDeltaOfDelta
			}
			if c := appendDeltas([]byte{enc}, vals, dod); len(c) < len(best) {
				best = c
			}
		}
	}
	// A dictionary of m values takes 8m bytes and one per value.
	if m := min(256, (len(best)-3-len(vals))/8); m > 0 {
		if c, ok := appendDict([]byte{floatsDict}, vals, m, dict); ok && len(c) < len(best) {
			best = c
		}
	}
	raw := 1 + 8*len(vals)
	if len(best) > raw-raw/8 {
		dst = append(dst[:start], floatsRaw)
		for _, v := range vals {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
		return dst
	}
	if best[0] != floatsXOR {
		dst = append(dst[:start], best...)
	}
	return dst
}

// appendXOR appends vals as floatsXOR.
func appendXOR(dst []byte, vals []float64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vals)))
	hdr := len(dst)
	dst = append(dst, make([]byte, len(vals))...)
	var prev uint64
	for k, v := range vals {
		x := math.Float64bits(v) ^ prev
		prev = math.Float64bits(v)
		if x == 0 {
			continue // header 0
		}
		tz := bits.TrailingZeros64(x) / 8
		nb := 8 - bits.LeadingZeros64(x)/8 - tz
		dst[hdr+k] = byte(nb<<4 | tz)
		for i := nb - 1; i >= 0; i-- {
			dst = append(dst, byte(x>>(8*(tz+i))))
		}
	}
	return dst
}

// appendDict appends vals as floatsDict, or false if they have more than
// m distinct values (m <= 256).
func appendDict(dst []byte, vals []float64, m int, t *dictTable) ([]byte, bool) {
	clear(t.refs[:])
	var dict []uint64
	for _, v := range vals {
		b := math.Float64bits(v)
		if i := t.slot(b); t.refs[i] == 0 {
			if len(dict) == m {
				return nil, false
			}
			t.keys[i], t.refs[i] = b, uint16(len(dict)+1)
			dict = append(dict, b)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(dict)))
	for _, b := range dict {
		dst = binary.LittleEndian.AppendUint64(dst, b)
	}
	for _, v := range vals {
		dst = append(dst, byte(t.refs[t.slot(math.Float64bits(v))]-1))
	}
	return dst, true
}

// dictTable maps values to their dictionary indexes for appendDict: open
// addressing in twice as many slots as a dictionary has values, several
// times cheaper than a map for a column's few hundred values.
type dictTable struct {
	keys [512]uint64
	refs [512]uint16 // 1 + the index of the slot's key; 0: empty
}

// slot is where b is, or the empty slot where it goes.
func (t *dictTable) slot(b uint64) int {
	i := int(b * 0x9e3779b97f4a7c15 >> 55) // Fibonacci hashing to 9 bits
	for t.refs[i] != 0 && t.keys[i] != b {
		i = (i + 1) & 511
	}
	return i
}

// appendDeltas appends the integral vals' differences, or with dod their
// differences' differences, as zigzag varints.
func appendDeltas(dst []byte, vals []float64, dod bool) []byte {
	var prev, prevDelta int64
	for _, v := range vals {
		d := int64(v) - prev
		if dod {
			dst = binary.AppendVarint(dst, d-prevDelta)
		} else {
			dst = binary.AppendVarint(dst, d)
		}
		prev, prevDelta = int64(v), d
	}
	return dst
}

// integral tells whether every value is an integer that int64 and
// float64 both hold exactly (not -0, whose sign an int64 loses).
func integral(vals []float64) bool {
	for _, v := range vals {
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 || (v == 0 && math.Signbit(v)) {
			return false
		}
	}
	return true
}

// mod is the non-negative remainder, so windows align below zero too.
func mod(t, w int64) int64 {
	m := t % w
	if m < 0 {
		m += w
	}
	return m
}

// errRollupVersion marks a rollup file of another format version, which
// a server of this version rebuilds.
var errRollupVersion = errors.New("rollup of another format")

// errNoRollup marks a block a rollup cannot summarize.
var errNoRollup = errors.New("block cannot be rolled up")

// buildRollup writes the rollup of block b to path, atomically.
func buildRollup(ctx context.Context, b *tsdb.Block, path string) (err error) {
	meta := b.Meta()
	if meta.Stats.NumTombstones > 0 {
		return fmt.Errorf("%w: it has tombstones", errNoRollup)
	}
	ir, err := b.Index()
	if err != nil {
		return err
	}
	defer ir.Close()
	cr, err := b.Chunks()
	if err != nil {
		return err
	}
	defer cr.Close()
	name, value := index.AllPostingsKey()
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return err
	}

	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	var off uint64
	write := func(b []byte) {
		w.Write(b)
		off += uint64(len(b))
	}
	var hdr []byte
	hdr = append(hdr, rollupMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, rollupVersion)
	hdr = binary.LittleEndian.AppendUint64(hdr, rollupWidth)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(meta.MinTime))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(meta.MaxTime))
	write(hdr)

	var (
		table   []byte
		n       uint32
		sb      labels.ScratchBuilder
		chks    []chunks.Meta
		it      chunkenc.Iterator
		acc     windowAcc
		rec     []byte
		symbols []string
		symRefs = map[string]uint64{}
	)
	sym := func(s string) uint64 {
		r, ok := symRefs[s]
		if !ok {
			r = uint64(len(symbols))
			symRefs[s] = r
			symbols = append(symbols, s)
		}
		return r
	}
	for p.Next() {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ref := p.At()
		if err := ir.Series(ref, &sb, &chks); err != nil {
			return err
		}
		acc.reset()
		for _, m := range chks {
			if it, err = chunkIterator(cr, m, it); err != nil {
				return err
			}
			for {
				vt := it.Next()
				if vt == chunkenc.ValNone {
					break
				}
				if vt != chunkenc.ValFloat {
					return fmt.Errorf("%w: series %s has native histograms", errNoRollup, sb.Labels())
				}
				if err := acc.add(it.At()); err != nil {
					return fmt.Errorf("%w: series %s: %v", errNoRollup, sb.Labels(), err)
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
		if acc.count == 0 {
			continue
		}
		table = binary.LittleEndian.AppendUint64(table, uint64(ref))
		table = binary.LittleEndian.AppendUint64(table, off)
		n++
		lset := sb.Labels()
		rec = binary.AppendUvarint(rec[:0], uint64(lset.Len()))
		lset.Range(func(l labels.Label) {
			rec = binary.AppendUvarint(rec, sym(l.Name))
			rec = binary.AppendUvarint(rec, sym(l.Value))
		})
		write(acc.appendWindows(rec))
	}
	if err := p.Err(); err != nil {
		return err
	}
	symOff := off
	for _, s := range symbols {
		rec = binary.AppendUvarint(rec[:0], uint64(len(s)))
		write(append(rec, s...))
	}
	tableOff := off
	write(table)
	var foot []byte
	foot = binary.LittleEndian.AppendUint64(foot, symOff)
	foot = binary.LittleEndian.AppendUint32(foot, uint32(len(symbols)))
	foot = binary.LittleEndian.AppendUint64(foot, tableOff)
	foot = binary.LittleEndian.AppendUint32(foot, n)
	write(foot)
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Replace renames and fsyncs the directory, so the file survives a crash.
	return fileutil.Replace(tmp, path)
}

// rollupFile is an opened, verified rollup.
type rollupFile struct {
	mf         *fileutil.MmapFile
	b          []byte
	minT, maxT int64
	symbols    []string
	table      []byte // n × (ref, offset)
	recEnd     uint64 // records end where the symbols start

	// lsets keeps, by table position, the label sets appendLabels built,
	// so that later queries read them instead of building them again
	// (a string each, several per series and dashboard load). kept counts
	// their bytes in every file of a rollupSet, which caps it at
	// maxKeptLabels; nil keeps none.
	lsetsOnce sync.Once
	lsets     []atomic.Pointer[labels.Labels]
	keptBytes atomic.Int64
	kept      *atomic.Int64
}

// maxKeptLabels bounds the label sets rollup files keep (bytes of label
// text, all files together): a day's dashboards over a 100 k-series mesh
// need ~20 k series' labels in each of two or three blocks, ~15 MB.
const maxKeptLabels = 64 << 20

// openRollup maps a rollup file and checks its header, checksum, symbols
// and table.
func openRollup(path string) (*rollupFile, error) {
	mf, err := fileutil.OpenMmapFile(path)
	if err != nil {
		return nil, err
	}
	r, err := parseRollup(mf.Bytes())
	if err != nil {
		mf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.mf = mf
	return r, nil
}

// parseRollup checks b as a rollup file; record contents are checked as
// they are read.
func parseRollup(b []byte) (*rollupFile, error) {
	le := binary.LittleEndian
	if len(b) < rollupHeader+rollupFooter || string(b[:4]) != rollupMagic {
		return nil, errors.New("not a rollup file")
	}
	if v := le.Uint32(b[4:]); v != rollupVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errRollupVersion, v, rollupVersion)
	}
	if w := le.Uint64(b[8:]); w != rollupWidth {
		return nil, fmt.Errorf("rollup width %d ms, want %d", w, rollupWidth)
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), le.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	foot := body[len(body)-(rollupFooter-4):]
	symOff, nSym := le.Uint64(foot), uint64(le.Uint32(foot[8:]))
	tableOff, n := le.Uint64(foot[12:]), uint64(le.Uint32(foot[20:]))
	tableEnd := uint64(len(body) - (rollupFooter - 4))
	if symOff < rollupHeader || symOff > tableOff || tableOff > tableEnd || (tableEnd-tableOff) != n*16 {
		return nil, errors.New("bad section offsets")
	}
	r := &rollupFile{
		b:      b,
		minT:   int64(le.Uint64(b[16:])),
		maxT:   int64(le.Uint64(b[24:])),
		table:  b[tableOff:tableEnd],
		recEnd: symOff,
	}
	syms := b[symOff:tableOff]
	r.symbols = make([]string, 0, min(nSym, uint64(len(syms))))
	for range nSym {
		l, k := binary.Uvarint(syms)
		if k <= 0 || l > uint64(len(syms)-k) {
			return nil, errors.New("bad symbol table")
		}
		r.symbols = append(r.symbols, string(syms[k:k+int(l)]))
		syms = syms[k+int(l):]
	}
	if len(syms) != 0 {
		return nil, errors.New("bad symbol table")
	}
	return r, nil
}

func (r *rollupFile) close() error {
	if r.kept != nil {
		r.kept.Add(-r.keptBytes.Swap(0))
	}
	if r.mf == nil {
		return nil
	}
	return r.mf.Close()
}

// rollupRecord is one series' windows in a block.
type rollupRecord struct {
	pos         int    // in the table
	labels      []byte // uvarint symbol refs, name and value by turns
	nLabels     int
	first, last wql.Point
	cols        [numCols][]byte
}

// lookup finds the record of series ref; ok is false when the block had
// no samples for it.
func (r *rollupFile) lookup(ref storage.SeriesRef) (rollupRecord, bool, error) {
	pos := 0
	return r.lookupFrom(ref, &pos)
}

// lookupFrom is lookup for a ref no smaller than those looked up before
// with pos, which it moves to the ref's place in the table: a selection's
// series come in ascending refs, a few table entries apart, so galloping
// from the last one touches a few nearby entries where a binary search
// over the whole table misses the cache a dozen times.
func (r *rollupFile) lookupFrom(ref storage.SeriesRef, pos *int) (rec rollupRecord, ok bool, err error) {
	le := binary.LittleEndian
	n := len(r.table) / 16
	at := func(i int) uint64 { return le.Uint64(r.table[i*16:]) }
	lo, step := min(*pos, n), 1
	for lo+step < n && at(lo+step) < uint64(ref) {
		lo += step
		step *= 2
	}
	hi := min(lo+step, n)
	i := lo + sort.Search(hi-lo, func(i int) bool { return at(lo+i) >= uint64(ref) })
	*pos = i
	if i == n || at(i) != uint64(ref) {
		return rec, false, nil
	}
	off := le.Uint64(r.table[i*16+8:])
	if off < rollupHeader || off >= r.recEnd {
		return rec, false, errors.New("rollup record offset out of range")
	}
	b := r.b[off:r.recEnd]
	nl, k := binary.Uvarint(b)
	if k <= 0 || nl > uint64(len(b)) {
		return rec, false, errors.New("bad rollup labels")
	}
	b = b[k:]
	start := b
	for range 2 * nl {
		if _, k := binary.Uvarint(b); k <= 0 {
			return rec, false, errors.New("bad rollup labels")
		} else {
			b = b[k:]
		}
	}
	rec.pos, rec.labels, rec.nLabels = i, start[:len(start)-len(b)], int(nl)
	if err := rec.parseWindows(b); err != nil {
		return rec, false, err
	}
	return rec, true, nil
}

// parseWindows reads what follows the labels in a record (appendWindows).
func (rec *rollupRecord) parseWindows(b []byte) error {
	le := binary.LittleEndian
	if len(b) < 32 {
		return errors.New("rollup record out of range")
	}
	rec.first = wql.Point{T: int64(le.Uint64(b)), V: math.Float64frombits(le.Uint64(b[8:]))}
	rec.last = wql.Point{T: int64(le.Uint64(b[16:])), V: math.Float64frombits(le.Uint64(b[24:]))}
	b = b[32:]
	for c := range rec.cols {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return errors.New("rollup column out of range")
		}
		rec.cols[c] = b[k : k+int(l)]
		b = b[k+int(l):]
	}
	return nil
}

// appendLabels returns the record's label set: the one kept, or one built
// with sb (and kept while the budget allows).
func (r *rollupFile) appendLabels(rec *rollupRecord, sb *labels.ScratchBuilder) (labels.Labels, error) {
	if r.kept != nil {
		r.lsetsOnce.Do(func() { r.lsets = make([]atomic.Pointer[labels.Labels], len(r.table)/16) })
		if l := r.lsets[rec.pos].Load(); l != nil {
			return *l, nil
		}
	}
	sb.Reset()
	b := rec.labels
	for range rec.nLabels {
		nr, k := binary.Uvarint(b)
		vr, k2 := binary.Uvarint(b[k:])
		b = b[k+k2:]
		if nr >= uint64(len(r.symbols)) || vr >= uint64(len(r.symbols)) {
			return labels.EmptyLabels(), errors.New("rollup label symbol out of range")
		}
		sb.Add(r.symbols[nr], r.symbols[vr])
	}
	l := sb.Labels()
	if n := int64(l.ByteSize()); r.kept != nil && r.kept.Add(n) <= maxKeptLabels {
		if r.lsets[rec.pos].CompareAndSwap(nil, &l) {
			r.keptBytes.Add(n)
		} else {
			r.kept.Add(-n)
		}
	} else if r.kept != nil {
		r.kept.Add(-n)
	}
	return l, nil
}

// errRollupColumns marks a record whose columns do not fit together.
var errRollupColumns = errors.New("rollup columns differ")

// windowRun is a run of consecutive windows.
type windowRun struct {
	t       int64 // start of its first window
	windows int
}

// runReader reads a record's window runs.
type runReader struct {
	b     []byte
	total int   // windows in the record
	next  int64 // start of the window after the previous run
	left  int   // windows the runs still hold
}

// runs returns the reader of the record's window runs. The total is
// bounded by the sum column's size, a byte at least per window, so a
// damaged record cannot make a reader loop or allocate beyond its size.
func (rec *rollupRecord) runs() (runReader, error) {
	b := rec.cols[colRuns]
	total, k := binary.Uvarint(b)
	if k <= 0 || total > uint64(len(rec.cols[colSum])) {
		return runReader{}, errors.New("bad rollup window count")
	}
	t := rec.first.T
	return runReader{b: b[k:], total: int(total), next: t - mod(t, rollupWidth), left: int(total)}, nil
}

// read reads the next run into run; false after the last.
func (r *runReader) read(run *windowRun) (bool, error) {
	if len(r.b) == 0 {
		if r.left != 0 {
			return false, errRollupColumns
		}
		return false, nil
	}
	gap, k := binary.Uvarint(r.b)
	if k <= 0 {
		return false, errors.New("bad rollup window runs")
	}
	windows, k2 := binary.Uvarint(r.b[k:])
	if k2 <= 0 || windows == 0 || windows > uint64(r.left) {
		return false, errors.New("bad rollup window runs")
	}
	r.b = r.b[k+k2:]
	r.left -= int(windows)
	run.t = r.next + int64(gap)*rollupWidth
	run.windows = int(windows)
	r.next = run.t + int64(windows)*rollupWidth
	return true, nil
}

// intReader decodes a column of small integers (appendInts).
type intReader struct {
	b     []byte
	bytes bool   // intsBytes
	value uint32 // intsRuns: the current run's value
	left  int    // intsRuns: and how many more of it
}

func newIntReader(b []byte) (intReader, error) {
	if len(b) == 0 || b[0] > intsBytes {
		return intReader{}, errors.New("bad rollup count column")
	}
	return intReader{b: b[1:], bytes: b[0] == intsBytes}, nil
}

// fill decodes the next len(out) values into out; false if the column
// holds fewer or is damaged.
func (r *intReader) fill(out []uint32) bool {
	if r.bytes {
		if len(out) > len(r.b) {
			return false
		}
		for i, c := range r.b[:len(out)] {
			out[i] = uint32(c)
		}
		r.b = r.b[len(out):]
		return true
	}
	for len(out) > 0 {
		if r.left == 0 {
			n, k := binary.Uvarint(r.b)
			if k <= 0 || n > math.MaxInt32 {
				return false
			}
			v, k2 := binary.Uvarint(r.b[k:])
			if k2 <= 0 || v > math.MaxUint32 {
				return false
			}
			r.b, r.left, r.value = r.b[k+k2:], int(n), uint32(v)
			continue
		}
		k := min(r.left, len(out))
		for i := range out[:k] {
			out[i] = r.value
		}
		out, r.left = out[k:], r.left-k
	}
	return true
}

// done tells whether every value was read.
func (r *intReader) done() bool { return r.left == 0 && len(r.b) == 0 }

// floatReader decodes a value column (appendFloats).
type floatReader struct {
	b         []byte
	enc       byte
	hdr       []byte // floatsXOR: the headers of the values to come
	dict      []byte // floatsDict: the values, 8 bytes each
	prevBits  uint64 // floatsXOR: the previous value
	prevInt   int64  // floatsDelta…: the previous value
	prevDelta int64  // floatsDeltaOfDelta: the previous difference
}

func newFloatReader(b []byte) (floatReader, error) {
	if len(b) == 0 {
		return floatReader{}, nil // no values
	}
	f := floatReader{b: b[1:], enc: b[0]}
	switch f.enc {
	case floatsRaw, floatsDelta, floatsDeltaOfDelta:
	case floatsDict:
		n, k := binary.Uvarint(f.b)
		if k <= 0 || n == 0 || n > 256 || 8*n > uint64(len(f.b)-k) {
			return f, errors.New("bad rollup value dictionary")
		}
		f.dict, f.b = f.b[k:k+8*int(n)], f.b[k+8*int(n):]
	case floatsXOR:
		n, k := binary.Uvarint(f.b)
		if k <= 0 || n > uint64(len(f.b)-k) {
			return f, errors.New("bad rollup value column")
		}
		f.hdr, f.b = f.b[k:k+int(n)], f.b[k+int(n):]
	default:
		return f, fmt.Errorf("unknown rollup column encoding %d", b[0])
	}
	return f, nil
}

// fill decodes the next len(out) values into out; false if the column
// holds fewer or is damaged. Decoding a batch at a time keeps the state
// in registers and the loops free of calls.
func (f *floatReader) fill(out []float64) bool {
	b := f.b
	switch f.enc {
	case floatsRaw:
		if len(b) < 8*len(out) {
			return false
		}
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		f.b = b[8*len(out):]
		return true
	case floatsDict:
		if len(b) < len(out) {
			return false
		}
		dict := f.dict
		for k, c := range b[:len(out)] {
			if 8*int(c)+8 > len(dict) {
				return false
			}
			out[k] = math.Float64frombits(binary.LittleEndian.Uint64(dict[8*int(c):]))
		}
		f.b = b[len(out):]
		return true
	case floatsXOR:
		if len(out) > len(f.hdr) {
			return false
		}
		x, i := f.prevBits, 0
		for k, h := range f.hdr[:len(out)] {
			nb, tz := uint(h>>4), uint(h&15)
			if nb+tz > 8 {
				return false
			}
			if i+8 <= len(b) {
				// nb = 0 (an equal value) shifts the word out entirely.
				x ^= binary.BigEndian.Uint64(b[i:]) >> (64 - 8*nb) << (8 * tz)
			} else {
				// The column's last bytes: one by one.
				if i+int(nb) > len(b) {
					return false
				}
				var w uint64
				for _, c := range b[i : i+int(nb)] {
					w = w<<8 | uint64(c)
				}
				x ^= w << (8 * tz)
			}
			i += int(nb)
			out[k] = math.Float64frombits(x)
		}
		f.b, f.hdr, f.prevBits = b[i:], f.hdr[len(out):], x
		return true
	}
	dod := f.enc == floatsDeltaOfDelta
	v, d, i := f.prevInt, f.prevDelta, 0
	for k := range out {
		if i >= len(b) {
			return false
		}
		u := uint64(b[i])
		switch {
		case u < 0x80:
			i++
		case i+1 < len(b) && b[i+1] < 0x80:
			u = u&0x7f | uint64(b[i+1])<<7
			i += 2
		default:
			var n int
			if u, n = binary.Uvarint(b[i:]); n <= 0 {
				return false
			}
			i += n
		}
		dd := int64(u>>1) ^ -int64(u&1) // zigzag
		if dod {
			d += dd
		} else {
			d = dd
		}
		v += d
		out[k] = float64(v)
	}
	f.b, f.prevInt, f.prevDelta = b[i:], v, d
	return true
}

// done tells whether every value was read.
func (f *floatReader) done() bool { return len(f.b) == 0 && len(f.hdr) == 0 }

// decodeBatch is how many windows the readers decode at a time.
const decodeBatch = 128

// meanWindows appends the (sum, n) windows starting at or after from.
func (rec *rollupRecord) meanWindows(dst []wql.Window, from int64) ([]wql.Window, error) {
	runs, err := rec.runs()
	if err != nil {
		return dst, err
	}
	ns, err := newIntReader(rec.cols[colN])
	if err != nil {
		return dst, err
	}
	sums, err := newFloatReader(rec.cols[colSum])
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, runs.total)
	var (
		run     windowRun
		nBuf    [decodeBatch]uint32
		sumsBuf [decodeBatch]float64
	)
	for {
		if ok, err := runs.read(&run); err != nil || !ok {
			if err == nil && !(ns.done() && sums.done()) {
				err = errRollupColumns
			}
			return dst, err
		}
		t := run.t
		for left := run.windows; left > 0; {
			k := min(left, decodeBatch)
			left -= k
			n, sum := nBuf[:k], sumsBuf[:k]
			if !ns.fill(n) || !sums.fill(sum) {
				return dst, errRollupColumns
			}
			for j, n := range n {
				if n == 0 {
					return dst, errRollupColumns
				}
				if t >= from {
					dst = append(dst, wql.Window{T: t, Sum: sum[j], N: float64(n)})
				}
				t += rollupWidth
			}
		}
	}
}

// firstWindowFrom is the start of the first window at or after from that
// holds a sample, or false.
func (rec *rollupRecord) firstWindowFrom(from int64) (int64, bool, error) {
	runs, err := rec.runs()
	if err != nil {
		return 0, false, err
	}
	var run windowRun
	for {
		if ok, err := runs.read(&run); err != nil || !ok {
			return 0, false, err
		}
		if last := run.t + int64(run.windows-1)*rollupWidth; last >= from {
			if run.t >= from {
				return run.t, true, nil
			}
			return last - (last-from)/rollupWidth*rollupWidth, true, nil
		}
	}
}

// rateWindows appends the rate windows starting at or after from, leaving
// out the pair that enters window skip (its earlier sample is before the
// range).
func (rec *rollupRecord) rateWindows(dst []wql.Window, from, skip int64) ([]wql.Window, error) {
	runs, err := rec.runs()
	if err != nil {
		return dst, err
	}
	shapes, err := newIntReader(rec.cols[colRateShape])
	if err != nil {
		return dst, err
	}
	inner, err := newFloatReader(rec.cols[colRateSum])
	if err != nil {
		return dst, err
	}
	entries, err := newFloatReader(rec.cols[colEntryRate])
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, runs.total)
	var (
		run                windowRun
		shapeBuf           [decodeBatch]uint32
		innerBuf, entryBuf [decodeBatch]float64
	)
	for {
		if ok, err := runs.read(&run); err != nil || !ok {
			if err == nil && !(shapes.done() && inner.done() && entries.done()) {
				err = errRollupColumns
			}
			return dst, err
		}
		t := run.t
		for left := run.windows; left > 0; {
			k := min(left, decodeBatch)
			left -= k
			shape := shapeBuf[:k]
			if !shapes.fill(shape) {
				return dst, errRollupColumns
			}
			nInner, nEntry := 0, 0
			for _, c := range shape {
				if c > 1 {
					nInner++
				}
				nEntry += int(c & 1)
			}
			if !inner.fill(innerBuf[:nInner]) || !entries.fill(entryBuf[:nEntry]) {
				return dst, errRollupColumns
			}
			nInner, nEntry = 0, 0
			for _, c := range shape {
				var sum, n float64
				if c > 1 {
					sum, n = innerBuf[nInner], float64(c>>1)
					nInner++
				}
				if c&1 != 0 {
					if t != skip {
						// Summed first, as rate() meets it first.
						sum, n = entryBuf[nEntry]+sum, n+1
					}
					nEntry++
				}
				if t >= from && n > 0 {
					dst = append(dst, wql.Window{T: t, Sum: sum, N: n})
				}
				t += rollupWidth
			}
		}
	}
}

// rollupSet keeps the rollup of every persisted block: sync builds what
// is missing and drops what belongs to blocks the tsdb has deleted.
// Queries hold mu for reading while they use a file, so a file is never
// unmapped under them.
type rollupSet struct {
	dir string
	log *slog.Logger
	m   rollupMetrics

	syncMu sync.Mutex // one sync at a time
	mu     sync.RWMutex
	files  map[string]*rollupFile // by block ULID
	// skip remembers blocks that cannot be rolled up, so sync does not
	// read them again and again.
	skip map[string]bool
	// head holds the tsdb head's closed windows (headcache.go).
	head *headCache
	// keptLabels is the bytes of label sets the files keep.
	keptLabels atomic.Int64
}

type rollupMetrics struct {
	blocks         prometheus.Gauge
	builds, errors prometheus.Counter
	buildSeconds   prometheus.Counter
}

func newRollupSet(dir string, log *slog.Logger, reg prometheus.Registerer) (*rollupSet, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := rollupMetrics{
		blocks:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshwave_server_rollup_blocks", Help: "Persisted tsdb blocks with a 5-minute rollup that queries use."}),
		builds:       prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_server_rollup_builds_total", Help: "Rollups built from tsdb blocks."}),
		errors:       prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_server_rollup_errors_total", Help: "Rollups that failed to build or load; queries read those blocks' samples."}),
		buildSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshwave_server_rollup_build_seconds_total", Help: "Time spent building rollups."}),
	}
	reg.MustRegister(m.blocks, m.builds, m.errors, m.buildSeconds)
	return &rollupSet{dir: dir, log: log, m: m, files: map[string]*rollupFile{}, skip: map[string]bool{}, head: newHeadCache()}, nil
}

// sync brings the set in line with the tsdb's blocks.
func (r *rollupSet) sync(ctx context.Context, blocks []*tsdb.Block) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	live := map[string]bool{}
	for _, b := range blocks {
		id := b.Meta().ULID.String()
		live[id] = true
		r.mu.RLock()
		_, have := r.files[id]
		r.mu.RUnlock()
		if have || r.skip[id] {
			continue
		}
		f, err := r.load(ctx, b, id)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoRollup):
			r.log.Info("block not rolled up; queries read its samples", "block", id, "err", err)
			r.skip[id] = true
			continue
		case err != nil:
			r.m.errors.Inc()
			r.log.Error("rollup failed; queries read the block's samples", "block", id, "err", err)
			continue
		}
		r.mu.Lock()
		r.files[id] = f
		r.mu.Unlock()
	}
	r.mu.Lock()
	for id, f := range r.files {
		if !live[id] {
			f.close()
			delete(r.files, id)
		}
	}
	r.m.blocks.Set(float64(len(r.files)))
	r.mu.Unlock()
	for id := range r.skip {
		if !live[id] {
			delete(r.skip, id)
		}
	}
	r.removeOrphans(live)
}

// load opens the block's rollup, building it first if there is none or
// the one there is unreadable.
func (r *rollupSet) load(ctx context.Context, b *tsdb.Block, id string) (*rollupFile, error) {
	path := filepath.Join(r.dir, id+rollupExt)
	switch f, err := openRollup(path); {
	case err == nil:
		f.kept = &r.keptLabels
		return f, nil
	case errors.Is(err, errRollupVersion):
		r.log.Info("rebuilding rollup of another format", "err", err)
	case !errors.Is(err, os.ErrNotExist):
		r.log.Warn("rebuilding unreadable rollup", "err", err)
	}
	t0 := time.Now()
	if err := buildRollup(ctx, b, path); err != nil {
		return nil, err
	}
	r.m.builds.Inc()
	r.m.buildSeconds.Add(time.Since(t0).Seconds())
	r.log.Debug("rolled up block", "block", id, "took", time.Since(t0))
	f, err := openRollup(path)
	if err == nil {
		f.kept = &r.keptLabels
	}
	return f, err
}

// removeOrphans deletes the files of blocks that are gone, and temporary
// files a crash left behind.
func (r *rollupSet) removeOrphans(live map[string]bool) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), rollupExt)
		if ok && live[id] {
			continue
		}
		os.Remove(filepath.Join(r.dir, e.Name()))
	}
}

// get returns the rollup of block id, or nil; the caller holds mu.RLock.
func (r *rollupSet) get(id string) *rollupFile { return r.files[id] }

func (r *rollupSet) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, f := range r.files {
		f.close()
		delete(r.files, id)
	}
}
