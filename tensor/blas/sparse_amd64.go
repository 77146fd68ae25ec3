//go:build amd64 && !purego

package blas

import "golang.org/x/sys/cpu"

// spRow64AVX512 computes out[0:64] = Σ_p val[p]·panel[col[p]·64 : +64]
// with eight zmm accumulators (even and odd nonzeros), sparse_amd64.s.
//
//go:noescape
func spRow64AVX512(nnz int, val *float32, col *int32, panel, out *float32)

var hasSpAVX512 = cpu.X86.HasAVX512F

// spRow is one sparse row times one A panel: out[r] = Σ_p val[p]·panel[col[p]·64+r].
func spRow(val []float32, col []int32, panel, out []float32) {
	if !hasSpAVX512 {
		spRowGo(val, col, panel, out)
		return
	}
	_ = out[SpanelRows-1]
	if len(val) == 0 {
		clear(out[:SpanelRows])
		return
	}
	_ = col[len(val)-1]
	spRow64AVX512(len(val), &val[0], &col[0], &panel[0], &out[0])
}
