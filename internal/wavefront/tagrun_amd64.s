#include "textflag.h"
#include "go_asm.h"

// func shapedTagsSSE2(line []byte, i int, out []byte, w int, keys []shapeKey, raw *byte, src int, tags *fastTag, r *shapedRun)
//
// shapedTagRunGo's loop, 16 bytes per step: keys are compared with the
// shape's and copied a 16-byte chunk at a time, and each chunk of a value
// is classified (PADDB/PCMPGTB/PCMPEQB, PMOVMSKB) so its end is one bit
// scan. It reads up to 16 bytes past line's end and 16 past a key in raw
// (the caller provides both). Its stores overhang what it writes by up to
// 16 bytes; as a tag comes out at most twice as long as it went in plus 2
// (the first, which may have no space before it), it needs out to have
// 2*(len(line)-i)+64 bytes from w, and reports shapedPunt if not.
//
// In a shape with a source tag, it remembers accepted tags of each key
// (but the source's) in the key's seen slots, one per slot, the slot
// picked by a hash of the four bytes after the key; a tag that comes again
// byte for byte, followed by a space or the end, is compared and copied
// whole (see shapeKey.seen). Its stores overhang by up to 64 bytes then,
// which the room above covers: such a tag is at least one byte long.
//
// Registers: SI the line position, DX its end, R13 16 bytes before it,
// DI the output position, R8 the current key, R10 raw, R11 the tag count,
// R15 src. X8-X14 hold the bytes the classification compares with. The
// frame holds where the current tag starts in line and in out, and its
// key's slot.

// BADVALUE sets X1 to 0xff for the bytes of X0 outside [lo, 0x7e] or
// equal to the byte in X10 or X11: adding add moves [lo, 0x7e] onto the
// lowest signed bytes, up to top, so one signed comparison finds the
// bytes outside it.
#define BADVALUE(add, top) \
	MOVO X0, X1; PADDB add, X1; PCMPGTB top, X1; \
	MOVO X0, X2; PCMPEQB X10, X2; POR X2, X1; \
	MOVO X0, X3; PCMPEQB X11, X3; POR X3, X1

TEXT ·shapedTagsSSE2(SB), NOSPLIT, $24-120
	MOVQ line_base+0(FP), SI
	MOVQ line_len+8(FP), DX
	ADDQ SI, DX
	LEAQ -16(DX), R13
	ADDQ i+24(FP), SI
	MOVQ out_base+32(FP), DI
	MOVQ out_len+40(FP), AX
	ADDQ DI, AX // out's end
	ADDQ w+56(FP), DI
	MOVQ DX, CX
	SUBQ SI, CX
	LEAQ 64(DI)(CX*2), CX
	CMPQ CX, AX
	JA   punt
	MOVQ keys_base+64(FP), R8
	MOVQ raw+88(FP), R10
	XORQ R11, R11
	MOVQ src+96(FP), R15
	LEAQ runConsts<>(SB), AX
	MOVOU 0x60(AX), X10 // '"'
	MOVOU 0x70(AX), X11 // '\\'
	MOVOU 0x80(AX), X12 // '='
	MOVOU 0x90(AX), X8  // unquoted: 0x21-0x7e + 0x5f
	MOVOU 0xa0(AX), X9  // are up to 0xdd, signed
	MOVOU 0xb0(AX), X13 // quoted: 0x20-0x7e + 0x60
	MOVOU 0xc0(AX), X14 // are up to 0xde, signed

tag:
	CMPQ SI, DX
	JAE  done
	CMPB (SI), $0x20
	JNE  key
	INCQ SI
	JMP  tag

key: // past the last key, R8 is the one learn puts there, whose rawLen leads to nofit
	MOVLQSX shapeKey_rawLen(R8), CX
	ADDQ SI, CX // CX: where the value would start
	CMPQ CX, DX
	JAE  checkkey // no value: checkkey finds out why
	MOVL (CX), AX // the value's first four bytes, or what follows it (within the line's 16 bytes after)
	IMUL3L $-1640531535, AX, AX // 0x9e3779b1
	SHRL $28, AX          // 16 slots…
	LEAQ (AX)(AX*8), AX
	SHLQ $4, AX           // …of 144 bytes (tagrun_amd64.go checks both)
	LEAQ shapeKey_seen(R8)(AX*1), R12 // R12: the slot (the source's stay empty)
	MOVWLZX seenTag_inLen(R12), CX
	// An empty slot (CX 0) misses below: a tag does not start with a space.

