//go:build amd64 && !purego

// AVX2+FMA element-wise kernels of vec_amd64.go. exp is the Cephes expf
// scheme of expf in ops.go, eight lanes at a time: clamp to [-87, 89]
// (NaN passes through), split x = n·ln 2 + r, a degree-6 polynomial in r,
// and scale by 2ⁿ built in the exponent bits. Above about 88.4, n reaches
// 128 and the scale is +Inf, so large inputs overflow to +Inf as they
// should; below -87 the result stays at e⁻⁸⁷ ≈ 1.6e-38 instead of
// underflowing, which no caller can tell from 0 (softmax sums are ≥ 1,
// sigmoids add 1, masked scores are zeroed afterwards).

#include "textflag.h"

DATA vconst<>+0(SB)/4, $0x3fb8aa3b
DATA vconst<>+4(SB)/4, $0x3fb8aa3b
DATA vconst<>+8(SB)/4, $0x3fb8aa3b
DATA vconst<>+12(SB)/4, $0x3fb8aa3b
DATA vconst<>+16(SB)/4, $0x3fb8aa3b
DATA vconst<>+20(SB)/4, $0x3fb8aa3b
DATA vconst<>+24(SB)/4, $0x3fb8aa3b
DATA vconst<>+28(SB)/4, $0x3fb8aa3b
DATA vconst<>+32(SB)/4, $0x4b400000
DATA vconst<>+36(SB)/4, $0x4b400000
DATA vconst<>+40(SB)/4, $0x4b400000
DATA vconst<>+44(SB)/4, $0x4b400000
DATA vconst<>+48(SB)/4, $0x4b400000
DATA vconst<>+52(SB)/4, $0x4b400000
DATA vconst<>+56(SB)/4, $0x4b400000
DATA vconst<>+60(SB)/4, $0x4b400000
DATA vconst<>+64(SB)/4, $0x4b400000
DATA vconst<>+68(SB)/4, $0x4b400000
DATA vconst<>+72(SB)/4, $0x4b400000
DATA vconst<>+76(SB)/4, $0x4b400000
DATA vconst<>+80(SB)/4, $0x4b400000
DATA vconst<>+84(SB)/4, $0x4b400000
DATA vconst<>+88(SB)/4, $0x4b400000
DATA vconst<>+92(SB)/4, $0x4b400000
DATA vconst<>+96(SB)/4, $0x3f318000
DATA vconst<>+100(SB)/4, $0x3f318000
DATA vconst<>+104(SB)/4, $0x3f318000
DATA vconst<>+108(SB)/4, $0x3f318000
DATA vconst<>+112(SB)/4, $0x3f318000
DATA vconst<>+116(SB)/4, $0x3f318000
DATA vconst<>+120(SB)/4, $0x3f318000
DATA vconst<>+124(SB)/4, $0x3f318000
DATA vconst<>+128(SB)/4, $0xb95e8083
DATA vconst<>+132(SB)/4, $0xb95e8083
DATA vconst<>+136(SB)/4, $0xb95e8083
DATA vconst<>+140(SB)/4, $0xb95e8083
DATA vconst<>+144(SB)/4, $0xb95e8083
DATA vconst<>+148(SB)/4, $0xb95e8083
DATA vconst<>+152(SB)/4, $0xb95e8083
DATA vconst<>+156(SB)/4, $0xb95e8083
DATA vconst<>+160(SB)/4, $0x39506967
DATA vconst<>+164(SB)/4, $0x39506967
DATA vconst<>+168(SB)/4, $0x39506967
DATA vconst<>+172(SB)/4, $0x39506967
DATA vconst<>+176(SB)/4, $0x39506967
DATA vconst<>+180(SB)/4, $0x39506967
DATA vconst<>+184(SB)/4, $0x39506967
DATA vconst<>+188(SB)/4, $0x39506967
DATA vconst<>+192(SB)/4, $0x3ab743ce
DATA vconst<>+196(SB)/4, $0x3ab743ce
DATA vconst<>+200(SB)/4, $0x3ab743ce
DATA vconst<>+204(SB)/4, $0x3ab743ce
DATA vconst<>+208(SB)/4, $0x3ab743ce
DATA vconst<>+212(SB)/4, $0x3ab743ce
DATA vconst<>+216(SB)/4, $0x3ab743ce
DATA vconst<>+220(SB)/4, $0x3ab743ce
DATA vconst<>+224(SB)/4, $0x3c088908
DATA vconst<>+228(SB)/4, $0x3c088908
DATA vconst<>+232(SB)/4, $0x3c088908
DATA vconst<>+236(SB)/4, $0x3c088908
DATA vconst<>+240(SB)/4, $0x3c088908
DATA vconst<>+244(SB)/4, $0x3c088908
DATA vconst<>+248(SB)/4, $0x3c088908
DATA vconst<>+252(SB)/4, $0x3c088908
DATA vconst<>+256(SB)/4, $0x3d2aa9c1
DATA vconst<>+260(SB)/4, $0x3d2aa9c1
DATA vconst<>+264(SB)/4, $0x3d2aa9c1
DATA vconst<>+268(SB)/4, $0x3d2aa9c1
DATA vconst<>+272(SB)/4, $0x3d2aa9c1
DATA vconst<>+276(SB)/4, $0x3d2aa9c1
DATA vconst<>+280(SB)/4, $0x3d2aa9c1
DATA vconst<>+284(SB)/4, $0x3d2aa9c1
DATA vconst<>+288(SB)/4, $0x3e2aaaaa
DATA vconst<>+292(SB)/4, $0x3e2aaaaa
DATA vconst<>+296(SB)/4, $0x3e2aaaaa
DATA vconst<>+300(SB)/4, $0x3e2aaaaa
DATA vconst<>+304(SB)/4, $0x3e2aaaaa
DATA vconst<>+308(SB)/4, $0x3e2aaaaa
DATA vconst<>+312(SB)/4, $0x3e2aaaaa
DATA vconst<>+316(SB)/4, $0x3e2aaaaa
DATA vconst<>+320(SB)/4, $0x3f000000
DATA vconst<>+324(SB)/4, $0x3f000000
DATA vconst<>+328(SB)/4, $0x3f000000
DATA vconst<>+332(SB)/4, $0x3f000000
DATA vconst<>+336(SB)/4, $0x3f000000
DATA vconst<>+340(SB)/4, $0x3f000000
DATA vconst<>+344(SB)/4, $0x3f000000
DATA vconst<>+348(SB)/4, $0x3f000000
DATA vconst<>+352(SB)/4, $0x3f800000
DATA vconst<>+356(SB)/4, $0x3f800000
DATA vconst<>+360(SB)/4, $0x3f800000
DATA vconst<>+364(SB)/4, $0x3f800000
DATA vconst<>+368(SB)/4, $0x3f800000
DATA vconst<>+372(SB)/4, $0x3f800000
DATA vconst<>+376(SB)/4, $0x3f800000
DATA vconst<>+380(SB)/4, $0x3f800000
DATA vconst<>+384(SB)/4, $0x0000007f
DATA vconst<>+388(SB)/4, $0x0000007f
DATA vconst<>+392(SB)/4, $0x0000007f
DATA vconst<>+396(SB)/4, $0x0000007f
DATA vconst<>+400(SB)/4, $0x0000007f
DATA vconst<>+404(SB)/4, $0x0000007f
DATA vconst<>+408(SB)/4, $0x0000007f
DATA vconst<>+412(SB)/4, $0x0000007f
DATA vconst<>+416(SB)/4, $0xc2ae0000
DATA vconst<>+420(SB)/4, $0xc2ae0000
DATA vconst<>+424(SB)/4, $0xc2ae0000
DATA vconst<>+428(SB)/4, $0xc2ae0000
DATA vconst<>+432(SB)/4, $0xc2ae0000
DATA vconst<>+436(SB)/4, $0xc2ae0000
DATA vconst<>+440(SB)/4, $0xc2ae0000
DATA vconst<>+444(SB)/4, $0xc2ae0000
DATA vconst<>+448(SB)/4, $0x42b20000
DATA vconst<>+452(SB)/4, $0x42b20000
DATA vconst<>+456(SB)/4, $0x42b20000
DATA vconst<>+460(SB)/4, $0x42b20000
DATA vconst<>+464(SB)/4, $0x42b20000
DATA vconst<>+468(SB)/4, $0x42b20000
DATA vconst<>+472(SB)/4, $0x42b20000
DATA vconst<>+476(SB)/4, $0x42b20000
DATA vconst<>+480(SB)/4, $0xbfcc422a
DATA vconst<>+484(SB)/4, $0xbfcc422a
DATA vconst<>+488(SB)/4, $0xbfcc422a
DATA vconst<>+492(SB)/4, $0xbfcc422a
DATA vconst<>+496(SB)/4, $0xbfcc422a
DATA vconst<>+500(SB)/4, $0xbfcc422a
DATA vconst<>+504(SB)/4, $0xbfcc422a
DATA vconst<>+508(SB)/4, $0xbfcc422a
DATA vconst<>+512(SB)/4, $0xbd922279
DATA vconst<>+516(SB)/4, $0xbd922279
DATA vconst<>+520(SB)/4, $0xbd922279
DATA vconst<>+524(SB)/4, $0xbd922279
DATA vconst<>+528(SB)/4, $0xbd922279
DATA vconst<>+532(SB)/4, $0xbd922279
DATA vconst<>+536(SB)/4, $0xbd922279
DATA vconst<>+540(SB)/4, $0xbd922279
DATA vconst<>+544(SB)/4, $0xbf800000
DATA vconst<>+548(SB)/4, $0xbf800000
DATA vconst<>+552(SB)/4, $0xbf800000
DATA vconst<>+556(SB)/4, $0xbf800000
DATA vconst<>+560(SB)/4, $0xbf800000
DATA vconst<>+564(SB)/4, $0xbf800000
DATA vconst<>+568(SB)/4, $0xbf800000
DATA vconst<>+572(SB)/4, $0xbf800000
GLOBL vconst<>(SB), RODATA|NOPTR, $576

