//go:build amd64 && !purego

#include "textflag.h"

// func zeroBelowAVX512(p *float32, n int, bound uint32)
// For each element: key = bits &^ sign; if key < bound (unsigned) store +0.
TEXT ·zeroBelowAVX512(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL bound+16(FP), AX
	VPBROADCASTD AX, Z1
	MOVL $0x7fffffff, BX
	VPBROADCASTD BX, Z2
	VPXORD Z3, Z3, Z3
	SHRQ $4, CX
	JZ zdone

zloop:
	VMOVDQU32 (DI), Z0
	VPANDD Z2, Z0, Z4
	VPCMPUD $1, Z1, Z4, K1 // K1 = key < bound
	VMOVDQU32 Z3, K1, (DI)
	ADDQ $64, DI
	DECQ CX
	JNZ zloop

zdone:
	VZEROUPPER
	RET

// func countEqualAVX512(p *float32, n int, key uint32) int64
TEXT ·countEqualAVX512(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL key+16(FP), AX
	VPBROADCASTD AX, Z1
	MOVL $0x7fffffff, BX
	VPBROADCASTD BX, Z2
	XORQ R8, R8
	SHRQ $4, CX
	JZ cdone

cloop:
	VPANDD (DI), Z2, Z4
	VPCMPEQD Z1, Z4, K1
	KMOVW K1, DX
	POPCNTL DX, DX
	ADDQ DX, R8
	ADDQ $64, DI
	DECQ CX
	JNZ cloop

cdone:
	MOVQ R8, ret+24(FP)
	VZEROUPPER
	RET

// func collectBucketAVX512(p *float32, n int, bucket uint32, out *uint32) int
// Stores, in order, the key (bits &^ sign) of every element of p[:n] whose
// key>>16 is bucket into out, and returns how many; n is a multiple of 16
// and out has room for n.
TEXT ·collectBucketAVX512(SB), NOSPLIT, $0-40
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL bucket+16(FP), AX
	VPBROADCASTD AX, Z1
	MOVQ out+24(FP), SI
	MOVQ SI, R9
	MOVL $0x7fffffff, BX
	VPBROADCASTD BX, Z2
	SHRQ $4, CX
	JZ bdone

bloop:
	VPANDD (DI), Z2, Z4
	VPSRLD $16, Z4, Z5
	VPCMPEQD Z1, Z5, K1
	KORTESTW K1, K1
	JZ bnext
	// Compress into a register and store all 16 lanes: a compressing
	// store to memory is microcoded (and slow) on some CPUs (AMD Zen 4).
	// The store stays within out: before block j at most 16j keys were
	// written, and out has room for n >= 16(j+1).
	VPCOMPRESSD Z4, K1, Z6
	VMOVDQU32 Z6, (SI)
	KMOVW K1, DX
	POPCNTL DX, DX
	LEAQ (SI)(DX*4), SI

bnext:
	ADDQ $64, DI
	DECQ CX
	JNZ bloop

bdone:
	SUBQ R9, SI
	SHRQ $2, SI
	MOVQ SI, ret+32(FP)
	VZEROUPPER
	RET
