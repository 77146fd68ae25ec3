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

// func rangeKeysAVX512(p *float32, n int, lo, hi uint32, out *uint32) (below, nan, m int)
// Counts the elements of p[:n] whose key (bits &^ sign) is below lo and
// those whose key is above +Inf's (NaNs), and stores, in order, the keys in
// [lo, hi] into out, returning their number; n is a multiple of 16 and out
// has room for n.
TEXT ·rangeKeysAVX512(SB), NOSPLIT, $0-56
	MOVQ p+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL lo+16(FP), AX
	VPBROADCASTD AX, Z1
	MOVL hi+20(FP), AX
	VPBROADCASTD AX, Z3
	MOVQ out+24(FP), SI
	MOVQ SI, R9
	MOVL $0x7fffffff, BX
	VPBROADCASTD BX, Z2
	MOVL $0x7f800000, BX
	VPBROADCASTD BX, Z7
	XORQ R8, R8
	XORQ R10, R10
	SHRQ $4, CX
	JZ rdone

rloop:
	VPANDD (DI), Z2, Z4
	VPCMPUD $1, Z1, Z4, K1 // K1 = key < lo
	KMOVW K1, DX
	POPCNTL DX, DX
	ADDQ DX, R8
	VPCMPUD $6, Z7, Z4, K2 // K2 = key > +Inf's: NaN
	KMOVW K2, DX
	POPCNTL DX, DX
	ADDQ DX, R10
	VPCMPUD $5, Z1, Z4, K3     // K3 = key >= lo
	VPCMPUD $2, Z3, Z4, K3, K3 // K3 &= key <= hi
	KORTESTW K3, K3
	JZ rnext
	// As in collectBucketAVX512: compress into a register, store 16 lanes.
	VPCOMPRESSD Z4, K3, Z6
	VMOVDQU32 Z6, (SI)
	KMOVW K3, DX
	POPCNTL DX, DX
	LEAQ (SI)(DX*4), SI

rnext:
	ADDQ $64, DI
	DECQ CX
	JNZ rloop

rdone:
	SUBQ R9, SI
	SHRQ $2, SI
	MOVQ R8, below+32(FP)
	MOVQ R10, nan+40(FP)
	MOVQ SI, m+48(FP)
	VZEROUPPER
	RET
