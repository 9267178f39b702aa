package wavefront

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
	"github.com/meshwave/meshwave/internal/pageend"
)

// generalCanonical is what the fast path must reproduce: DecodePoint, then
// AppendPoint.
func generalCanonical(d *Decoder, line []byte) ([]byte, error) {
	var p Point
	if err := d.DecodePoint(line, &p); err != nil {
		return nil, err
	}
	return AppendPoint(nil, &p), nil
}

// checkFastAgrees fails if the fast path accepts a line the general path
// rejects, or writes different bytes or a different timestamp.
func checkFastAgrees(t *testing.T, fast, general *Decoder, line []byte) bool {
	t.Helper()
	got, ok := fast.AppendCanonicalPoint([]byte("prefix"), line)
	if !ok {
		if string(got) != "prefix" {
			t.Fatalf("declined %q but changed dst to %q", line, got)
		}
		return false
	}
	want, err := generalCanonical(general, line)
	if err != nil {
		t.Fatalf("fast path accepted %q, general path rejects it: %v", line, err)
	}
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("output differs for %q:\n fast    %q\n general %q", line, got[len("prefix"):], want)
	}
	if fast.TimestampMillis() != general.TimestampMillis() {
		t.Fatalf("TimestampMillis differs for %q: %d vs %d", line, fast.TimestampMillis(), general.TimestampMillis())
	}
	return true
}

// decoderPairs are configurations under which the two paths must agree.
func decoderPairs() map[string][2]*Decoder {
	pair := func(cfg func(*Decoder)) [2]*Decoder {
		a, b := fuzzDecoder(), fuzzDecoder()
		cfg(a)
		cfg(b)
		return [2]*Decoder{a, b}
	}
	small := Limits{MaxSourceLength: 8, MaxNameLength: 8, MaxTags: 2, MaxTagLength: 9, MaxTagKeyLength: 4, MaxTagValueLength: 6,
		Backfill: time.Hour, Prefill: time.Minute}
	return map[string][2]*Decoder{
		"default":        pair(func(*Decoder) {}),
		"no-default-src": pair(func(d *Decoder) { d.DefaultSource = nil }),
		"custom-src":     pair(func(d *Decoder) { d.CustomSourceTags = []string{"instance", "fqdn"} }),
		"quirk":          pair(func(d *Decoder) { d.SourceSubstringQuirk = true }),
		"odd-default":    pair(func(d *Decoder) { d.DefaultSource = []byte(` a"b\ `) }),
		"small-limits":   pair(func(d *Decoder) { d.Limits = &small }),
		"strict-values":  pair(func(d *Decoder) { d.LenientNonFinite = false }),
	}
}

func TestAppendCanonicalPointAccepts(t *testing.T) {
	// Lines in the subset: the fast path must take them, and agree.
	for _, line := range []string{
		istioLine,
		`istio_requests_total 1 1712000000 source=productpage-v1-00001a.default reporter=destination source_workload=productpage-v1 response_flags=-`,
		`cpu.load 0.75 1712000000 host=web-1 env=prod`,
		`m -0.0 1712000000 source=a`,
		`m 00.50 1712000000 source=a`,
		`m 1842.375 1712000000 source=a`,
		`m 123456789012345.0 1712000000 source=a`,
		`m 0.000000000000001 1712000000 source=a`,
		`m 1200000000000000000000.5 1712000000 source=a`, // 23 digits: parsed
		`m 0.1234567890123456 1712000000 source=a`,       // 16 digits: parsed
		`m .5 1712000000 source=a`,
		`m 5. 1712000000 source=a`,
		`cpu.load -0 source=a`,
		`cpu.load 1e3 1712000000123 source=a`,
		`cpu.load 007 1712000000123456 source=a`,
		`cpu.load 1 01712000000 source=a`,
		`cpu.load 1 1712000099 source=a`,
		`cpu.load 12345678901234567 1712000000.5 source=a`,
		`~proxy.points 1 1712000000 source=p "k"="a b=c#d 'e'"`,
		`m 1 1712000000 fqdn=host.example.com k=it's#1`,
		`m 1 _host=x _tag=y`,
		`m 1 1712000000 k=v j="w x" source=s l=z`, // the source moves to the front
		`m 1 1712000000 k=v host=h`,
		`m 1 1712000000 k=v fqdn=f`,
		`m 1 1712000000 ka_abcdefghij=1 kb_abcdefghij=2 kc_abcdefghij=3`, // keys alike but at the ends
		`  m   1    1712000000   source=a   k=v  `,
		"m 1 1712000000 source=a\r\n",
		`m 0x1.8p1 1712000000 source=a`,
	} {
		if !checkFastAgrees(t, fuzzDecoder(), fuzzDecoder(), []byte(line)) {
			t.Errorf("declined %q", line)
		}
	}
}

