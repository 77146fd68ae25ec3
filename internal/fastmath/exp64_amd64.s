//go:build amd64 && !purego

// AVX2+FMA kernels of exp64_amd64.go. The exp is [Exp]'s, four float64
// lanes at a time, instruction for instruction: clamp to [-746, 710] with
// NaN kept (VMAXPD/VMINPD return their second source when one is NaN),
// k = VROUNDPD(x·log₂e) to nearest even, r by two VFNMADD231PD, the
// polynomial by Horner's rule with VFMADD213PD, and the scale by 2^⌊k/2⌋
// then 2^(k−⌊k/2⌋) built in the exponent bits.

#include "textflag.h"

// e64: four copies each of -746, 710, log₂e, ln2Hi, ln2Lo, 1/13! … 1/2!, 1;
// then four int32 1023.
DATA e64<>+0(SB)/8, $0xc087500000000000
DATA e64<>+8(SB)/8, $0xc087500000000000
DATA e64<>+16(SB)/8, $0xc087500000000000
DATA e64<>+24(SB)/8, $0xc087500000000000
DATA e64<>+32(SB)/8, $0x4086300000000000
DATA e64<>+40(SB)/8, $0x4086300000000000
DATA e64<>+48(SB)/8, $0x4086300000000000
DATA e64<>+56(SB)/8, $0x4086300000000000
DATA e64<>+64(SB)/8, $0x3ff71547652b82fe
DATA e64<>+72(SB)/8, $0x3ff71547652b82fe
DATA e64<>+80(SB)/8, $0x3ff71547652b82fe
DATA e64<>+88(SB)/8, $0x3ff71547652b82fe
DATA e64<>+96(SB)/8, $0x3fe62e42fee00000
DATA e64<>+104(SB)/8, $0x3fe62e42fee00000
DATA e64<>+112(SB)/8, $0x3fe62e42fee00000
DATA e64<>+120(SB)/8, $0x3fe62e42fee00000
DATA e64<>+128(SB)/8, $0x3dea39ef35793c76
DATA e64<>+136(SB)/8, $0x3dea39ef35793c76
DATA e64<>+144(SB)/8, $0x3dea39ef35793c76
DATA e64<>+152(SB)/8, $0x3dea39ef35793c76
DATA e64<>+160(SB)/8, $0x3de6124613a86d09
DATA e64<>+168(SB)/8, $0x3de6124613a86d09
DATA e64<>+176(SB)/8, $0x3de6124613a86d09
DATA e64<>+184(SB)/8, $0x3de6124613a86d09
DATA e64<>+192(SB)/8, $0x3e21eed8eff8d898
DATA e64<>+200(SB)/8, $0x3e21eed8eff8d898
DATA e64<>+208(SB)/8, $0x3e21eed8eff8d898
DATA e64<>+216(SB)/8, $0x3e21eed8eff8d898
DATA e64<>+224(SB)/8, $0x3e5ae64567f544e4
DATA e64<>+232(SB)/8, $0x3e5ae64567f544e4
DATA e64<>+240(SB)/8, $0x3e5ae64567f544e4
DATA e64<>+248(SB)/8, $0x3e5ae64567f544e4
DATA e64<>+256(SB)/8, $0x3e927e4fb7789f5c
DATA e64<>+264(SB)/8, $0x3e927e4fb7789f5c
DATA e64<>+272(SB)/8, $0x3e927e4fb7789f5c
DATA e64<>+280(SB)/8, $0x3e927e4fb7789f5c
DATA e64<>+288(SB)/8, $0x3ec71de3a556c734
DATA e64<>+296(SB)/8, $0x3ec71de3a556c734
DATA e64<>+304(SB)/8, $0x3ec71de3a556c734
DATA e64<>+312(SB)/8, $0x3ec71de3a556c734
DATA e64<>+320(SB)/8, $0x3efa01a01a01a01a
DATA e64<>+328(SB)/8, $0x3efa01a01a01a01a
DATA e64<>+336(SB)/8, $0x3efa01a01a01a01a
DATA e64<>+344(SB)/8, $0x3efa01a01a01a01a
DATA e64<>+352(SB)/8, $0x3f2a01a01a01a01a
DATA e64<>+360(SB)/8, $0x3f2a01a01a01a01a
DATA e64<>+368(SB)/8, $0x3f2a01a01a01a01a
DATA e64<>+376(SB)/8, $0x3f2a01a01a01a01a
DATA e64<>+384(SB)/8, $0x3f56c16c16c16c17
DATA e64<>+392(SB)/8, $0x3f56c16c16c16c17
DATA e64<>+400(SB)/8, $0x3f56c16c16c16c17
DATA e64<>+408(SB)/8, $0x3f56c16c16c16c17
DATA e64<>+416(SB)/8, $0x3f81111111111111
DATA e64<>+424(SB)/8, $0x3f81111111111111
DATA e64<>+432(SB)/8, $0x3f81111111111111
DATA e64<>+440(SB)/8, $0x3f81111111111111
DATA e64<>+448(SB)/8, $0x3fa5555555555555
DATA e64<>+456(SB)/8, $0x3fa5555555555555
DATA e64<>+464(SB)/8, $0x3fa5555555555555
DATA e64<>+472(SB)/8, $0x3fa5555555555555
DATA e64<>+480(SB)/8, $0x3fc5555555555555
DATA e64<>+488(SB)/8, $0x3fc5555555555555
DATA e64<>+496(SB)/8, $0x3fc5555555555555
DATA e64<>+504(SB)/8, $0x3fc5555555555555
DATA e64<>+512(SB)/8, $0x3fe0000000000000
DATA e64<>+520(SB)/8, $0x3fe0000000000000
DATA e64<>+528(SB)/8, $0x3fe0000000000000
DATA e64<>+536(SB)/8, $0x3fe0000000000000
DATA e64<>+544(SB)/8, $0x3ff0000000000000
DATA e64<>+552(SB)/8, $0x3ff0000000000000
DATA e64<>+560(SB)/8, $0x3ff0000000000000
DATA e64<>+568(SB)/8, $0x3ff0000000000000
DATA e64<>+576(SB)/4, $0x000003ff
DATA e64<>+580(SB)/4, $0x000003ff
DATA e64<>+584(SB)/4, $0x000003ff
DATA e64<>+588(SB)/4, $0x000003ff
GLOBL e64<>(SB), RODATA|NOPTR, $592

