package model

// csrPays reports whether the [rows, k] weight staged in w (element (i, j)
// at w[i*si+j*sj]), with zeros exact zeros, multiplies faster through the
// CSR kernel than through the packed dense GEMM: always with
// Options.Sparse "on", else blas.SparseChoice's rule (a fixed table for
// weights under 65,536 values, a timing at load, cached per shape,
// sparsity step and thread count, for the others), shared with package
// onnx/run. It is called only for weights the threshold rule sends to CSR.
func (m *Model) csrPays(w []float32, rows, k, si, sj, zeros int) bool {
	if m.sparse == "on" {
		return true
	}
	return m.calib.Pays(w, rows, k, si, sj, zeros, m.threads)
}