func TestAppendCanonicalPointDeclines(t *testing.T) {
	// Lines outside the subset, valid or not: the general path decides.
	for _, line := range []string{
		``,
		`m`,
		`m 1 source=a host=b`, // host becomes _host
		`m 1 source=a tag=b`,  // tag becomes _tag
		`m 1 k=a k=b`,         // last one wins
		`m 1 k=a "k"=b`,
		`m 1 ka_abcdefghij=1 kb_abcdefghij=2 ka_abcdefghij=3`,
		`m 1 k="a\"b"`,
		`m 1 k=' a'`,
		`m 1 k=" a"`,
		`m 1 k=""`,
		`m 1 k=`,
		`m 1 k = v`,
		`m 1 k=#v`,
		`m 1 k=a=b`,
		`m 1 "1k"="v"`,
		`m 1 1k=v`,
		"m 1 k=v\tj=w",
		`m "1" source=a`,
		`m NaN source=a`,
		`m +Inf source=a`,
		`m 1e400 source=a`,
		`m x source=a`,
		`m 1.5.5 source=a`,
		`m 1..5 source=a`,
		`"m 1 source=a`,
		`"m"x 1 source=a`,
		`m k 1 source=a`,
		`m! 1 source=a`,
		`~ 1 source=a`,
		"∆m 1 source=a",
		"m 1 k=é",
		"m 1 k=v\x04",
		`m 1 1 source=a`,   // outside the window
		`m 1 1x source=a`,  // bad timestamp
		`m 1 source=" "`,   // blank source
		`"a b" 1 source=a`, // illegal name
		`m 1 "a b"=c`,      // illegal key
		`@SourceTag action=save source=a`,
		`!M 1712000000 #1 1 m source=a`,
	} {
		if checkFastAgrees(t, fuzzDecoder(), fuzzDecoder(), []byte(line)) {
			t.Errorf("accepted %q", line)
		}
	}
}

func TestAppendCanonicalPointLimits(t *testing.T) {
	small := Limits{MaxSourceLength: 3, MaxNameLength: 3, MaxTags: 2, MaxTagLength: 5, MaxTagKeyLength: 3, MaxTagValueLength: 3, Prefill: time.Hour}
	d := fuzzDecoder()
	d.Limits = &small
	for line, accept := range map[string]bool{
		`abc 1 source=abc k=v j=w`: true,
		`abcd 1 source=a`:          false, // name
		`m 1 source=abcd`:          false, // source
		`m 1 source=a k=v j=w l=x`: false, // count
		`m 1 kkkk=v`:               false, // key
		`m 1 k=vvvv`:               false, // value
		`m 1 kkk=vvv`:              false, // key+value
	} {
		if got := checkFastAgrees(t, d, func() *Decoder { g := fuzzDecoder(); g.Limits = &small; return g }(), []byte(line)); got != accept {
			t.Errorf("%q: accepted=%v, want %v", line, got, accept)
		}
	}
}

// TestRuns checks the eight-bytes-at-a-time scans against their byte
// tables: every byte value at every lane, after every prefix length, and
// that the run is copied.
func TestRuns(t *testing.T) {
	for _, r := range []struct {
		name  string
		run   func([]byte, int, []byte, int) int
		table *[256]bool
	}{{"name", nameRunCopy, &allowedNameByte}, {"plain", plainValueRunCopy, &plainValueByte}, {"quoted", quotedValueRunCopy, &quotedValueByte}} {
		for c := range 256 {
			for at := range 70 {
				b := bytes.Repeat([]byte{'a'}, 70)
				b[at] = byte(c)
				for start := 0; start <= at; start++ {
					want := at
					if r.table[c] {
						want = len(b)
					}
					out := make([]byte, 3+len(b)+32)
					got := r.run(b, start, out, 3)
					if got != want {
						t.Fatalf("%s: byte %#x at %d, from %d: got %d, want %d", r.name, c, at, start, got, want)
					}
					if !bytes.Equal(out[3:3+got-start], b[start:got]) {
						t.Fatalf("%s: byte %#x at %d, from %d: copied %q", r.name, c, at, start, out[3:3+got-start])
					}
				}
			}
		}
	}
}