// EXPY0 sets Y0 = exp(Y0), its argument clamped to [Y14, Y15]: n =
// round(x·log₂e), r = x − n·ln2 in two parts, a polynomial in r, scaled
// by 2ⁿ built in the exponent bits (constants in vconst). Uses Y1–Y3.
#define EXPY0 \
	VMAXPS Y0, Y14, Y0 ; \
	VMINPS Y0, Y15, Y0 ; \
	VMOVUPS vconst<>+0(SB), Y1 ; \
	VFMADD213PS vconst<>+32(SB), Y0, Y1 ; \
	VPSUBD vconst<>+64(SB), Y1, Y2 ; \
	VSUBPS vconst<>+32(SB), Y1, Y1 ; \
	VFNMADD231PS vconst<>+96(SB), Y1, Y0 ; \
	VFNMADD231PS vconst<>+128(SB), Y1, Y0 ; \
	VMOVUPS vconst<>+160(SB), Y1 ; \
	VFMADD213PS vconst<>+192(SB), Y0, Y1 ; \
	VFMADD213PS vconst<>+224(SB), Y0, Y1 ; \
	VFMADD213PS vconst<>+256(SB), Y0, Y1 ; \
	VFMADD213PS vconst<>+288(SB), Y0, Y1 ; \
	VFMADD213PS vconst<>+320(SB), Y0, Y1 ; \
	VMULPS Y0, Y0, Y3 ; \
	VFMADD213PS Y0, Y3, Y1 ; \
	VADDPS vconst<>+352(SB), Y1, Y1 ; \
	VPADDD vconst<>+384(SB), Y2, Y2 ; \
	VPSLLD $23, Y2, Y2 ; \
	VMULPS Y2, Y1, Y0

