package run

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// SparseThreshold is the fraction of exact zeros from which Options.Sparse
// "auto" considers keeping a constant weight sparse: package model's
// SparseThreshold, by the same measurements.
const SparseThreshold = 0.5

// The rule of Options.Sparse "auto" past the threshold, package model's
// (model/calib.go): a weight of at least calibMinElems values is timed
// both ways at load, once per shape, sparsity bucket and thread count,
// on calibRows rows of seeded random activations, best of calibRounds
// alternating rounds, and kept sparse only when the sparse product took
// at most 1/calibMargin of the dense one's time; a smaller weight, too
// short to time reliably, follows smallSparse, never timed.
const (
	calibMinElems = 1 << 16
	calibRows     = 256
	calibMargin   = 1.05
	calibRounds   = 3
)

// smallSparse is, per assembly kernel, the sparsity from which a weight
// of fewer than calibMinElems values is kept sparse on one thread and on
// more: package model's table (BenchmarkSparseSmall there). A kernel not
// in the table keeps small weights dense.
var smallSparse = map[string][2]float64{
	"avx512": {0.5, 0.5},
	"avx2":   {0.5, 0.5},
}

// calibKey identifies a timing: shape, sparsity in 5% steps and threads.
type calibKey struct{ n, k, bucket, threads int }

// sparsePolicy applies Options.Sparse to the weights of one Load.
type sparsePolicy struct {
	mode    string // "auto", "on" or "off"
	threads int
	sure    map[calibKey]bool
	// time, when set, replaces timeBoth (tests inject timings).
	time func(src []float32, n, k, si, sj int) (dense, sparse time.Duration)
}

func newSparsePolicy(mode string, threads int) (*sparsePolicy, error) {
	switch mode {
	case "":
		mode = "auto"
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("%w: Options.Sparse %q (want auto, on or off)", ErrInput, mode)
	}
	return &sparsePolicy{mode: mode, threads: threads, sure: map[calibKey]bool{}}, nil
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
	if float64(zeros) < SparseThreshold*float64(n*k) {
		return false
	}
	if n*k < calibMinElems {
		th, ok := smallSparse[kernel.Name()]
		if !ok {
			return false
		}
		t := th[0]
		if p.threads > 1 {
			t = th[1]
		}
		return float64(zeros) >= t*float64(n*k)
	}
	key := calibKey{n, k, zeros * 20 / (n * k), p.threads}
	if v, ok := p.sure[key]; ok {
		return v
	}
	timer := p.time
	if timer == nil {
		timer = p.timeBoth
	}
	dense, sparse := timer(src, n, k, si, sj)
	pays := float64(dense) >= calibMargin*float64(sparse)
	p.sure[key] = pays
	return pays
}

// timeBoth returns the best of calibRounds times of the dense and the
// sparse product of calibRows rows of seeded random activations by the
// weight, alternating the two.
func (p *sparsePolicy) timeBoth(src []float32, n, k, si, sj int) (dense, sparse time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	a := make([]float32, calibRows*k)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	c := make([]float32, calibRows*n)
	bp := packB(src, n, k, si, sj, p.threads)
	sb := sparseB(src, n, k, si, sj)
	dense, sparse = time.Duration(1<<62), time.Duration(1<<62)
	for range calibRounds {
		t0 := time.Now()
		ap := kernel.PackA(a, calibRows, k, k, 1, p.threads)
		kernel.Gemm(c, n, ap, bp, calibRows, n, k, p.threads)
		t1 := time.Now()
		sp := kernel.PackMatrix(a, calibRows, k, k, 1, blas.SpanelRows, p.threads)
		kernel.SpMMTPacked(c, n, sp, sb, calibRows, p.threads)
		t2 := time.Now()
		dense, sparse = min(dense, t1.Sub(t0)), min(sparse, t2.Sub(t1))
	}
	return dense, sparse
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
