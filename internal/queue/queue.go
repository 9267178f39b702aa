package queue

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/meshwave/meshwave/internal/segfile"
)

// Errors returned by the queue.
var (
	ErrClosed    = errors.New("queue: closed")
	ErrTooLarge  = errors.New("queue: record larger than a segment")
	ErrAckOrder  = errors.New("queue: batch acknowledged out of order")
	ErrNotSealed = errors.New("queue: frame not sealed (its header does not give its length)")
)

const (
	// Each new segment costs a create, a preallocation and two fsyncs, and
	// sealing one an fdatasync that blocks its appender: at 8 MiB a proxy
	// ingesting 200 MB/s rotated 25 times a second, ~8 % of its CPU. At
	// 32 MiB TCP ingest gained ~1.1× per CPU-second (BENCHMARKS.md), while
	// a segment is still a small part of the default 8 GiB bound. (With
	// the proxy's compressed records a segment now holds 6-10× more.)
	defaultSegmentBytes = 32 << 20
	defaultWrittenSync  = 100 * time.Millisecond
	minSegmentBytes     = 1 << 10
	dropLogEvery        = 10 * time.Second
)

// Options configure a Queue. The zero value is usable.
type Options struct {
	// MaxBytes bounds the segment files on disk. When a new segment would
	// overflow it, the oldest segments are deleted first, with their
	// unacknowledged records counted and logged. 0 means no bound.
	// SegmentBytes is lowered to MaxBytes/4 if larger, so the bound is
	// kept to within a quarter.
	MaxBytes int64
	// SegmentBytes is the size at which a segment file is sealed and a new
	// one started (default 32 MiB). A record must fit in one segment.
	SegmentBytes int64
	// SyncInterval is how long a commit lingers after the first pending
	// Append to gather more before it writes and fsyncs. Appends that
	// arrive while an fsync runs always share the next one, so the default
	// 0 already gives group commit without delaying a lone appender; a
	// positive value only helps on disks whose fsync is much cheaper than
	// the arrival interval.
	SyncInterval time.Duration
	// WrittenSync bounds how long records appended with
	// AppendFramesWrittenAsync stay written but not fsync'd: the writer
	// fsyncs them this long after the first of them at the latest, or
	// sooner with the next Append that waits for durability (default
	// 100 ms, the journal commit interval databases such as MongoDB use
	// for the same trade: that much of the newest data can be lost to a
	// power failure or kernel crash, none to a process crash).
	WrittenSync time.Duration
	Logger      *slog.Logger // default slog.Default()
	Metrics     *Metrics     // optional
}

// segment is the published state of one segment file. Only records below
// size are visible to readers: the writer publishes them once they are
// written (whole, in the kernel's page cache), before or after their fsync.
type segment struct {
	seq      uint64
	firstIdx int64 // in-memory index of its first record
	count    int64
	size     int64
	sealed   bool // a later segment exists; this one is never written again
}

// Queue is a durable FIFO of opaque records; see the package doc.
type Queue struct {
	dir      string
	opt      Options
	log      *slog.Logger
	m        *Metrics
	lockFile *os.File
	maxRec   int64

	// The write state: only the committer (the goroutine that set
	// committing, or was handed it; see lead) touches it, and Open and
	// Close around the writer goroutine.
	wf       *os.File
	vw       vecWriter
	vec      [][]byte // the commit's buffers not yet written, in order
	hdrs     []byte   // the record headers of the commit's unsealed records
	wseq     uint64
	wsize    int64 // bytes written to wf, synced or not
	wend     int64 // wf's size: wsize and the zeros written after it (keepZeroedAhead)
	zeroRoom bool  // the file system overwrites in place, so keepZeroedAhead pays
	syncedAt int64 // wsize at wf's last fsync
	perSync  int64 // bytes written per fsync, a moving average
	wcount   int64
	werr     error        // sticky: the segment could not be restored after a failed write
	unsynced bool         // wf has records written but not yet fsync'd
	group    []*appendReq // the spare pending slice
	drops    dropLog
	reqPool  sync.Pool
	writerOK chan struct{} // closed when the writer goroutine exits

	pmu        sync.Mutex // guards pending, committing, closing and syncArmed
	pending    []*appendReq
	committing bool // a goroutine holds the write state
	closing    bool
	syncArmed  bool // the writer goroutine's fsync timer for written records runs
	wake       chan struct{}

	mu        sync.Mutex
	segs      []segment // oldest first; the last is the write segment
	diskBytes int64
	ack       position // first unacknowledged record; ack.seq == segs[0].seq
	ackIdx    int64
	rd        position // next record Read returns
	rdIdx     int64
	batchIdx  int64  // start index of the next batch (< rdIdx only after skipping corrupt records)
	epoch     uint64 // bumped by Nack so a Read racing with it starts over
	notify    chan struct{}
	shut      bool

	rmu    sync.Mutex // serialises Read's file I/O
	reader *segReader
	free   []*batchBuf // recycled batch buffers, guarded by mu

	amu    sync.Mutex // serialises Ack's cursor writes and deletions
	cursor *cursorFile
}

