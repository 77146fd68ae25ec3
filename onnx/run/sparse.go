package run

import (
	"fmt"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// SparseThreshold is the fraction of exact zeros from which Options.Sparse
// "auto" considers keeping a constant weight sparse (blas.SparseThreshold,
// as package model).
const SparseThreshold = blas.SparseThreshold

// sparsePolicy applies Options.Sparse to the weights of one Load: "on"
// keeps every weight sparse, "off" none, "auto" those blas.SparseChoice
// finds faster sparse (the rule package model's forward pass follows: a
// measured table under 65,536 values, a timing at load above).
type sparsePolicy struct {
	mode    string // "auto", "on" or "off"
	threads int
	choice  blas.SparseChoice
}

func newSparsePolicy(mode string, threads int) (*sparsePolicy, error) {
	switch mode {
	case "":
		mode = "auto"
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("%w: Options.Sparse %q (want auto, on or off)", ErrInput, mode)
	}
	return &sparsePolicy{mode: mode, threads: threads, choice: blas.SparseChoice{Kernel: kernel}}, nil
}

// keepSparse decides for the [n, k] weight whose element (i, j) is
// src[i*si+j*sj].
func (p *sparsePolicy) keepSparse(src []float32, n, k, si, sj int) bool {
	switch {
	case p.mode == "on":
		return true
	case p.mode == "off" || n*k == 0 || !blas.SparseAsm() || !kernel.Assembly():
		return false
	}
	zeros := 0
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			if src[i*si+j*sj] == 0 {
				zeros++
			}
		}
	}
	return p.choice.Pays(src, n, k, si, sj, zeros, p.threads)
}

// sparseB builds the sparse B operand of kernel.SpMMTPacked from the
// [n, k] matrix whose element (i, j) is src[i*si+j*sj], its sums split as
// kernel's Gemm splits them (so that, with an assembly kernel, the
// product is the dense GEMM's to the bit).
func sparseB(src []float32, n, k, si, sj int) *blas.SparseB {
	var csr blas.CSR
	csr.SetStrided(src, n, k, si, sj, -1)
	return kernel.NewSparseB(&csr)
}

// constB reports whether the node's B operand was prepared at load
// (packed dense or kept sparse).
func (n *node) constB() bool { return n.bp != nil || n.sb != nil }

// gemmW computes C = A·Bᵀ (C [m, n.bN], row stride n.bN) for row-major A
// [m, n.bK] and the node's B prepared at load: by the GEMM on the packed
// weight, or by the sparse kernel on the sparse one (A packed in panels of
// blas.SpanelRows rows into arena scratch).
func (e *exec) gemmW(c, a []float32, w *node, m int) {
	if w.sb == nil {
		e.gemmB(c, a, w.bp, m, w.bN, w.bK, false)
		return
	}
	if m == 0 || w.bN == 0 {
		return
	}
	if w.bK == 0 {
		clear(c[:m*w.bN])
		return
	}
	var ap blas.Packed
	packInto(&ap, e.scratch(packedLen(m, w.bK, blas.SpanelRows)), a, m, w.bK, w.bK, 1, blas.SpanelRows, e.threads)
	kernel.SpMMTPacked(c, w.bN, &ap, w.sb, m, e.threads)
}