seen: // CX: the length of the slot's tag, which may be this one; R12: the slot
	LEAQ (SI)(CX*1), R14 // where this one would end
	CMPQ R14, DX
	JA   seenmiss
	MOVQ R14, BX
	JEQ  seenend
	CMPB (R14), $0x20
	JNE  seenmiss
	INCQ BX

seenend: // BX: where the next tag may start
	MOVOU (SI), X0
	MOVOU seenTag_in(R12), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, AX
	CMPL CX, $16
	JBE  seenmask
	MOVOU 16(SI), X0 // only read within the line (and its 16 bytes after)
	MOVOU seenTag_in+16(R12), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R9
	SHLL $16, R9
	ORL  R9, AX
	CMPL CX, $32
	JBE  seenmask
	MOVOU 32(SI), X0
	MOVOU seenTag_in+32(R12), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R9
	SHLQ $32, R9
	ORQ  R9, AX
	CMPL CX, $48
	JBE  seenmask
	MOVOU 48(SI), X0
	MOVOU seenTag_in+48(R12), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R9
	SHLQ $48, R9
	ORQ  R9, AX

seenmask:
	ANDQ seenTag_mask(R12), AX
	CMPQ AX, seenTag_mask(R12)
	JNE  seenmiss
	MOVOU seenTag_out(R12), X0
	MOVOU X0, (DI)
	MOVOU seenTag_out+16(R12), X0
	MOVOU X0, 16(DI)
	MOVOU seenTag_out+32(R12), X0
	MOVOU X0, 32(DI)
	MOVOU seenTag_out+48(R12), X0
	MOVOU X0, 48(DI)
	MOVWLZX seenTag_outLen(R12), AX
	ADDQ AX, DI
	MOVQ BX, SI // next's work, in place
	INCQ R11
	ADDQ $shapeKey__size, R8
	CMPQ SI, DX
	JAE  done
	CMPB (SI), $0x20
	JNE  key
	INCQ SI
	JMP  tag

seenmiss:
	MOVQ R12, slot-24(SP)
	INCL seenTag_misses(R12)

checkkey:
	MOVQ SI, tagIn-8(SP)
	MOVQ DI, tagOut-16(SP)
	MOVLQSX shapeKey_raw0(R8), AX
	MOVLQSX shapeKey_rawLen(R8), CX // CX: the raw key's length, with quotes and '='
	ADDQ R10, AX // AX: the raw key
	MOVBQSX shapeKey_quoted(R8), BX
	LEAQ (SI)(CX*1), R14
	CMPQ R14, DX
	JA   nofit
	MOVW $0x2220, (DI) // ` "`
	LEAQ 2(DI), R14
	SUBQ BX, R14 // R14: where the raw key goes (its quote over ours)
	CMPQ CX, $32
	JA   klong
	// A key of up to 32 bytes: one or two chunks, and the key's mask.
	MOVOU (SI), X0
	MOVOU X0, (R14)
	MOVOU (AX), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R9
	CMPQ CX, $16
	JBE  kmask
	MOVOU 16(SI), X0 // only read within the line (and its 16 bytes after)
	MOVOU X0, 16(R14)
	MOVOU 16(AX), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, AX
	SHLL $16, AX
	ORL  AX, R9

kmask:
	ANDL shapeKey_keyMask(R8), R9
	CMPL R9, shapeKey_keyMask(R8)
	JNE  nofit
	JMP  kchecked

klong:
	XORQ R9, R9

kloop:
	MOVQ CX, R12
	SUBQ R9, R12
	CMPQ R12, $16
	JLE  klast
	MOVOU (SI)(R9*1), X0
	MOVOU X0, (R14)(R9*1)
	MOVOU (AX)(R9*1), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R12
	CMPL R12, $0xffff
	JNE  nofit
	ADDQ $16, R9
	JMP  kloop

klast: // R12: the 1-16 key bytes left
	MOVOU (SI)(R9*1), X0
	MOVOU X0, (R14)(R9*1)
	MOVOU (AX)(R9*1), X1
	PCMPEQB X0, X1
	PMOVMSKB X1, R9
	NOTL R9
	ORL  $0x10000, R9
	BSFL R9, R9 // the first byte that differs
	CMPQ R9, R12
	JB   nofit

