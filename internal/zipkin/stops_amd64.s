#include "textflag.h"
#include "go_asm.h"

// STOPS16 sets the low 16 bits of R to the stop bits of the 16 bytes at
// off(SI): bytes equal to '"' (X1), '\\' (X2) or '\n' (X3), or with the
// high bit set (non-ASCII).
#define STOPS16(off, R) \
	MOVOU   off(SI), X0 \
	MOVO    X0, X4      \
	PCMPEQB X1, X4      \
	MOVO    X0, X5      \
	PCMPEQB X2, X5      \
	POR     X5, X4      \
	MOVO    X0, X5      \
	PCMPEQB X3, X5      \
	POR     X5, X4      \
	POR     X0, X4      \
	PMOVMSKB X4, R

// func markStopsSSE2(dst []uint64, b []byte)
TEXT ·markStopsSSE2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ b_len+32(FP), CX
	SHRQ $6, CX
	JZ   done
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X2
	PUNPCKLQDQ X2, X2
	MOVQ $0x0a0a0a0a0a0a0a0a, AX
	MOVQ AX, X3
	PUNPCKLQDQ X3, X3

loop:
	STOPS16(0, AX)
	STOPS16(16, BX)
	SHLQ $16, BX
	ORQ  BX, AX
	STOPS16(32, BX)
	SHLQ $32, BX
	ORQ  BX, AX
	STOPS16(48, BX)
	SHLQ $48, BX
	ORQ  BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ  loop

done:
	RET

// STOPS32 sets the low 32 bits of R to the stop bits of the 32 bytes at
// off(SI) with one table lookup: Y1 maps a byte's low nibble to the one
// stop byte with that nibble ('"', '\\' or '\n'; 0xff, which no ASCII
// byte equals, for the others), so a byte is a stop where it equals its
// lookup, or has its high bit set (VPSHUFB gives those 0).
#define STOPS32(off, R) \
	VMOVDQU   off(SI), Y0 \
	VPSHUFB   Y0, Y1, Y4  \
	VPCMPEQB  Y0, Y4, Y4  \
	VPOR      Y0, Y4, Y4  \
	VPMOVMSKB Y4, R

// func markStopsAVX2(dst []uint64, b []byte)
TEXT ·markStopsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ b_len+32(FP), CX
	SHRQ $6, CX
	JZ   avxdone
	VBROADCASTI128 stopNibbles<>(SB), Y1

avxloop:
	STOPS32(0, AX)
	STOPS32(32, BX)
	SHLQ $32, BX
	ORQ  BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ  avxloop
	VZEROUPPER

avxdone:
	RET

// HEX16 sets the low 16 bits of R to the bytes of X that are lower-case
// hex digits, with signed compares against X4-X7 ('0'-1, '9'+1, 'a'-1,
// 'f'+1; bytes from 0x80 are negative, below all four), and Z to those
// that are '0' (X8); X2, X3 and X9 are scratch.
#define HEX16(X, R, Z) \
	MOVO     X, X2    \
	PCMPGTB  X4, X2   \
	MOVO     X5, X3   \
	PCMPGTB  X, X3    \
	PAND     X3, X2   \
	MOVO     X, X3    \
	PCMPGTB  X6, X3   \
	MOVO     X7, X9   \
	PCMPGTB  X, X9    \
	PAND     X9, X3   \
	POR      X3, X2   \
	PMOVMSKB X2, R    \
	PCMPEQB  X8, X    \
	PMOVMSKB X, Z

// func lowerHexZerosSSE2(p *byte, n int) (zeros int, ok bool)
TEXT ·lowerHexZerosSSE2(SB), NOSPLIT, $0-25
	MOVQ  p+0(FP), SI
	MOVQ  n+8(FP), CX
	MOVOU hexBounds<>+0(SB), X4
	MOVOU hexBounds<>+16(SB), X5
	MOVOU hexBounds<>+32(SB), X6
	MOVOU hexBounds<>+48(SB), X7
	MOVOU hexBounds<>+64(SB), X8
	MOVOU (SI), X0
	HEX16(X0, AX, BX)
	CMPQ  CX, $16
	JEQ   hexmasks
	MOVOU 16(SI), X1
	HEX16(X1, DX, DI)
	SHLL  $16, DX
	ORL   DX, AX
	SHLL  $16, DI
	ORL   DI, BX