// TestRunsMixed checks the scans against their byte tables on random runs
// of bytes around each class's edges, several bad ones to a word: a scan
// may mark lanes past the first bad byte, never before it. Each run is
// scanned as a slice of its own and as one with random bytes in its spare
// capacity, which the word loads read and must ignore.
func TestRunsMixed(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	edges := []byte{0, 1, ' ', '!', '"', '#', ',', '-', '/', '0', '9', ':', '<', '=', '>', '@', 'A', 'Z', '[', '\\', ']', '_', '`', 'a', 'z', '{', '~', 0x7f, 0x80, 0xa0, 0xfe, 0xff}
	for _, run := range []struct {
		name  string
		run   func([]byte, int, []byte, int) int
		table *[256]bool
	}{{"name", nameRunCopy, &allowedNameByte}, {"plain", plainValueRunCopy, &plainValueByte}, {"quoted", quotedValueRunCopy, &quotedValueByte},
		{"plain-end", func(b []byte, i int, _ []byte, _ int) int { return plainValueEnd(b, i) }, &plainValueByte}} {
		for range 200000 {
			b := make([]byte, 1+r.IntN(40))
			for j := range b {
				if r.IntN(3) == 0 {
					b[j] = edges[r.IntN(len(edges))]
				} else {
					b[j] = 'a'
				}
			}
			want := 0
			for want < len(b) && run.table[b[want]] {
				want++
			}
			spare := make([]byte, len(b), len(b)+r.IntN(24))
			copy(spare, b)
			for j := len(b); j < cap(spare); j++ {
				spare[:cap(spare)][j] = edges[r.IntN(len(edges))]
			}
			for _, b := range [][]byte{b, spare} {
				out := make([]byte, len(b)+16) // room for the SSE2 stores
				if got := run.run(b, 0, out, 0); got != want {
					t.Fatalf("%s: %q (capacity %d): got %d, want %d", run.name, b, cap(b), got, want)
				}
				if run.name != "plain-end" && !bytes.Equal(out[:want], b[:want]) {
					t.Fatalf("%s: %q: copied %q", run.name, b, out[:want])
				}
			}
		}
	}
}

// TestAppendPlainDecimal checks the copied decimals against AppendValue of
// the parsed value, on random decimals rich in zeros and digit counts
// around the 15-digit limit.
func TestAppendPlainDecimal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	digit := func() byte {
		if r.IntN(3) == 0 {
			return '0'
		}
		return byte('0' + r.IntN(10))
	}
	copied := 0
	for range 200000 {
		var b []byte
		if r.IntN(4) == 0 {
			b = append(b, '-')
		}
		for range 1 + r.IntN(9) {
			b = append(b, digit())
		}
		b = append(b, '.')
		for range 1 + r.IntN(16) {
			b = append(b, digit())
		}
		got, ok := appendPlainDecimal([]byte("x"), b)
		if !ok {
			continue
		}
		copied++
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			t.Fatal(err)
		}
		if want := AppendValue([]byte("x"), v); string(got) != string(want) {
			t.Fatalf("%s: wrote %s, AppendValue writes %s", b, got, want)
		}
	}
	if copied < 50000 {
		t.Errorf("only %d of the decimals were copied", copied)
	}
}

func TestAppendCanonicalPointDoesNotAllocate(t *testing.T) {
	d := fuzzDecoder()
	line := []byte(istioLine)
	buf := make([]byte, 0, 4096)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, ok := d.AppendCanonicalPoint(buf[:0], line); !ok {
			t.Fatal("declined")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per line", allocs)
	}
}