// func maxColsAVX2(x *float32, rows, ld int, scale float32, out *float32)
//
// out[c] = max over r < rows of x[r·ld+c]·scale, for the 8 columns c of
// one strip (rows ≥ 1).
TEXT ·maxColsAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Y12
	VMULPS (SI), Y12, Y0
	ADDQ R8, SI
	DECQ CX
	JZ mxdone
mxloop:
	VMULPS (SI), Y12, Y1
	VMAXPS Y1, Y0, Y0
	ADDQ R8, SI
	DECQ CX
	JNZ mxloop
mxdone:
	MOVQ out+32(FP), DI
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func expColsAVX2(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)
//
// x[r·ld+c] = exp(x[r·ld+c]·scale − shift[c]) for r < rows and the 8
// columns c of one strip; sum[c] = Σ_r of the new values, accumulated in
// float64 lanes down the rows.
TEXT ·expColsAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	VBROADCASTSS scale+24(FP), Y12
	MOVQ shift+32(FP), DI
	VMOVUPS (DI), Y13
	VMOVUPS vconst<>+416(SB), Y14
	VMOVUPS vconst<>+448(SB), Y15
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	TESTQ CX, CX
	JZ exdone
exloop:
	VMOVUPS (SI), Y0
	VFMSUB213PS Y13, Y12, Y0
	EXPY0
	VMOVUPS Y0, (SI)
	VCVTPS2PD X0, Y1
	VEXTRACTF128 $1, Y0, X2
	VCVTPS2PD X2, Y2
	VADDPD Y1, Y10, Y10
	VADDPD Y2, Y11, Y11
	ADDQ R8, SI
	DECQ CX
	JNZ exloop
