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
// whose products are too short to time, follow the threshold alone.
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
}

// csrPays reports whether the [rows, k] weight staged in w (element (i, j)
// at w[i*si+j*sj]), with zeros exact zeros, multiplies faster through the
// CSR kernel than through the packed dense GEMM (see above). It is called
// only for weights the threshold rule sends to CSR.
func (m *Model) csrPays(w []float32, rows, k, si, sj, zeros int) bool {
	if m.sparse == "on" || rows*k < calibMinElems {
		return true
	}
	key := calibKey{rows, k, zeros * 20 / (rows * k), m.threads}
	m.calib.mu.Lock()
	defer m.calib.mu.Unlock()
	if v, ok := m.calib.sure[key]; ok {
		return v
	}
	pays := sparseFaster(m.timeBoth(w, rows, k, si, sj))
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

// timeBoth returns the best of calibRounds times of the dense and the
// sparse product of calibRows rows of seeded random activations by the
// weight, alternating the two.
func (m *Model) timeBoth(w []float32, rows, k, si, sj int) (dense, sparse time.Duration) {
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
	sb := blas.NewSparseB(&csr)
	dense, sparse = time.Duration(1<<62), time.Duration(1<<62)
	for range calibRounds {
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