type appendReq struct {
	recs    [][]byte
	sealed  bool // recs are frames (Seal)
	written bool // done once written: the fsync may come later (AppendFramesWrittenAsync)
	done    chan error
	then    func(error) // instead of done, for AppendFramesAsync
}

// Batch is a run of consecutive records returned by Read. Records alias a
// buffer owned by the queue and stay valid until the batch is passed to
// Ack or Nack; copy them to keep them longer.
type Batch struct {
	Records [][]byte
	start   int64 // index of the first record, or of skipped corrupt ones
	end     int64 // index after the last record
	endPos  position
	buf     *batchBuf
	gen     uint64
}

// Bytes is the payload size of the batch.
func (b Batch) Bytes() int {
	n := 0
	for _, r := range b.Records {
		n += len(r)
	}
	return n
}

// batchBuf is recycled once its batch is acked or nacked; gen makes a
// second Ack or Nack of the same batch harmless.
type batchBuf struct {
	data []byte
	ends []int
	recs [][]byte
	gen  uint64
}

// Open opens or creates the queue in dir. It recovers from a crash:
// segments before the persisted cursor are deleted, a torn or damaged
// tail of the newest segment is truncated (logged and counted), and
// reading resumes at the cursor, so unacknowledged records are delivered
// again. Only the newest segment is checksummed here; older ones are
// checked record by record as they are read.
func Open(dir string, opt Options) (*Queue, error) {
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = defaultSegmentBytes
	}
	if opt.MaxBytes > 0 && opt.SegmentBytes > opt.MaxBytes/4 {
		opt.SegmentBytes = opt.MaxBytes / 4
	}
	opt.SegmentBytes = max(opt.SegmentBytes, minSegmentBytes)
	if opt.WrittenSync <= 0 {
		opt.WrittenSync = defaultWrittenSync
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lf, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		dir:      dir,
		opt:      opt,
		log:      opt.Logger.With("queue", dir),
		m:        opt.Metrics,
		lockFile: lf,
		maxRec:   min(opt.SegmentBytes-segHdrSize-recHdrSize, lenMask),
		zeroRoom: overwritesInPlace(dir),
		wake:     make(chan struct{}, 1),
		writerOK: make(chan struct{}),
		notify:   make(chan struct{}),
		reader:   newSegReader(),
	}
	q.reqPool.New = func() any { return &appendReq{done: make(chan error, 1)} }
	if err := q.recover(); err != nil {
		q.closeFiles()
		return nil, err
	}
	go q.writeLoop()
	return q, nil
}

