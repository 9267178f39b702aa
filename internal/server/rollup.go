package server

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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
// block, which a query starting at the window must leave out. Each
// column is a Prometheus XOR chunk stamped with the window start, so the
// file costs about what the raw samples of a fifth of the time do. The
// record also keeps the series' labels (as references into the file's
// symbol table) and its first and last sample, so a query reads neither
// the block's index entries nor its chunks.
//
// File layout (little-endian):
//
//	header  "MWRU" u32 version, i64 width, i64 minT, i64 maxT
//	records per series: uvarint label count, uvarint symbol refs (name,
//	        value, ...), i64 firstT, f64 firstV, i64 lastT, f64 lastV,
//	        then 5 columns (sum, n, inner rate sum, inner rate n, entry
//	        rate), each uvarint length + XOR chunk
//	symbols uvarint length + bytes each
//	table   per series, by ascending ref: u64 ref, u64 record offset
//	footer  u64 symbols offset, u32 symbols, u64 table offset,
//	        u32 series, u32 CRC-32C of all before it
const (
	rollupWidth   = 5 * 60 * 1000
	rollupMagic   = "MWRU"
	rollupVersion = 2
	rollupHeader  = 32
	rollupFooter  = 28
	rollupExt     = ".rollup"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Columns of a rollup record.
const (
	colSum = iota
	colN
	colRateSum   // rates of pairs inside the window
	colRateN     // their count
	colEntryRate // rate of the pair from an earlier window, if rate() keeps it
	numCols
)

// windowAcc accumulates one series' windows while a block is read.
type windowAcc struct {
	cols   [numCols]*chunkenc.XORChunk
	apps   [numCols]chunkenc.Appender
	t      int64 // current window start; -1 before the first sample
	sum, n float64
	rs, rn float64
	first  wql.Point
	prev   wql.Point
	count  int
}

func (a *windowAcc) reset() error {
	for i := range a.cols {
		a.cols[i] = chunkenc.NewXORChunk()
		app, err := a.cols[i].Appender()
		if err != nil {
			return err
		}
		a.apps[i] = app
	}
	a.t, a.count = -1, 0
	return nil
}

func (a *windowAcc) add(t int64, v float64) error {
	if a.count > 0 && t <= a.prev.T {
		return fmt.Errorf("samples out of order at %d", t)
	}
	p := wql.Point{T: t, V: v}
	w := t - mod(t, rollupWidth)
	entering := w != a.t
	if entering {
		a.flush()
		a.t, a.sum, a.n, a.rs, a.rn = w, 0, 0, 0, 0
	}
	a.sum += v
	a.n++
	if a.count == 0 {
		a.first = p
	} else if r, ok := wql.RatePair(a.prev, p); ok {
		if entering {
			a.apps[colEntryRate].Append(0, w, r)
		} else {
			a.rs += r
			a.rn++
		}
	}
	a.prev = p
	a.count++
	return nil
}

func (a *windowAcc) flush() {
	if a.t < 0 || a.n == 0 {
		return
	}
	a.apps[colSum].Append(0, a.t, a.sum)
	a.apps[colN].Append(0, a.t, a.n)
	if a.rn > 0 {
		a.apps[colRateSum].Append(0, a.t, a.rs)
		a.apps[colRateN].Append(0, a.t, a.rn)
	}
}

// mod is the non-negative remainder, so windows align below zero too.
func mod(t, w int64) int64 {
	m := t % w
	if m < 0 {
		m += w
	}
	return m
}

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
		if err := acc.reset(); err != nil {
			return err
		}
		for _, m := range chks {
			c, iterable, err := cr.ChunkOrIterable(m)
			if err != nil {
				return err
			}
			if iterable != nil {
				it = iterable.Iterator(it)
			} else {
				it = c.Iterator(it)
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
		acc.flush()
		table = binary.LittleEndian.AppendUint64(table, uint64(ref))
		table = binary.LittleEndian.AppendUint64(table, off)
		n++
		lset := sb.Labels()
		rec = binary.AppendUvarint(rec[:0], uint64(lset.Len()))
		lset.Range(func(l labels.Label) {
			rec = binary.AppendUvarint(rec, sym(l.Name))
			rec = binary.AppendUvarint(rec, sym(l.Value))
		})
		rec = binary.LittleEndian.AppendUint64(rec, uint64(acc.first.T))
		rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(acc.first.V))
		rec = binary.LittleEndian.AppendUint64(rec, uint64(acc.prev.T))
		rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(acc.prev.V))
		for _, c := range acc.cols {
			rec = binary.AppendUvarint(rec, uint64(len(c.Bytes())))
			rec = append(rec, c.Bytes()...)
		}
		write(rec)
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
}

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
		return nil, fmt.Errorf("rollup version %d, want %d", v, rollupVersion)
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
	if r.mf == nil {
		return nil
	}
	return r.mf.Close()
}

// rollupRecord is one series' windows in a block.
type rollupRecord struct {
	labels      []byte // uvarint symbol refs, name and value by turns
	nLabels     int
	first, last wql.Point
	cols        [numCols][]byte
}

