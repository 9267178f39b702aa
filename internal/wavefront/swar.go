package wavefront

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// The fast path's scans test eight bytes per step (SWAR): each byte of a
// uint64 is a lane, and a lane's high bit carries that lane's answer. The
// helpers take y with every high bit clear, so no lane's sum carries into
// the next.
const (
	lanes1 = 0x0101010101010101
	highs  = 0x8080808080808080
)

// laneGE marks the lanes of y that are ≥ c (1 ≤ c ≤ 0x80).
func laneGE(y uint64, c byte) uint64 { return (y + lanes1*uint64(0x80-c)) & highs }

// laneGT marks the lanes of y that are > c (c ≤ 0x7f).
func laneGT(y uint64, c byte) uint64 { return (y + lanes1*uint64(0x7f-c)) & highs }

// laneEQ marks the lanes of y that equal c (c ≤ 0x7f).
func laneEQ(y uint64, c byte) uint64 {
	v := y ^ lanes1*uint64(c)
	return ^((v + lanes1*0x7f) | v) & highs
}

// firstBad returns i plus the index of the lowest marked lane.
func firstBad(i int, bad uint64) int { return i + bits.TrailingZeros64(bad)/8 }

// nameRunCopyGo (nameRunCopy, which on amd64 may run nameRunSSE2
// instead) returns the end of the run of allowedNameByte bytes at
// b[i:] and copies the run to out[w:], which must have room for it plus 8
// bytes: whole words are stored before they are checked. The scans read
// words up to cap(b) and ignore the lanes past len(b), so only a slice
// without 8 bytes of spare capacity ends byte by byte (a line in a
// reader's buffer has them).
func nameRunCopyGo(b []byte, i int, out []byte, w int) int {
	n, full := len(b), b[:cap(b)]
	for ; i < n && i+8 <= len(full); i, w = i+8, w+8 {
		x := binary.LittleEndian.Uint64(full[i:])
		binary.LittleEndian.PutUint64(out[w:], x)
		y := x &^ highs
		folded := y | lanes1*0x20 // A–Z onto a–z
		ok := laneGE(y, ',')&^laneGT(y, '9') | laneGE(folded, 'a')&^laneGT(folded, 'z') | laneEQ(y, '_')
		if bad := (^ok | x) & highs; bad != 0 {
			return min(firstBad(i, bad), n)
		}
	}
	for ; i < n && allowedNameByte[b[i]]; i, w = i+1, w+1 {
		out[w] = b[i]
	}
	return min(i, n)
}

// laneLT marks the lowest lane of x below c (c ≤ 0x80), and maybe lanes
// above it but never below: the subtraction's borrows only run upwards
// from a lane that is below c. x may have high bits set; those lanes are
// never marked, so callers test the high bits themselves.
func laneLT(x uint64, c byte) uint64 { return (x - lanes1*uint64(c)) &^ x & highs }

// plainValueBad marks the lowest lane of x that is not plainValueByte (and
// maybe later ones: only the lowest is meant). It is laneLT written out,
// to stay within the inlining budget.
func plainValueBad(x uint64) uint64 {
	q, e, s, d := x^lanes1*'"', x^lanes1*'=', x^lanes1*'\\', x^lanes1*0x7f
	return (x | (x-lanes1*'!')&^x | (q-lanes1)&^q | (e-lanes1)&^e | (s-lanes1)&^s | (d-lanes1)&^d) & highs
}

// quotedValueBad is plainValueBad for quotedValueByte.
func quotedValueBad(x uint64) uint64 {
	return (x | laneLT(x, ' ') | laneLT(x^lanes1*'"', 1) | laneLT(x^lanes1*'\\', 1) | laneLT(x^lanes1*0x7f, 1)) & highs
}

// plainValueRunCopy is nameRunCopy for plainValueByte.
func plainValueRunCopy(b []byte, i int, out []byte, w int) int {
	n, full := len(b), b[:cap(b)]
	for ; i < n && i+8 <= len(full); i, w = i+8, w+8 {
		x := binary.LittleEndian.Uint64(full[i:])
		binary.LittleEndian.PutUint64(out[w:], x)
		if bad := plainValueBad(x); bad != 0 {
			return min(firstBad(i, bad), n)
		}
	}
	for ; i < n && plainValueByte[b[i]]; i, w = i+1, w+1 {
		out[w] = b[i]
	}
	return min(i, n)
}

// plainValueEndGo (plainValueEnd, which on amd64 may run
// plainValueEndSSE2 instead) is plainValueRunCopy without the copy, for
// the value and timestamp tokens.
func plainValueEndGo(b []byte, i int) int {
	n, full := len(b), b[:cap(b)]
	for ; i < n && i+8 <= len(full); i += 8 {
		if bad := plainValueBad(binary.LittleEndian.Uint64(full[i:])); bad != 0 {
			return min(firstBad(i, bad), n)
		}
	}
	for i < n && plainValueByte[b[i]] {
		i++
	}
	return min(i, n)
}

// quotedValueRunCopy is nameRunCopy for quotedValueByte.
func quotedValueRunCopy(b []byte, i int, out []byte, w int) int {
	n, full := len(b), b[:cap(b)]
	for ; i < n && i+8 <= len(full); i, w = i+8, w+8 {
		x := binary.LittleEndian.Uint64(full[i:])
		binary.LittleEndian.PutUint64(out[w:], x)
		if bad := quotedValueBad(x); bad != 0 {
			return min(firstBad(i, bad), n)
		}
	}
	for ; i < n && quotedValueByte[b[i]]; i, w = i+1, w+1 {
		out[w] = b[i]
	}
	return min(i, n)
}

