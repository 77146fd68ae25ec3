//go:build amd64 && !purego

#include "textflag.h"

// func spRow64AVX512(nnz int, val *float32, col *int32, panel, out *float32)
//
// out[0:64] = Σ_p val[p]·panel[col[p]·64 : col[p]·64+64], nnz ≥ 1: even p
// accumulate into Z0-Z3, odd p into Z4-Z7, added at the end (the order of
// spRowGo). Column indices are not checked: the caller guarantees
// col[p] < K of the panel.
TEXT ·spRow64AVX512(SB), NOSPLIT, $0-40
	MOVQ nnz+0(FP), CX
	MOVQ val+8(FP), SI
	MOVQ col+16(FP), DI
	MOVQ panel+24(FP), DX
	MOVQ out+32(FP), R8
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7

loop2:
	CMPQ CX, $2
	JLT  tail
	MOVLQSX 0(DI), AX
	SHLQ $8, AX
	MOVLQSX 4(DI), BX
	SHLQ $8, BX
	VBROADCASTSS 0(SI), Z8
	VBROADCASTSS 4(SI), Z9
	VFMADD231PS 0(DX)(AX*1), Z8, Z0
	VFMADD231PS 64(DX)(AX*1), Z8, Z1
	VFMADD231PS 128(DX)(AX*1), Z8, Z2
	VFMADD231PS 192(DX)(AX*1), Z8, Z3
	VFMADD231PS 0(DX)(BX*1), Z9, Z4
	VFMADD231PS 64(DX)(BX*1), Z9, Z5
	VFMADD231PS 128(DX)(BX*1), Z9, Z6
	VFMADD231PS 192(DX)(BX*1), Z9, Z7
	ADDQ $8, SI
	ADDQ $8, DI
	SUBQ $2, CX
	JMP  loop2

tail:
	TESTQ CX, CX
	JZ    done
	MOVLQSX 0(DI), AX
	SHLQ $8, AX
	VBROADCASTSS 0(SI), Z8
	VFMADD231PS 0(DX)(AX*1), Z8, Z0
	VFMADD231PS 64(DX)(AX*1), Z8, Z1
	VFMADD231PS 128(DX)(AX*1), Z8, Z2
	VFMADD231PS 192(DX)(AX*1), Z8, Z3

done:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VMOVUPS Z0, 0(R8)
	VMOVUPS Z1, 64(R8)
	VMOVUPS Z2, 128(R8)
	VMOVUPS Z3, 192(R8)
	VZEROUPPER
	RET
