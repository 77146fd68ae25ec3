//go:build amd64 && !purego

// Kernels of sparse_amd64.go: the block kernels of Kernel.SpMMTPacked add
// the nonzeros of one column block of a SparseB group to a tile of 64
// sums per row, and the transposes move the tile into C and rows of A
// into 64-row panels.

#include "textflag.h"

// LOAD4Z, STORE4Z and FMA4Z move the 64 sums of a tile row at base to or
// from four zmm registers, or add v times the A row at base to them.
#define LOAD4Z(base, a, b, c, d) \
	VMOVUPS 0(base), a ; \
	VMOVUPS 64(base), b ; \
	VMOVUPS 128(base), c ; \
	VMOVUPS 192(base), d

#define STORE4Z(base, a, b, c, d) \
	VMOVUPS a, 0(base) ; \
	VMOVUPS b, 64(base) ; \
	VMOVUPS c, 128(base) ; \
	VMOVUPS d, 192(base)

#define FMA4Z(base, v, a, b, c, d) \
	VFMADD231PS 0(base), v, a ; \
	VFMADD231PS 64(base), v, b ; \
	VFMADD231PS 128(base), v, c ; \
	VFMADD231PS 192(base), v, d

// func spBlockAVX512(np, ns int, seg *uint32, val *float32, off *uint16, a, tile *float32)
//
// Adds one column block of a SparseB group to the tile (see spBlockGo):
// np pairs of segments, then ns single ones. A segment header s holds the
// tile row's byte offset jj·256 = s&0xffff and the count s>>16 ≥ 1; the
// A row of nonzero p is at a + off[p] (bytes). The first cy nonzeros of
// a pair (cx ≥ cy the counts of its rows) alternate between its two
// rows, whose 64 sums sit in Z0-Z3 and Z4-Z7, so eight FMA chains are
// independent; the other cx−cy belong to the first row, as do a single
// row's, in Z0-Z3. Each sum is one FMA chain from the tile value over
// the row's nonzeros in order. Offsets are not checked: NewSparseB
// builds them inside the block of a and the tile.
TEXT ·spBlockAVX512(SB), NOSPLIT, $0-56
	MOVQ np+0(FP), CX
	MOVQ seg+16(FP), R8
	MOVQ val+24(FP), SI
	MOVQ off+32(FP), DI
	MOVQ a+40(FP), DX
	MOVQ tile+48(FP), R9
	TESTQ CX, CX
	JZ   singles

pair:
	MOVL 0(R8), AX
	MOVL 4(R8), BX
	MOVWLZX AX, R10
	MOVWLZX BX, R14
	SHRL $16, AX
	SHRL $16, BX
	MOVQ AX, R15
	SUBQ BX, R15
	MOVQ BX, AX
	ADDQ R9, R10
	ADDQ R9, R14
	LOAD4Z(R10, Z0, Z1, Z2, Z3)
	LOAD4Z(R14, Z4, Z5, Z6, Z7)

ploop:
	MOVL (DI), R11
	MOVL R11, R12
	ANDL $0xffff, R11
	SHRL $16, R12
	ADDQ DX, R11
	ADDQ DX, R12
	VBROADCASTSS 0(SI), Z8
	VBROADCASTSS 4(SI), Z9
	FMA4Z(R11, Z8, Z0, Z1, Z2, Z3)
	FMA4Z(R12, Z9, Z4, Z5, Z6, Z7)
	ADDQ $8, SI
	ADDQ $4, DI
	DECQ AX
	JNZ  ploop
	STORE4Z(R14, Z4, Z5, Z6, Z7)
	TESTQ R15, R15
	JZ   pdone

ptail:
	MOVWQZX (DI), R11
	ADDQ DX, R11
	VBROADCASTSS (SI), Z8
	FMA4Z(R11, Z8, Z0, Z1, Z2, Z3)
	ADDQ $4, SI
	ADDQ $2, DI
	DECQ R15
	JNZ  ptail

pdone:
	STORE4Z(R10, Z0, Z1, Z2, Z3)
	ADDQ $8, R8
	DECQ CX
	JNZ  pair

singles:
	MOVQ ns+8(FP), CX
	TESTQ CX, CX
	JZ   done