func (q *Queue) recover() error {
	cur, cpos, cok, err := openCursor(q.dir)
	if err != nil {
		return err
	}
	q.cursor = cur
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return err
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseSegName(e.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	removed := false
	for len(seqs) > 0 && cok && seqs[0] < cpos.seq {
		// Acknowledged, but the process died before deleting it.
		if err := os.Remove(segPath(q.dir, seqs[0])); err != nil {
			return err
		}
		seqs, removed = seqs[1:], true
	}
	next := uint64(1)
	if cok {
		next = cpos.seq + 1
	}
	var idx int64
	for i, seq := range seqs {
		last := i == len(seqs)-1
		probe := int64(-1)
		if cok && seq == cpos.seq {
			probe = cpos.off
		}
		seg, res, ok, err := q.recoverSegment(seq, last, probe)
		if err != nil {
			return err
		}
		if !ok {
			removed = true
			continue
		}
		seg.firstIdx = idx
		idx += seg.count
		if len(q.segs) == 0 {
			// The cursor points into the oldest surviving segment, or it
			// predates it (the segments it pointed into are gone).
			q.ack, q.ackIdx = position{seq, segHdrSize}, seg.firstIdx
			if probe >= 0 {
				if res.boundary != probe {
					q.log.Warn("queue cursor is not at a record boundary; re-delivering from the previous record",
						"segment", segName(seq), "cursor", probe, "boundary", res.boundary)
				}
				q.ack.off, q.ackIdx = res.boundary, seg.firstIdx+res.before
			}
		}
		q.segs = append(q.segs, seg)
		q.diskBytes += seg.size
		next = max(next, seq+1)
	}
	if removed {
		if err := segfile.SyncDir(q.dir); err != nil {
			return err
		}
	}
	if n := len(q.segs); n > 0 && q.segs[n-1].size >= segHdrSize {
		last := q.segs[n-1]
		f, err := os.OpenFile(segPath(q.dir, last.seq), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.Seek(last.size, io.SeekStart); err != nil {
			f.Close()
			return err
		}
		q.wf, q.wseq, q.wsize, q.wcount, q.wend, q.syncedAt = f, last.seq, last.size, last.count, last.size, last.size
		for i := range q.segs[:n-1] {
			q.segs[i].sealed = true
		}
	} else if err := q.createSegment(next); err != nil {
		return err
	}
	q.rd, q.rdIdx, q.batchIdx = q.ack, q.ackIdx, q.ackIdx
	q.mu.Lock()
	q.dropForRoom(q.opt.SegmentBytes - q.segs[len(q.segs)-1].size)
	q.updateGauges()
	q.mu.Unlock()
	return q.cursor.write(q.ack)
}

// recoverSegment validates one segment at Open. The newest one (last) is
// checksummed and truncated after its last valid record; older ones are
// only length-checked. A file without a valid header that is not the
// newest is deleted (ok=false); the newest is reset to empty.
func (q *Queue) recoverSegment(seq uint64, last bool, probe int64) (segment, scanResult, bool, error) {
	path := segPath(q.dir, seq)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return segment{}, scanResult{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, scanResult{}, false, err
	}
	size := fi.Size()
	var magic [segHdrSize]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != segMagic {
		q.tornLog(segName(seq), 0, size, "bad segment header")
		if !last {
			return segment{}, scanResult{}, false, os.Remove(path)
		}
		if err := f.Truncate(0); err != nil {
			return segment{}, scanResult{}, false, err
		}
		if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
			return segment{}, scanResult{}, false, err
		}
		return segment{seq: seq, size: segHdrSize}, scanResult{boundary: segHdrSize, end: segHdrSize}, true, f.Sync()
	}
	r := newSegReader()
	r.use(f, seq)
	res, err := scanSegment(r, size, last, probe)
	if err != nil {
		return segment{}, scanResult{}, false, err
	}
	if res.end < size {
		// What follows the last record is the zeroed room written ahead of
		// the records (keepZeroedAhead), or a torn or damaged record.
		zeroed, err := r.allZero(res.end, size)
		if err != nil {
			return segment{}, scanResult{}, false, err
		}
		if !zeroed {
			q.tornLog(segName(seq), res.end, size, "torn or damaged record")
		}
		if err := f.Truncate(res.end); err != nil {
			return segment{}, scanResult{}, false, err
		}
		if err := f.Sync(); err != nil {
			return segment{}, scanResult{}, false, err
		}
	}
	return segment{seq: seq, count: res.count, size: res.end}, res, true, nil
}

func (q *Queue) tornLog(seg string, at, size int64, why string) {
	q.log.Warn("queue recovery: truncating segment", "segment", seg, "reason", why, "at", at, "lost_bytes", size-at)
	if q.m != nil {
		q.m.tornRec.Inc()
	}
}

// createSegment starts segment seq as the write segment. The header and
// the directory entry are fsync'd before any record goes in, so an
// acknowledged record can never be lost with its file's name.
func (q *Queue) createSegment(seq uint64) error {
	path := segPath(q.dir, seq)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(segMagic))
	if err == nil {
		preallocate(f, q.opt.SegmentBytes)
		err = f.Sync()
	}
	if err == nil {
		err = segfile.SyncDir(q.dir)
	}
	if err != nil {
		// Remove it so a retry can create it again (O_EXCL).
		f.Close()
		os.Remove(path)
		return err
	}
	q.wf, q.wseq, q.wsize, q.wcount, q.wend, q.syncedAt = f, seq, segHdrSize, 0, segHdrSize, segHdrSize
	q.mu.Lock()
	if n := len(q.segs); n > 0 {
		q.segs[n-1].sealed = true
	}
	idx := q.publishedIdxLocked()
	q.segs = append(q.segs, segment{seq: seq, firstIdx: idx, size: segHdrSize})
	q.diskBytes += segHdrSize
	if len(q.segs) == 1 {
		q.ack, q.ackIdx = position{seq, segHdrSize}, idx
	}
	q.mu.Unlock()
	return nil
}

func (q *Queue) publishedIdxLocked() int64 {
	if n := len(q.segs); n > 0 {
		return q.segs[n-1].firstIdx + q.segs[n-1].count
	}
	return q.ackIdx
}

// Append writes records and returns once they are fsync'd, so a caller may
// acknowledge its own client as soon as Append returns nil. Concurrent
// Appends share fsyncs. Records may be empty; each must fit in a segment
// (ErrTooLarge). The queue reads the slices only until Append returns. On
// error some of the records may still have been stored: a retry can
// duplicate them, never lose them.
func (q *Queue) Append(records ...[]byte) error {
	for _, r := range records {
		if int64(len(r)) > q.maxRec {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(r), q.maxRec)
		}
	}
	return q.append(records, false)
}

// FrameHeader is the room a frame keeps before its payload for the
// record header Seal writes there.
const FrameHeader = recHdrSize

// Seal writes the record header (the payload's length and checksum) into
// the first FrameHeader bytes of frame; the rest of frame is the payload.
// A frame must not change between Seal and the return of AppendFrames.
func Seal(frame []byte) {
	putRecHeader(frame[:recHdrSize], frame[recHdrSize:])
}

// AppendFrames is Append for records built as sealed frames: their bytes
// go to the segment as they are, so the queue's writer neither checksums
// nor copies them. A caller that seals a record right after building it
// checksums it while it is still in the CPU's cache, and a large frame is
// written to the file with one write straight from the caller's buffer.
// A frame whose header does not give its length is refused
// (ErrNotSealed); the checksum is the caller's.
func (q *Queue) AppendFrames(frames ...[]byte) error {
	if err := q.checkFrames(frames); err != nil {
		return err
	}
	return q.append(frames, true)
}

