//go:build amd64 && !purego

// AVX2+FMA exponentials of softmax rows (softmax_amd64.go): the Cephes
// expf scheme of internal/fastmath.Expf eight lanes at a time (with fused
// multiply-adds, so a few ulp from the scalar function), as package model's
// vec_amd64.s: clamp to [-87, 89] (NaN passes through), x = n·ln 2 + r, a
// degree-6 polynomial in r, scale by 2ⁿ in the exponent bits. Lanes below
// -87 (masked scores, exp underflowing in float32) are set to 0.

#include "textflag.h"

DATA expc<>+0(SB)/4, $0x3fb8aa3b
DATA expc<>+4(SB)/4, $0x3fb8aa3b
DATA expc<>+8(SB)/4, $0x3fb8aa3b
DATA expc<>+12(SB)/4, $0x3fb8aa3b
DATA expc<>+16(SB)/4, $0x3fb8aa3b
DATA expc<>+20(SB)/4, $0x3fb8aa3b
DATA expc<>+24(SB)/4, $0x3fb8aa3b
DATA expc<>+28(SB)/4, $0x3fb8aa3b
DATA expc<>+32(SB)/4, $0x4b400000
DATA expc<>+36(SB)/4, $0x4b400000
DATA expc<>+40(SB)/4, $0x4b400000
DATA expc<>+44(SB)/4, $0x4b400000
DATA expc<>+48(SB)/4, $0x4b400000
DATA expc<>+52(SB)/4, $0x4b400000
DATA expc<>+56(SB)/4, $0x4b400000
DATA expc<>+60(SB)/4, $0x4b400000
DATA expc<>+64(SB)/4, $0x4b400000
DATA expc<>+68(SB)/4, $0x4b400000
DATA expc<>+72(SB)/4, $0x4b400000
DATA expc<>+76(SB)/4, $0x4b400000
DATA expc<>+80(SB)/4, $0x4b400000
DATA expc<>+84(SB)/4, $0x4b400000
DATA expc<>+88(SB)/4, $0x4b400000
DATA expc<>+92(SB)/4, $0x4b400000
DATA expc<>+96(SB)/4, $0x3f318000
DATA expc<>+100(SB)/4, $0x3f318000
DATA expc<>+104(SB)/4, $0x3f318000
DATA expc<>+108(SB)/4, $0x3f318000
DATA expc<>+112(SB)/4, $0x3f318000
DATA expc<>+116(SB)/4, $0x3f318000
DATA expc<>+120(SB)/4, $0x3f318000
DATA expc<>+124(SB)/4, $0x3f318000
DATA expc<>+128(SB)/4, $0xb95e8083
DATA expc<>+132(SB)/4, $0xb95e8083
DATA expc<>+136(SB)/4, $0xb95e8083
DATA expc<>+140(SB)/4, $0xb95e8083
DATA expc<>+144(SB)/4, $0xb95e8083
DATA expc<>+148(SB)/4, $0xb95e8083
DATA expc<>+152(SB)/4, $0xb95e8083
DATA expc<>+156(SB)/4, $0xb95e8083
DATA expc<>+160(SB)/4, $0x39506967
DATA expc<>+164(SB)/4, $0x39506967
DATA expc<>+168(SB)/4, $0x39506967
DATA expc<>+172(SB)/4, $0x39506967
DATA expc<>+176(SB)/4, $0x39506967
DATA expc<>+180(SB)/4, $0x39506967
DATA expc<>+184(SB)/4, $0x39506967
DATA expc<>+188(SB)/4, $0x39506967
DATA expc<>+192(SB)/4, $0x3ab743ce
DATA expc<>+196(SB)/4, $0x3ab743ce
DATA expc<>+200(SB)/4, $0x3ab743ce
DATA expc<>+204(SB)/4, $0x3ab743ce
DATA expc<>+208(SB)/4, $0x3ab743ce
DATA expc<>+212(SB)/4, $0x3ab743ce
DATA expc<>+216(SB)/4, $0x3ab743ce
DATA expc<>+220(SB)/4, $0x3ab743ce
DATA expc<>+224(SB)/4, $0x3c088908
DATA expc<>+228(SB)/4, $0x3c088908
DATA expc<>+232(SB)/4, $0x3c088908
DATA expc<>+236(SB)/4, $0x3c088908
DATA expc<>+240(SB)/4, $0x3c088908
DATA expc<>+244(SB)/4, $0x3c088908
DATA expc<>+248(SB)/4, $0x3c088908
DATA expc<>+252(SB)/4, $0x3c088908
DATA expc<>+256(SB)/4, $0x3d2aa9c1
DATA expc<>+260(SB)/4, $0x3d2aa9c1
DATA expc<>+264(SB)/4, $0x3d2aa9c1
DATA expc<>+268(SB)/4, $0x3d2aa9c1
DATA expc<>+272(SB)/4, $0x3d2aa9c1
DATA expc<>+276(SB)/4, $0x3d2aa9c1
DATA expc<>+280(SB)/4, $0x3d2aa9c1
DATA expc<>+284(SB)/4, $0x3d2aa9c1
DATA expc<>+288(SB)/4, $0x3e2aaaaa
DATA expc<>+292(SB)/4, $0x3e2aaaaa
DATA expc<>+296(SB)/4, $0x3e2aaaaa
DATA expc<>+300(SB)/4, $0x3e2aaaaa
DATA expc<>+304(SB)/4, $0x3e2aaaaa
DATA expc<>+308(SB)/4, $0x3e2aaaaa
DATA expc<>+312(SB)/4, $0x3e2aaaaa
DATA expc<>+316(SB)/4, $0x3e2aaaaa
DATA expc<>+320(SB)/4, $0x3f000000
DATA expc<>+324(SB)/4, $0x3f000000
DATA expc<>+328(SB)/4, $0x3f000000
DATA expc<>+332(SB)/4, $0x3f000000
DATA expc<>+336(SB)/4, $0x3f000000
DATA expc<>+340(SB)/4, $0x3f000000
DATA expc<>+344(SB)/4, $0x3f000000
DATA expc<>+348(SB)/4, $0x3f000000
DATA expc<>+352(SB)/4, $0x3f800000
DATA expc<>+356(SB)/4, $0x3f800000
DATA expc<>+360(SB)/4, $0x3f800000
DATA expc<>+364(SB)/4, $0x3f800000
DATA expc<>+368(SB)/4, $0x3f800000
DATA expc<>+372(SB)/4, $0x3f800000
DATA expc<>+376(SB)/4, $0x3f800000
DATA expc<>+380(SB)/4, $0x3f800000
DATA expc<>+384(SB)/4, $0x0000007f
DATA expc<>+388(SB)/4, $0x0000007f
DATA expc<>+392(SB)/4, $0x0000007f
DATA expc<>+396(SB)/4, $0x0000007f
DATA expc<>+400(SB)/4, $0x0000007f
DATA expc<>+404(SB)/4, $0x0000007f
DATA expc<>+408(SB)/4, $0x0000007f
DATA expc<>+412(SB)/4, $0x0000007f
DATA expc<>+416(SB)/4, $0xc2ae0000
DATA expc<>+420(SB)/4, $0xc2ae0000
DATA expc<>+424(SB)/4, $0xc2ae0000
DATA expc<>+428(SB)/4, $0xc2ae0000
DATA expc<>+432(SB)/4, $0xc2ae0000
DATA expc<>+436(SB)/4, $0xc2ae0000
DATA expc<>+440(SB)/4, $0xc2ae0000
DATA expc<>+444(SB)/4, $0xc2ae0000
DATA expc<>+448(SB)/4, $0x42b20000
DATA expc<>+452(SB)/4, $0x42b20000
DATA expc<>+456(SB)/4, $0x42b20000
DATA expc<>+460(SB)/4, $0x42b20000
DATA expc<>+464(SB)/4, $0x42b20000
DATA expc<>+468(SB)/4, $0x42b20000
DATA expc<>+472(SB)/4, $0x42b20000
DATA expc<>+476(SB)/4, $0x42b20000
DATA expc<>+480(SB)/4, $0xff800000
DATA expc<>+484(SB)/4, $0xff800000
DATA expc<>+488(SB)/4, $0xff800000
DATA expc<>+492(SB)/4, $0xff800000
DATA expc<>+496(SB)/4, $0xff800000
DATA expc<>+500(SB)/4, $0xff800000
DATA expc<>+504(SB)/4, $0xff800000
DATA expc<>+508(SB)/4, $0xff800000
GLOBL expc<>(SB), RODATA|NOPTR, $512