single:
	MOVL (R8), AX
	MOVWLZX AX, R10
	SHRL $16, AX
	ADDQ R9, R10
	LOAD4Z(R10, Z0, Z1, Z2, Z3)

sloop:
	MOVWQZX (DI), R11
	ADDQ DX, R11
	VBROADCASTSS (SI), Z8
	FMA4Z(R11, Z8, Z0, Z1, Z2, Z3)
	ADDQ $4, SI
	ADDQ $2, DI
	DECQ AX
	JNZ  sloop
	STORE4Z(R10, Z0, Z1, Z2, Z3)
	ADDQ $4, R8
	DECQ CX
	JNZ  single

done:
	VZEROUPPER
	RET

// TILELOADY loads the 64 sums of the tile row at R10 into Y0–Y7.
#define TILELOADY \
	VMOVUPS 0(R10), Y0 ; \
	VMOVUPS 32(R10), Y1 ; \
	VMOVUPS 64(R10), Y2 ; \
	VMOVUPS 96(R10), Y3 ; \
	VMOVUPS 128(R10), Y4 ; \
	VMOVUPS 160(R10), Y5 ; \
	VMOVUPS 192(R10), Y6 ; \
	VMOVUPS 224(R10), Y7

// TILESTOREY stores Y0–Y7 back to the tile row at R10.
#define TILESTOREY \
	VMOVUPS Y0, 0(R10) ; \
	VMOVUPS Y1, 32(R10) ; \
	VMOVUPS Y2, 64(R10) ; \
	VMOVUPS Y3, 96(R10) ; \
	VMOVUPS Y4, 128(R10) ; \
	VMOVUPS Y5, 160(R10) ; \
	VMOVUPS Y6, 192(R10) ; \
	VMOVUPS Y7, 224(R10)

// FMAROWY adds the nonzero at R11 times its A row (at DX plus the
// 16-bit offset at R12) to Y0–Y7, one FMA chain per sum.
#define FMAROWY \
	MOVWQZX (R12), BX ; \
	ADDQ DX, BX ; \
	VBROADCASTSS (R11), Y8 ; \
	VFMADD231PS 0(BX), Y8, Y0 ; \
	VFMADD231PS 32(BX), Y8, Y1 ; \
	VFMADD231PS 64(BX), Y8, Y2 ; \
	VFMADD231PS 96(BX), Y8, Y3 ; \
	VFMADD231PS 128(BX), Y8, Y4 ; \
	VFMADD231PS 160(BX), Y8, Y5 ; \
	VFMADD231PS 192(BX), Y8, Y6 ; \
	VFMADD231PS 224(BX), Y8, Y7

// func spBlockAVX2(np, ns int, seg *uint32, val *float32, off *uint16, a, tile *float32)
//
// spBlockAVX512 with one row at a time in eight ymm accumulators Y0-Y7
// (sixteen registers cannot hold two rows): the first row of a pair
// reads the even ones of the pair's first 2·cy nonzeros and then its
// cx−cy others, the second row the odd ones. R15 holds cy, R13 cx−cy.
TEXT ·spBlockAVX2(SB), NOSPLIT, $0-56
	MOVQ np+0(FP), CX
	MOVQ seg+16(FP), R8
	MOVQ val+24(FP), SI
	MOVQ off+32(FP), DI
	MOVQ a+40(FP), DX
	MOVQ tile+48(FP), R9
	TESTQ CX, CX
	JZ   singles

pair:
	MOVL 0(R8), AX
	MOVWLZX AX, R10
	SHRL $16, AX
	MOVL 4(R8), R15
	SHRL $16, R15
	SUBQ R15, AX
	MOVQ AX, R13
	MOVQ SI, R11
	MOVQ DI, R12
	ADDQ R9, R10
	TILELOADY
	MOVQ R15, AX

ploopa:
	FMAROWY
	ADDQ $8, R11
	ADDQ $4, R12
	DECQ AX
	JNZ  ploopa
	TESTQ R13, R13
	JZ   astore
	MOVQ R13, AX

ptail:
	FMAROWY
	ADDQ $4, R11
	ADDQ $2, R12
	DECQ AX
	JNZ  ptail