hexmasks: // AX: the hex bytes, BX: the '0's, of the n at p
	NOTQ  BX
	BTSQ  CX, BX // n zeros if all are
	BSFQ  BX, BX
	MOVQ  BX, zeros+16(FP)
	MOVL  $1, DX
	SHLQ  CX, DX
	DECQ  DX
	CMPQ  AX, DX
	SETEQ ok+24(FP)
	RET

// hexBounds are HEX16's constants: '0'-1, '9'+1, 'a'-1, 'f'+1 and '0'.
DATA hexBounds<>+0(SB)/8, $0x2f2f2f2f2f2f2f2f
DATA hexBounds<>+8(SB)/8, $0x2f2f2f2f2f2f2f2f
DATA hexBounds<>+16(SB)/8, $0x3a3a3a3a3a3a3a3a
DATA hexBounds<>+24(SB)/8, $0x3a3a3a3a3a3a3a3a
DATA hexBounds<>+32(SB)/8, $0x6060606060606060
DATA hexBounds<>+40(SB)/8, $0x6060606060606060
DATA hexBounds<>+48(SB)/8, $0x6767676767676767
DATA hexBounds<>+56(SB)/8, $0x6767676767676767
DATA hexBounds<>+64(SB)/8, $0x3030303030303030
DATA hexBounds<>+72(SB)/8, $0x3030303030303030
GLOBL hexBounds<>(SB), RODATA|NOPTR, $80

// mixMultiplier is keyWords.mix's multiplier, a memory operand so that
// the tag loop needs no register for it.
DATA mixMultiplier<>+0(SB)/8, $0x9E3779B97F4A7C15
GLOBL mixMultiplier<>(SB), RODATA|NOPTR, $8

// stopNibbles is STOPS32's table: the stop byte of each low nibble.
DATA stopNibbles<>+0(SB)/8, $0xffffffffff22ffff
DATA stopNibbles<>+8(SB)/8, $0xffffff5cff0affff
GLOBL stopNibbles<>(SB), RODATA|NOPTR, $16

// func hasAVX2() bool
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	// Leaf 7 must exist.
	XORL AX, AX
	XORL CX, CX
	CPUID
	CMPL AX, $7
	JLT  no
	// Leaf 1: OSXSAVE (ECX bit 27) and AVX (bit 28).
	MOVL $1, AX
	XORL CX, CX
	CPUID
	ANDL $0x18000000, CX
	CMPL CX, $0x18000000
	JNE  no
	// XCR0: the OS saves the XMM and YMM state (bits 1 and 2).
	XORL CX, CX
	XGETBV
	ANDL $6, AX
	CMPL AX, $6
	JNE  no
	// Leaf 7, subleaf 0: AVX2 (EBX bit 5).
	MOVL $7, AX
	XORL CX, CX
	CPUID
	BTL  $5, BX
	JCC  no
	MOVB $1, ret+0(FP)
	RET

no:
	MOVB $0, ret+0(FP)
	RET

// func readKnownTagsAMD64(t *keyTable, tagBits *[2]uint64, b []byte, stops []uint64, i int, first bool) (next, k0, k1 int, missed bool)
//
// keyTable.readKnownTagsGo's loop: the same checks and loads in the same
// order, with every value in a register (the Go loop spills half of
// them). A key's closing quote and the value's opening quote are the
// first two stop bits after the key's start, so the value's end is the
// third, in the 57 or more bits of the index read from there unless the
// tag is longer; it reads the index eight bytes at a time from any
// byte, into the zero word buildStops leaves after it. next is stored
// on the way out, from DI, which the probe borrows only on its way to
// found or miss, both of which set it.
//
// Registers: SI b, DX len(b), R8 stops, DI the position after the last
// tag, R10 t, R11 tagBits; per tag R12 the key's start (k0), R13 its end
// (k1), R14 the value's end, AX BX R15 the key's words, CX its length.
TEXT ·readKnownTagsAMD64(SB), NOSPLIT, $0-105
	MOVQ t+0(FP), R10
	MOVQ tagBits+8(FP), R11
	MOVQ b_base+16(FP), SI
	MOVQ b_len+24(FP), DX
	MOVQ stops_base+40(FP), R8
	MOVQ i+64(FP), DI
	MOVQ $0, k0+88(FP)
	MOVQ $0, k1+96(FP)
	MOVB $0, missed+104(FP)
	// Every position up to len(b) has its index word, and a spare one
	// follows, as buildStops makes them; read nothing otherwise.
	MOVQ DX, AX
	SHRQ $6, AX
	CMPQ AX, stops_len+48(FP)
	JAE  done
	MOVQ stops_len+48(FP), AX
	CMPQ AX, stops_cap+56(FP)
	JAE  done
	CMPB first+72(FP), $0
	JEQ  sep
	MOVQ DI, BX
	JMP  quote