// EXP4(off): Y3 = exp(float64(x) − shift) for the four float32 at off(SI),
// the steps the file comment lists (shift in Y15; clobbers Y0–Y2).
#define EXP4(off) \
	VCVTPS2PD off(SI), Y0; \
	VSUBPD Y15, Y0, Y0; \
	VMOVUPD e64<>+0(SB), Y1; \
	VMAXPD Y0, Y1, Y0; \
	VMOVUPD e64<>+32(SB), Y1; \
	VMINPD Y0, Y1, Y0; \
	VMULPD e64<>+64(SB), Y0, Y1; \
	VROUNDPD $0, Y1, Y1; \
	VMOVAPD Y0, Y2; \
	VFNMADD231PD e64<>+96(SB), Y1, Y2; \
	VFNMADD231PD e64<>+128(SB), Y1, Y2; \
	VMOVUPD e64<>+160(SB), Y3; \
	VFMADD213PD e64<>+192(SB), Y2, Y3; \
	VFMADD213PD e64<>+224(SB), Y2, Y3; \
	VFMADD213PD e64<>+256(SB), Y2, Y3; \
	VFMADD213PD e64<>+288(SB), Y2, Y3; \
	VFMADD213PD e64<>+320(SB), Y2, Y3; \
	VFMADD213PD e64<>+352(SB), Y2, Y3; \
	VFMADD213PD e64<>+384(SB), Y2, Y3; \
	VFMADD213PD e64<>+416(SB), Y2, Y3; \
	VFMADD213PD e64<>+448(SB), Y2, Y3; \
	VFMADD213PD e64<>+480(SB), Y2, Y3; \
	VFMADD213PD e64<>+512(SB), Y2, Y3; \
	VMULPD Y2, Y2, Y0; \
	VFMADD213PD Y2, Y0, Y3; \
	VADDPD e64<>+544(SB), Y3, Y3; \
	VCVTPD2DQY Y1, X1; \
	VPSRAD $1, X1, X2; \
	VPSUBD X2, X1, X1; \
	VPADDD e64<>+576(SB), X2, X2; \
	VPADDD e64<>+576(SB), X1, X1; \
	VPMOVZXDQ X2, Y2; \
	VPSLLQ $52, Y2, Y2; \
	VMULPD Y2, Y3, Y3; \
	VPMOVZXDQ X1, Y1; \
	VPSLLQ $52, Y1, Y1; \
	VMULPD Y1, Y3, Y3

