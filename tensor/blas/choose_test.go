package blas

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSparseChoice checks the decision logic with injected timings: a
// weight of 65,536 values or more stays dense unless sparse measured at
// least 5% faster; the decision is made once per shape, sparsity step and
// thread count; smaller weights are never timed and follow the table;
// below SparseThreshold nothing is timed.
func TestSparseChoice(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		dense, sparse time.Duration
		want          bool
	}{{214 * ms / 100, 250 * ms / 100, false}, {100 * ms, 100 * ms, false}, {104 * ms, 100 * ms, false}, {105 * ms, 100 * ms, true}, {300 * ms, 100 * ms, true}} {
		if got := SparseFaster(c.dense, c.sparse); got != c.want {
			t.Errorf("dense %v, sparse %v: sparse chosen %v, want %v", c.dense, c.sparse, got, c.want)
		}
	}
	k := Best()
	if !k.asm {
		t.Skip("no assembly sparse kernel on this CPU or build: nothing is ever chosen sparse")
	}
	// The timer reports sparse as fast as the weight's share of nonzeros,
	// plus a fixed cost: 512×512 at 50% zeros measures 0.5+0.47 of dense
	// (not enough), at 90% 0.1+0.47 (enough).
	var timed []int
	timer := func(w []float32, n, k, si, sj int) (time.Duration, time.Duration) {
		nz := 0
		for _, v := range w {
			if v != 0 {
				nz++
			}
		}
		timed = append(timed, nz)
		return 1000 * ms, time.Duration(1000*nz/len(w))*ms + 470*ms
	}
	for _, threads := range []int{1, 2} {
		c := &SparseChoice{Kernel: k, Time: timer}
		timed = nil
		rows, cols := 512, 512
		for _, cs := range []struct {
			zeros int
			want  bool
		}{{rows * cols / 2, false}, {rows * cols * 9 / 10, true}, {rows*cols/2 + 1, false}, {rows * cols * 9 / 10, true}, {rows * cols / 3, false}} {
			w := make([]float32, rows*cols)
			for i := cs.zeros; i < len(w); i++ {
				w[i] = 1
			}
			if got := c.Pays(w, rows, cols, cols, 1, cs.zeros, threads); got != cs.want {
				t.Errorf("threads %d: %d of %d zeros: sparse %v, want %v", threads, cs.zeros, len(w), got, cs.want)
			}
		}
		// The third and fourth weights fall in buckets already decided;
		// the fifth is below the threshold.
		if len(timed) != 2 || c.Timed() != 2 {
			t.Errorf("threads %d: timed %d weights (%v), cached %d decisions; want 2 and 2", threads, len(timed), timed, c.Timed())
		}
		// Small weights: the table decides, the timer is not called.
		timed = nil
		th, inTable := SmallSparse(k.Name(), threads)
		for _, n := range []int{64 * 64, choiceMinElems - 1} {
			for _, frac := range []float64{0.3, 0.5, 0.7, 0.96} {
				zeros := int(frac * float64(n))
				want := inTable && float64(zeros) >= th*float64(n) && frac >= SparseThreshold
				if got := c.Pays(nil, 1, n, n, 1, zeros, threads); got != want {
					t.Errorf("threads %d: small weight of %d values, %.0f%% zeros: sparse %v, want %v", threads, n, 100*frac, got, want)
				}
			}
		}
		if len(timed) != 0 {
			t.Errorf("threads %d: %d small weights timed", threads, len(timed))
		}
	}
}

// BenchmarkSparseSmall measures the table of SmallSparse: for each
// assembly kernel and 1 and 2 threads, the lowest 5% sparsity step from
// which the sparse product of 256 activation rows was at least 5% faster
// than the dense one (best of 40 alternating runs, Kernel.TimeSparse) on
// every shape below 65,536 values and at every higher step. It logs the
// table (go test -run '^$' -bench SparseSmall -benchtime 1x -v
// ./tensor/blas); "dense" means no step qualified.
func BenchmarkSparseSmall(b *testing.B) {
	shapes := [][2]int{{32, 64}, {64, 64}, {172, 64}, {64, 172}, {512, 64}, {128, 128}, {256, 128}, {128, 256}, {255, 256}}
	rng := rand.New(rand.NewPCG(7, 8))
	for b.Loop() {
		for _, k := range All() {
			if !k.asm {
				continue
			}
			var row [2]string
			for ti, threads := range []int{1, 2} {
				lowest := 50 // the lowest step from which every measurement qualified
				for _, s := range shapes {
					rows, cols := s[0], s[1]
					w := make([]float32, rows*cols)
					for i := range w {
						w[i] = float32(rng.NormFloat64())
					}
					order := rng.Perm(len(w)) // zero a growing prefix: each step prunes the previous one further
					zeroed := 0
					for step := 10; step <= 19; step++ { // 50% .. 95%
						for ; zeroed < len(w)*step/20; zeroed++ {
							w[order[zeroed]] = 0
						}
						dense, sparse := k.TimeSparse(w, rows, cols, cols, 1, threads, 40)
						b.Logf("%s threads %d %dx%d %d%%: dense %v sparse %v (%.2f)", k.Name(), threads, rows, cols, 5*step, dense, sparse, float64(sparse)/float64(dense))
						if !SparseFaster(dense, sparse) {
							lowest = max(lowest, 5*step+5)
						}
					}
				}
				row[ti] = "dense"
				if lowest <= 95 {
					row[ti] = fmt.Sprintf("%.2f", float64(lowest)/100)
				}
			}
			b.Logf("smallSparse %q: {%s, %s}", k.Name(), row[0], row[1])
		}
	}
}