// TestAppendCanonicalPointShapes runs lines through one decoder in turn,
// so each line meets the key sequences remembered from the lines before
// it: the same keys, a prefix of them, more of them, the same keys quoted
// differently, a duplicate past the remembered ones, and no source.
func TestAppendCanonicalPointShapes(t *testing.T) {
	for name, p := range decoderPairs() {
		for _, seq := range [][]string{
			{`m 1 1712000000 a=1 source=s b=2`, `m 2 1712000000 a=3 source=t b=4`, `m 2 1712000000 a=3 source=t`, `m 2 1712000000 a=3`,
				`m 2 1712000000 a=3 source=t b=4 c=5`, `m 2 1712000000 a=3 source=t b=4 a=5`, `m 2 1712000000 a=3 source=t b=4 host=h`,
				`m 2 1712000000 "a"=3 source=t b=4`, `m 2 1712000000 a="3" source="t u" b=4`, `m 2 1712000000 a=3 source=t b=é`},
			{`m 1 fqdn=f a=1`, `m 1 fqdn=g a=2`, `m 1 fqdn="g h" a=2`, `m 1 "fqdn"="g" a=2`, `m 1 fqdn=g`, `m 1 fqdn=g a=2 a=3`},
			{`m 1 a=1 b=2`, `m 1 a=1 b=2 tag=3`, `m 1 a=1 b=2 source=s host=h`, `m 1 a=1 b=2 host=h`, `m 1 a=1 b=2 instance=i`},
			{`m 1 kkkk=1 k=v`, `m 1 kkkk=1 k=vvvvvvv`, `m 1 kkkk=1 k=v`, `m 1 kkkk=11111111 k=v`},
			{`m 1 source=a verylongkeyname_x=1`, `m 1 source=a verylongkeyname_x=`, `m 1 source=a verylongkeyname_x`, `m 1 source=a verylongkeyname_`},
			{`a 1 k=v`, `b 1 j=w`, `a 1 k=w`, `b 1 j=x`, `a 1 j=w`},
			// Remembered tags must not outlive their key sequence: after
			// the keys swap places, b=2 in a's place is a duplicate.
			{`m 1 source=s a=1 b=2`, `m 1 source=s a=1 b=2`, `m 1 source=s b=2 a=1`, `m 1 source=s b=2 b=2`, `m 1 source=s a=1 a=1`,
				`m 1 source=s b=2 a=1`, `m 1 source=s b=2 a=1`, `m 1 source=s a=1 b=2`, `m 1 source=s a=1 a=1`, `m 1 source=s b=2 b=2`},
			// Tags the assembly remembers, met again, changed, longer,
			// shorter, last in the line or not, and with bytes of an
			// earlier, longer line after the end of a shorter one.
			{`m 1 source=s k=vx j="a b"`, `m 1 source=s k=v`, `m 1 source=s k=vx`, `m 1 source=s k=v j="a b"`, `m 1 source=s k=v j="a bc"`,
				`m 1 source=s k=v j="a b" `, `m 1 source=s k=v  j="a b"x`, `m 1 source=s k=v j="a b`, `m 1 source=s k=w j="a b"`,
				`m 1 source=s k=v j="a b"`, `m 1 source=s k=vv j=a`, `m 1 source=s k=vv j=a`, `m 1 source=s k=v j=a`},
			{`m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v`, `m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v`,
				`m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=vw`, `m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=`,
				`m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v j=123456789012345`, `m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v j=1234567890123456`,
				`m 1 source=s kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v j=123456789012345`},
		} {
			for _, line := range seq {
				t.Run(name, func(t *testing.T) { checkFastAgrees(t, p[0], p[1], []byte(line)) })
			}
		}
	}
}

// FuzzAppendCanonicalPoint differentially tests the fast path against
// DecodePoint + AppendPoint under several decoder configurations. Its
// corpus includes FuzzDecodePoint's edge cases. The input is checked
// whole and then line by line on the same decoders, so later lines meet
// the key sequences the earlier ones left (see tagShape).
func FuzzAppendCanonicalPoint(f *testing.F) {
	for _, s := range []string{
		istioLine,
		`m 1 1712000000 source=a host=b tag=c k=v k=w`,
		`m 1.50 1712000000123 fqdn=f "k"="a b" j=it's`,
		"m 1 1712000000 source=a k=v j=w\nm 1 1712000000 source=a k=v j=w k=x\nm 2 source=b \"k\"=v",
		"m 1 fqdn=f k=v\nm 1 fqdn=f\nm 1 k=v fqdn=f",
	} {
		f.Add([]byte(s))
	}
	pairs, batches := decoderPairs(), decoderPairs()
	// Inputs are also read at the end of readable memory, where a load
	// past a line without spare capacity faults.
	const pageEndMax = 64 << 10
	mem := pageend.New(f, pageEndMax)
	f.Fuzz(func(t *testing.T, input []byte) {
		for name, p := range pairs {
			t.Run(name, func(t *testing.T) {
				checkFastAgrees(t, p[0], p[1], input)
				if len(input) <= pageEndMax {
					checkFastAgrees(t, p[0], p[1], mem.At(input))
					batches[name][0].AppendCanonicalLines(nil, mem.At(input), 1<<20)
				}
				for line := range bytes.SplitSeq(input, []byte("\n")) {
					checkFastAgrees(t, p[0], p[1], line)
				}
				checkLinesAgree(t, batches[name][0], p[0], input, 40)
				checkLinesAgree(t, batches[name][1], p[0], input, 1<<20)
			})
		}
	})
}