sep: // DI: after the last tag; `, "` or `,"` before the next (a tag
	// takes at least six bytes, so fewer than four left end the run,
	// and the four bytes loaded are in b)
	LEAQ 4(DI), R12
	CMPQ R12, DX
	JGT  done
	DECQ R12 // the key's start after `, "`
	MOVL (SI)(DI*1), AX
	ANDL $0xffffff, AX
	CMPL AX, $0x22202c // `, "`
	JEQ  key
	CMPW AX, $0x222c // `,"`
	JNE  done
	LEAQ 2(DI), R12
	JMP  key

quote: // BX: where the key's opening quote must be
	CMPQ BX, DX
	JGE  done
	CMPB (SI)(BX*1), $0x22
	JNE  done
	LEAQ 1(BX), R12

key: // R12: the key's start (k0); AX: the index from it on, at least 57
	// bits of it, read at the byte that holds its bit (buildStops
	// leaves a zero word after the index for this load)
	MOVQ R12, AX
	SHRQ $3, AX
	MOVQ (R8)(AX*1), AX
	MOVL R12, CX
	ANDL $7, CX
	SHRQ CX, AX
	BSFQ AX, R13 // ZF: AX is 0
	JZ   keyfar
	ADDQ R12, R13
	// Drop the stop bits at k1 and, if the colon check below passes,
	// k1+2: what is left starts at the value's end.
	LEAQ -1(AX), BX
	ANDQ BX, AX
	LEAQ -1(AX), BX
	ANDQ BX, AX
	BSFQ AX, R14
	JZ   colon
	ADDQ R12, R14
	// R14, the third stop from k0, is at k1+2 or after, so once it is in
	// b so are the four bytes from k1-1 (a quote precedes the key) that
	// hold `":"`: its check needs no bounds check of its own.
	CMPQ R14, DX
	JGE  done
	MOVL -1(SI)(R13*1), BX
	ANDL $0xffffff00, BX
	CMPL BX, $0x223a2200 // `":"` from k1
	JNE  done

valuequote: // R14: the value's end, in b, if it is a quote
	CMPB (SI)(R14*1), $0x22
	JNE  done
	// The key's words (keysWordsOf): three for 8 to maxWordKey bytes,
	// one masked word for fewer if eight bytes from k0 are in b, else
	// the caller's.
	MOVQ R13, CX
	SUBQ R12, CX
	LEAQ -8(CX), BX
	CMPQ BX, $(const_maxWordKey-8)
	JHI  short
	MOVQ (SI)(R12*1), AX
	MOVQ -8(SI)(R13*1), R15
	// The middle word, from k0+min(8, n-8), is w2 for up to 16 bytes.
	MOVQ R15, BX
	CMPQ CX, $16
	JLE  mix
	MOVQ 8(SI)(R12*1), BX
	JMP  mix

short:
	CMPQ CX, $8
	JGE  miss
	LEAQ 8(R12), BX
	CMPQ BX, DX
	JGT  miss
	MOVQ (SI)(R12*1), AX
	SHLQ $3, CX
	MOVQ $1, BX
	SHLQ CX, BX
	DECQ BX
	ANDQ BX, AX
	XORL BX, BX
	XORL R15, R15
	MOVQ R13, CX
	SUBQ R12, CX

mix: // keyWords.mix: (w0 + w2 ^ n) * C, its top byte the slot
	MOVQ  AX, R9
	ADDQ  R15, R9
	XORQ  CX, R9
	IMULQ mixMultiplier<>(SB), R9
	SHRQ  $56, R9

probe: // keyTable.find: R9 the index slot
	MOVBLZX keyTable_index(R10)(R9*1), DI
	BTRL $7, DI // indexUsed, leaving the id
	JCC  miss
	SHLQ $5, DI // keyWords are 32 bytes (stops_amd64.go)
	CMPQ AX, keyTable_words+keyWords_w0(R10)(DI*1)
	JNE  nextslot
	CMPQ BX, keyTable_words+keyWords_w1(R10)(DI*1)
	JNE  nextslot
	CMPQ R15, keyTable_words+keyWords_w2(R10)(DI*1)
	JNE  nextslot
	CMPQ CX, keyTable_words+keyWords_n(R10)(DI*1)
	JEQ  found

