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

// func markStops(dst []uint64, b []byte)
TEXT ·markStops(SB), NOSPLIT, $0-48
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
