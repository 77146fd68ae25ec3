//go:build amd64 && !purego

#include "textflag.h"

// COUNT3 adds the set bits of masks K1, K2 and K3 (moved out with kmov)
// to R8, R9 and R10.
#define COUNT3(kmov) \
	kmov K1, AX ; \
	kmov K2, BX ; \
	kmov K3, DX ; \
	POPCNTL AX, AX ; \
	POPCNTL BX, BX ; \
	POPCNTL DX, DX ; \
	ADDQ AX, R8 ; \
	ADDQ BX, R9 ; \
	ADDQ DX, R10

// func stats32AVX512(p *byte, n int, inf uint32) (zeros, infs, nans int64)
// a = bits &^ sign; zero: a == 0; inf: a == inf; NaN: a > inf (unsigned).
TEXT ·stats32AVX512(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL inf+16(FP), AX
	VPBROADCASTD AX, Z3
	MOVL $0x7fffffff, BX
	VPBROADCASTD BX, Z2
	XORQ R8, R8
	XORQ R9, R9
	XORQ R10, R10
	SHRQ $4, CX
	JZ s32done

s32loop:
	VPANDD (DI), Z2, Z0
	VPTESTNMD Z0, Z0, K1
	VPCMPEQD Z3, Z0, K2
	VPCMPUD $6, Z3, Z0, K3
	COUNT3(KMOVW)
	ADDQ $64, DI
	DECQ CX
	JNZ s32loop

s32done:
	MOVQ R8, zeros+24(FP)
	MOVQ R9, infs+32(FP)
	MOVQ R10, nans+40(FP)
	VZEROUPPER
	RET

// func stats16AVX512(p *byte, n int, inf uint16) (zeros, infs, nans int64)
TEXT ·stats16AVX512(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVWLZX inf+16(FP), AX
	VPBROADCASTW AX, Z3
	MOVL $0x7fff7fff, BX
	VPBROADCASTD BX, Z2
	XORQ R8, R8
	XORQ R9, R9
	XORQ R10, R10
	SHRQ $5, CX
	JZ s16done

s16loop:
	VPANDD (DI), Z2, Z0
	VPTESTNMW Z0, Z0, K1
	VPCMPEQW Z3, Z0, K2
	VPCMPUW $6, Z3, Z0, K3
	COUNT3(KMOVD)
	ADDQ $64, DI
	DECQ CX
	JNZ s16loop

s16done:
	MOVQ R8, zeros+24(FP)
	MOVQ R9, infs+32(FP)
	MOVQ R10, nans+40(FP)
	VZEROUPPER
	RET