nextslot:
	INCL R9
	ANDL $(2*const_maxKeyIDs-1), R9
	JMP  probe

found: // DI: id*32; its bit in tagBits, the tag in its slot
	MOVQ DI, CX
	SHRQ $5, CX
	MOVQ CX, BX
	SHRQ $6, BX
	MOVQ (R11)(BX*8), AX
	BTSQ CX, AX
	MOVQ AX, (R11)(BX*8)
	// plainTags are 32 bytes too
	MOVQ R12, keyTable_slots+plainTag_k0(R10)(DI*1)
	MOVQ R13, keyTable_slots+plainTag_k1(R10)(DI*1)
	LEAQ 3(R13), BX
	MOVQ BX, keyTable_slots+plainTag_v0(R10)(DI*1)
	MOVQ R14, keyTable_slots+plainTag_v1(R10)(DI*1)
	LEAQ 1(R14), DI

aftertag: // DI: after a tag read here, its value's closing quote at
	// DI-1, so the usual `, "` is one compare of the four bytes from
	// there, in b if DI+3 is (a tag takes at least six bytes, so fewer
	// than three left end the run); sep reads anything else
	LEAQ 3(DI), R12
	CMPQ R12, DX
	JGT  done
	CMPL -1(SI)(DI*1), $0x22202c22 // `", "`
	JEQ  key
	JMP  sep

keyfar: // nextStopIn(stops, k0, len(b)), as readKnownTagsGo has it
	MOVQ R12, AX
	SHRQ $6, AX
	MOVQ (R8)(AX*8), BX
	MOVQ R12, CX
	SHRQ CX, BX
	TESTQ BX, BX
	JZ   keyfarword
	BSFQ BX, R13
	ADDQ R12, R13
	XORL AX, AX // the value's end: valuefar
	JMP  colon

keyfarword:
	MOVQ stops_len+48(FP), R9

keyfarloop:
	INCQ AX
	CMPQ AX, R9
	JGE  keyend
	MOVQ (R8)(AX*8), BX
	TESTQ BX, BX
	JZ   keyfarloop
	BSFQ BX, R13
	SHLQ $6, AX
	ADDQ AX, R13
	XORL AX, AX // the value's end: valuefar
	JMP  colon

keyend:
	MOVQ DX, R13
	XORL AX, AX
	JMP  colon

colon: // the value's end is past the bits read at key: `":"` at R13
	// and at least the value's closing quote after it, then valuefar
	LEAQ 4(R13), BX
	CMPQ BX, DX
	JGT  done
	MOVL (SI)(R13*1), BX
	ANDL $0xffffff, BX
	CMPL BX, $0x223a22
	JNE  done

valuefar: // the index from k1+3 as at key, else nextStopIn(stops, k1+3, len(b))
	LEAQ 3(R13), R14
	MOVQ R14, AX
	SHRQ $3, AX
	MOVQ (R8)(AX*1), BX
	MOVL R14, CX
	ANDL $7, CX
	SHRQ CX, BX
	TESTQ BX, BX
	JZ   valuealigned
	BSFQ BX, BX
	ADDQ BX, R14
	JMP  value

valuealigned:
	MOVQ R14, AX
	SHRQ $6, AX
	MOVQ (R8)(AX*8), BX
	MOVQ R14, CX
	SHRQ CX, BX
	TESTQ BX, BX
	JZ   valuefarword
	BSFQ BX, BX
	ADDQ BX, R14
	JMP  value

valuefarword:
	MOVQ stops_len+48(FP), R9

valuefarloop:
	INCQ AX
	CMPQ AX, R9
	JGE  valueend
	MOVQ (R8)(AX*8), BX
	TESTQ BX, BX
	JZ   valuefarloop
	BSFQ BX, R14
	SHLQ $6, AX
	ADDQ AX, R14
	JMP  value

valueend:
	MOVQ DX, R14

value: // R14: the value's end from valuefar
	CMPQ R14, DX
	JGE  done
	JMP  valuequote

miss: // a key t does not hold: the tag is the caller's
	LEAQ 1(R14), DI
	MOVQ R12, k0+88(FP)
	MOVQ R13, k1+96(FP)
	MOVB $1, missed+104(FP)

done: // DI: next
	MOVQ DI, next+80(FP)
	RET
