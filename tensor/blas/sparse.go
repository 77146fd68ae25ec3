package blas

import "fmt"

// CSR is a sparse [Rows, Cols] float32 matrix in compressed sparse row
// form: the nonzeros of row i are Val[RowPtr[i]:RowPtr[i+1]] at columns
// Col[RowPtr[i]:RowPtr[i+1]] (increasing). As the B operand of [SpMMT] it
// is a Linear weight [out, in] with its zeros dropped.
type CSR struct {
	Rows, Cols int
	RowPtr     []int64 // [Rows+1]
	Col        []int32 // [nnz]
	Val        []float32
}

// NewCSR builds the CSR form of the rows×cols matrix whose element (i, j)
// is src[i*si+j*sj], dropping exact zeros (and keeping -0 out as well).
func NewCSR(src []float32, rows, cols, si, sj int) *CSR {
	nnz := 0
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if src[i*si+j*sj] != 0 {
				nnz++
			}
		}
	}
	s := &CSR{Rows: rows, Cols: cols, RowPtr: make([]int64, rows+1), Col: make([]int32, 0, nnz), Val: make([]float32, 0, nnz)}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if v := src[i*si+j*sj]; v != 0 {
				s.Col = append(s.Col, int32(j))
				s.Val = append(s.Val, v)
			}
		}
		s.RowPtr[i+1] = int64(len(s.Val))
	}
	return s
}

// Sparsity returns the fraction of zeros of a rows×cols matrix (element
// (i, j) at src[i*si+j*sj]); 0 for an empty one.
func Sparsity(src []float32, rows, cols, si, sj int) float64 {
	if rows*cols == 0 {
		return 0
	}
	z := 0
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if src[i*si+j*sj] == 0 {
				z++
			}
		}
	}
	return float64(z) / float64(rows*cols)
}

// Check validates the structure: RowPtr of Rows+1 nondecreasing offsets
// from 0 to len(Val) = len(Col), every column in [0, Cols). The assembly
// kernel relies on it; [SpMMTPacked] calls it (O(nnz)).
func (s *CSR) Check() error {
	if s.Rows < 0 || s.Cols < 0 || len(s.RowPtr) != s.Rows+1 || s.RowPtr[0] != 0 || s.RowPtr[s.Rows] != int64(len(s.Val)) || len(s.Col) != len(s.Val) {
		return fmt.Errorf("CSR %d×%d: %d row pointers, %d columns, %d values", s.Rows, s.Cols, len(s.RowPtr), len(s.Col), len(s.Val))
	}
	for i := 0; i < s.Rows; i++ {
		if s.RowPtr[i+1] < s.RowPtr[i] {
			return fmt.Errorf("CSR: row pointer %d decreases", i+1)
		}
	}
	for p, c := range s.Col {
		if c < 0 || int(c) >= s.Cols {
			return fmt.Errorf("CSR: column %d at %d outside [0, %d)", c, p, s.Cols)
		}
	}
	return nil
}

// SparseAsm reports whether [SpMMTPacked] runs an assembly row kernel
// on this CPU and build (AVX-512); otherwise it runs a scalar pure-Go one,
// which is slower than the dense GEMM at any practical sparsity.
func SparseAsm() bool { return hasSpAVX512 }

// NNZ returns the number of stored values.
func (s *CSR) NNZ() int { return len(s.Val) }

// SpanelRows is the panel height of the packed A operand of
// [SpMMTPacked]: the number of rows of C one sparse dot product pass
// computes, held in registers.
const SpanelRows = 64

// spRowsPerJob is the number of rows of B (columns of C) per parallel job.
const spRowsPerJob = 64

// SpMMT computes C = A·Bᵀ for row-major dense A [m, k] and sparse B
// [n, k] into row-major c [m, n], on up to threads goroutines (below 1:
// GOMAXPROCS). It packs A in panels of [SpanelRows] rows with kernel kr
// (nil: [Best]) and calls [SpMMTPacked]. It panics if a size does not fit.
func SpMMT(kr *Kernel, c, a []float32, b *CSR, m, n, k, threads int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(c) < m*n || b.Rows != n || b.Cols != k {
		panic(fmt.Sprintf("blas: SpMMT: sizes m=%d n=%d k=%d do not fit len(a)=%d len(c)=%d B %d×%d", m, n, k, len(a), len(c), b.Rows, b.Cols))
	}
	if kr == nil {
		kr = Best()
	}
	threads = Threads(threads)
	ap := kr.PackMatrix(a, m, k, k, 1, SpanelRows, threads)
	SpMMTPacked(c, n, ap, b, m, threads)
}

