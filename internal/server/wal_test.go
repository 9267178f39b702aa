package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/meshwave/meshwave/internal/queue"
	"github.com/meshwave/meshwave/internal/wavefront"
	"github.com/meshwave/meshwave/internal/wql"
)

func TestSplitCanonicalPoint(t *testing.T) {
	for _, c := range []struct {
		line, key string
		v         float64
		ms        int64
		ok        bool
	}{
		{`"cpu.load" 0.75 1712000000123 source="web-1" "env"="prod"`, `"cpu.load" source="web-1" "env"="prod"`, 0.75, 1712000000123, true},
		{`"∆~jobs" -3 1712000000000 source="a b" "k"="x\"y z"`, `"∆~jobs" source="a b" "k"="x\"y z"`, -3, 1712000000000, true},
		{`"m" NaN 1712000000000 source="s"`, `"m" source="s"`, math.NaN(), 1712000000000, true},
		{`"m" +Inf 1712000000000 source="s"`, `"m" source="s"`, math.Inf(1), 1712000000000, true},
		{`"m" -0 1712000000000 source="s"`, `"m" source="s"`, math.Copysign(0, -1), 1712000000000, true},
		{`"m" 123456789012345678 1712000000000 source="s"`, `"m" source="s"`, 123456789012345678, 1712000000000, true},
		{`"m" -12.5 1712000000000 source="s"`, `"m" source="s"`, -12.5, 1712000000000, true},
		{`"m" - 1712000000000 source="s"`, "", 0, 0, false},
		{`"m" 1 source="s"`, "", 0, 0, false},             // no timestamp
		{`m 1 1712000000000 source="s"`, "", 0, 0, false}, // unquoted name
		{`"m" 1 17x2000000000 source="s"`, "", 0, 0, false},
		{`"m" x 1712000000000 source="s"`, "", 0, 0, false},
		{`"m" 1 1712000000000 "source"="s"`, "", 0, 0, false},
		{`"m 1 1712000000000 source="s"`, "", 0, 0, false},
		{`"m"`, "", 0, 0, false},
		{``, "", 0, 0, false},
	} {
		key, _, v, ms, ok := splitCanonicalPoint(nil, []byte(c.line))
		if ok != c.ok || (ok && (string(key) != c.key || !sameFloat(v, c.v) || ms != c.ms)) {
			t.Errorf("%s: got %q %v %d %t; want %q %v %d %t", c.line, key, v, ms, ok, c.key, c.v, c.ms, c.ok)
		}
	}
}

// sameFloat is equality that tells -0 from 0 and NaN equal to itself.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// FuzzSplitCanonicalPoint checks that every point the handler accepts
// splits back from its WAL line into the value and millisecond timestamp
// the decoder reads, and that its series text is the same whichever path
// wrote it and whatever the value and time, so the reference cache finds
// the series again. nextGuessed, with that series as the cache's guess,
// must read the WAL line as splitCanonicalPoint does, and must read any
// input either so or not at all. Any input must not panic.
func FuzzSplitCanonicalPoint(f *testing.F) {
	f.Add([]byte(`cpu.load 0.75 1712000000 host=web-1 env=prod`))
	lim := wavefront.DefaultLimits()
	now := time.Now()
	clock := func() time.Time { return now }
	newDec := func() *wavefront.Decoder {
		return &wavefront.Decoder{Limits: &lim, Now: clock, DefaultSource: []byte("10.1.2.3")}
	}
	handler, reference := newDec(), newDec()
	var p, q wavefront.Point
	f.Fuzz(func(t *testing.T, line []byte) {
		splitCanonicalPoint(nil, line)
		rec, err := appendPoint(nil, handler, line, &p)
		if err != nil {
			return
		}
		key, _, v, ms, ok := splitCanonicalPoint(nil, bytes.TrimSuffix(rec, []byte("\n")))
		if reference.DecodePoint(line, &q) != nil {
			t.Fatalf("%q accepted by appendPoint only", line)
		}
		if !ok || !sameFloat(v, q.Value) || ms != reference.TimestampMillis() {
			t.Fatalf("%q → %q: got %v %d %t; want %v %d", line, rec, v, ms, ok, q.Value, reference.TimestampMillis())
		}
		q.Value, q.Timestamp = 42, 1700000000000
		other := wavefront.AppendPoint(nil, &q)
		if key2, _, _, _, _ := splitCanonicalPoint(nil, bytes.TrimSuffix(other, []byte("\n"))); !bytes.Equal(key, key2) {
			t.Fatalf("series text depends on the path, value or time: %q vs %q", key, key2)
		}

		refs := guessing(key)
		body := append(slices.Clone(rec), line...) // another line after it
		if _, gv, gms, n, ok := nextGuessed(refs, body); !ok || n != len(rec)-1 || !sameFloat(gv, v) || gms != ms {
			if len(rec)-len(key) <= maxGuessedHead-len(" source=") {
				t.Fatalf("%q: nextGuessed got %v %d %d %t; want %v %d %d", rec, gv, gms, n, ok, v, ms, len(rec)-1)
			}
		}
		checkGuess(t, refs, key, line)
	})
}