// func sumExpAVX2(x *float32, n int, shift float64, out *float64, s *[16]float64)
//
// s[l] = Σ e^(x[i]−shift) over i < n with i mod 16 = l, added in increasing
// i; with out non-nil also out[i] = e^(x[i]−shift). n is a multiple of 16.
TEXT ·sumExpAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD shift+16(FP), Y15
	MOVQ out+24(FP), DI
	MOVQ s+32(FP), DX
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	SHRQ $4, CX
	JZ sedone
	TESTQ DI, DI
	JNZ sestore
seloop:
	EXP4(0)
	VADDPD Y3, Y8, Y8
	EXP4(16)
	VADDPD Y3, Y9, Y9
	EXP4(32)
	VADDPD Y3, Y10, Y10
	EXP4(48)
	VADDPD Y3, Y11, Y11
	ADDQ $64, SI
	DECQ CX
	JNZ seloop
	JMP sedone
sestore:
	EXP4(0)
	VADDPD Y3, Y8, Y8
	VMOVUPD Y3, 0(DI)
	EXP4(16)
	VADDPD Y3, Y9, Y9
	VMOVUPD Y3, 32(DI)
	EXP4(32)
	VADDPD Y3, Y10, Y10
	VMOVUPD Y3, 64(DI)
	EXP4(48)
	VADDPD Y3, Y11, Y11
	VMOVUPD Y3, 96(DI)
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ CX
	JNZ sestore
sedone:
	VMOVUPD Y8, (DX)
	VMOVUPD Y9, 32(DX)
	VMOVUPD Y10, 64(DX)
	VMOVUPD Y11, 96(DX)
	VZEROUPPER
	RET

// func dotDiffAVX2(w *float64, p, q *float32, n int, a, b float64, s *[16]float64)
//
// s[l] = Σ w[i]·((p[i]−a) − (q[i]−b)) over i < n with i mod 16 = l, added
// in increasing i (a product, then a sum: no fused multiply-add). n is a
// multiple of 16.
TEXT ·dotDiffAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ q+16(FP), R8
	MOVQ n+24(FP), CX
	VBROADCASTSD a+32(FP), Y14
	VBROADCASTSD b+40(FP), Y15
	MOVQ s+48(FP), DX
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	SHRQ $4, CX
	JZ dddone
ddloop:
	VCVTPS2PD 0(DI), Y0
	VSUBPD Y14, Y0, Y0
	VCVTPS2PD 0(R8), Y1
	VSUBPD Y15, Y1, Y1
	VSUBPD Y1, Y0, Y0
	VMULPD 0(SI), Y0, Y0
	VADDPD Y0, Y8, Y8
	VCVTPS2PD 16(DI), Y0
	VSUBPD Y14, Y0, Y0
	VCVTPS2PD 16(R8), Y1
	VSUBPD Y15, Y1, Y1
	VSUBPD Y1, Y0, Y0
	VMULPD 32(SI), Y0, Y0
	VADDPD Y0, Y9, Y9
	VCVTPS2PD 32(DI), Y0
	VSUBPD Y14, Y0, Y0
	VCVTPS2PD 32(R8), Y1
	VSUBPD Y15, Y1, Y1
	VSUBPD Y1, Y0, Y0
	VMULPD 64(SI), Y0, Y0
	VADDPD Y0, Y10, Y10
	VCVTPS2PD 48(DI), Y0
	VSUBPD Y14, Y0, Y0
	VCVTPS2PD 48(R8), Y1
	VSUBPD Y15, Y1, Y1
	VSUBPD Y1, Y0, Y0
	VMULPD 96(SI), Y0, Y0
	VADDPD Y0, Y11, Y11
	ADDQ $128, SI
	ADDQ $64, DI
	ADDQ $64, R8
	DECQ CX
	JNZ ddloop