// checkLinesAgree runs AppendCanonicalLines over input, skipping each line
// it stops at, and requires that it take exactly the lines of up to maxLine
// bytes that AppendCanonicalPoint takes, one by one, with the same output.
func checkLinesAgree(t *testing.T, batch, single *Decoder, input []byte, maxLine int) {
	t.Helper()
	// In a buffer with spare capacity, as the proxy's lines are.
	buf := append(make([]byte, 0, len(input)+16), input...)
	got, want := []byte("prefix"), []byte("prefix")
	for pos := 0; pos < len(buf); {
		var n, used int
		from := pos
		got, n, used = batch.AppendCanonicalLines(got, buf[pos:], maxLine)
		for range n {
			nl := bytes.IndexByte(buf[pos:], '\n')
			var ok bool
			if want, ok = single.AppendCanonicalPoint(want, buf[pos:pos+nl+1]); !ok {
				t.Fatalf("AppendCanonicalLines took %q, AppendCanonicalPoint declines it", buf[pos:pos+nl+1])
			}
			pos += nl + 1
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendCanonicalLines wrote %q, AppendCanonicalPoint %q", got, want)
		}
		if pos-from != used {
			t.Fatalf("AppendCanonicalLines took %d lines in %d bytes, but says %d", n, pos-from, used)
		}
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			break
		}
		line := buf[pos : pos+nl+1]
		if _, ok := single.AppendCanonicalPoint(nil, line); ok && len(line) <= maxLine {
			t.Fatalf("AppendCanonicalLines stopped at %q, which AppendCanonicalPoint takes", line)
		}
		pos += nl + 1
	}
}

func BenchmarkAppendCanonicalPoint(b *testing.B) {
	// Lines that differ like a proxy's input does (values, sources and tag
	// values of varying lengths), so branch prediction and caches see what
	// they see there rather than one line again and again: each in its own
	// allocation (mixed), or back to back in one buffer (buffered) as the
	// proxy's lines are in its read buffer, where the scans may read past
	// a line's end.
	b.Run("mixed/fast", func(b *testing.B) { benchmarkLines(b, mixedIstioLines(4096)) })
	b.Run("buffered/fast", func(b *testing.B) {
		lines := mixedIstioLines(4096)
		var buf []byte
		for _, l := range lines {
			buf = append(buf, l...)
		}
		for i, at := 0, 0; i < len(lines); i++ {
			lines[i], at = buf[at:at+len(lines[i])], at+len(lines[i])
		}
		benchmarkLines(b, lines)
	})
	b.Run("lines/fast", func(b *testing.B) {
		// The same lines through AppendCanonicalLines, a buffer at a time
		// as the proxy's read loop calls it; an op is still a line.
		lines := mixedIstioLines(4096)
		var buf []byte
		ends := make([]int, len(lines))
		for i, l := range lines {
			buf = append(buf, l...)
			ends[i] = len(buf)
		}
		buf = slices.Grow(buf, 16)
		d := newTestDecoder()
		b.SetBytes(int64(len(buf) / len(lines)))
		b.ReportAllocs()
		var out []byte
		cpu0 := cpuclock.Self()
		for left := b.N; left > 0; {
			chunk := buf[:ends[min(left, len(lines))-1]]
			var n int
			if out, n, _ = d.AppendCanonicalLines(out[:0], chunk, 1<<20); n != min(left, len(lines)) {
				b.Fatalf("took %d of %d lines", n, min(left, len(lines)))
			}
			left -= n
		}
		b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	for _, bc := range []struct{ name, line string }{
		{"quoted", istioLine},
		{"unquoted", `istio_requests_total 1842 1712000000 source=productpage-v1-00001a.default reporter=destination source_workload=productpage-v1 source_workload_namespace=default source_app=productpage destination_workload=reviews-v2 destination_workload_namespace=default destination_service=reviews.default.svc.cluster.local destination_app=reviews request_protocol=http response_code=200 response_flags=- connection_security_policy=mutual_tls grpc_response_status=0`},
	} {
		line := []byte(bc.line)
		b.Run(bc.name+"/fast", func(b *testing.B) {
			d := newTestDecoder()
			buf, ok := d.AppendCanonicalPoint(nil, line)
			if !ok {
				b.Fatal("declined")
			}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			cpu0 := cpuclock.Self()
			for b.Loop() {
				buf, _ = d.AppendCanonicalPoint(buf[:0], line)
			}
			b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N), "cpu-ns/op")
		})
		b.Run(bc.name+"/general", func(b *testing.B) {
			d := newTestDecoder()
			var p Point
			var buf []byte
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			cpu0 := cpuclock.Self()
			for b.Loop() {
				if err := d.DecodePoint(line, &p); err != nil {
					b.Fatal(err)
				}
				buf = AppendPoint(buf[:0], &p)
			}
			b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchmarkLines runs AppendCanonicalPoint over lines in turn.
func benchmarkLines(b *testing.B, lines [][]byte) {
	d := newTestDecoder()
	var buf []byte
	size := 0
	for _, l := range lines {
		var ok bool
		if buf, ok = d.AppendCanonicalPoint(buf[:0], l); !ok {
			b.Fatalf("declined %q", l)
		}
		size += len(l)
	}
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	cpu0 := cpuclock.Self()
	i := 0
	for b.Loop() {
		buf, _ = d.AppendCanonicalPoint(buf[:0], lines[i%len(lines)])
		i++
	}
	b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N), "cpu-ns/op")
}

// mixedIstioLines are n Istio request-count lines as a mesh's proxies send
// them (~330 B, 13 tags and a source): random apps, pods, codes, counts.
func mixedIstioLines(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 1))
	apps := []string{"productpage", "reviews", "ratings", "details", "frontend", "cart", "checkout", "payments"}
	codes := []string{"200", "200", "200", "201", "204", "404", "503"}
	lines := make([][]byte, n)
	for i := range lines {
		src, dst := apps[r.IntN(len(apps))], apps[r.IntN(len(apps))]
		lines[i] = fmt.Appendf(nil, "istio_requests_total %d %d source=%s-v1-%06x.default reporter=destination source_workload=%s-v1 source_workload_namespace=default source_app=%s "+
			"destination_workload=%s-v2 destination_workload_namespace=default destination_service=%s.default.svc.cluster.local destination_app=%s "+
			"request_protocol=http response_code=%s response_flags=- connection_security_policy=mutual_tls grpc_response_status=%d\n",
			r.IntN(100000), 1712000000+i, src, i%4096, src, src, dst, dst, dst, codes[r.IntN(len(codes))], r.IntN(17))
	}
	return lines
}

