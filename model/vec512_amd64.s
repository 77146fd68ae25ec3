//go:build amd64 && !purego

// AVX-512 forms of maxColsAVX2 and expColsAVX2 (vec_amd64.s) on strips of
// sixteen columns: the same instructions in the same order on 16 lanes
// (constants held in registers), so every element and every column sum
// comes out bit for bit as the AVX2 kernels compute it.

#include "textflag.h"

DATA v512<>+0(SB)/4, $0xc2ae0000  // -87: lower clamp
DATA v512<>+4(SB)/4, $0x42b20000  // 89: upper clamp
DATA v512<>+8(SB)/4, $0x3fb8aa3b  // log₂e
DATA v512<>+12(SB)/4, $0x4b400000 // 1.5·2²³
DATA v512<>+16(SB)/4, $0x3f318000 // ln2 high part
DATA v512<>+20(SB)/4, $0xb95e8083 // ln2 low part
DATA v512<>+24(SB)/4, $0x39506967 // polynomial, highest degree first
DATA v512<>+28(SB)/4, $0x3ab743ce
DATA v512<>+32(SB)/4, $0x3c088908
DATA v512<>+36(SB)/4, $0x3d2aa9c1
DATA v512<>+40(SB)/4, $0x3e2aaaaa
DATA v512<>+44(SB)/4, $0x3f000000
DATA v512<>+48(SB)/4, $0x3f800000 // 1
DATA v512<>+52(SB)/4, $0x0000007f // exponent bias
DATA v512<>+56(SB)/4, $0xbfcc422a // gelu: −2·√(2/π)
DATA v512<>+60(SB)/4, $0xbd922279 // gelu: −2·√(2/π)·0.044715
DATA v512<>+64(SB)/4, $0xbf800000 // −1
GLOBL v512<>(SB), RODATA|NOPTR, $68

// EXPCONSTS loads the constants of exp (v512<>+0 … +52) into Z14–Z27.
#define EXPCONSTS \
	VBROADCASTSS v512<>+0(SB), Z14; \
	VBROADCASTSS v512<>+4(SB), Z15; \
	VBROADCASTSS v512<>+8(SB), Z16; \
	VBROADCASTSS v512<>+12(SB), Z17; \
	VBROADCASTSS v512<>+16(SB), Z18; \
	VBROADCASTSS v512<>+20(SB), Z19; \
	VBROADCASTSS v512<>+24(SB), Z20; \
	VBROADCASTSS v512<>+28(SB), Z21; \
	VBROADCASTSS v512<>+32(SB), Z22; \
	VBROADCASTSS v512<>+36(SB), Z23; \
	VBROADCASTSS v512<>+40(SB), Z24; \
	VBROADCASTSS v512<>+44(SB), Z25; \
	VBROADCASTSS v512<>+48(SB), Z26; \
	VPBROADCASTD v512<>+52(SB), Z27

// EXPZ0 sets Z0 = exp(Z0), its argument clamped to [−87, 89]: n =
// round(x·log₂e), r = x − n·ln2 in two parts, a degree-6 polynomial in
// r, scaled by 2ⁿ built in the exponent bits. Uses Z1–Z3 and the
// EXPCONSTS registers.
#define EXPZ0 \
	VMAXPS Z0, Z14, Z0; \
	VMINPS Z0, Z15, Z0; \
	VMOVAPS Z16, Z1; \
	VFMADD213PS Z17, Z0, Z1; \
	VPSUBD Z17, Z1, Z2; \
	VSUBPS Z17, Z1, Z1; \
	VFNMADD231PS Z18, Z1, Z0; \
	VFNMADD231PS Z19, Z1, Z0; \
	VMOVAPS Z20, Z1; \
	VFMADD213PS Z21, Z0, Z1; \
	VFMADD213PS Z22, Z0, Z1; \
	VFMADD213PS Z23, Z0, Z1; \
	VFMADD213PS Z24, Z0, Z1; \
	VFMADD213PS Z25, Z0, Z1; \
	VMULPS Z0, Z0, Z3; \
	VFMADD213PS Z0, Z3, Z1; \
	VADDPS Z26, Z1, Z1; \
	VPADDD Z27, Z2, Z2; \
	VPSLLD $23, Z2, Z2; \
	VMULPS Z2, Z1, Z0