dddone:
	VMOVUPD Y8, (DX)
	VMOVUPD Y9, 32(DX)
	VMOVUPD Y10, 64(DX)
	VMOVUPD Y11, 96(DX)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
//
// The maximum of x[:n], n a positive multiple of 32 (NaN: unspecified).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JZ mxred
mxloop:
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	VMAXPS 64(SI), Y2, Y2
	VMAXPS 96(SI), Y3, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JNZ mxloop
mxred:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VMAXPS X1, X0, X0
	VPSHUFD $1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func indexAVX2(x *float32, n int, v float32) int
//
// The first i < n with x[i] == v (ordered compare), or -1; n is a multiple
// of 32.
TEXT ·indexAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS v+16(FP), Y15
	XORQ AX, AX
ixloop:
	CMPQ AX, CX
	JGE ixnone
	VCMPPS $0, (SI)(AX*4), Y15, Y0
	VCMPPS $0, 32(SI)(AX*4), Y15, Y1
	VCMPPS $0, 64(SI)(AX*4), Y15, Y2
	VCMPPS $0, 96(SI)(AX*4), Y15, Y3
	VORPS Y1, Y0, Y4
	VORPS Y3, Y2, Y5
	VORPS Y5, Y4, Y4
	VMOVMSKPS Y4, DX
	ADDQ $32, AX
	TESTL DX, DX
	JZ ixloop
	SUBQ $32, AX
	VMOVMSKPS Y0, DX
	VMOVMSKPS Y1, BX
	SHLL $8, BX
	ORL BX, DX
	VMOVMSKPS Y2, BX
	SHLL $16, BX
	ORL BX, DX
	VMOVMSKPS Y3, BX
	SHLL $24, BX
	ORL BX, DX
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
ixnone:
	MOVQ $-1, ret+24(FP)
	VZEROUPPER
	RET

// e512: one copy each of e64's float64 values (-746, 710, log₂e, ln2Hi,
// ln2Lo, 1/13! … 1/2!, 1), broadcast into registers by sumExpAVX512.
DATA e512<>+0(SB)/8, $0xc087500000000000
DATA e512<>+8(SB)/8, $0x4086300000000000
DATA e512<>+16(SB)/8, $0x3ff71547652b82fe
DATA e512<>+24(SB)/8, $0x3fe62e42fee00000
DATA e512<>+32(SB)/8, $0x3dea39ef35793c76
DATA e512<>+40(SB)/8, $0x3de6124613a86d09
DATA e512<>+48(SB)/8, $0x3e21eed8eff8d898
DATA e512<>+56(SB)/8, $0x3e5ae64567f544e4
DATA e512<>+64(SB)/8, $0x3e927e4fb7789f5c
DATA e512<>+72(SB)/8, $0x3ec71de3a556c734
DATA e512<>+80(SB)/8, $0x3efa01a01a01a01a
DATA e512<>+88(SB)/8, $0x3f2a01a01a01a01a
DATA e512<>+96(SB)/8, $0x3f56c16c16c16c17
DATA e512<>+104(SB)/8, $0x3f81111111111111
DATA e512<>+112(SB)/8, $0x3fa5555555555555
DATA e512<>+120(SB)/8, $0x3fc5555555555555
DATA e512<>+128(SB)/8, $0x3fe0000000000000
DATA e512<>+136(SB)/8, $0x3ff0000000000000
GLOBL e512<>(SB), RODATA|NOPTR, $144