// lookup finds the record of series ref; ok is false when the block had
// no samples for it.
func (r *rollupFile) lookup(ref storage.SeriesRef) (rec rollupRecord, ok bool, err error) {
	le := binary.LittleEndian
	n := len(r.table) / 16
	i := sort.Search(n, func(i int) bool { return le.Uint64(r.table[i*16:]) >= uint64(ref) })
	if i == n || le.Uint64(r.table[i*16:]) != uint64(ref) {
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
	rec.labels, rec.nLabels = start[:len(start)-len(b)], int(nl)
	if len(b) < 32 {
		return rec, false, errors.New("rollup record out of range")
	}
	rec.first = wql.Point{T: int64(le.Uint64(b)), V: math.Float64frombits(le.Uint64(b[8:]))}
	rec.last = wql.Point{T: int64(le.Uint64(b[16:])), V: math.Float64frombits(le.Uint64(b[24:]))}
	b = b[32:]
	for c := range rec.cols {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return rec, false, errors.New("rollup column out of range")
		}
		rec.cols[c] = b[k : k+int(l)]
		b = b[k+int(l):]
	}
	return rec, true, nil
}

// appendLabels builds the record's label set with sb.
func (r *rollupFile) appendLabels(rec *rollupRecord, sb *labels.ScratchBuilder) (labels.Labels, error) {
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
	return sb.Labels(), nil
}

// xorIter returns an iterator over column c, reusing it.
func (rec *rollupRecord) xorIter(c int, it chunkenc.Iterator) (chunkenc.Iterator, error) {
	chk, err := chunkenc.FromData(chunkenc.EncXOR, rec.cols[c])
	if err != nil {
		return nil, err
	}
	return chk.Iterator(it), nil
}

// meanWindows appends the (sum, n) windows starting at or after from.
func (rec *rollupRecord) meanWindows(dst []wql.Window, from int64, its *[3]chunkenc.Iterator) ([]wql.Window, error) {
	si, err := rec.xorIter(colSum, its[0])
	if err != nil {
		return dst, err
	}
	ni, err := rec.xorIter(colN, its[1])
	if err != nil {
		return dst, err
	}
	its[0], its[1] = si, ni
	for si.Next() == chunkenc.ValFloat {
		if ni.Next() != chunkenc.ValFloat {
			return dst, errors.New("rollup columns differ in length")
		}
		t, sum := si.At()
		if tn, n := ni.At(); tn != t || n <= 0 {
			return dst, errors.New("rollup columns differ")
		} else if t >= from {
			dst = append(dst, wql.Window{T: t, Sum: sum, N: n})
		}
	}
	return dst, cmp.Or(si.Err(), ni.Err())
}

// firstWindowFrom is the start of the first window at or after from that
// holds a sample, or false.
func (rec *rollupRecord) firstWindowFrom(from int64, it chunkenc.Iterator) (int64, bool, error) {
	ni, err := rec.xorIter(colN, it)
	if err != nil {
		return 0, false, err
	}
	for ni.Next() == chunkenc.ValFloat {
		if t, _ := ni.At(); t >= from {
			return t, true, nil
		}
	}
	return 0, false, ni.Err()
}

// rateWindows appends the rate windows starting at or after from, leaving
// out the pair that enters window skip (its earlier sample is before the
// range).
func (rec *rollupRecord) rateWindows(dst []wql.Window, from, skip int64, its *[3]chunkenc.Iterator) ([]wql.Window, error) {
	si, err := rec.xorIter(colRateSum, its[0])
	if err != nil {
		return dst, err
	}
	ni, err := rec.xorIter(colRateN, its[1])
	if err != nil {
		return dst, err
	}
	ei, err := rec.xorIter(colEntryRate, its[2])
	if err != nil {
		return dst, err
	}
	its[0], its[1], its[2] = si, ni, ei
	// Merge the inner sums with the entry rates by window start; either
	// may be missing for a window.
	const done = math.MaxInt64
	next := func(it chunkenc.Iterator) (int64, float64) {
		if it.Next() != chunkenc.ValFloat {
			return done, 0
		}
		return it.At()
	}
	st, sum := next(si)
	et, entry := next(ei)
	for st != done || et != done {
		t := min(st, et)
		var w wql.Window
		w.T = t
		if st == t {
			tn, n := next(ni)
			if tn != t {
				return dst, errors.New("rollup columns differ")
			}
			w.Sum, w.N = sum, n
			st, sum = next(si)
		}
		if et == t {
			if t != skip {
				// Summed first, as rate() meets it first.
				w.Sum, w.N = entry+w.Sum, w.N+1
			}
			et, entry = next(ei)
		}
		if t >= from && w.N > 0 {
			dst = append(dst, w)
		}
	}
	return dst, cmp.Or(si.Err(), ni.Err(), ei.Err())
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
	return &rollupSet{dir: dir, log: log, m: m, files: map[string]*rollupFile{}, skip: map[string]bool{}}, nil
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
	if f, err := openRollup(path); err == nil {
		return f, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("rebuilding unreadable rollup", "err", err)
	}
	t0 := time.Now()
	if err := buildRollup(ctx, b, path); err != nil {
		return nil, err
	}
	r.m.builds.Inc()
	r.m.buildSeconds.Add(time.Since(t0).Seconds())
	r.log.Debug("rolled up block", "block", id, "took", time.Since(t0))
	return openRollup(path)
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
