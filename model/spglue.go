package model

import "github.com/lmsparse/lmsparse/tensor/blas"

// sparseWeight is a weight kept sparse, as the sparse kernel of package
// blas takes it.
type sparseWeight = blas.SparseB

// newSparseWeight prepares a CSR matrix for the model's sparse kernel,
// cut into the blocks of its dense one: the product of a sparse weight is
// then the dense product bit for bit (with an assembly kernel), so whether
// a weight is kept sparse changes the speed, never a result.
func (m *Model) newSparseWeight(c *blas.CSR) *sparseWeight { return m.kern.NewSparseB(c) }

// spmm computes out = A·Wᵀ for the first rows rows of a (packed in panels
// of blas.SpanelRows rows) and the sparse weight w, with row stride ldc.
func (m *Model) spmm(out []float32, ldc int, a *blas.Packed, w *sparseWeight, rows int) {
	m.kern.SpMMTPacked(out, ldc, a, w, rows, m.threads)
}