// AppendFramesAsync is AppendFrames without the wait: it returns at once,
// and then is called with what AppendFrames would have returned once the
// frames are durable (or failed). A caller that keeps reading while its
// frames are fsync'd needs no goroutine of its own to wait, so no
// goroutine switch per append. then runs on the goroutine that commits
// the frames (the queue's writer goroutine, or an Append's that leads a
// group; the caller's, for a refused append): it must be quick and must
// not wait for the queue (an Append, Read or Close would deadlock). The
// frames must not change until then is called. Appends keep their order
// as with AppendFrames.
func (q *Queue) AppendFramesAsync(then func(error), frames ...[]byte) {
	q.appendAsync(then, frames, false)
}

// AppendFramesWrittenAsync is AppendFramesAsync for data whose sender gets
// no acknowledgement (plaintext TCP lines): then is called once the
// frames are written to the segment file, without waiting for an fsync.
// If no commit is in flight the caller writes them itself, and then runs
// on its goroutine before AppendFramesWrittenAsync returns.
// Written frames are in the kernel's page cache, so they survive the
// process being killed (they are read back after Open) but not a power
// failure or kernel crash before their fsync, which the writer does at
// most Options.WrittenSync later, or sooner with the next Append that
// waits for durability. Written frames are readable at once. Order and
// the rules for then are those of AppendFramesAsync.
func (q *Queue) AppendFramesWrittenAsync(then func(error), frames ...[]byte) {
	q.appendAsync(then, frames, true)
}

func (q *Queue) appendAsync(then func(error), frames [][]byte, written bool) {
	if err := q.checkFrames(frames); err != nil || len(frames) == 0 {
		then(err)
		return
	}
	req := q.reqPool.Get().(*appendReq)
	req.recs, req.sealed, req.written, req.then = frames, true, written, then
	q.pmu.Lock()
	if q.closing {
		q.pmu.Unlock()
		req.recs, req.then = nil, nil
		q.reqPool.Put(req)
		then(ErrClosed)
		return
	}
	q.pending = append(q.pending, req)
	// Written frames need no fsync, only a write(2): an append that finds
	// no commit in flight writes them on its own goroutine rather than
	// waking the writer goroutine for it.
	lead := written && !q.committing
	q.committing = q.committing || lead
	q.pmu.Unlock()
	if lead {
		q.lead(nil)
		return
	}
	q.poke()
}

func (q *Queue) checkFrames(frames [][]byte) error {
	for _, f := range frames {
		if len(f) < recHdrSize {
			return ErrNotSealed
		}
		word := binary.LittleEndian.Uint32(f)
		n := int64(len(f) - recHdrSize)
		if int64(word&lenMask) != n {
			return ErrNotSealed
		}
		if word&compressedFlag != 0 {
			// A record must fit in a segment as it was appended, so that
			// reading it back never needs more than a segment's memory.
			var err error
			if n, err = decodedLen(f[recHdrSize:]); err != nil {
				return err
			}
		}
		if n > q.maxRec {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, q.maxRec)
		}
	}
	return nil
}

func (q *Queue) append(records [][]byte, sealed bool) error {
	if len(records) == 0 {
		return nil
	}
	req := q.reqPool.Get().(*appendReq)
	req.recs, req.sealed, req.written = records, sealed, false
	q.pmu.Lock()
	if q.closing {
		q.pmu.Unlock()
		req.recs = nil
		q.reqPool.Put(req)
		return ErrClosed
	}
	q.pending = append(q.pending, req)
	lead := !q.committing
	q.committing = true
	q.pmu.Unlock()
	var err error
	if lead {
		err = q.lead(req)
	} else if err = <-req.done; err == errLead {
		err = q.lead(req)
	}
	req.recs = nil
	q.reqPool.Put(req)
	return err
}

// errLead tells a waiting Append that it now holds the write state and
// commits the next group itself.
var errLead = errors.New("queue: lead the next commit")

// lead commits every pending Append, self's among them, on the calling
// goroutine, which holds the write state, and passes the write state on
// (handOff). It returns self's result. A durable Append that finds no
// commit in flight leads its own, so an uncontended Append costs no
// goroutine switch, and one that arrives during a commit waits for it and
// may lead the next group: each Append is woken at most once.
func (q *Queue) lead(self *appendReq) error {
	err := q.commitPending(self)
	q.handOff(false)
	return err
}

// commitPending writes every pending Append, fsyncs once if any of them
// waits for durability, and releases them; self's result is returned
// instead of sent. The caller holds the write state.
func (q *Queue) commitPending(self *appendReq) error {
	if q.opt.SyncInterval > 0 {
		time.Sleep(q.opt.SyncInterval)
	}
	q.pmu.Lock()
	group := q.pending
	q.pending = q.group[:0]
	q.pmu.Unlock()
	var selfErr error
	if len(group) > 0 {
		err := q.commit(group)
		for _, r := range group {
			switch {
			case r == self:
				selfErr = err
			case r.then != nil:
				then := r.then
				r.recs, r.then = nil, nil
				q.reqPool.Put(r)
				then(err)
			default:
				r.done <- err
			}
		}
		clear(group)
	}
	q.group = group[:0]
	return selfErr
}

