//go:build amd64 && !purego

// Packing kernel of pack_amd64.go: a 4×8 register transpose.

#include "textflag.h"

// func pack4AVX2(dst, src *float32, k8, si, r int)
//
// Packs 4 rows of src (row stride si floats) into panel layout:
// dst[j·r+i] = src[i·si+j] for i < 4 and j < k8 (k8 a multiple of 8),
// transposing 4×8 blocks in registers.
TEXT ·pack4AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ k8+16(FP), CX
	MOVQ si+24(FP), R12
	SHLQ $2, R12
	LEAQ (R12)(R12*2), R13
	MOVQ r+32(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	SHRQ $3, CX
	JZ pkdone
pkloop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R12*1), Y1
	VMOVUPS (SI)(R12*2), Y2
	VMOVUPS (SI)(R13*1), Y3
	VUNPCKLPS Y1, Y0, Y4
	VUNPCKHPS Y1, Y0, Y5
	VUNPCKLPS Y3, Y2, Y6
	VUNPCKHPS Y3, Y2, Y7
	VSHUFPS $0x44, Y6, Y4, Y0
	VSHUFPS $0xEE, Y6, Y4, Y1
	VSHUFPS $0x44, Y7, Y5, Y2
	VSHUFPS $0xEE, Y7, Y5, Y3
	LEAQ (DI)(R9*4), R11
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(R9*1)
	VMOVUPS X2, (DI)(R9*2)
	VMOVUPS X3, (DI)(R10*1)
	VEXTRACTF128 $1, Y0, (R11)
	VEXTRACTF128 $1, Y1, (R11)(R9*1)
	VEXTRACTF128 $1, Y2, (R11)(R9*2)
	VEXTRACTF128 $1, Y3, (R11)(R10*1)
	ADDQ $32, SI
	LEAQ (R11)(R9*4), DI
	DECQ CX
	JNZ pkloop
pkdone:
	VZEROUPPER
	RET