// func expSubAVX2(x *float32, n int, shift float32, sum *[8]float64)
//
// x[i] = exp(x[i] − shift) for i < n (a multiple of 8), 0 where
// x[i] − shift < −87; sum[l] = Σ of the new values of lane l (i ≡ l mod 8),
// accumulated in float64 in index order.
TEXT ·expSubAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y13
	MOVQ sum+24(FP), DI
	VMOVUPS expc<>+416(SB), Y14
	VMOVUPS expc<>+448(SB), Y15
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	SHRQ $3, CX
	JZ esdone
esloop:
	VMOVUPS (SI), Y0
	VSUBPS Y13, Y0, Y0
	VCMPPS $1, Y14, Y0, Y9
	VMAXPS Y0, Y14, Y0
	VMINPS Y0, Y15, Y0
	VMOVUPS expc<>+0(SB), Y1
	VFMADD213PS expc<>+32(SB), Y0, Y1
	VPSUBD expc<>+64(SB), Y1, Y2
	VSUBPS expc<>+32(SB), Y1, Y1
	VFNMADD231PS expc<>+96(SB), Y1, Y0
	VFNMADD231PS expc<>+128(SB), Y1, Y0
	VMOVUPS expc<>+160(SB), Y1
	VFMADD213PS expc<>+192(SB), Y0, Y1
	VFMADD213PS expc<>+224(SB), Y0, Y1
	VFMADD213PS expc<>+256(SB), Y0, Y1
	VFMADD213PS expc<>+288(SB), Y0, Y1
	VFMADD213PS expc<>+320(SB), Y0, Y1
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y1
	VADDPS expc<>+352(SB), Y1, Y1
	VPADDD expc<>+384(SB), Y2, Y2
	VPSLLD $23, Y2, Y2
	VMULPS Y2, Y1, Y0
	VANDNPS Y0, Y9, Y0
	VMOVUPS Y0, (SI)
	VCVTPS2PD X0, Y1
	VEXTRACTF128 $1, Y0, X2
	VCVTPS2PD X2, Y2
	VADDPD Y1, Y10, Y10
	VADDPD Y2, Y11, Y11
	ADDQ $32, SI
	DECQ CX
	JNZ esloop
