//go:build amd64 && !purego

// AVX2+FMA kernels of the cached attention (kvcache_amd64.go). Every
// output element is one chain of fused multiply-adds from zero over its
// terms in order, as each element of the assembly GEMM kernels of package
// blas is: the cached attention gives the forward pass's bits.

#include "textflag.h"

// PVSETUP loads the arguments of the P·V kernels: v in SI, p in DI, n in
// CX, the eight offsets of voff in AX, BX, DX, R8–R12, and clears the
// accumulators Y0–Y7.
#define PVSETUP \
	MOVQ v+8(FP), SI \
	MOVQ p+24(FP), DI \
	MOVQ n+40(FP), CX \
	MOVQ voff+48(FP), R13 \
	MOVQ 0(R13), AX \
	MOVQ 8(R13), BX \
	MOVQ 16(R13), DX \
	MOVQ 24(R13), R8 \
	MOVQ 32(R13), R9 \
	MOVQ 40(R13), R10 \
	MOVQ 48(R13), R11 \
	MOVQ 56(R13), R12 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

// PVSTORE stores the accumulators Y0–Y7 to acc[0:64].
#define PVSTORE \
	MOVQ acc+0(FP), R13 \
	VMOVUPS Y0, 0(R13) \
	VMOVUPS Y1, 32(R13) \
	VMOVUPS Y2, 64(R13) \
	VMOVUPS Y3, 96(R13) \
	VMOVUPS Y4, 128(R13) \
	VMOVUPS Y5, 160(R13) \
	VMOVUPS Y6, 192(R13) \
	VMOVUPS Y7, 224(R13) \
	VZEROUPPER

// func scoresAVX2(out *float32, ldo int, kt *float32, ldk int, qt *float32, nd, nblk int, koff *[8]int)
//
// For the nblk blocks b of 8 keys l and the eight heads j:
//
//	out[(b·8+l)·ldo + j] = Σ_d kt[b·ldk + koff[j] + d·8 + l]·qt[d·8+j]
//
// summing d = 0..nd-1 in order (nd ≥ 1, nblk ≥ 1), with ldo, ldk and
// koff in bytes: head j's query is column j of qt and its keys start at
// koff[j] in each block of kt. Accumulator Yj holds head j's scores for
// the 8 keys of a block; an 8×8 transpose turns them into 8 rows of out.
TEXT ·scoresAVX2(SB), NOSPLIT, $0-64
	MOVQ koff+56(FP), DI
	MOVQ 0(DI), AX
	MOVQ 8(DI), BX
	MOVQ 16(DI), R8
	MOVQ 24(DI), R9
	MOVQ 32(DI), R10
	MOVQ 40(DI), R11
	MOVQ 48(DI), R12
	MOVQ 56(DI), R13
	MOVQ out+0(FP), DI
	MOVQ kt+16(FP), SI

block:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ qt+32(FP), DX
	MOVQ nd+40(FP), CX

dloop:
	VBROADCASTSS 0(DX), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VBROADCASTSS 4(DX), Y9
	VFMADD231PS (SI)(BX*1), Y9, Y1
	VBROADCASTSS 8(DX), Y10
	VFMADD231PS (SI)(R8*1), Y10, Y2
	VBROADCASTSS 12(DX), Y11
	VFMADD231PS (SI)(R9*1), Y11, Y3
	VBROADCASTSS 16(DX), Y12
	VFMADD231PS (SI)(R10*1), Y12, Y4
	VBROADCASTSS 20(DX), Y13
	VFMADD231PS (SI)(R11*1), Y13, Y5
	VBROADCASTSS 24(DX), Y14
	VFMADD231PS (SI)(R12*1), Y14, Y6
	VBROADCASTSS 28(DX), Y15
	VFMADD231PS (SI)(R13*1), Y15, Y7
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNZ dloop

	// Back to the block's start, then on to the next block.
	MOVQ nd+40(FP), CX
	SHLQ $5, CX
	SUBQ CX, SI
	ADDQ ldk+24(FP), SI

	// Transpose: Yj = head j over keys 0..7 → Y8+l = key l over heads.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	MOVQ ldo+8(FP), CX
	VMOVUPS Y8, (DI)
	ADDQ CX, DI
	VMOVUPS Y9, (DI)
	ADDQ CX, DI
	VMOVUPS Y10, (DI)
	ADDQ CX, DI
	VMOVUPS Y11, (DI)
	ADDQ CX, DI
	VMOVUPS Y12, (DI)
	ADDQ CX, DI
	VMOVUPS Y13, (DI)
	ADDQ CX, DI
	VMOVUPS Y14, (DI)
	ADDQ CX, DI
	VMOVUPS Y15, (DI)
	ADDQ CX, DI
	DECQ nblk+48(FP)
	JNZ block
	VZEROUPPER
	RET

// func pvHeadsAVX2(acc, v *float32, ldv int, p *float32, ldp, n int, voff *[8]int)
//
// acc[j·8+i] = Σ_k v[k·ldv + voff[j] + i]·p[k·ldp + j], k = 0..n-1 in
// order, for the eight accumulators j (n ≥ 1): eight heads of dimension
// 8, head j reading the value vector at byte offset voff[j] of each key's
// row and its probability in column j. ldv and ldp are in bytes.
TEXT ·pvHeadsAVX2(SB), NOSPLIT, $0-56
	PVSETUP

pvhloop:
	VBROADCASTSS 0(DI), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VBROADCASTSS 4(DI), Y9
	VFMADD231PS (SI)(BX*1), Y9, Y1
	VBROADCASTSS 8(DI), Y10
	VFMADD231PS (SI)(DX*1), Y10, Y2
	VBROADCASTSS 12(DI), Y11
	VFMADD231PS (SI)(R8*1), Y11, Y3
	VBROADCASTSS 16(DI), Y12
	VFMADD231PS (SI)(R9*1), Y12, Y4
	VBROADCASTSS 20(DI), Y13
	VFMADD231PS (SI)(R10*1), Y13, Y5
	VBROADCASTSS 24(DI), Y14
	VFMADD231PS (SI)(R11*1), Y14, Y6
	VBROADCASTSS 28(DI), Y15
	VFMADD231PS (SI)(R12*1), Y15, Y7
	ADDQ ldv+16(FP), SI
	ADDQ ldp+32(FP), DI
	DECQ CX
	JNZ pvhloop
	PVSTORE
	RET

// func pvChunksAVX2(acc, v *float32, ldv int, p *float32, ldp, n int, voff *[8]int)
//
// acc[j·8+i] = Σ_k v[k·ldv + voff[j] + i]·p[k·ldp], k = 0..n-1 in order,
// for the eight accumulators j (n ≥ 1): eight 8-wide chunks of one head,
// at byte offsets voff[j] of each key's value row, all weighted by the
// probability in column 0. ldv and ldp are in bytes.
TEXT ·pvChunksAVX2(SB), NOSPLIT, $0-56
	PVSETUP

pvcloop:
	VBROADCASTSS 0(DI), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VFMADD231PS (SI)(BX*1), Y8, Y1
	VFMADD231PS (SI)(DX*1), Y8, Y2
	VFMADD231PS (SI)(R8*1), Y8, Y3
	VFMADD231PS (SI)(R9*1), Y8, Y4
	VFMADD231PS (SI)(R10*1), Y8, Y5
	VFMADD231PS (SI)(R11*1), Y8, Y6
	VFMADD231PS (SI)(R12*1), Y8, Y7
	ADDQ ldv+16(FP), SI
	ADDQ ldp+32(FP), DI
	DECQ CX
	JNZ pvcloop
	PVSTORE
	RET