astore:
	TILESTOREY
	MOVWLZX 4(R8), R10
	ADDQ R9, R10
	TILELOADY
	LEAQ 4(SI), R11
	LEAQ 2(DI), R12
	MOVQ R15, AX

ploopb:
	FMAROWY
	ADDQ $8, R11
	ADDQ $4, R12
	DECQ AX
	JNZ  ploopb
	TILESTOREY
	LEAQ (R13)(R15*2), AX
	LEAQ (SI)(AX*4), SI
	LEAQ (DI)(AX*2), DI
	ADDQ $8, R8
	DECQ CX
	JNZ  pair

singles:
	MOVQ ns+8(FP), CX
	TESTQ CX, CX
	JZ   done
	MOVQ SI, R11
	MOVQ DI, R12

single:
	MOVL (R8), AX
	MOVWLZX AX, R10
	SHRL $16, AX
	ADDQ R9, R10
	TILELOADY

sloop:
	FMAROWY
	ADDQ $4, R11
	ADDQ $2, R12
	DECQ AX
	JNZ  sloop
	TILESTOREY
	ADDQ $4, R8
	DECQ CX
	JNZ  single

done:
	VZEROUPPER
	RET

// T16(off) gathers the four floats at byte off of each of the sixteen
// source rows (AX, BX, DX, R12: rows 0, 4, 8, 12; R9 the source stride,
// R15 three of them) and stores them, transposed, as four dst rows at R14
// (R8 the dst stride, R11 three of them).
#define T16(off) \
	VMOVUPS off(AX), X0 ; \
	VINSERTF32X4 $1, off(BX), Z0, Z0 ; \
	VINSERTF32X4 $2, off(DX), Z0, Z0 ; \
	VINSERTF32X4 $3, off(R12), Z0, Z0 ; \
	VMOVUPS off(AX)(R9*1), X1 ; \
	VINSERTF32X4 $1, off(BX)(R9*1), Z1, Z1 ; \
	VINSERTF32X4 $2, off(DX)(R9*1), Z1, Z1 ; \
	VINSERTF32X4 $3, off(R12)(R9*1), Z1, Z1 ; \
	VMOVUPS off(AX)(R9*2), X2 ; \
	VINSERTF32X4 $1, off(BX)(R9*2), Z2, Z2 ; \
	VINSERTF32X4 $2, off(DX)(R9*2), Z2, Z2 ; \
	VINSERTF32X4 $3, off(R12)(R9*2), Z2, Z2 ; \
	VMOVUPS off(AX)(R15*1), X3 ; \
	VINSERTF32X4 $1, off(BX)(R15*1), Z3, Z3 ; \
	VINSERTF32X4 $2, off(DX)(R15*1), Z3, Z3 ; \
	VINSERTF32X4 $3, off(R12)(R15*1), Z3, Z3 ; \
	VUNPCKLPS Z1, Z0, Z4 ; \
	VUNPCKHPS Z1, Z0, Z5 ; \
	VUNPCKLPS Z3, Z2, Z6 ; \
	VUNPCKHPS Z3, Z2, Z7 ; \
	VSHUFPS $0x44, Z6, Z4, Z0 ; \
	VSHUFPS $0xEE, Z6, Z4, Z1 ; \
	VSHUFPS $0x44, Z7, Z5, Z2 ; \
	VSHUFPS $0xEE, Z7, Z5, Z3 ; \
	VMOVUPS Z0, (R14) ; \
	VMOVUPS Z1, (R14)(R8*1) ; \
	VMOVUPS Z2, (R14)(R8*2) ; \
	VMOVUPS Z3, (R14)(R11*1)

// func transpose16AVX512(dst *float32, ldd int, src *float32, lds int, rb, cb int)
//
// dst[r*ldd+j] = src[j*lds+r] for r < 16·rb, j < 16·cb (rb, cb ≥ 1), in
// 16×16 blocks, r blocks outer. For each group q of four r, four
// registers gather the 4-float runs of sixteen source rows with 128-bit
// loads and inserts (lane ℓ of register a holds source row 4ℓ+a), and a
// 4×4 transpose within the lanes leaves one row of dst in each. AX, BX,
// DX and R12 point at source rows 0, 4, 8 and 12 of the block.
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	SHLQ $2, R9
	MOVQ rb+32(FP), R10
	LEAQ (R8)(R8*2), R11
	LEAQ (R9)(R9*2), R15

