#include "textflag.h"

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
// off(SI), as STOPS16 does with Y1-Y3; VEX encodings need no copies.
#define STOPS32(off, R) \
	VMOVDQU   off(SI), Y0 \
	VPCMPEQB  Y1, Y0, Y4  \
	VPCMPEQB  Y2, Y0, Y5  \
	VPOR      Y5, Y4, Y4  \
	VPCMPEQB  Y3, Y0, Y5  \
	VPOR      Y5, Y4, Y4  \
	VPOR      Y0, Y4, Y4  \
	VPMOVMSKB Y4, R

// func markStopsAVX2(dst []uint64, b []byte)
TEXT ·markStopsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ b_len+32(FP), CX
	SHRQ $6, CX
	JZ   avxdone
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X1
	VPBROADCASTQ X1, Y1
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X2
	VPBROADCASTQ X2, Y2
	MOVQ $0x0a0a0a0a0a0a0a0a, AX
	MOVQ AX, X3
	VPBROADCASTQ X3, Y3

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