// func maxCols16AVX512(x *float32, rows, ld int, scale float32, out *float32)
//
// out[c] = max over r < rows of x[r·ld+c]·scale, for the 16 columns c of
// one strip (rows ≥ 1).
TEXT ·maxCols16AVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Z12
	VMULPS (SI), Z12, Z0
	ADDQ R8, SI
	DECQ CX
	JZ mxdone
mxloop:
	VMULPS (SI), Z12, Z1
	VMAXPS Z1, Z0, Z0
	ADDQ R8, SI
	DECQ CX
	JNZ mxloop
mxdone:
	MOVQ out+32(FP), DI
	VMOVUPS Z0, (DI)
	VZEROUPPER
	RET

// func expCols16AVX512(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)
//
// x[r·ld+c] = exp(x[r·ld+c]·scale − shift[c]) for r < rows and the 16
// columns c of one strip; sum[c] = Σ_r of the new values, accumulated in
// float64 lanes down the rows.
TEXT ·expCols16AVX512(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Z12
	MOVQ shift+32(FP), DI
	VMOVUPS (DI), Z13
	EXPCONSTS
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11
	TESTQ CX, CX
	JZ exdone
exloop:
	VMOVUPS (SI), Z0
	VFMSUB213PS Z13, Z12, Z0
	EXPZ0
	VMOVUPS Z0, (SI)
	VCVTPS2PD Y0, Z1
	VEXTRACTF64X4 $1, Z0, Y2
	VCVTPS2PD Y2, Z2
	VADDPD Z1, Z10, Z10
	VADDPD Z2, Z11, Z11
	ADDQ R8, SI
	DECQ CX
	JNZ exloop
exdone:
	MOVQ sum+40(FP), DI
	VMOVUPD Z10, (DI)
	VMOVUPD Z11, 64(DI)
	VZEROUPPER
	RET

// func maxCols32AVX512(x *float32, rows, ld int, scale float32, out *float32)
//
// maxCols16AVX512 on the 32 columns of a row pair of strips at once.
TEXT ·maxCols32AVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Z12
	VMULPS (SI), Z12, Z0
	VMULPS 64(SI), Z12, Z4
	ADDQ R8, SI
	DECQ CX
	JZ m32done
m32loop:
	VMULPS (SI), Z12, Z1
	VMULPS 64(SI), Z12, Z5
	VMAXPS Z1, Z0, Z0
	VMAXPS Z5, Z4, Z4
	ADDQ R8, SI
	DECQ CX
	JNZ m32loop
m32done:
	MOVQ out+32(FP), DI
	VMOVUPS Z0, (DI)
	VMOVUPS Z4, 64(DI)
	VZEROUPPER
	RET

// func expCols32AVX512(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)
//
// expCols16AVX512 on 32 columns (two strips) a row at a time: sums of
// columns 0-7, 8-15, 16-23, 24-31 in Z8-Z11.
TEXT ·expCols32AVX512(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Z12
	MOVQ shift+32(FP), DI
	VMOVUPS (DI), Z13
	VMOVUPS 64(DI), Z28
	EXPCONSTS
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11
	TESTQ CX, CX
	JZ e32done
e32loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z4
	VFMSUB213PS Z13, Z12, Z0
	VFMSUB213PS Z28, Z12, Z4
	VMAXPS Z0, Z14, Z0
	VMAXPS Z4, Z14, Z4
	VMINPS Z0, Z15, Z0
	VMINPS Z4, Z15, Z4
	VMOVAPS Z16, Z1
	VMOVAPS Z16, Z5
	VFMADD213PS Z17, Z0, Z1
	VFMADD213PS Z17, Z4, Z5
	VPSUBD Z17, Z1, Z2
	VPSUBD Z17, Z5, Z6
	VSUBPS Z17, Z1, Z1
	VSUBPS Z17, Z5, Z5
	VFNMADD231PS Z18, Z1, Z0
	VFNMADD231PS Z18, Z5, Z4
	VFNMADD231PS Z19, Z1, Z0
	VFNMADD231PS Z19, Z5, Z4
	VMOVAPS Z20, Z1
	VMOVAPS Z20, Z5
	VFMADD213PS Z21, Z0, Z1
	VFMADD213PS Z21, Z4, Z5
	VFMADD213PS Z22, Z0, Z1
	VFMADD213PS Z22, Z4, Z5
	VFMADD213PS Z23, Z0, Z1
	VFMADD213PS Z23, Z4, Z5
	VFMADD213PS Z24, Z0, Z1
	VFMADD213PS Z24, Z4, Z5
	VFMADD213PS Z25, Z0, Z1
	VFMADD213PS Z25, Z4, Z5
	VMULPS Z0, Z0, Z3
	VMULPS Z4, Z4, Z7
	VFMADD213PS Z0, Z3, Z1
	VFMADD213PS Z4, Z7, Z5
	VADDPS Z26, Z1, Z1
	VADDPS Z26, Z5, Z5
	VPADDD Z27, Z2, Z2
	VPADDD Z27, Z6, Z6
	VPSLLD $23, Z2, Z2
	VPSLLD $23, Z6, Z6
	VMULPS Z2, Z1, Z0
	VMULPS Z6, Z5, Z4
	VMOVUPS Z0, (SI)
	VMOVUPS Z4, 64(SI)
	VCVTPS2PD Y0, Z1
	VEXTRACTF64X4 $1, Z0, Y2
	VCVTPS2PD Y2, Z2
	VCVTPS2PD Y4, Z5
	VEXTRACTF64X4 $1, Z4, Y6
	VCVTPS2PD Y6, Z6
	VADDPD Z1, Z8, Z8
	VADDPD Z2, Z9, Z9
	VADDPD Z5, Z10, Z10
	VADDPD Z6, Z11, Z11
	ADDQ R8, SI
	DECQ CX
	JNZ e32loop
e32done:
	MOVQ sum+40(FP), DI
	VMOVUPD Z8, (DI)
	VMOVUPD Z9, 64(DI)
	VMOVUPD Z10, 128(DI)
	VMOVUPD Z11, 192(DI)
	VZEROUPPER
	RET

// func geluAVX512(x *float32, n int)
//
// geluAVX2 (vec_amd64.s) on 16 lanes: x[i] = x/(1+exp(−2u)), for i < n (n
// a multiple of 16).
TEXT ·geluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	EXPCONSTS
	VBROADCASTSS v512<>+56(SB), Z28
	VBROADCASTSS v512<>+60(SB), Z29
	VBROADCASTSS v512<>+64(SB), Z30
	SHRQ $4, CX
	JZ g5done
g5loop:
	VMOVUPS (SI), Z4
	VMULPS Z4, Z4, Z5
	VMOVAPS Z29, Z0
	VFMADD213PS Z28, Z5, Z0
	VMULPS Z4, Z0, Z0
	EXPZ0
	VADDPS Z26, Z0, Z0
	VDIVPS Z0, Z4, Z4
	VMOVUPS Z4, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ g5loop
g5done:
	VZEROUPPER
	RET

// func siluMulAVX512(gp, up *float32, n int)
//
// siluMulAVX2 on 16 lanes: g[i] = g/(1+exp(−g))·u[i] for i < n (n a
// multiple of 16).
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-24
	MOVQ gp+0(FP), SI
	MOVQ up+8(FP), DI
	MOVQ n+16(FP), CX
	EXPCONSTS
	VBROADCASTSS v512<>+56(SB), Z28
	VBROADCASTSS v512<>+60(SB), Z29
	VBROADCASTSS v512<>+64(SB), Z30
	SHRQ $4, CX
	JZ s5done
s5loop:
	VMOVUPS (SI), Z4
	VMULPS Z30, Z4, Z0
	EXPZ0
	VADDPS Z26, Z0, Z0
	VDIVPS Z0, Z4, Z4
	VMULPS (DI), Z4, Z4
	VMOVUPS Z4, (SI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ s5loop
s5done:
	VZEROUPPER
	RET