// TestEightDigits checks eightDigits against strconv on random 8-byte
// strings of digits with, now and then, a byte from around the digits.
func TestEightDigits(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	edges := []byte{0, '-', '.', '/', ':', ';', '@', 'a', 0x80, 0xb0, 0xb9, 0xff, 0x3a + 0x80}
	for range 200000 {
		b := make([]byte, 8)
		for j := range b {
			if r.IntN(16) == 0 {
				b[j] = edges[r.IntN(len(edges))]
			} else {
				b[j] = byte('0' + r.IntN(10))
			}
		}
		want, err := strconv.ParseUint(string(b), 10, 64)
		got, ok := eightDigits(binary.LittleEndian.Uint64(b))
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("%q: got %d, %v; want %d, %v", b, got, ok, want, err)
		}
	}
}

func TestValueWrittenAsIs(t *testing.T) {
	for b, want := range map[string]bool{
		"0": true, "42": true, "-7": true, "0.5": true, "12.25": true, "-0.001": true,
		"123456789012345": true, "1234567890123456": false, // 16 digits: not exact
		"007": false, "1.50": false, "1.": false, ".5": false, "1e3": false, "+1": false,
		"00.5": false, "NaN": false, "": false, "1.2345678901234567": false,
	} {
		if got := ValueWrittenAsIs([]byte(b)); got != want {
			t.Errorf("ValueWrittenAsIs(%q) = %t, want %t", b, got, want)
		}
	}
}

// FuzzValueWrittenAsIs: a token it accepts is a value the decoder reads
// and AppendValue prints back as the same bytes.
func FuzzValueWrittenAsIs(f *testing.F) {
	for _, s := range []string{"0", "-12", "3.25", "0.000125", "123456789012345", "9.99999999999999", "1.50", "007"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !ValueWrittenAsIs(b) {
			return
		}
		v, ok := parseJavaDouble(b)
		if !ok {
			t.Fatalf("%q accepted but does not parse", b)
		}
		if out := AppendValue(nil, v); !bytes.Equal(out, b) {
			t.Fatalf("%q accepted but prints as %q", b, out)
		}
	})
}