exdone:
	MOVQ sum+40(FP), DI
	VMOVUPD Y10, (DI)
	VMOVUPD Y11, 32(DI)
	VZEROUPPER
	RET

// func geluAVX2(x *float32, n int)
//
// x[i] = x/(1+exp(−2u)), u = √(2/π)·(x+0.044715·x³): gelu_new, for i < n
// (n a multiple of 8).
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS vconst<>+416(SB), Y14
	VMOVUPS vconst<>+448(SB), Y15
	SHRQ $3, CX
	JZ gedone
geloop:
	VMOVUPS (SI), Y4
	VMULPS Y4, Y4, Y5
	VMOVUPS vconst<>+512(SB), Y0
	VFMADD213PS vconst<>+480(SB), Y5, Y0
	VMULPS Y4, Y0, Y0
	EXPY0
	VADDPS vconst<>+352(SB), Y0, Y0
	VDIVPS Y0, Y4, Y4
	VMOVUPS Y4, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ geloop
gedone:
	VZEROUPPER
	RET

// func siluMulAVX2(gp, up *float32, n int)
//
// g[i] = g/(1+exp(−g))·u[i] for i < n (n a multiple of 8).
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ gp+0(FP), SI
	MOVQ up+8(FP), DI
	MOVQ n+16(FP), CX
	VMOVUPS vconst<>+416(SB), Y14
	VMOVUPS vconst<>+448(SB), Y15
	SHRQ $3, CX
	JZ sidone
siloop:
	VMOVUPS (SI), Y4
	VMULPS vconst<>+544(SB), Y4, Y0
	EXPY0
	VADDPS vconst<>+352(SB), Y0, Y0
	VDIVPS Y0, Y4, Y4
	VMULPS (DI), Y4, Y4
	VMOVUPS Y4, (SI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ siloop
sidone:
	VZEROUPPER
	RET
