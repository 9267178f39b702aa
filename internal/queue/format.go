package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
)

// On-disk layout of one segment file (<seq zero-padded to 20 digits>.seg):
//
//	segMagic (8 bytes)
//	record*  where record = len uint32 LE | crc32c uint32 LE | payload[len]
//	zeros*   the write segment's zeroed room (keepZeroedAhead), if any
//
// The CRC covers the 4 length bytes and the payload, so a zeroed or torn
// header is detected as well as a torn payload; an all-zero header is
// where the records end. The length's top bit
// (compressedFlag) marks a payload stored as an S2 block (SealCompressed);
// the record read back is the block decoded.
const (
	segMagic    = "MWQSEG\x00\x01"
	segHdrSize  = int64(len(segMagic))
	recHdrSize  = 8
	segSuffix   = ".seg"
	readBufSize = 64 << 10

	compressedFlag = 1 << 31
	lenMask        = compressedFlag - 1
)

// errCorrupt marks a record that fails validation; everything from it to
// the end of its segment is unreadable.
var errCorrupt = errors.New("corrupt record")

// errZeroed is a record header of zeros: where the records of a segment
// written over zeros end (keepZeroedAhead), or damage in the middle of one.
var errZeroed = fmt.Errorf("%w: zeroed header", errCorrupt)

func segName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segSuffix) }

func segPath(dir string, seq uint64) string { return filepath.Join(dir, segName(seq)) }

func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

func checksum(lenBytes, payload []byte) uint32 {
	t := crc32.MakeTable(crc32.Castagnoli) // cached by the crc32 package
	return crc32.Update(crc32.Update(0, t, lenBytes), t, payload)
}

func putRecHeader(h []byte, payload []byte) {
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], checksum(h[0:4], payload))
}

// SealCompressed is Seal for a frame whose payload is worth compressing:
// it builds in dst (reused, grown as needed) a sealed frame holding the
// payload as an S2 block and returns it with compressed true, leaving
// frame untouched. Read gives back the original payload. When compression
// would save less than an eighth, it seals frame itself and returns that
// (compressed false), so either result goes to AppendFrames as it is.
//
// It suits a caller that needs nothing of a record before Read decodes
// it. The proxy sealed its records this way until it began compressing
// only their lines (AppendCompressed), so older buffers hold such frames;
// its tests make them with this.
func SealCompressed(dst, frame []byte) (sealed []byte, compressed bool) {
	payload := frame[recHdrSize:]
	dst, compressed = AppendCompressed(slices.Grow(dst[:0], recHdrSize)[:recHdrSize], payload)
	if !compressed {
		Seal(frame)
		return frame, false
	}
	block := dst[recHdrSize:]
	binary.LittleEndian.PutUint32(dst[0:4], uint32(len(block))|compressedFlag)
	binary.LittleEndian.PutUint32(dst[4:8], checksum(dst[0:4], block))
	return dst, true
}

// AppendCompressed appends src to dst as one S2 block when that saves an
// eighth of it or more, and says whether it did; otherwise dst is returned
// as it was. SealCompressed is built on it, and so is any caller that
// keeps part of its record readable in front of the block.
func AppendCompressed(dst, src []byte) ([]byte, bool) {
	bound := s2.MaxEncodedLen(len(src))
	if bound < 0 || len(src) < minCompress {
		return dst, false
	}
	// S2 wants room for its worst case, ~1.2× the input; the block is
	// then copied into dst at its own size, so a caller holding frames
	// in flight keeps ~1/5 of the input per frame, not 1.2×.
	scratch := encodeScratch.Get().(*[]byte)
	defer encodeScratch.Put(scratch)
	*scratch = slices.Grow((*scratch)[:0], bound)[:bound]
	block := s2.Encode(*scratch, src)
	if len(block) > len(src)-len(src)/8 {
		return dst, false
	}
	return append(dst, block...), true
}

// encodeScratch holds S2's worst-case output buffers, one per
// concurrent AppendCompressed.
var encodeScratch = sync.Pool{New: func() any { return new([]byte) }}

// decodedLen is the size of an S2 block once decoded, from its header.
func decodedLen(block []byte) (int64, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return 0, fmt.Errorf("queue: compressed frame: %w", err)
	}
	return int64(n), nil
}

// minCompress is the smallest input AppendCompressed compresses: below it
// S2 saves a few bytes for a fixed cost.
const minCompress = 256

// segReader reads a segment with positioned reads through one fixed
// buffer, so scanning or reading never loads more than readBufSize plus one
// record into memory. It keeps no file offset, so rewinding is free.
type segReader struct {
	f    *os.File
	seq  uint64
	buf  []byte
	base int64 // file offset of buf[0]
	n    int   // valid bytes in buf
	hdr  [recHdrSize]byte
	zbuf []byte // a compressed payload being read, before decoding
}

func newSegReader() *segReader { return &segReader{buf: make([]byte, readBufSize)} }