esdone:
	VMOVUPD Y10, (DI)
	VMOVUPD Y11, 32(DI)
	VZEROUPPER
	RET

// func scaleMaskAVX2(dst, src, m *float32, n int, k float32, div bool, out *[16]float32)
//
// dst[i] = src[i]/k (div) or src[i]·k, plus m[i] when m is not nil, for
// i < n (a multiple of 8); out[0:8] = the lanes' maxima of the new values
// (VMAXPS, NaN not kept) and out[8:16] = all ones in a lane that saw a
// NaN. Division, product and sum are IEEE operations on float32, the same
// bits as the scalar code.
TEXT ·scaleMaskAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS k+32(FP), Y13
	MOVBLZX div+36(FP), AX
	MOVQ out+40(FP), R8
	VMOVUPS expc<>+480(SB), Y14
	VXORPS Y15, Y15, Y15
	SHRQ $3, CX
	JZ smdone
smloop:
	VMOVUPS (SI), Y0
	TESTL AX, AX
	JZ smmul
	VDIVPS Y13, Y0, Y0
	JMP smmask
smmul:
	VMULPS Y13, Y0, Y0
smmask:
	TESTQ DX, DX
	JZ smstore
	VADDPS (DX), Y0, Y0
	ADDQ $32, DX
smstore:
	VMOVUPS Y0, (DI)
	VCMPPS $3, Y0, Y0, Y1
	VORPS Y1, Y15, Y15
	VMAXPS Y0, Y14, Y14
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ smloop
smdone:
	VMOVUPS Y14, (R8)
	VMOVUPS Y15, 32(R8)
	VZEROUPPER
	RET

// func mulF64AVX2(x *float32, n int, f float64)
//
// x[i] = float32(float64(x[i])·f) for i < n (a multiple of 8): the
// conversions and the product in float64 are IEEE operations, the same
// bits as the scalar code.
TEXT ·mulF64AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD f+16(FP), Y13
	SHRQ $3, CX
	JZ mfdone
mfloop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VMULPD Y13, Y0, Y0
	VMULPD Y13, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS X0, (SI)
	VMOVUPS X1, 16(SI)
	ADDQ $32, SI
	DECQ CX
	JNZ mfloop
mfdone:
	VZEROUPPER
	RET