kchecked:
	LEAQ (SI)(BX*1), R9 // R9: the key without its quote, for tags
	CMPQ R11, R15
	JNE  knotsrc
	MOVQ $0x3d656372756f7320, AX // ` source=`
	MOVQ AX, (DI)
	MOVB $0x22, 8(DI)
	MOVQ r+112(FP), AX
	MOVQ DI, R12
	SUBQ out_base+32(FP), R12
	MOVQ R12, shapedRun_srcFrom(AX)
	ADDQ $9, DI
	JMP  value

knotsrc:
	LEAQ -1(R14)(CX*1), DI
	SUBQ BX, DI
	MOVL $0x00223d22, (DI) // `"="`
	ADDQ $3, DI

value:
	ADDQ CX, SI // SI: the value
	CMPQ SI, DX
	JAE  bad
	MOVBLZX (SI), AX
	CMPB AL, $0x27 // most values start above '\''
	JA   unquoted
	CMPB AL, $0x22
	JEQ  quoted
	CMPB AL, $0x27 // '\'': the general path unquotes it
	JEQ  bad
	CMPB AL, $0x23 // '#'
	JEQ  bad

unquoted:
	MOVQ SI, R12
	MOVQ DI, R14

uloop: // R12 scans the value, R14 is where its bytes go
	MOVOU (R12), X0
	MOVOU X0, (R14)
	BADVALUE(X8, X9) // and '='
	PCMPEQB X12, X0
	POR  X0, X1
	PMOVMSKB X1, AX
	CMPQ R12, R13
	JA   uend
	TESTL AX, AX
	JNZ  ufound
	ADDQ $16, R12
	ADDQ $16, R14
	JMP  uloop

uend: // fewer than 16 bytes were left: the line's end ends the value
	MOVQ DX, CX
	SUBQ R12, CX
	BTSL CX, AX

ufound:
	BSFL AX, AX
	ADDQ AX, R12 // R12: the value's end
	CMPQ R12, SI
	JEQ  bad
	MOVQ R12, BX
	CMPQ BX, DX
	JAE  written
	CMPB (BX), $0x20
	JNE  bad
	INCQ BX

written: // SI..R12 is the value, BX where the next tag may start
	MOVQ R12, CX
	SUBQ SI, CX // CX: the value's length
	ADDQ CX, DI
	MOVB $0x22, (DI)
	INCQ DI
	CMPQ R11, R15
	JNE  limits
	MOVQ r+112(FP), AX
	MOVQ DI, R14
	SUBQ out_base+32(FP), R14
	MOVQ R14, shapedRun_srcTo(AX)
	MOVQ CX, shapedRun_srcLen(AX)
	JMP  next

limits:
	CMPQ CX, shapeKey_maxValue(R8)
	JGT  bad
	TESTQ R15, R15
	JNS  remember
	// No source key in the shape: record the tag for the custom source
	// tags.
	MOVQ R11, AX
	IMULQ $fastTag__size, AX
	ADDQ tags+104(FP), AX
	MOVQ line_base+0(FP), R14
	SUBQ R14, R9
	MOVQ R9, fastTag_k0(AX)
	MOVLQSX shapeKey_keyLen(R8), CX
	ADDQ CX, R9
	MOVQ R9, fastTag_k1(AX)
	SUBQ R14, SI
	MOVQ SI, fastTag_v0(AX)
	SUBQ R14, R12
	MOVQ R12, fastTag_v1(AX)

next: // the tag loop's test, repeated here to save a jump per tag
	MOVQ BX, SI
	INCQ R11
	ADDQ $shapeKey__size, R8
	CMPQ SI, DX
	JAE  done
	CMPB (SI), $0x20
	JNE  key
	INCQ SI
	JMP  tag

remember: // a tag accepted, not the source, in a shape that has a source tag
	MOVQ slot-24(SP), AX
	CMPL seenTag_misses(AX), $const_seenMissesToForget
	JB   next
	MOVL $0, seenTag_misses(AX)
	MOVQ R12, CX // the value's end, or its closing quote
	CMPQ R12, DX
	JEQ  tagend
	CMPB (R12), $0x22
	JNE  tagend
	INCQ CX