// wordsAt, wordAt and putWordAt read and write a byte slice as unaligned
// little-endian words without bounds checks, for the tag loop, where the
// slicing arithmetic of binary.LittleEndian on b[i:] and the registers it
// holds cost more than the loads themselves. wordsAt(b, i) needs
// i < len(b); the caller checks once that the words it then touches at
// offsets from there lie within b.
func wordsAt(b []byte, i int) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)
}

// digitToken reads the token at b[i:] from its words if it is 1–15 ASCII
// digits ended by a space or b's end, the usual value and timestamp of a
// point line: d is their count (0 for any other token, or if b lacks the
// 16 bytes of capacity from i that the loads may read), x0 and x1 the
// words as read (x1 is 0 if d ≤ 8), for the caller to store the digits
// whole. Lanes past len(b) are never digits, so bytes in the spare
// capacity cannot extend the token.
func digitToken(b []byte, i int) (x0, x1 uint64, d int) {
	rest := len(b) - i
	if i < 0 || rest <= 0 || cap(b)-i < 16 {
		return 0, 0, 0
	}
	p := wordsAt(b[:cap(b)], i)
	x0 = wordAt(p, 0)
	nd := nonDigits(x0)
	if rest < 8 {
		nd |= highs << (8 * uint(rest&7))
	}
	if nd != 0 {
		d = bits.TrailingZeros64(nd) / 8
	} else {
		x1 = wordAt(p, 8)
		nd = nonDigits(x1)
		if rest < 16 {
			nd |= highs << (8 * uint(rest&7))
		}
		d = 8 + bits.TrailingZeros64(nd)/8
	}
	if d == 0 || d > 15 || (i+d < len(b) && b[i+d] != ' ') {
		return 0, 0, 0
	}
	return x0, x1, d
}

// valueAndTimestamp reads the tokens at b[i:] if they are a value of 1–7
// digits without a leading zero, one space and a timestamp of 1–15 digits
// ended by a space or b's end, as digitToken would read each: vn and tn
// are their lengths (tn 0 if b[i:] is not so, or if b lacks the 32 bytes
// of capacity from i that the loads may read), vx and tx0, tx1 their
// words as read (tx1 is 0 if tn ≤ 8).
func valueAndTimestamp(b []byte, i int) (vx uint64, vn int, tx0, tx1 uint64, tn int) {
	rest := len(b) - i
	if i < 0 || rest < 3 || cap(b)-i < 32 {
		return 0, 0, 0, 0, 0
	}
	p := wordsAt(b[:cap(b)], i)
	vx = wordAt(p, 0)
	nd := nonDigits(vx)
	if rest < 8 {
		nd |= highs << (8 * uint(rest&7))
	}
	vn = bits.TrailingZeros64(nd) / 8 // 8 if all digits
	if vn == 0 || vn >= min(rest, 8) || byte(vx>>(8*uint(vn&7))) != ' ' || (vn > 1 && byte(vx) == '0') {
		return 0, 0, 0, 0, 0
	}
	trest := rest - vn - 1
	// The timestamp, read as digitToken reads a token; written out here
	// because a shared helper is over the inlining budget (+31
	// instructions per line, measured).
	q := unsafe.Add(p, vn+1)
	tx0 = wordAt(q, 0)
	nd = nonDigits(tx0)
	if trest < 8 {
		nd |= highs << (8 * uint(trest&7))
	}
	if nd != 0 {
		tn = bits.TrailingZeros64(nd) / 8
	} else {
		tx1 = wordAt(q, 8)
		nd = nonDigits(tx1)
		if trest < 16 {
			nd |= highs << (8 * uint(trest&7))
		}
		tn = 8 + bits.TrailingZeros64(nd)/8
	}
	if tn == 0 || tn > 15 || (tn < trest && b[i+vn+1+tn] != ' ') {
		return 0, 0, 0, 0, 0
	}
	return vx, vn, tx0, tx1, tn
}

// nonDigits marks the lanes of x that are not '0'–'9': x^'0' puts the
// digits on 0–9, and adding 0x76 carries the rest (or those with the high
// bit) into the high bit.
func nonDigits(x uint64) uint64 {
	v := x ^ lanes1*'0'
	return (v&^highs + lanes1*0x76 | v) & highs
}

// digitsValue is the value of the d (1–15) digits that digitToken read
// into x0 and x1, by eightDigits' pairing steps: the digits are shifted to
// the top lanes so that the lanes below read as leading zeros.
func digitsValue(x0, x1 uint64, d int) uint64 {
	if d <= 8 {
		return digitLanes((x0 - lanes1*'0') << ((64 - 8*uint(d)) & 63))
	}
	return digitLanes(x0-lanes1*'0')*pow10[(d-8)&15] + digitLanes((x1-lanes1*'0')<<((128-8*uint(d))&63))
}

// appendWords appends the first n (≤ 16) bytes of the words x0 and x1 to
// dst, which must have 16 bytes of spare capacity.
func appendWords(dst []byte, x0, x1 uint64, n int) []byte {
	p := wordsAt(dst[:cap(dst)], len(dst))
	putWordAt(p, 0, x0)
	putWordAt(p, 8, x1)
	return dst[:len(dst)+n]
}

// digitLanes is the number that lanes of 0–9 spell, the low lane first:
// each step joins neighbouring lanes ((x*(10<<8+1))>>8 pairs digits, and
// so on). In digitsValue, subtracting '0' from a word of digits and then
// other bytes borrows only in the lanes above the digits, shifted out.
func digitLanes(x uint64) uint64 {
	x = (x * (10<<8 + 1)) >> 8 & 0x00ff00ff00ff00ff
	x = (x * (100<<16 + 1)) >> 16 & 0x0000ffff0000ffff
	return (x * (10000<<32 + 1)) >> 32
}