// TestDigitToken checks digitToken and digitsValue against a byte loop
// and strconv on random tokens of digits around the 8-, 15- and 16-digit
// edges, ended by a space, another byte or the line's end, with digits
// or other bytes in the spare capacity (which must never count) and with
// too little capacity for the loads.
func TestDigitToken(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	others := []byte{' ', '.', '-', '/', ':', 'e', '"', '\n', 0, 0x80, 0xb0, 0xb9, 0xff}
	for range 300000 {
		at := r.IntN(4)
		b := make([]byte, at, at+40)
		for range at {
			b = append(b, byte('0'+r.IntN(10)))
		}
		for range r.IntN(18) {
			b = append(b, byte('0'+r.IntN(10)))
		}
		for range r.IntN(3) {
			if r.IntN(2) == 0 {
				b = append(b, others[r.IntN(len(others))])
			} else {
				b = append(b, byte('0'+r.IntN(10)))
			}
		}
		fillSpare(r, b, others)
		if r.IntN(4) == 0 {
			b = b[:len(b):min(cap(b), len(b)+r.IntN(20))]
		}
		want := at
		for want < len(b) && isDigit(b[want]) {
			want++
		}
		n := want - at
		if n == 0 || n > 15 || (want < len(b) && b[want] != ' ') || cap(b)-at < 16 {
			n = 0
		}
		x0, x1, got := digitToken(b, at)
		if got != n {
			t.Fatalf("%q (capacity %d) at %d: got %d digits, want %d", b, cap(b), at, got, n)
		}
		if n == 0 {
			continue
		}
		wantV, err := strconv.ParseUint(string(b[at:at+n]), 10, 64)
		if v := digitsValue(x0, x1, n); err != nil || v != wantV {
			t.Fatalf("%q at %d: value %d, want %d (%v)", b, at, v, wantV, err)
		}
		out := appendWords(make([]byte, 3, 3+16), x0, x1, n)
		if string(out[3:]) != string(b[at:at+n]) {
			t.Fatalf("%q at %d: appendWords wrote %q", b, at, out[3:])
		}
	}
}

// TestAppendCanonicalPointDigitTokens runs values and timestamps at and
// around digitToken's edges (leading zeros, 8, 15 and 16 digits, signs,
// fractions, a token at the line's end) through both paths, each line
// alone and followed in its spare capacity by digits, which the word
// loads read and must ignore.
func TestAppendCanonicalPointDigitTokens(t *testing.T) {
	var lines []string
	for _, v := range []string{"0", "7", "00", "07", "12345678", "123456789", "123456789012345", "1234567890123456", "-5", "5.", "5.25", "5e3", "5x"} {
		for _, ts := range []string{"", " 1712000000", " 1712000000123", " 171200000012345", " 1712000000123456", " 01712000000", " 1712000000x", " 17120000.5"} {
			lines = append(lines, "m "+v+ts, "m "+v+ts+" source=a k=v", "m "+v+ts+"  source=a")
		}
	}
	for _, line := range lines {
		for _, spare := range []string{"", "0123456789012345678", " 1712000000 x"} {
			b := append(make([]byte, 0, len(line)+len(spare)), line...)
			copy(b[len(b):cap(b)], spare)
			accepted := checkFastAgrees(t, fuzzDecoder(), fuzzDecoder(), b)
			if _, err := generalCanonical(fuzzDecoder(), b); err == nil && !accepted &&
				!strings.Contains(line, "x") && !strings.Contains(line, "5e3") {
				t.Errorf("declined %q", line)
			}
		}
	}
}

// TestAppendCanonicalPointNames runs lines through one decoder in turn so
// that each meets the name remembered from the line before (see
// lastName): the same name, quoted or not, longer, shorter, sharing a
// prefix, at 39-41 bytes, followed by '=' or by the line's end, and with
// a name limit that changes between two lines with the same name.
func TestAppendCanonicalPointNames(t *testing.T) {
	long := strings.Repeat("n", 38)
	for name, p := range decoderPairs() {
		for _, seq := range [][]string{
			{`m 1 1712000000 k=v`, `m 2 1712000000 k=w`, `"m" 2 1712000000 k=w`, `"m" 3 k=w`, `m 3 k=w`, `mm 3 k=w`, `m 3 k=w`, `m`, `m `, `m 1`, `m=1 2`, `m 1 k=v`},
			{`istio_requests_total 1 source=a`, `istio_requests_totalx 1 source=a`, `istio_requests_tota 1 source=a`, `istio_requests_total 1 source=a`,
				`istio_requests_total 1 source=a`, `istio_requests_totaL 1 source=a`, `istio_requests_total 1 source=a`},
			{long + ` 1 a=b`, long + ` 2 a=b`, long + `x 1 a=b`, long + `x 2 a=b`, long + `xy 1 a=b`, long + `xy 2 a=b`, `"` + long + `" 1 a=b`, `"` + long + `" 2 a=b`,
				`"` + long + `x" 1 a=b`, `"` + long + `x" 1 a=b`, long + `x 3 a=b`},
			{`~proxy.a 1 k=v`, `~proxy.a 1 k=v`, `~proxy.b 1 k=v`, `~ 1 k=v`, `~proxy.b 1 k=v`, `"~proxy.b" 1 k=v`},
		} {
			for _, line := range seq {
				t.Run(name, func(t *testing.T) { checkFastAgrees(t, p[0], p[1], []byte(line)) })
			}
		}
	}
	// A limit lowered between two lines with the same name.
	d, g := fuzzDecoder(), fuzzDecoder()
	line := []byte(`abcdefghij 1 1712000000 source=a`)
	if !checkFastAgrees(t, d, g, line) {
		t.Fatalf("declined %q", line)
	}
	lim := defaultLimits
	lim.MaxNameLength = 9
	d.Limits, g.Limits = &lim, &lim
	if checkFastAgrees(t, d, g, line) {
		t.Fatalf("took %q with a name over MaxNameLength", line)
	}
}