// handOff gives up the write state after a commit: to the first durable
// Append that arrived meanwhile (it leads the next group, taking the
// asynchronous ones before it along), or else to nobody. An Append's
// leader then wakes the writer goroutine if anything is left for it
// (asynchronous Appends, written records whose fsync it has not yet
// scheduled, or Close); the writer goroutine itself (fromWriter) was
// woken for the asynchronous Appends already and keeps its own fsync
// timer.
func (q *Queue) handOff(fromWriter bool) {
	unsynced := q.unsynced
	q.pmu.Lock()
	for _, r := range q.pending {
		if r.then == nil {
			q.pmu.Unlock()
			r.done <- errLead
			return
		}
	}
	q.committing = false
	wake := !fromWriter && (len(q.pending) > 0 || unsynced && !q.syncArmed || q.closing)
	q.pmu.Unlock()
	if wake {
		q.poke()
	}
}

// poke wakes the writer goroutine.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writeLoop commits what no durable Append leads: asynchronous Appends
// (which must not wait on their caller's goroutine), the fsync of written
// records no Append waits for (Options.WrittenSync after the first of
// them at the latest) and the last commit at Close. It takes the write
// state only while nobody holds it; a durable Append that gives it up
// with work left wakes this goroutine.
func (q *Queue) writeLoop() {
	defer close(q.writerOK)
	syncTimer := time.NewTimer(q.opt.WrittenSync)
	syncTimer.Stop()
	var syncDue <-chan time.Time // set while written records await their fsync
	pastDue := false             // the timer fired while another goroutine held the write state
	for {
		select {
		case <-q.wake:
		case <-syncDue:
			syncDue, pastDue = nil, true
			q.pmu.Lock()
			q.syncArmed = false
			q.pmu.Unlock()
		}
		q.pmu.Lock()
		if q.committing {
			q.pmu.Unlock()
			continue
		}
		q.committing = true
		closing := q.closing
		q.pmu.Unlock()
		if pastDue && q.unsynced {
			q.syncWritten()
		}
		pastDue = false
		q.commitPending(nil)
		if closing {
			// Close set closing before this goroutine took the write state,
			// so no Append is left; the write state is kept, for Close.
			if q.unsynced {
				q.syncWritten()
			}
			return
		}
		switch {
		case q.unsynced && syncDue == nil:
			syncTimer.Reset(q.opt.WrittenSync)
			syncDue = syncTimer.C
		case !q.unsynced && syncDue != nil:
			syncTimer.Stop()
			syncDue = nil
		}
		q.pmu.Lock()
		q.syncArmed = syncDue != nil
		q.pmu.Unlock()
		q.handOff(true)
	}
}

// syncWritten fsyncs records that were only written. Their appenders were
// told they are written, not durable, so a failure is logged: they stay
// readable and are lost only if the machine fails before a later fsync
// of the file succeeds.
func (q *Queue) syncWritten() {
	if q.wf == nil {
		return
	}
	if err := q.sync(); err != nil {
		q.log.Error("queue: fsync of written records failed; they may not survive a power failure", "segment", segName(q.wseq), "err", err)
		return
	}
	q.unsynced = false
}

func (q *Queue) commit(group []*appendReq) error {
	if q.werr != nil {
		return q.werr
	}
	if q.wf == nil {
		// An earlier rotation could not create the next segment.
		if err := q.createSegment(q.wseq + 1); err != nil {
			return err
		}
	}
	// Headers of unsealed records get room of their own up front, so the
	// slices of it in q.vec stay put until they are written.
	unsealed := 0
	for _, r := range group {
		if !r.sealed {
			unsealed += len(r.recs)
		}
	}
	q.hdrs = slices.Grow(q.hdrs[:0], unsealed*recHdrSize)
	q.vec = q.vec[:0]
	var n int64
	durable := false
	for _, r := range group {
		durable = durable || !r.written
		for _, rec := range r.recs {
			sz := recHdrSize + int64(len(rec))
			if r.sealed {
				sz = int64(len(rec))
			}
			if q.wsize+sz > q.opt.SegmentBytes && q.wsize > segHdrSize {
				if err := q.writeVec(); err != nil {
					return q.fail(err)
				}
				if err := q.rotate(); err != nil {
					return q.fail(err)
				}
			}
			if r.sealed {
				q.vec = append(q.vec, rec)
			} else {
				at := len(q.hdrs)
				q.hdrs = q.hdrs[:at+recHdrSize]
				h := q.hdrs[at:]
				putRecHeader(h, rec)
				q.vec = append(q.vec, h, rec)
			}
			q.wsize += sz
			q.wcount++
			n++
		}
	}
	if err := q.writeVec(); err != nil {
		return q.fail(err)
	}
	q.keepZeroedAhead()
	q.publish()
	if q.m != nil {
		q.m.appended.Add(float64(n))
	}
	q.unsynced = true
	if durable {
		// Records are published, whole: a failed fsync leaves nothing to
		// undo, and a retry of the Append can only duplicate them.
		if err := q.sync(); err != nil {
			return err
		}
		q.unsynced = false
	}
	return nil
}

// writeVec writes the commit's buffers gathered so far, with one writev
// for all of them.
func (q *Queue) writeVec() error {
	err := q.vw.write(q.wf, q.vec)
	clear(q.vec) // keeps no reference to the appenders' records
	q.vec = q.vec[:0]
	return err
}