// EXP8(off, x, n, r, p, acc): p = exp(x − m) for the eight float32 at
// off(SI) widened to float64 (m in Z15), its argument clamped to
// [Z14, Z13]: n = round((x − m)·log₂e), r = (x − m) − n·ln2 in two parts,
// 1 + r + r²·q(r) with q's coefficients in Z16–Z27, scaled by 2ⁿ
// (VSCALEFPD); then acc += p.
// x, n and r are scratch; the constants are in Z10–Z28.
#define EXP8(off, x, n, r, p, acc) \
	VCVTPS2PD off(SI), x; \
	VSUBPD Z15, x, x; \
	VMAXPD x, Z14, x; \
	VMINPD x, Z13, x; \
	VMULPD Z12, x, n; \
	VRNDSCALEPD $0, n, n; \
	VMOVAPD x, r; \
	VFNMADD231PD Z11, n, r; \
	VFNMADD231PD Z10, n, r; \
	VMOVAPD Z16, p; \
	VFMADD213PD Z17, r, p; \
	VFMADD213PD Z18, r, p; \
	VFMADD213PD Z19, r, p; \
	VFMADD213PD Z20, r, p; \
	VFMADD213PD Z21, r, p; \
	VFMADD213PD Z22, r, p; \
	VFMADD213PD Z23, r, p; \
	VFMADD213PD Z24, r, p; \
	VFMADD213PD Z25, r, p; \
	VFMADD213PD Z26, r, p; \
	VFMADD213PD Z27, r, p; \
	VMULPD r, r, x; \
	VFMADD213PD r, x, p; \
	VADDPD Z28, p, p; \
	VSCALEFPD n, p, p; \
	VADDPD p, acc, acc

// func sumExpAVX512(x *float32, n int, shift float64, out *float64, s *[16]float64)
//
// sumExpAVX2 on eight float64 lanes per register: lanes 0-7 of each block
// of 16 elements in Z8, lanes 8-15 in Z9, constants in registers. Every
// step is sumExpAVX2's (VRNDSCALEPD $0 is VROUNDPD $0) except the scale:
// VSCALEFPD multiplies by 2^k with one rounding, which is exactly what
// the multiplication by 2^⌊k/2⌋ (exact) and then by 2^(k−⌊k/2⌋) gives.
TEXT ·sumExpAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD shift+16(FP), Z15
	MOVQ out+24(FP), DI
	MOVQ s+32(FP), DX
	VBROADCASTSD e512<>+0(SB), Z14
	VBROADCASTSD e512<>+8(SB), Z13
	VBROADCASTSD e512<>+16(SB), Z12
	VBROADCASTSD e512<>+24(SB), Z11
	VBROADCASTSD e512<>+32(SB), Z10
	VBROADCASTSD e512<>+40(SB), Z16
	VBROADCASTSD e512<>+48(SB), Z17
	VBROADCASTSD e512<>+56(SB), Z18
	VBROADCASTSD e512<>+64(SB), Z19
	VBROADCASTSD e512<>+72(SB), Z20
	VBROADCASTSD e512<>+80(SB), Z21
	VBROADCASTSD e512<>+88(SB), Z22
	VBROADCASTSD e512<>+96(SB), Z23
	VBROADCASTSD e512<>+104(SB), Z24
	VBROADCASTSD e512<>+112(SB), Z25
	VBROADCASTSD e512<>+120(SB), Z26
	VBROADCASTSD e512<>+128(SB), Z27
	VBROADCASTSD e512<>+136(SB), Z28
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9
	SHRQ $4, CX
	JZ s5done
	TESTQ DI, DI
	JNZ s5store
s5loop:
	EXP8(0, Z0, Z1, Z2, Z3, Z8)
	EXP8(32, Z4, Z5, Z6, Z7, Z9)
	ADDQ $64, SI
	DECQ CX
	JNZ s5loop
	JMP s5done
s5store:
	EXP8(0, Z0, Z1, Z2, Z3, Z8)
	VMOVUPD Z3, 0(DI)
	EXP8(32, Z4, Z5, Z6, Z7, Z9)
	VMOVUPD Z7, 64(DI)
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ CX
	JNZ s5store
s5done:
	VMOVUPD Z8, (DX)
	VMOVUPD Z9, 64(DX)
	VZEROUPPER
	RET