tagend:
	MOVQ AX, R12 // R12: the slot
	MOVQ tagIn-8(SP), AX
	SUBQ AX, CX // CX: the tag's length as written
	CMPQ CX, $63 // (its output is a byte longer at least)
	JA   next
	MOVQ tagOut-16(SP), R14
	MOVQ DI, R9
	SUBQ R14, R9 // R9: the tag's length as written out
	CMPQ R9, $64
	JA   next
	MOVW CX, seenTag_inLen(R12)
	MOVW R9, seenTag_outLen(R12)
	MOVQ $1, R9
	SHLQ CX, R9
	DECQ R9
	MOVQ R9, seenTag_mask(R12)
	MOVOU (AX), X0
	MOVOU X0, seenTag_in(R12)
	CMPQ CX, $16
	JBE  remembered
	MOVOU 16(AX), X0 // only read within the line (and its 16 bytes after)
	MOVOU X0, seenTag_in+16(R12)
	CMPQ CX, $32
	JBE  remembered
	MOVOU 32(AX), X0
	MOVOU X0, seenTag_in+32(R12)
	CMPQ CX, $48
	JBE  remembered
	MOVOU 48(AX), X0
	MOVOU X0, seenTag_in+48(R12)

remembered:
	MOVOU (R14), X0
	MOVOU X0, seenTag_out(R12)
	MOVOU 16(R14), X0
	MOVOU X0, seenTag_out+16(R12)
	MOVOU 32(R14), X0
	MOVOU X0, seenTag_out+32(R12)
	MOVOU 48(R14), X0
	MOVOU X0, seenTag_out+48(R12)
	JMP  next

quoted:
	INCQ SI
	MOVQ SI, R12
	MOVQ DI, R14

qloop:
	MOVOU (R12), X0
	MOVOU X0, (R14)
	BADVALUE(X13, X14)
	PMOVMSKB X1, AX
	CMPQ R12, R13
	JA   qend
	TESTL AX, AX
	JNZ  qfound
	ADDQ $16, R12
	ADDQ $16, R14
	JMP  qloop

qend:
	MOVQ DX, CX
	SUBQ R12, CX
	BTSL CX, AX

qfound: // the value must end at a quote, and neither start nor end with a space
	BSFL AX, AX
	ADDQ AX, R12
	CMPQ R12, DX
	JAE  bad
	CMPB (R12), $0x22
	JNE  bad
	CMPQ R12, SI
	JEQ  bad
	CMPB (SI), $0x20
	JEQ  bad
	CMPB -1(R12), $0x20
	JEQ  bad
	LEAQ 1(R12), BX
	CMPQ BX, DX
	JAE  written
	CMPB (BX), $0x20
	JNE  bad
	INCQ BX
	JMP  written

done:
	MOVQ r+112(FP), AX
	SUBQ out_base+32(FP), DI
	MOVQ DI, shapedRun_w(AX)
	MOVQ R11, shapedRun_n(AX)
	MOVQ $const_shapedOK, shapedRun_fits(AX)
	RET

nofit:
	MOVQ r+112(FP), AX
	MOVQ $const_shapedNoFit, shapedRun_fits(AX)
	RET

bad:
	MOVQ r+112(FP), AX
	MOVQ $const_shapedBad, shapedRun_fits(AX)
	RET

punt:
	MOVQ r+112(FP), AX
	MOVQ $const_shapedPunt, shapedRun_fits(AX)
	RET

