package model

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Calibration of Options.Sparse "auto": SparseThreshold says from which
// fraction of zeros the CSR kernel can pay, but whether it does depends on
// the shape, the thread count and the machine (on a 2-vCPU EPYC a 768×768
// weight with 50% zeros multiplies in 2.50 ms sparse and 2.14 ms dense on
// 2 threads). So a weight of at least calibMinElems values that passes the
// threshold is timed both ways, once per shape and sparsity bucket, on
// calibRows rows of activations at the model's thread count, and kept in
// CSR only when the sparse product was at least calibMargin faster: sparse
// is never chosen where it measured slower than dense. Smaller weights,
// whose products are too short to time reliably at load, follow a fixed
// table measured the same way (smallSparse), so their decisions — and the
// logits of small models — are the same from run to run.
const (
	calibMinElems = 1 << 16
	calibRows     = 256
	calibMargin   = 1.05
	calibRounds   = 3
)

// calibKey identifies a calibration: shape, sparsity in 5% steps and
// thread count.
type calibKey struct{ rows, k, bucket, threads int }

// calibCache holds a model's calibration decisions.
type calibCache struct {
	mu   sync.Mutex
	sure map[calibKey]bool
	// time, when set, replaces Model.timeBoth (tests inject timings).
	time func(w []float32, rows, k, si, sj int) (dense, sparse time.Duration)
}

// smallSparse is, per assembly kernel, the sparsity from which a weight
// of fewer than calibMinElems values is kept in CSR on one thread and on
// more: the lowest 5% step from which the sparse product was at least
// calibMargin faster than the dense one on every measured shape and at
// every higher step (BenchmarkSparseSmall: M = 256 and 512 activation
// rows, weights from 32×64 to 255×256, best of 40 alternating runs, on
// the 2-vCPU AMD EPYC development host). A kernel or thread count not in
// the table keeps small weights dense.
var smallSparse = map[string][2]float64{
	"avx512": {0.5, 0.5},
	"avx2":   {0.5, 0.5},
}

// smallCSRPays is the decision for a weight below calibMinElems with
// zeros exact zeros among n values: from the table, never timed.
func (m *Model) smallCSRPays(zeros, n int) bool {
	th, ok := smallSparse[m.kern.Name()]
	if !ok || n == 0 {
		return false
	}
	t := th[0]
	if m.threads > 1 {
		t = th[1]
	}
	return float64(zeros) >= t*float64(n)
}

// csrPays reports whether the [rows, k] weight staged in w (element (i, j)
// at w[i*si+j*sj]), with zeros exact zeros, multiplies faster through the
// CSR kernel than through the packed dense GEMM (see above). It is called
// only for weights the threshold rule sends to CSR.
func (m *Model) csrPays(w []float32, rows, k, si, sj, zeros int) bool {
	if m.sparse == "on" {
		return true
	}
	if rows*k < calibMinElems {
		return m.smallCSRPays(zeros, rows*k)
	}
	key := calibKey{rows, k, zeros * 20 / (rows * k), m.threads}
	m.calib.mu.Lock()
	defer m.calib.mu.Unlock()
	if v, ok := m.calib.sure[key]; ok {
		return v
	}
	timer := m.calib.time
	if timer == nil {
		timer = func(w []float32, rows, k, si, sj int) (time.Duration, time.Duration) {
			return m.timeBoth(w, rows, k, si, sj, calibRounds)
		}
	}
	pays := sparseFaster(timer(w, rows, k, si, sj))
	if m.calib.sure == nil {
		m.calib.sure = map[calibKey]bool{}
	}
	m.calib.sure[key] = pays
	return pays
}

// sparseFaster is the calibration's rule: the sparse product must take
// at most 1/calibMargin of the dense one's time.
func sparseFaster(dense, sparse time.Duration) bool {
	return float64(dense) >= calibMargin*float64(sparse)
}

// timeBoth returns the best of rounds times of the dense and the sparse
// product of calibRows rows of seeded random activations by the weight,
// alternating the two.
func (m *Model) timeBoth(w []float32, rows, k, si, sj, rounds int) (dense, sparse time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(rows), uint64(k)))
	a := make([]float32, calibRows*k)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	c := make([]float32, calibRows*rows)
	nr := m.kern.NR()
	bp := &blas.Packed{Data: make([]float32, (rows+nr-1)/nr*nr*k), Rows: rows, K: k, R: nr}
	m.pack(bp, w, si, sj, m.threads)
	var csr blas.CSR
	csr.SetStrided(w, rows, k, si, sj, -1)
	sb := m.kern.NewSparseB(&csr)
	dense, sparse = time.Duration(1<<62), time.Duration(1<<62)
	for range rounds {
		t0 := time.Now()
		ap := m.kern.PackA(a, calibRows, k, k, 1, m.threads)
		m.kern.Gemm(c, rows, ap, bp, calibRows, rows, k, m.threads)
		t1 := time.Now()
		sp := m.kern.PackMatrix(a, calibRows, k, k, 1, blas.SpanelRows, m.threads)
		m.kern.SpMMTPacked(c, rows, sp, sb, calibRows, m.threads)
		t2 := time.Now()
		dense, sparse = min(dense, t1.Sub(t0)), min(sparse, t2.Sub(t1))
	}
	return dense, sparse
}
