package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
)

// lineRecord is record i as the proxy writes them: numbered, then
// repetitive metric lines, which compress well.
func lineRecord(i, lines int) []byte {
	b := []byte(fmt.Sprintf("%09d", i))
	for j := range lines {
		b = fmt.Appendf(b, "\nistio.requests.total.value %d 1795681364 source=\"pod-%d\" \"destination_workload\"=\"reviews-v%d\" \"response_code\"=\"200\"", j, j%7, j%3)
	}
	return b
}

// randomRecord is record i padded with random bytes, which do not compress.
func randomRecord(i, size int, r *rand.Rand) []byte {
	b := []byte(fmt.Sprintf("%09d", i))
	for len(b) < size {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

func sealedCompressed(r []byte) []byte {
	frame, _ := SealCompressed(nil, append(make([]byte, FrameHeader), r...))
	return frame
}

func isCompressed(frame []byte) bool {
	return binary.LittleEndian.Uint32(frame)&compressedFlag != 0
}

// Compressed, incompressible and plain records mix in one queue: all read
// back as appended, in order, before and after a reopen (which checksums
// and decodes the newest segment), and compressible ones take less disk.
func TestCompressedRecordsReadBack(t *testing.T) {
	e := newEnv(t)
	opt := Options{SegmentBytes: 64 << 10}
	q := e.open(t, opt)
	r := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	var payload int64
	compressedFrames := 0
	for i := range 60 {
		var rec []byte
		switch i % 3 {
		case 0:
			rec = lineRecord(i, 20+i)
		case 1:
			rec = randomRecord(i, 300+50*i, r)
		case 2:
			rec = lineRecord(i, i%4) // below minCompress for small i
		}
		want = append(want, rec)
		payload += int64(len(rec))
		var err error
		if i%5 == 4 {
			err = q.Append(rec)
		} else {
			frame := sealedCompressed(rec)
			if isCompressed(frame) {
				compressedFrames++
			}
			err = q.AppendFrames(frame)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if compressedFrames < 20 {
		t.Fatalf("only %d frames compressed", compressedFrames)
	}
	if q.Bytes() >= payload {
		t.Fatalf("queue holds %d bytes on disk for %d of payload: nothing was saved", q.Bytes(), payload)
	}
	// Batches are not acked: the reopened queue delivers them all again.
	check := func(q *Queue) {
		t.Helper()
		var got [][]byte
		for len(got) < len(want) {
			b := readBatch(t, q, 16<<10)
			for _, rec := range b.Records {
				got = append(got, bytes.Clone(rec))
			}
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d read back as %.40q…, want %.40q…", i, got[i], want[i])
			}
		}
	}
	check(q)
	q.Close()
	q = e.open(t, opt)
	defer q.Close()
	check(q)
	if strings.Contains(e.log.String(), "truncating") || strings.Contains(e.log.String(), "damaged") {
		t.Fatalf("damage reported:\n%s", e.log.String())
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// SealCompressed keeps a frame plain when compression does not pay, and
// reuses dst.
func TestSealCompressedFallsBackToPlain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for name, rec := range map[string][]byte{
		"random": randomRecord(1, 4000, r),
		"short":  lineRecord(1, 0),
		"empty":  {},
	} {
		frame := append(make([]byte, FrameHeader), rec...)
		got, compressed := SealCompressed(make([]byte, 0, 10), frame)
		if compressed || isCompressed(got) || &got[0] != &frame[0] {
			t.Errorf("%s: SealCompressed compressed it or did not return the frame", name)
		}
		if binary.LittleEndian.Uint32(got) != uint32(len(rec)) {
			t.Errorf("%s: not sealed", name)
		}
	}
	dst := make([]byte, 0, 64<<10)
	got, compressed := SealCompressed(dst, append(make([]byte, FrameHeader), lineRecord(1, 100)...))
	if !compressed || !isCompressed(got) || &got[0] != &dst[:1][0] {
		t.Errorf("a compressible frame was not compressed into dst")
	}
}

// Damage inside a compressed record is found like damage in a plain one;
// a record whose checksum holds but whose block does not decode (a bug,
// or a foreign writer) is damage too, never a panic or a huge allocation.
func TestCompressedRecordDamage(t *testing.T) {
	for _, name := range []string{"flipped block byte", "undecodable block", "huge decoded length"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			q := e.open(t, Options{})
			for i := range 10 {
				if err := q.AppendFrames(sealedCompressed(lineRecord(i, 50))); err != nil {
					t.Fatal(err)
				}
			}
			q.Close()
			path := segFiles(t, e.dir)[0]
			switch name {
			case "flipped block byte":
				flip(t, path, fileSize(t, path)-3)
			default:
				// Append a record with a valid checksum over a bad block.
				block := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3} // decoded length 4 GiB-1
				if name == "undecodable block" {
					block = []byte{10, 0xfe, 0xfe, 0xfe}
				}
				frame := make([]byte, recHdrSize+len(block))
				copy(frame[recHdrSize:], block)
				binary.LittleEndian.PutUint32(frame, uint32(len(block))|compressedFlag)
				binary.LittleEndian.PutUint32(frame[4:], checksum(frame[:4], block))
				appendFile(t, path, frame)
			}
			q = e.open(t, Options{})
			defer q.Close()
			want := 9
			if name != "flipped block byte" {
				want = 10
			}
			if got := q.Len(); got != int64(want) {
				t.Fatalf("Len after recovery = %d, want %d", got, want)
			}
			mustContain(t, e.log.String(), "truncating segment")
			if got := drain(t, q, 1<<20); !equalInts(got, seq(0, want)) {
				t.Fatalf("recovered %v", got)
			}
		})
	}
}

// A compressed frame is refused when its payload, decoded, would not fit
// in a segment, as a plain one would be.
func TestAppendFramesRefusesOversizedCompressed(t *testing.T) {
	e := newEnv(t)
	q := e.open(t, Options{SegmentBytes: 4 << 10})
	defer q.Close()
	big := sealedCompressed(bytes.Repeat([]byte("istio "), 2000))
	if !isCompressed(big) || len(big) > 1<<10 {
		t.Fatalf("test frame not compressed small (%d bytes)", len(big))
	}
	if err := q.AppendFrames(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendFrames = %v, want ErrTooLarge", err)
	}
	bad := make([]byte, FrameHeader+1)
	binary.LittleEndian.PutUint32(bad, 1|compressedFlag)
	bad[FrameHeader] = 0x80 // an unterminated length varint
	if err := q.AppendFrames(bad); err == nil || errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendFrames of a broken block = %v, want an error naming it", err)
	}
	if _, err := s2.DecodedLen(bad[FrameHeader:]); err == nil {
		t.Fatal("the broken block decodes")
	}
}
