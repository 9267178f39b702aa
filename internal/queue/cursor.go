package queue

import (
	"encoding/binary"
	"os"
	"path/filepath"
)

// The cursor file holds the read position that has been acknowledged: the
// segment sequence number and the offset of the first unacknowledged
// record. It has two 32-byte slots in different 512-byte sectors, written
// alternately in place and fsync'd. A torn write can only damage the slot
// being written, whose CRC then fails, and Open falls back to the other
// (older) slot: that re-delivers a batch but never skips one.
const (
	cursorName  = "cursor"
	cursorMagic = "MWQC"
	slotSize    = 32
	slotStride  = 512
)

type cursorFile struct {
	f   *os.File
	gen uint64
}

type position struct {
	seq uint64
	off int64
}

func openCursor(dir string) (*cursorFile, position, bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, cursorName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, position{}, false, err
	}
	c := &cursorFile{f: f}
	var best position
	found := false
	for i := int64(0); i < 2; i++ {
		var b [slotSize]byte
		if _, err := f.ReadAt(b[:], i*slotStride); err != nil {
			continue
		}
		if string(b[0:4]) != cursorMagic || checksum(b[:28], nil) != binary.LittleEndian.Uint32(b[28:32]) {
			continue
		}
		gen := binary.LittleEndian.Uint64(b[4:12])
		if !found || gen > c.gen {
			found, c.gen = true, gen
			best = position{seq: binary.LittleEndian.Uint64(b[12:20]), off: int64(binary.LittleEndian.Uint64(b[20:28]))}
		}
	}
	return c, best, found, nil
}

func (c *cursorFile) write(p position) error {
	c.gen++
	var b [slotSize]byte
	copy(b[0:4], cursorMagic)
	binary.LittleEndian.PutUint64(b[4:12], c.gen)
	binary.LittleEndian.PutUint64(b[12:20], p.seq)
	binary.LittleEndian.PutUint64(b[20:28], uint64(p.off))
	binary.LittleEndian.PutUint32(b[28:32], checksum(b[:28], nil))
	if _, err := c.f.WriteAt(b[:], int64(c.gen%2)*slotStride); err != nil {
		return err
	}
	return c.f.Sync()
}