// zeroAhead is how far past its records the write segment is kept
// written with zeros while fsyncs come often. A write that extends the
// file makes the next fdatasync also commit the new size and the
// conversion of the preallocated extents (on ext4 here ~60 µs of CPU);
// records written over zeros already in the file change neither, so only
// one fdatasync per zeroAhead bytes pays for it. The zeros cost one more
// page-cache copy per byte (~0.27 ns/B here), so they are written only
// while fsyncs come at least every zeroAheadBelow bytes (BENCHMARKS.md).
const (
	zeroAhead      = 1 << 20
	zeroAheadBelow = 128 << 10
)

// zeros is what keepZeroedAhead writes; it is never written to.
var zeros [zeroAhead]byte

// keepZeroedAhead writes zeros after the records once they have reached
// the zeroed end, up to zeroAhead bytes past them but not past
// SegmentBytes. A reader finds the end of the records at the first
// all-zero header: no record has one (an empty record's CRC is not 0).
// The zeros only save work, so failing to write them (a full disk where
// the file system could not preallocate) fails no commit: whatever part
// of them was written is zeroed room like the rest, and the next commit
// tries again.
func (q *Queue) keepZeroedAhead() {
	if !q.zeroRoom || q.wsize < q.wend || q.perSync >= zeroAheadBelow {
		return
	}
	end := min(q.wsize+zeroAhead, q.opt.SegmentBytes)
	if end <= q.wsize {
		return
	}
	if _, err := q.wf.WriteAt(zeros[:end-q.wsize], q.wsize); err == nil {
		q.wend = end
	}
}

// syncPublish makes everything written so far durable and visible to Read.
func (q *Queue) syncPublish() error {
	q.publish()
	if err := q.sync(); err != nil {
		return err
	}
	q.unsynced = false
	return nil
}

// sync makes the write segment's records durable (fdatasync: see
// datasync for why that is enough).
func (q *Queue) sync() error {
	if q.m != nil {
		q.m.syncs.Inc()
	}
	q.perSync = (3*q.perSync + q.wsize - q.syncedAt) / 4
	q.syncedAt = q.wsize
	return datasync(q.wf)
}

// publish makes every record written so far visible to Read.
func (q *Queue) publish() {
	q.mu.Lock()
	s := &q.segs[len(q.segs)-1]
	q.diskBytes += q.wsize - s.size
	s.size, s.count = q.wsize, q.wcount
	close(q.notify)
	q.notify = make(chan struct{})
	q.updateGauges()
	q.mu.Unlock()
}

// rotate seals the write segment and starts the next one, first deleting
// the oldest segments if the new one could overflow MaxBytes.
func (q *Queue) rotate() error {
	if err := q.syncPublish(); err != nil {
		return err
	}
	// Truncating to its size frees the preallocated blocks the segment
	// did not use, so sealed segments take only their size on disk.
	err := q.wf.Truncate(q.wsize)
	if cerr := q.wf.Close(); err == nil {
		err = cerr
	}
	q.wf = nil
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.dropForRoom(q.opt.SegmentBytes)
	q.mu.Unlock()
	return q.createSegment(q.wseq + 1)
}

// fail restores the write segment to its last published size so the next
// Append does not land after a partial record. If even that fails the
// queue refuses further Appends until it is reopened (and recovered).
func (q *Queue) fail(err error) error {
	if q.wf == nil {
		return err
	}
	q.mu.Lock()
	s := q.segs[len(q.segs)-1]
	q.mu.Unlock()
	terr := q.wf.Truncate(s.size)
	if terr == nil {
		_, terr = q.wf.Seek(s.size, io.SeekStart)
	}
	if terr != nil {
		q.werr = fmt.Errorf("queue: write failed (%v) and could not be undone: %w", err, terr)
		return q.werr
	}
	q.wsize, q.wcount, q.wend = s.size, s.count, s.size
	return err
}

// dropForRoom deletes the oldest segments, never the newest, while the
// segments plus reserve (what the write segment may still grow by) exceed
// MaxBytes. Records in flight in a deleted segment are simply gone: their
// Ack is a no-op.
func (q *Queue) dropForRoom(reserve int64) {
	if q.opt.MaxBytes <= 0 {
		return
	}
	for len(q.segs) > 1 && q.diskBytes+reserve > q.opt.MaxBytes {
		s := q.segs[0]
		recs := s.count - (q.ackIdx - s.firstIdx)
		bytes := s.size - q.ack.off
		if err := os.Remove(segPath(q.dir, s.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Error("queue: cannot delete segment to make room", "segment", segName(s.seq), "err", err)
			return
		}
		q.segs = q.segs[1:]
		q.diskBytes -= s.size
		q.ack, q.ackIdx = position{q.segs[0].seq, segHdrSize}, q.segs[0].firstIdx
		q.drops.add(q.log, q.m, recs, bytes, time.Now())
	}
}

// dropLog counts drops exactly but logs at most once per dropLogEvery.
type dropLog struct {
	last          time.Time
	records, size int64
}

func (d *dropLog) add(log *slog.Logger, m *Metrics, recs, bytes int64, now time.Time) {
	if m != nil {
		m.dropped.Add(float64(recs))
		m.droppedBytes.Add(float64(bytes))
	}
	d.records += recs
	d.size += bytes
	if now.Sub(d.last) >= dropLogEvery {
		d.flush(log, now)
	}
}

func (d *dropLog) flush(log *slog.Logger, now time.Time) {
	if d.records == 0 && d.size == 0 {
		return
	}
	log.Warn(fmt.Sprintf("queue full: dropped %d records (%d bytes) oldest first", d.records, d.size))
	d.last, d.records, d.size = now, 0, 0
}

func (q *Queue) updateGauges() {
	if q.m == nil {
		return
	}
	q.m.records.Set(float64(q.lenLocked()))
	q.m.bytes.Set(float64(q.bytesLocked()))
}

// Len is the number of written records not yet acknowledged.
func (q *Queue) Len() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lenLocked()
}