// The bytes the scans compare with, 16 of each.
DATA runConsts<>+0x00(SB)/8, $0x2b2b2b2b2b2b2b2b // ',' - 1
DATA runConsts<>+0x08(SB)/8, $0x2b2b2b2b2b2b2b2b
DATA runConsts<>+0x10(SB)/8, $0x3a3a3a3a3a3a3a3a // '9' + 1
DATA runConsts<>+0x18(SB)/8, $0x3a3a3a3a3a3a3a3a
DATA runConsts<>+0x20(SB)/8, $0x2020202020202020 // A-Z onto a-z
DATA runConsts<>+0x28(SB)/8, $0x2020202020202020
DATA runConsts<>+0x30(SB)/8, $0x6060606060606060 // 'a' - 1
DATA runConsts<>+0x38(SB)/8, $0x6060606060606060
DATA runConsts<>+0x40(SB)/8, $0x7b7b7b7b7b7b7b7b // 'z' + 1
DATA runConsts<>+0x48(SB)/8, $0x7b7b7b7b7b7b7b7b
DATA runConsts<>+0x50(SB)/8, $0x5f5f5f5f5f5f5f5f // '_'
DATA runConsts<>+0x58(SB)/8, $0x5f5f5f5f5f5f5f5f
DATA runConsts<>+0x60(SB)/8, $0x2222222222222222 // '"'
DATA runConsts<>+0x68(SB)/8, $0x2222222222222222
DATA runConsts<>+0x70(SB)/8, $0x5c5c5c5c5c5c5c5c // '\\'
DATA runConsts<>+0x78(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA runConsts<>+0x80(SB)/8, $0x3d3d3d3d3d3d3d3d // '='
DATA runConsts<>+0x88(SB)/8, $0x3d3d3d3d3d3d3d3d
DATA runConsts<>+0x90(SB)/8, $0x5f5f5f5f5f5f5f5f // 0x21-0x7e onto 0x80-0xdd
DATA runConsts<>+0x98(SB)/8, $0x5f5f5f5f5f5f5f5f
DATA runConsts<>+0xa0(SB)/8, $0xdddddddddddddddd
DATA runConsts<>+0xa8(SB)/8, $0xdddddddddddddddd
DATA runConsts<>+0xb0(SB)/8, $0x6060606060606060 // 0x20-0x7e onto 0x80-0xde
DATA runConsts<>+0xb8(SB)/8, $0x6060606060606060
DATA runConsts<>+0xc0(SB)/8, $0xdededededededede
DATA runConsts<>+0xc8(SB)/8, $0xdededededededede
GLOBL runConsts<>(SB), RODATA|NOPTR, $0xd0

// func nameRunSSE2(p *byte, n int, out *byte) int
//
// nameRunCopy for n bytes at p, 16 at a time: the length of the run of
// allowedNameByte bytes, copied to out. It reads up to 16 bytes past p+n
// and stores up to 16 past out+run.
TEXT ·nameRunSSE2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), DX
	MOVQ out+16(FP), DI
	LEAQ runConsts<>(SB), AX
	MOVOU 0x00(AX), X8
	MOVOU 0x10(AX), X9
	MOVOU 0x20(AX), X10
	MOVOU 0x30(AX), X11
	MOVOU 0x40(AX), X12
	MOVOU 0x50(AX), X13
	XORQ BX, BX

nloop:
	MOVOU (SI)(BX*1), X0
	MOVOU X0, (DI)(BX*1)
	MOVO X0, X1 // ',' to '9'
	PCMPGTB X8, X1
	MOVO X9, X2
	PCMPGTB X0, X2
	PAND X2, X1
	MOVO X0, X3 // letters, either case
	POR  X10, X3
	MOVO X3, X4
	PCMPGTB X11, X3
	MOVO X12, X5
	PCMPGTB X4, X5
	PAND X5, X3
	PCMPEQB X13, X0 // '_'
	POR  X3, X1
	POR  X0, X1
	PMOVMSKB X1, AX
	XORL $0xffff, AX
	MOVQ DX, CX
	SUBQ BX, CX
	CMPQ CX, $16
	JAE  2(PC)
	BTSL CX, AX // the end ends the run
	TESTL AX, AX
	JNZ  nfound
	ADDQ $16, BX
	JMP  nloop

nfound:
	BSFL AX, AX
	ADDQ BX, AX
	MOVQ AX, ret+24(FP)
	RET

// func plainValueEndSSE2(p *byte, n int) int
//
// plainValueEnd for n bytes at p, 16 at a time: the length of the run of
// plainValueByte bytes. It reads up to 16 bytes past p+n.
TEXT ·plainValueEndSSE2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), DX
	LEAQ runConsts<>(SB), AX
	MOVOU 0x60(AX), X10 // '"'
	MOVOU 0x70(AX), X11 // '\\'
	MOVOU 0x80(AX), X12 // '='
	MOVOU 0x90(AX), X8  // 0x21-0x7e + 0x5f
	MOVOU 0xa0(AX), X9  // are up to 0xdd, signed
	XORQ BX, BX

ploop:
	MOVOU (SI)(BX*1), X0
	BADVALUE(X8, X9)
	PCMPEQB X12, X0
	POR  X0, X1
	PMOVMSKB X1, AX
	MOVQ DX, CX
	SUBQ BX, CX
	CMPQ CX, $16
	JAE  2(PC)
	BTSL CX, AX
	TESTL AX, AX
	JNZ  pfound
	ADDQ $16, BX
	JMP  ploop

pfound:
	BSFL AX, AX
	ADDQ BX, AX
	MOVQ AX, ret+16(FP)
	RET