// guessing returns a reference cache whose guess is the series text key.
func guessing(key []byte) *refCache {
	c := newRefCache()
	c.add([]byte("before"), 0, 1, 1, labels.EmptyLabels())
	split := bytes.IndexByte(key[1:], '"') + 2
	c.add(key, split, 2, 2, labels.EmptyLabels())
	c.last = 0
	return &c
}

// checkGuess checks that nextGuessed, guessing series text key, reads
// body's first line as splitCanonicalPoint does, or not at all.
func checkGuess(t *testing.T, refs *refCache, key, body []byte) {
	t.Helper()
	_, v, ms, n, ok := nextGuessed(refs, body)
	if !ok {
		return
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	key2, _, v2, ms2, ok2 := splitCanonicalPoint(nil, line)
	if !ok2 || n != len(line) || !bytes.Equal(key2, key) || !sameFloat(v, v2) || ms != ms2 {
		t.Fatalf("%q: nextGuessed read %v %d %d, splitCanonicalPoint %q %v %d %t", body, v, ms, n, key2, v2, ms2, ok2)
	}
}

// TestNextGuessed checks lines that nextGuessed must read and must leave
// to splitCanonicalPoint.
func TestNextGuessed(t *testing.T) {
	key := []byte(`"m" source="s" "k"="v"`)
	refs := guessing(key)
	for _, c := range []struct {
		body string
		n    int // the line's length, or -1: not read
		v    float64
		ms   int64
	}{
		{`"m" 1.5 1712000000123 source="s" "k"="v"`, 40, 1.5, 1712000000123},
		{"\"m\" -2 1712000000123 source=\"s\" \"k\"=\"v\"\n\"m\" 3 1 source=\"s\"", 39, -2, 1712000000123},
		{`"m" 1 1712000000123 source="s" "k"="v" "k2"="w"`, -1, 0, 0}, // more tags
		{`"m" 1 1712000000123 source="s" "k"="v2"`, -1, 0, 0},         // another value
		{`"m" 1 1712000000123 source="s"`, -1, 0, 0},                  // fewer tags
		{`"mm" 1 1712000000123 source="s" "k"="v"`, -1, 0, 0},         // another name
		{`"m" 1 source="s" "k"="v"`, -1, 0, 0},                        // no timestamp
		{`"m" 1 1712000000123000000000 source="s" "k"="v"`, -1, 0, 0}, // too long
		{"\"m\" 1\n1712000000123 source=\"s\" \"k\"=\"v\"", -1, 0, 0},
		{`"m" ` + strings.Repeat("0", 60) + `1 1712000000123 source="s" "k"="v"`, -1, 0, 0}, // past the bound
		{`"m"`, -1, 0, 0},
		{``, -1, 0, 0},
	} {
		_, v, ms, n, ok := nextGuessed(refs, []byte(c.body))
		if ok != (c.n >= 0) || (ok && (n != c.n || v != c.v || ms != c.ms)) {
			t.Errorf("%q: got %v %d %d %t; want %v %d %d", c.body, v, ms, n, ok, c.v, c.ms, c.n)
		}
		checkGuess(t, refs, key, []byte(c.body))
	}
}

func TestInMillis(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want string
	}{
		{1712000000000, `"m" 1 1712000000000 source="a b" "k"="v"`},
		{1712000000007, `"m" 1 1712000000007 source="a b" "k"="v"`},
		{1712000000250, `"m" 1 1712000000250 source="a b" "k"="v"`},
	} {
		rec := append([]byte("prefix\n"), `"m" 1 1712000000 source="a b" "k"="v"`...)
		if got := inMillis(rec, len("prefix\n"), c.ms); string(got) != "prefix\n"+c.want {
			t.Errorf("%d: got %q, want %q", c.ms, got, c.want)
		}
	}
}