// Bytes is the on-disk size of the records not yet acknowledged, with
// their 8-byte headers.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytesLocked()
}

func (q *Queue) lenLocked() int64 { return q.publishedIdxLocked() - q.ackIdx }

func (q *Queue) bytesLocked() int64 {
	return q.diskBytes - int64(len(q.segs))*segHdrSize - (q.ack.off - segHdrSize)
}

// Read blocks until at least one record is available, ctx is done or the
// queue is closed, then returns consecutive records from the read position:
// as many as fit in maxBytes of payload, and always at least one. It does
// not acknowledge them; the next Read continues after them, so a forwarder
// can have several batches in flight. Only whole written records are returned (a record appended with
// AppendFramesWrittenAsync may still await its fsync).
func (q *Queue) Read(ctx context.Context, maxBytes int) (Batch, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		q.mu.Lock()
		for {
			if q.shut {
				q.mu.Unlock()
				return Batch{}, ErrClosed
			}
			if q.rdIdx <= q.ackIdx {
				// Records acked after a Nack, or dropped for room; at equal
				// indexes rd may still name a segment Ack has deleted.
				q.rd, q.rdIdx = q.ack, q.ackIdx
			}
			q.batchIdx = max(q.batchIdx, q.ackIdx)
			if q.rdIdx < q.publishedIdxLocked() {
				break
			}
			ch := q.notify
			q.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return Batch{}, ctx.Err()
			}
			q.mu.Lock()
		}
		from, fromIdx, start, epoch := q.rd, q.rdIdx, q.batchIdx, q.epoch
		q.mu.Unlock()

		buf := q.getBuf()
		to, toIdx, skipped, err := q.readRecords(buf, from, fromIdx, maxBytes)
		q.mu.Lock()
		if err != nil || epoch != q.epoch {
			q.putBufLocked(buf)
			q.mu.Unlock()
			if err != nil {
				return Batch{}, err
			}
			continue
		}
		q.rd, q.rdIdx = to, toIdx
		if len(buf.ends) > 0 {
			q.batchIdx = toIdx
		} else {
			q.putBufLocked(buf)
		}
		q.mu.Unlock()
		if skipped > 0 && q.m != nil {
			q.m.tornRec.Inc()
		}
		if len(buf.ends) == 0 {
			continue
		}
		buf.recs = buf.recs[:0]
		prev := 0
		for _, e := range buf.ends {
			buf.recs = append(buf.recs, buf.data[prev:e:e])
			prev = e
		}
		return Batch{Records: buf.recs, start: start, end: toIdx, endPos: to, buf: buf, gen: buf.gen}, nil
	}
}

// readRecords reads written records from pos into buf. A record that fails
// validation makes the rest of its segment unreadable: it is logged and
// skipped, and counted in the batch so acknowledging the batch moves past
// it.
func (q *Queue) readRecords(buf *batchBuf, pos position, idx int64, maxBytes int) (position, int64, int64, error) {
	buf.data, buf.ends = buf.data[:0], buf.ends[:0]
	var skipped int64
	for {
		seg, next, hasNext, ok := q.segInfo(pos.seq)
		if !ok {
			// Deleted for room while we were not looking: Read restarts
			// from the new head.
			return pos, idx, skipped, nil
		}
		if pos.off >= seg.size {
			if !seg.sealed || !hasNext {
				return pos, idx, skipped, nil
			}
			pos, idx = position{next.seq, segHdrSize}, next.firstIdx
			continue
		}
		if len(buf.ends) > 0 && len(buf.data)+recHdrSize > maxBytes {
			return pos, idx, skipped, nil
		}
		if q.reader.f == nil || q.reader.seq != pos.seq {
			if q.reader.f != nil {
				q.reader.f.Close()
				q.reader.f = nil
			}
			f, err := os.Open(segPath(q.dir, pos.seq))
			if errors.Is(err, os.ErrNotExist) {
				return pos, idx, skipped, nil
			}
			if err != nil {
				return pos, idx, skipped, err
			}
			q.reader.use(f, pos.seq)
		}
		before := len(buf.data)
		data, nextOff, err := q.reader.readRecord(buf.data, pos.off, seg.size, true)
		if errors.Is(err, errCorrupt) {
			lost := seg.firstIdx + seg.count - idx
			q.log.Error("queue: damaged record, skipping the rest of its segment",
				"segment", segName(pos.seq), "offset", pos.off, "records", lost)
			skipped += lost
			pos, idx = position{pos.seq, seg.size}, seg.firstIdx+seg.count
			continue
		}
		if err != nil {
			return pos, idx, skipped, err
		}
		if len(buf.ends) > 0 && len(data) > maxBytes {
			buf.data = data[:before]
			return pos, idx, skipped, nil
		}
		buf.data = data
		buf.ends = append(buf.ends, len(data))
		pos.off = nextOff
		idx++
	}
}