rows:
	MOVQ cb+40(FP), CX
	MOVQ SI, AX
	MOVQ DI, R13

cols:
	LEAQ (AX)(R9*4), BX
	LEAQ (AX)(R9*8), DX
	LEAQ (BX)(R9*8), R12
	MOVQ R13, R14
	T16(0)
	LEAQ (R14)(R8*4), R14
	T16(16)
	LEAQ (R14)(R8*4), R14
	T16(32)
	LEAQ (R14)(R8*4), R14
	T16(48)
	LEAQ (DX)(R9*8), AX
	ADDQ $64, R13
	DECQ CX
	JNZ  cols
	ADDQ $64, SI
	SHLQ $4, R8
	ADDQ R8, DI
	SHRQ $4, R8
	DECQ R10
	JNZ  rows
	VZEROUPPER
	RET

// T8(off) is T16 for eight source rows (AX, BX: rows 0 and 4) into
// four dst rows of eight.
#define T8(off) \
	VMOVUPS off(AX), X0 ; \
	VINSERTF128 $1, off(BX), Y0, Y0 ; \
	VMOVUPS off(AX)(R9*1), X1 ; \
	VINSERTF128 $1, off(BX)(R9*1), Y1, Y1 ; \
	VMOVUPS off(AX)(R9*2), X2 ; \
	VINSERTF128 $1, off(BX)(R9*2), Y2, Y2 ; \
	VMOVUPS off(AX)(R15*1), X3 ; \
	VINSERTF128 $1, off(BX)(R15*1), Y3, Y3 ; \
	VUNPCKLPS Y1, Y0, Y4 ; \
	VUNPCKHPS Y1, Y0, Y5 ; \
	VUNPCKLPS Y3, Y2, Y6 ; \
	VUNPCKHPS Y3, Y2, Y7 ; \
	VSHUFPS $0x44, Y6, Y4, Y0 ; \
	VSHUFPS $0xEE, Y6, Y4, Y1 ; \
	VSHUFPS $0x44, Y7, Y5, Y2 ; \
	VSHUFPS $0xEE, Y7, Y5, Y3 ; \
	VMOVUPS Y0, (R14) ; \
	VMOVUPS Y1, (R14)(R8*1) ; \
	VMOVUPS Y2, (R14)(R8*2) ; \
	VMOVUPS Y3, (R14)(R11*1)

// func transpose8AVX2(dst *float32, ldd int, src *float32, lds int, rb, cb int)
//
// transpose16AVX512 in 8×8 blocks: lane ℓ of register a holds source
// row 4ℓ+a; AX and BX point at source rows 0 and 4 of the block.
TEXT ·transpose8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	SHLQ $2, R9
	MOVQ rb+32(FP), R10
	LEAQ (R8)(R8*2), R11
	LEAQ (R9)(R9*2), R15

rows:
	MOVQ cb+40(FP), CX
	MOVQ SI, AX
	MOVQ DI, R13

cols:
	LEAQ (AX)(R9*4), BX
	MOVQ R13, R14
	T8(0)
	LEAQ (R14)(R8*4), R14
	T8(16)
	LEAQ (AX)(R9*8), AX
	ADDQ $32, R13
	DECQ CX
	JNZ  cols
	ADDQ $32, SI
	LEAQ (DI)(R8*8), DI
	DECQ R10
	JNZ  rows
	VZEROUPPER
	RET

// func spFoldAVX2(tile, run *float32, n int)
// tile[i] += run[i], run[i] = 0 for i < n (n a positive multiple of 32).
TEXT ·spFoldAVX2(SB), NOSPLIT, $0-24
	MOVQ tile+0(FP), DI
	MOVQ run+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y7, Y7, Y7

fold:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS  (DI), Y0, Y0
	VADDPS  32(DI), Y1, Y1
	VADDPS  64(DI), Y2, Y2
	VADDPS  96(DI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y7, (SI)
	VMOVUPS Y7, 32(SI)
	VMOVUPS Y7, 64(SI)
	VMOVUPS Y7, 96(SI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JNZ     fold
	VZEROUPPER
	RET