// TestPointsKeepMilliseconds posts points through both handler paths, with
// second, millisecond and no timestamps, and checks what the tsdb holds.
func TestPointsKeepMilliseconds(t *testing.T) {
	s := start(t, Config{})
	ms := base() + 123
	before := time.Now().UnixMilli()
	body := fmt.Sprintf("ms.fast 2.5 %d source=a\n"+ // one pass, ms timestamp
		"ms.whole -3 %d source=a\n"+ // one pass, seconds
		"ms.slow 4 %d source=a k=\"x\\\"y\"\n"+ // DecodePoint: an escaped quote
		"ms.now 5 source=a\n", // the request's clock
		ms, ms/1000, ms+7)
	if code, res := post(t, s.url, "wavefront", body); code != 202 || res.Accepted != 4 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	after := time.Now().UnixMilli()
	want := map[string]wql.Point{"ms.fast": {T: ms, V: 2.5}, "ms.whole": {T: ms / 1000 * 1000, V: -3}, "ms.slow": {T: ms + 7, V: 4}}
	var got []wql.Series
	eventually(t, "four points", func() bool { got = selectAll(t, s.Server, "ms.*"); return len(got) == 4 })
	for _, ser := range got {
		if len(ser.Points) != 1 {
			t.Fatalf("%s: %v", ser.Name, ser.Points)
		}
		p := ser.Points[0]
		if ser.Name == "ms.now" {
			if p.T < before || p.T > after || p.V != 5 {
				t.Errorf("ms.now: %+v, want a time in [%d, %d]", p, before, after)
			}
		} else if p != want[ser.Name] {
			t.Errorf("%s: %+v, want %+v", ser.Name, p, want[ser.Name])
		}
	}
}

// TestRefCache checks the reference cache's three ways to a series: the
// guessed successor, the hash index (also when two texts share a hash)
// and a miss; and that it empties itself at either bound.
func TestRefCache(t *testing.T) {
	c := newRefCache()
	c.maxEntries, c.maxTextBytes = 4, 1<<10
	add := func(key string) {
		t.Helper()
		e, h := c.find([]byte(key))
		if e != nil {
			t.Fatalf("%s: found before it was added", key)
		}
		c.add([]byte(key), 0, h, storage.SeriesRef(len(key)), labels.FromStrings("k", key))
	}
	want := func(key string) {
		t.Helper()
		e, _ := c.find([]byte(key))
		if e == nil || e.ref != storage.SeriesRef(len(key)) || e.lset.Get("k") != key {
			t.Fatalf("%s: got %+v", key, e)
		}
	}
	add("a")
	add("bb")
	add("ccc")
	for range 2 { // the second round follows the guesses
		want("a")
		want("bb")
		want("ccc")
	}
	want("bb") // out of order: through the index
	want("a")
	if e, _ := c.find([]byte("dddd")); e != nil {
		t.Fatalf("dddd: found %+v", e)
	}

	// Two texts with the same hash: both are kept and told apart.
	const h = 42
	c = newRefCache()
	c.add([]byte("x1"), 0, h, 1, labels.FromStrings("k", "x1"))
	c.add([]byte("x2"), 0, h, 2, labels.FromStrings("k", "x2"))
	for _, k := range []string{"x1", "x2", "x1"} {
		if e := c.lookup([]byte(k), h); e == nil || e.lset.Get("k") != k {
			t.Fatalf("%s under a shared hash: got %+v", k, e)
		}
	}
	if e := c.lookup([]byte("x3"), h); e != nil {
		t.Fatalf("x3 under a shared hash: got %+v", e)
	}

	// Either bound empties the cache before the add that would pass it.
	c = newRefCache()
	c.maxEntries, c.maxTextBytes = 2, 8
	add("p")
	add("q")
	add("r") // third entry
	if len(c.entries) != 1 || c.lookup([]byte("p"), maphash.Bytes(c.seed, []byte("p"))) != nil {
		t.Fatalf("after passing maxEntries: %d entries", len(c.entries))
	}
	want("r")
	add("12345678") // 1 + 8 bytes of text
	if len(c.entries) != 1 || len(c.arena) != 8 {
		t.Fatalf("after passing maxTextBytes: %d entries, %d bytes", len(c.entries), len(c.arena))
	}
	want("12345678")
}