// TestAppendCanonicalLinesFloor runs buffers of lines far shorter and
// longer than those before them (AppendCanonicalLines looks for a newline
// from the shortest line's end on, see lineFloor), valid and not, with
// and without tags, through AppendCanonicalLines and line by line.
func TestAppendCanonicalLinesFloor(t *testing.T) {
	long := "m 1 1712000000 source=s k=" + strings.Repeat("v", 60) + " j=w\n"
	for _, input := range []string{
		long + long + "m 1\n" + long + "m 2 1712000000\n" + long,
		long + "m 1 source=s\n" + "m 1 source=s k=v\n" + long + "m 1 source=s \n" + long,
		long + "m x\n" + long + "m 1 k=v\n\n" + long + "m\n" + long + "m 1 source=s\r\n" + long,
		"m 1 source=s\n" + long + "m 1 k=\"a b\"\n" + long + "m 1 k=" + strings.Repeat("v", 70) + "\n" + long,
	} {
		batches := decoderPairs()
		for name, p := range decoderPairs() {
			t.Run(name, func(t *testing.T) {
				checkLinesAgree(t, batches[name][0], p[0], []byte(input+input), 1<<20)
				checkLinesAgree(t, batches[name][1], p[1], []byte(input), 80)
			})
		}
	}
}

// TestValueAndTimestamp checks valueAndTimestamp against digitToken read
// twice, on random value and timestamp tokens around its edges (7 and 8
// value digits, leading zeros, 15 and 16 timestamp digits, two spaces,
// other bytes, the line's end), with digits or other bytes in the spare
// capacity and with too little capacity for its loads.
func TestValueAndTimestamp(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	others := []byte{' ', '.', '-', 'e', '"', '\n', 0, 0x80, 0xb0}
	digits := func(b []byte, n int) []byte {
		for range n {
			b = append(b, byte('0'+r.IntN(10)))
		}
		return b
	}
	for range 300000 {
		at := r.IntN(3)
		b := digits(make([]byte, 0, at+64), at)
		b = digits(b, r.IntN(10))
		for range r.IntN(3) {
			b = append(b, ' ')
		}
		b = digits(b, r.IntN(18))
		if r.IntN(3) == 0 {
			b = append(b, others[r.IntN(len(others))])
		}
		fillSpare(r, b, others)
		if r.IntN(4) == 0 {
			b = b[:len(b):min(cap(b), len(b)+r.IntN(40))]
		}
		wantTn := 0
		var wantVx, wantTx0, wantTx1 uint64
		vx, _, vn := digitToken(b, at)
		if vn > 0 && vn < 8 && (vn == 1 || b[at] != '0') && at+vn < len(b) && b[at+vn] == ' ' && cap(b)-at >= 32 {
			if tx0, tx1, tn := digitToken(b, at+vn+1); tn > 0 {
				wantTn, wantVx, wantTx0, wantTx1 = tn, vx, tx0, tx1
			}
		}
		gotVx, gotVn, gotTx0, gotTx1, gotTn := valueAndTimestamp(b, at)
		if gotTn != wantTn || (wantTn > 0 && (gotVn != vn || gotVx != wantVx || gotTx0 != wantTx0 || gotTx1 != wantTx1)) {
			t.Fatalf("%q (capacity %d) at %d: got %d, %d digits; want %d, %d", b, cap(b), at, gotVn, gotTn, vn, wantTn)
		}
	}
}

// fillSpare fills b's spare capacity with digits and now and then one of
// others: what the word loads may read past a token must not extend it.
func fillSpare(r *rand.Rand, b, others []byte) {
	full := b[:cap(b)]
	for j := len(b); j < len(full); j++ {
		full[j] = byte('0' + r.IntN(10))
		if r.IntN(8) == 0 {
			full[j] = others[r.IntN(len(others))]
		}
	}
}