// segInfo returns the published state of segment seq and of its successor.
func (q *Queue) segInfo(seq uint64) (seg, next segment, hasNext, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, found := slices.BinarySearchFunc(q.segs, seq, func(s segment, seq uint64) int { return cmp.Compare(s.seq, seq) })
	if !found {
		return segment{}, segment{}, false, false
	}
	if i+1 < len(q.segs) {
		return q.segs[i], q.segs[i+1], true, true
	}
	return q.segs[i], segment{}, false, true
}

// maxFreeBufs bounds the recycled batch buffers: enough for a forwarder
// with a few batches in flight, so steady-state reading allocates nothing.
const maxFreeBufs = 4

func (q *Queue) getBuf() *batchBuf {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.free); n > 0 {
		b := q.free[n-1]
		q.free = q.free[:n-1]
		return b
	}
	return new(batchBuf)
}

func (q *Queue) putBufLocked(b *batchBuf) {
	if len(q.free) < maxFreeBufs {
		q.free = append(q.free, b)
	}
}

// release recycles the batch's buffer once; q.mu must be held.
func (q *Queue) release(b Batch) {
	if b.buf != nil && b.buf.gen == b.gen {
		b.buf.gen++
		q.putBufLocked(b.buf)
	}
}

// Ack marks b delivered: the persisted cursor moves past it (fsync'd) and
// fully delivered segments are deleted. Batches must be acked in the order
// Read returned them (ErrAckOrder otherwise, and nothing changes). Acking
// a batch whose records were already acked, or dropped for room, is a
// no-op. After Ack, b.Records must not be used.
func (q *Queue) Ack(b Batch) error {
	q.amu.Lock()
	defer q.amu.Unlock()
	q.mu.Lock()
	if q.shut {
		q.mu.Unlock()
		return ErrClosed
	}
	if b.end <= q.ackIdx {
		q.release(b)
		q.mu.Unlock()
		return nil
	}
	if b.start > q.ackIdx {
		q.mu.Unlock()
		return fmt.Errorf("%w: batch starts at record %d, oldest unacknowledged is %d", ErrAckOrder, b.start, q.ackIdx)
	}
	q.release(b)
	q.ack, q.ackIdx = b.endPos, b.end
	var gone []uint64
	for len(q.segs) > 1 && (q.segs[0].seq < q.ack.seq || q.segs[0].sealed && q.ack.seq == q.segs[0].seq && q.ack.off >= q.segs[0].size) {
		gone = append(gone, q.segs[0].seq)
		q.diskBytes -= q.segs[0].size
		q.segs = q.segs[1:]
	}
	if q.ack.seq != q.segs[0].seq {
		q.ack = position{q.segs[0].seq, segHdrSize}
	}
	pos := q.ack
	q.updateGauges()
	q.mu.Unlock()

	// The cursor goes first: a crash between the two steps leaves
	// segments that Open recognises as consumed and deletes.
	if err := q.cursor.write(pos); err != nil {
		return err
	}
	for _, seq := range gone {
		if err := os.Remove(segPath(q.dir, seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Nack reports that b could not be delivered: Read starts again at the
// oldest unacknowledged record, so b and every batch read after it are
// returned again (acking those later batches is then out of order).
// After Nack, b.Records must not be used.
func (q *Queue) Nack(b Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.release(b)
	q.rd, q.rdIdx, q.batchIdx = q.ack, q.ackIdx, q.ackIdx
	q.epoch++
}

// Close waits for pending Appends, fails blocked and later calls with
// ErrClosed and closes the files. Unacknowledged records stay on disk for
// the next Open.
func (q *Queue) Close() error {
	q.pmu.Lock()
	if q.closing {
		q.pmu.Unlock()
		return ErrClosed
	}
	q.closing = true
	q.pmu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.writerOK
	if q.wf != nil && q.werr == nil && q.wend > q.wsize {
		// A closed queue's files hold records only; Open does not need
		// it (it cuts zeroed room too), but anyone looking at the files
		// sees their true size.
		if err := q.wf.Truncate(q.wsize); err != nil {
			q.log.Warn("queue: cannot cut the zeroed room after the last record", "segment", segName(q.wseq), "err", err)
		}
	}
	q.mu.Lock()
	q.shut = true
	close(q.notify)
	q.mu.Unlock()
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.amu.Lock()
	defer q.amu.Unlock()
	q.drops.flush(q.log, time.Now())
	return q.closeFiles()
}

func (q *Queue) closeFiles() error {
	var errs []error
	if q.wf != nil {
		errs = append(errs, q.wf.Close())
	}
	if q.reader.f != nil {
		errs = append(errs, q.reader.f.Close())
	}
	if q.cursor != nil {
		errs = append(errs, q.cursor.f.Close())
	}
	errs = append(errs, q.lockFile.Close())
	return errors.Join(errs...)
}