func TestLeadingDigits(t *testing.T) {
	for _, c := range []struct {
		in string
		v  int64
		n  int
	}{
		{"1712000000123 source", 1712000000123, 13},
		{"17120000 ", 17120000, 8},
		{"1712000 ", 1712000, 7},
		{"0000000000001x", 1, 13},
		{"12345678901234567", 12345678901234567, 17},
		{"123456789012345678", 123456789012345678, 18},
		{"1234567890123456789012", 1234567890123456789, 19}, // one past the bound: refused by the caller
		{"1234:678901234", 1234, 4},
		{"12345678/", 12345678, 8},
		{"", 0, 0},
		{"x1", 0, 0},
	} {
		if v, n := leadingDigits([]byte(c.in)); n != c.n || (n <= maxTimeDigits && v != c.v) {
			t.Errorf("%q: got %d, %d; want %d, %d", c.in, v, n, c.v, c.n)
		}
	}
}

// openTestWAL opens a WAL in dir that holds at most handoff bytes for the
// applier, with small segments, and counts the frames it gives back.
func openTestWAL(t *testing.T, dir string, handoff int, released *atomic.Int64) *walLog {
	t.Helper()
	l, err := openWAL(dir, 4<<10, handoff, func([]byte) { released.Add(1) }, quietLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testFrame(i int) []byte {
	return append(make([]byte, walFrameHeader), fmt.Sprintf("record %d %s", i, strings.Repeat("x", i%7*300))...)
}

// takeAll takes records from pos until n are read, checking their order
// and contents against testFrame, and returns the position after them
// and how many came from memory.
func takeAll(t *testing.T, l *walLog, pos walPos, from, n int) (walPos, int) {
	t.Helper()
	var (
		recs   []walRecord
		buf    []byte
		err    error
		handed int
	)
	for i := from; i < from+n; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		recs, buf, err = l.take(ctx, pos, 3000, recs, buf)
		cancel()
		if err != nil {
			t.Fatalf("take at %+v (record %d): %v", pos, i, err)
		}
		for _, r := range recs {
			if want := testFrame(i)[walFrameHeader:]; !bytes.Equal(r.frame[walFrameHeader:], want) {
				t.Fatalf("record %d: got %.20q, want %.20q", i, r.frame[walFrameHeader:], want)
			}
			if r.handed {
				handed++
				l.release(r.frame)
			}
			pos = r.end
			i++
		}
	}
	return pos, handed
}

// TestWALHandoffAndDisk appends records over several segments and takes
// them back: in memory while the handoff has room, from disk past it (an
// applier that lags), and from disk after a restart, from the applied
// position on.
func TestWALHandoffAndDisk(t *testing.T) {
	for _, handoff := range []int{64 << 20, 5000, 0} {
		t.Run(fmt.Sprint("handoff=", handoff), func(t *testing.T) {
			dir := t.TempDir()
			var released atomic.Int64
			l := openTestWAL(t, dir, handoff, &released)
			const n = 60
			for i := 0; i < n; i += 3 {
				if err := l.append(testFrame(i), testFrame(i+1), testFrame(i+2)); err != nil {
					t.Fatal(err)
				}
			}
			pos, handed := takeAll(t, l, l.start(), 0, 40)
			switch {
			case handoff == 0 && handed != 0, handoff > 1<<20 && handed != 40, handoff == 5000 && (handed == 0 || handed == 40):
				t.Errorf("%d of 40 records from memory", handed)
			}
			if err := l.applied(pos); err != nil {
				t.Fatal(err)
			}
			segs := func() int { ents, _ := os.ReadDir(dir); return len(ents) - 1 } // less the cursor
			before := segs()
			if err := l.close(); err != nil {
				t.Fatal(err)
			}
			if released.Load() != n {
				t.Errorf("%d frames released, want %d", released.Load(), n)
			}

			l = openTestWAL(t, dir, handoff, &released)
			defer l.close()
			if got := l.start(); got != pos && l.nextLocked(pos) != got {
				t.Errorf("restart at %+v, want %+v", got, pos)
			}
			pos, _ = takeAll(t, l, l.start(), 40, n-40)
			if l.idle() {
				t.Error("idle before the last records are applied")
			}
			if err := l.applied(pos); err != nil {
				t.Fatal(err)
			}
			if !l.idle() || segs() >= before {
				t.Errorf("after applying everything: idle %t, %d segments (%d before)", l.idle(), segs(), before)
			}
		})
	}
}

// TestWALTornTail: a crash in the middle of a frame leaves a torn tail;
// after a restart the frames before it are read, the tail is skipped and
// counted, and appends go on in a new segment.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	var released atomic.Int64
	l := openTestWAL(t, dir, 0, &released)
	for i := range 3 {
		if err := l.append(testFrame(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
	seg := filepath.Join(dir, walSegName(1))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := testFrame(3)
	sealFrame(torn)
	f.Write(torn[:len(torn)/2])
	f.Close()

	l = openTestWAL(t, dir, 0, &released)
	defer l.close()
	if err := l.append(testFrame(4)); err != nil {
		t.Fatal(err)
	}
	pos, _ := takeAll(t, l, l.start(), 0, 3)
	var recs []walRecord
	recs, _, err = l.take(context.Background(), pos, 1<<20, recs, nil)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].frame[walFrameHeader:], testFrame(4)[walFrameHeader:]) || recs[0].at.seq == 1 {
		t.Fatalf("after the torn frame: %v %+v", err, recs)
	}
	if n := testutil.ToFloat64(l.tornFrames); n != 1 {
		t.Errorf("torn frames counted: %v", n)
	}
}

// TestWALQueueLayoutApplied: a WAL of the previous layout (an
// internal/queue FIFO) left with records is applied on Open and removed.
func TestWALQueueLayoutApplied(t *testing.T) {
	dir := t.TempDir()
	q, err := queue.Open(filepath.Join(dir, "wal"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms := base()
	rec := newFrame(nil, fmtPoint, ms, 256)[walFrameHeader:]
	rec = fmt.Appendf(rec, "\"old.layout\" 7 %d source=\"a\"\n", ms)
	if err := q.Append(rec); err != nil {
		t.Fatal(err)
	}
	q.Close()
	s := start(t, Config{DataDir: dir})
	if ss := selectAll(t, s.Server, "old.layout"); len(ss) != 1 || len(ss[0].Points) != 1 || ss[0].Points[0] != (wql.Point{T: ms, V: 7}) {
		t.Fatalf("stored: %+v", ss)
	}
	for _, name := range []string{"cursor", "lock"} {
		if _, err := os.Stat(filepath.Join(dir, "wal", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of the old layout left: %v", name, err)
		}
	}
}

// FuzzWALSegment: whatever a segment file holds after its header, reading
// it must not panic and must return exactly the frames before the first
// one that does not check out, each once and whole.
func FuzzWALSegment(f *testing.F) {
	var frames []byte
	for i := range 3 {
		fr := testFrame(i)
		sealFrame(fr)
		frames = append(frames, fr...)
	}
	f.Add(frames)
	f.Add(frames[:len(frames)-5])
	dir := f.TempDir() // one file, rewritten by every input: inputs run one at a time
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := os.WriteFile(filepath.Join(dir, walSegName(1)), append([]byte(walMagic), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		// A sealed segment as Open finds it; no writer, so no fsyncs.
		limit := walMagicBytes + int64(len(body))
		l := &walLog{dir: dir, log: slog.New(slog.DiscardHandler), segs: []walSeg{{seq: 1, size: limit, sealed: true}},
			tornFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "torn"})}
		defer func() {
			if l.rf != nil {
				l.rf.Close()
			}
		}()
		var want [][]byte
		for off := 0; off+walFrameHeader <= len(body); {
			n := int(binary.LittleEndian.Uint32(body[off:]))
			if n > len(body)-off-walFrameHeader || crc32.Checksum(body[off+walFrameHeader:off+walFrameHeader+n], castagnoli) != binary.LittleEndian.Uint32(body[off+4:]) {
				break
			}
			want = append(want, body[off+walFrameHeader:off+walFrameHeader+n])
			off += walFrameHeader + n
		}
		var (
			got  [][]byte
			recs []walRecord
			buf  []byte
			err  error
		)
		pos := walPos{1, walMagicBytes}
		for pos.off < limit {
			if recs, buf, err = l.read(pos, limit, 1<<10, recs[:0], buf); err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				got = append(got, slices.Clone(r.frame[walFrameHeader:]))
				pos = r.end
			}
		}
		if len(got) != len(want) {
			t.Fatalf("read %d frames, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: got %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// TestApplyHinted applies point records with the hints the handler's way
// gives them: a series' first hinted line maps it, later ones are stored
// without being read, and a new generation of knownSeries or of the
// reference cache makes the applier read the lines again. Every point
// must be stored as the lines say.
func TestApplyHinted(t *testing.T) {
	s := start(t, Config{}) // nothing is posted: its applier stays idle
	a := &applier{s: s.Server}
	a.dec.Limits = &s.limits
	dec := &wavefront.Decoder{Limits: &s.limits}
	lists := new(freeList[pointHint])
	sec := base() / 1000
	// round builds one record of the lines of series "s0".."s<n-1>" for
	// round k, as handleReport would, and applies it.
	round := func(k, n int) []pointHint {
		r := s.known.reader(lists)
		rec := newFrame(nil, fmtPoint, 0, 1<<12)
		for j := range n {
			line := fmt.Appendf(nil, `"hint.m" %d %d source="s%d" "k"="v"`, k*10+j, sec+int64(k), j)
			before := len(rec)
			var ok bool
			if rec, ok = r.appendPoint(rec, dec, line); !ok {
				if rec, ok = appendCanonicalPoint(rec, dec, line); !ok {
					t.Fatalf("%q not accepted", line)
				}
				r.learn(line, rec[before:])
			}
		}
		hints := r.takeHints()
		r.close()
		if err := a.apply(context.Background(), [][]byte{rec[walFrameHeader:]}, [][]pointHint{hints}); err != nil {
			t.Fatal(err)
		}
		return hints
	}
	hinted := func(hints []pointHint) (n int) {
		for i := range hints {
			if _, ok := a.hintedRef(&hints[i]); ok {
				n++
			}
		}
		return n
	}
	if h := round(0, 3); len(h) != 0 {
		t.Fatalf("lines of new series got hints: %+v", h)
	}
	if h := round(1, 3); len(h) != 3 || hinted(h) != 3 {
		t.Fatalf("round 1: %d hints, %d mapped after it", len(h), hinted(h))
	}
	round(2, 3) // stored through the hints
	s.known.gen++
	if h := round(3, 3); len(h) != 3 || hinted(h) != 3 {
		t.Fatalf("round 3, a new knownSeries generation: %d hints, %d mapped after it", len(h), hinted(h))
	}
	s.metrics.refs.maxEntries = len(s.metrics.refs.entries)
	h := round(4, 4) // a new series empties the reference cache
	if len(h) != 3 || hinted(h) != 0 {
		t.Fatalf("round 4: %d hints, %d still mapped after the cache emptied", len(h), hinted(h))
	}
	s.metrics.refs.maxEntries = maxCachedRefs
	round(5, 4)
	round(6, 4)

	got := selectAll(t, s.Server, "hint.m")
	if len(got) != 4 {
		t.Fatalf("%d series stored, want 4", len(got))
	}
	for _, ser := range got {
		j := int(ser.Source[1] - '0')
		var want []wql.Point
		for k := range 7 {
			if j < 3 || k >= 4 {
				want = append(want, wql.Point{T: (sec + int64(k)) * 1000, V: float64(k*10 + j)})
			}
		}
		if !slices.Equal(ser.Points, want) {
			t.Errorf("%s: %v, want %v", ser.Source, ser.Points, want)
		}
	}
}