// use points the reader at f (seq identifies it for callers that cache it).
func (r *segReader) use(f *os.File, seq uint64) {
	r.f, r.seq, r.n = f, seq, 0
}

// readAt reads p at off through the buffer, which it fills from off up
// to limit at most: bytes past the records a reader may see are zeros
// about to be overwritten (keepZeroedAhead), and must not be kept.
func (r *segReader) readAt(p []byte, off, limit int64) error {
	if off >= r.base && off+int64(len(p)) <= r.base+int64(r.n) {
		copy(p, r.buf[off-r.base:])
		return nil
	}
	if len(p) > len(r.buf)/2 {
		// Large payloads bypass the buffer: one copy instead of several.
		_, err := r.f.ReadAt(p, off)
		return noEOF(err)
	}
	m, err := r.f.ReadAt(r.buf[:min(int64(len(r.buf)), limit-off)], off)
	r.base, r.n = off, m
	if m >= len(p) {
		copy(p, r.buf[:len(p)])
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return noEOF(err)
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readRecord reads the record at off, which must end at or before limit,
// appending its payload (decoded, if stored compressed) to dst. A record
// that does not fit, fails its CRC, does not decode or cannot be read in
// full is errCorrupt; other errors are I/O errors.
func (r *segReader) readRecord(dst []byte, off, limit int64, verify bool) (out []byte, next int64, err error) {
	h := r.hdr[:] // a field, not a local: a local would escape through ReadAt
	if off+recHdrSize > limit {
		return dst, off, errCorrupt
	}
	if err := r.readAt(h, off, limit); err != nil {
		return dst, off, corruptIfShort(err)
	}
	word := binary.LittleEndian.Uint32(h[0:4])
	if word == 0 && binary.LittleEndian.Uint32(h[4:8]) == 0 {
		return dst, off, errZeroed
	}
	n := int64(word & lenMask)
	next = off + recHdrSize + n
	if next > limit {
		return dst, off, errCorrupt
	}
	if !verify {
		return dst, next, nil
	}
	compressed := word&compressedFlag != 0
	start := len(dst)
	stored := dst
	if compressed {
		stored = r.zbuf[:0]
	}
	stored = grow(stored, int(n))
	payload := stored[len(stored)-int(n):]
	if err := r.readAt(payload, off+recHdrSize, limit); err != nil {
		return dst[:start], off, corruptIfShort(err)
	}
	if checksum(h[0:4], payload) != binary.LittleEndian.Uint32(h[4:8]) {
		return dst[:start], off, errCorrupt
	}
	if !compressed {
		return stored, next, nil
	}
	r.zbuf = stored
	size, err := decodedLen(payload)
	if err != nil || size > lenMask {
		return dst[:start], off, errCorrupt
	}
	dst = grow(dst, int(size))
	if _, err := s2.Decode(dst[start:], payload); err != nil {
		return dst[:start], off, errCorrupt
	}
	return dst, next, nil
}

func corruptIfShort(err error) error {
	if err == io.ErrUnexpectedEOF {
		return errCorrupt
	}
	return err
}

// grow extends dst by n bytes, reallocating at most geometrically.
func grow(dst []byte, n int) []byte {
	if len(dst)+n <= cap(dst) {
		return dst[:len(dst)+n]
	}
	out := make([]byte, len(dst)+n, max(2*cap(dst), len(dst)+n))
	copy(out, dst)
	return out
}

// scanResult describes the valid prefix of a segment file.
type scanResult struct {
	count    int64 // valid records
	end      int64 // offset just past the last valid record
	before   int64 // records ending at or before the probe offset
	boundary int64 // largest record boundary <= the probe offset
}

// scanSegment walks the records of the file from the header on, stopping
// at the first invalid one (a zeroed header among them). With verify it
// reads payloads and checks CRCs; without it only lengths are checked,
// which for a sealed segment reads one buffer per 64 KiB of small records
// instead of every payload. probe is an offset (the persisted cursor) to
// locate among the records.
func scanSegment(r *segReader, size int64, verify bool, probe int64) (scanResult, error) {
	res := scanResult{end: segHdrSize, boundary: segHdrSize}
	var scratch []byte
	for off := segHdrSize; off < size; {
		next := off
		var err error
		scratch, next, err = r.readRecord(scratch[:0], off, size, verify)
		if errors.Is(err, errCorrupt) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		off = next
		res.count++
		res.end = off
		if off <= probe {
			res.before++
			res.boundary = off
		}
	}
	return res, nil
}

// allZero reports whether the segment holds only zero bytes from off to
// end, read through the reader's buffer.
func (r *segReader) allZero(off, end int64) (bool, error) {
	r.n = 0 // the buffer no longer holds what base says
	for off < end {
		n := min(end-off, int64(len(r.buf)))
		if _, err := r.f.ReadAt(r.buf[:n], off); err != nil {
			return false, err
		}
		if !bytes.Equal(r.buf[:n], zeros[:n]) {
			return false, nil
		}
		off += n
	}
	return true, nil
}