// SpMMTPacked computes c[i*ldc+j] = Σ_p A(i,p)·B(j,p) for the first m rows
// of a (packed in panels of [SpanelRows] rows) and every row j of the
// sparse B, on up to threads goroutines. Each element of C is computed by
// one goroutine in an order fixed by B alone, so the result does not depend
// on threads.
func SpMMTPacked(c []float32, ldc int, a *Packed, b *CSR, m, threads int) {
	if a.R != SpanelRows || a.K != b.Cols || m > a.Rows {
		panic(fmt.Sprintf("blas: SpMMTPacked: A panels of %d rows × %d (want %d rows × %d), m=%d", a.R, a.K, SpanelRows, b.Cols, m))
	}
	if err := b.Check(); err != nil {
		panic("blas: SpMMTPacked: " + err.Error())
	}
	n := b.Rows
	if m <= 0 || n <= 0 {
		return
	}
	if len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("blas: SpMMTPacked: len(c)=%d < (m-1)·ldc+n = %d", len(c), (m-1)*ldc+n))
	}
	R, K := SpanelRows, a.K
	panels := (m + R - 1) / R
	nJobs := (n + spRowsPerJob - 1) / spRowsPerJob
	ParallelFor(Threads(threads), panels*nJobs, func(_, job int) {
		// Jobs run panel-major, so consecutive jobs reuse one A panel.
		pn, jb := job/nJobs, job%nJobs
		panel := a.Data[pn*K*R : (pn+1)*K*R]
		i0 := pn * R
		rows := min(R, m-i0)
		j0, j1 := jb*spRowsPerJob, min((jb+1)*spRowsPerJob, n)
		var tile [spRowsPerJob * SpanelRows]float32 // [j-j0][r]
		for j := j0; j < j1; j++ {
			lo, hi := b.RowPtr[j], b.RowPtr[j+1]
			spRow(b.Val[lo:hi], b.Col[lo:hi], panel, tile[(j-j0)*R:(j-j0+1)*R])
		}
		// Transpose the tile into C.
		w := j1 - j0
		for r := 0; r < rows; r++ {
			cr := c[(i0+r)*ldc+j0 : (i0+r)*ldc+j1]
			for jj := range cr[:w] {
				cr[jj] = tile[jj*R+r]
			}
		}
	})
}

// spRowGo is the portable spRow: out[r] = Σ_p val[p]·panel[col[p]·64+r],
// nonzeros alternating between two partial sums (even and odd p) added at
// the end, as the assembly version does.
func spRowGo(val []float32, col []int32, panel, out []float32) {
	var acc0, acc1 [SpanelRows]float32
	p := 0
	for ; p+2 <= len(val); p += 2 {
		v0, v1 := val[p], val[p+1]
		r0 := panel[int(col[p])*SpanelRows : int(col[p])*SpanelRows+SpanelRows]
		r1 := panel[int(col[p+1])*SpanelRows : int(col[p+1])*SpanelRows+SpanelRows]
		for i := range acc0 {
			acc0[i] += v0 * r0[i]
			acc1[i] += v1 * r1[i]
		}
	}
	if p < len(val) {
		v0 := val[p]
		r0 := panel[int(col[p])*SpanelRows : int(col[p])*SpanelRows+SpanelRows]
		for i := range acc0 {
			acc0[i] += v0 * r0[i]
		}
	}
	for i := range out[:SpanelRows] {
		out[i] = acc0[i] + acc1[i]
	}
}

// SpMMTRef is the reference for [SpMMT]: for each element, the dot product
// over B's nonzeros accumulated in float64 and rounded once.
func SpMMTRef(c, a []float32, b *CSR, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(c) < m*n || b.Rows != n || b.Cols != k {
		panic(fmt.Sprintf("blas: SpMMTRef: sizes m=%d n=%d k=%d do not fit len(a)=%d len(c)=%d B %d×%d", m, n, k, len(a), len(c), b.Rows, b.Cols))
	}
	for i := 0; i < m; i++ {
		ar := a[i*k : i*k+k]
		for j := 0; j < n; j++ {
			var s float64
			for p := b.RowPtr[j]; p < b.RowPtr[j+1]; p++ {
				s += float64(ar[b.Col[p]]) * float64(b.Val[p])
			}
			c[i*n+j] = float32(s)
		}
	}
}
