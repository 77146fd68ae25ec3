package blas

import (
	"math/rand/v2"
	"sync"
	"time"
)

// SparseThreshold is the fraction of exact zeros from which a weight may
// be multiplied sparse ([SparseChoice]): below it the sparse kernel does
// not pay on any measured shape (BenchmarkSpMMT; package model's
// BenchmarkSparseCrossover on whole forward passes).
const SparseThreshold = 0.5

// Timing of [SparseChoice]: a weight of at least choiceMinElems values is
// timed on choiceRows rows of seeded random activations, best of
// choiceRounds alternating rounds, and kept sparse only when the sparse
// product was at least choiceMargin faster.
const (
	choiceMinElems = 1 << 16
	choiceRows     = 256
	choiceMargin   = 1.05
	choiceRounds   = 3
)

// smallSparse is, per assembly kernel, the sparsity from which a weight
// of fewer than choiceMinElems values is kept sparse on one thread and on
// more: the lowest 5% step from which the sparse product was at least
// choiceMargin faster than the dense one on every measured shape and at
// every higher step (package model's BenchmarkSparseSmall: M = 256 and 512
// activation rows, weights from 32×64 to 255×256, best of 40 alternating
// runs, on the 2-vCPU AMD EPYC development host). A kernel not in the
// table keeps small weights dense.
var smallSparse = map[string][2]float64{
	"avx512": {0.5, 0.5},
	"avx2":   {0.5, 0.5},
}

// SmallSparse returns the table's sparsity from which a weight of fewer
// than 65,536 values is kept sparse with kernel name on threads threads,
// and whether the kernel is in the table.
func SmallSparse(name string, threads int) (float64, bool) {
	th, ok := smallSparse[name]
	if threads > 1 {
		return th[1], ok
	}
	return th[0], ok
}

// SparseFaster is SparseChoice's rule on two timings: the sparse product
// must take at most 1/1.05 of the dense one's time.
func SparseFaster(dense, sparse time.Duration) bool {
	return float64(dense) >= choiceMargin*float64(sparse)
}

// SparseChoice decides, weight by weight, whether a pruned weight runs
// faster through kernel's sparse product ([Kernel.SpMMTPacked]) than
// through its dense GEMM, for package model's forward pass and package
// onnx/run's executor alike. SparseThreshold says from which fraction of
// zeros the sparse kernel can pay, but whether it does depends on the
// shape, the thread count and the machine (on a 2-vCPU EPYC a 768×768
// weight with 50% zeros multiplies in 2.50 ms sparse and 2.14 ms dense on
// 2 threads). So a weight of at least 65,536 values is timed both ways,
// once per shape, 5% sparsity step and thread count, and kept sparse only
// when the sparse product was at least 5% faster: sparse is never chosen
// where it measured slower. Smaller weights, whose products are too short
// to time reliably, follow a fixed table measured the same way
// ([SmallSparse]), so their decisions are the same on every run. The
// choice changes the speed only: with [Kernel.NewSparseB], the sparse
// product is the dense one bit for bit. A SparseChoice is safe for
// concurrent use; its zero value is not usable (set Kernel).
type SparseChoice struct {
	Kernel *Kernel
	// Time, when set, replaces the timing (tests inject timings).
	Time func(w []float32, n, k, si, sj int) (dense, sparse time.Duration)

	mu   sync.Mutex
	sure map[choiceKey]bool
}

// choiceKey identifies a timing: shape, sparsity in 5% steps, threads.
type choiceKey struct{ n, k, bucket, threads int }

// Pays reports whether the [n, k] weight whose element (i, j) is
// w[i*si+j*sj], with zeros exact zeros, multiplies faster sparse on
// threads threads (below 1: GOMAXPROCS): false below SparseThreshold or
// without an assembly sparse kernel, then the table for small weights and
// a timing (cached) for the others.
func (c *SparseChoice) Pays(w []float32, n, k, si, sj, zeros, threads int) bool {
	if n <= 0 || k <= 0 || !c.Kernel.asm || c.Kernel.spBlock == nil || float64(zeros) < SparseThreshold*float64(n*k) {
		return false
	}
	threads = Threads(threads)
	if n*k < choiceMinElems {
		t, ok := SmallSparse(c.Kernel.Name(), threads)
		return ok && float64(zeros) >= t*float64(n*k)
	}
	key := choiceKey{n, k, zeros * 20 / (n * k), threads}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.sure[key]; ok {
		return v
	}
	timer := c.Time
	if timer == nil {
		timer = func(w []float32, n, k, si, sj int) (time.Duration, time.Duration) {
			return c.Kernel.TimeSparse(w, n, k, si, sj, threads, choiceRounds)
		}
	}
	pays := SparseFaster(timer(w, n, k, si, sj))
	if c.sure == nil {
		c.sure = map[choiceKey]bool{}
	}
	c.sure[key] = pays
	return pays
}

// Timed returns the number of decisions a SparseChoice has timed (or had
// injected) so far.
func (c *SparseChoice) Timed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sure)
}

// TimeSparse returns the best of rounds times of the dense and the sparse
// product of 256 rows of seeded random activations by the [n, k] weight
// whose element (i, j) is w[i*si+j*sj], alternating the two, on threads
// threads.
func (kr *Kernel) TimeSparse(w []float32, n, k, si, sj, threads, rounds int) (dense, sparse time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	a := make([]float32, choiceRows*k)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	c := make([]float32, choiceRows*n)
	bp := kr.PackB(w, n, k, si, sj, threads)
	var csr CSR
	csr.SetStrided(w, n, k, si, sj, -1)
	sb := kr.NewSparseB(&csr)
	dense, sparse = time.Duration(1<<62), time.Duration(1<<62)
	for range rounds {
		t0 := time.Now()
		ap := kr.PackA(a, choiceRows, k, k, 1, threads)
		kr.Gemm(c, n, ap, bp, choiceRows, n, k, threads)
		t1 := time.Now()
		sp := kr.PackMatrix(a, choiceRows, k, k, 1, SpanelRows, threads)
		kr.SpMMTPacked(c, n, sp, sb, choiceRows, threads)
		t2 := time.Now()
		dense, sparse = min(dense, t1.Sub(t0)), min(sparse, t2.Sub(t1))
	}
	return dense, sparse
}
