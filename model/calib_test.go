package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSparseCalibration checks the decision logic with injected timings:
// a weight of calibMinElems values or more stays dense unless sparse
// measured at least 5% faster; the decision is made once per shape,
// sparsity step and thread count; weights below calibMinElems are never
// timed and follow smallSparse; "on" always goes sparse.
func TestSparseCalibration(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		dense, sparse time.Duration
		want          bool
	}{{214 * ms / 100, 250 * ms / 100, false}, {100 * ms, 100 * ms, false}, {104 * ms, 100 * ms, false}, {105 * ms, 100 * ms, true}, {300 * ms, 100 * ms, true}} {
		if got := sparseFaster(c.dense, c.sparse); got != c.want {
			t.Errorf("dense %v, sparse %v: sparse chosen %v, want %v", c.dense, c.sparse, got, c.want)
		}
	}
	k, err := findKernel("")
	if err != nil {
		t.Fatal(err)
	}
	// The timer reports sparse as fast as the weight's share of nonzeros,
	// plus a fixed cost: 512×512 at 50% zeros measures 0.5+0.47 of dense
	// (not enough), at 90% 0.1+0.47 (enough).
	var timed []int
	timer := func(w []float32, rows, cols, si, sj int) (time.Duration, time.Duration) {
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
		m := &Model{sparse: "auto", threads: threads, kern: k, calib: &calibCache{time: timer}}
		timed = nil
		rows, cols := 512, 512
		for _, c := range []struct {
			zeros int
			want  bool
		}{{rows * cols / 2, false}, {rows * cols * 9 / 10, true}, {rows*cols/2 + 1, false}, {rows * cols * 9 / 10, true}} {
			w := make([]float32, rows*cols)
			for i := c.zeros; i < len(w); i++ {
				w[i] = 1
			}
			if got := m.csrPays(w, rows, cols, cols, 1, c.zeros); got != c.want {
				t.Errorf("threads %d: %d of %d zeros: sparse %v, want %v", threads, c.zeros, len(w), got, c.want)
			}
		}
		// The third and fourth weights fall in buckets already decided.
		if len(timed) != 2 || len(m.calib.sure) != 2 {
			t.Errorf("threads %d: timed %d weights (%v), cached %d decisions; want 2 and 2", threads, len(timed), timed, len(m.calib.sure))
		}
		// Small weights: the table decides, the timer is not called.
		timed = nil
		th, inTable := smallSparse[k.Name()]
		for _, n := range []int{64 * 64, calibMinElems - 1} {
			for _, frac := range []float64{0.3, 0.5, 0.7, 0.96} {
				zeros := int(frac * float64(n))
				want := inTable && float64(zeros) >= th[min(threads, 2)-1]*float64(n)
				if got := m.csrPays(nil, 1, n, n, 1, zeros); got != want {
					t.Errorf("threads %d: small weight of %d values, %.0f%% zeros: sparse %v, want %v", threads, n, 100*frac, got, want)
				}
			}
		}
		if len(timed) != 0 {
			t.Errorf("threads %d: %d small weights timed", threads, len(timed))
		}
	}
	on := &Model{sparse: "on", threads: 2, kern: k, calib: &calibCache{time: timer}}
	timed = nil
	if !on.csrPays(nil, 1000, 1000, 1000, 1, 0) || len(timed) != 0 {
		t.Error(`Sparse "on" did not choose CSR without timing`)
	}
}

// BenchmarkSparseSmall measures the table smallSparse: for each assembly
// kernel and 1 and 2 threads, the lowest 5% sparsity step from which the
// CSR product of calibRows activation rows was at least calibMargin faster
// than the dense one (best of 40 alternating runs, Model.timeBoth) on every
// shape below calibMinElems values and at every higher step. It logs the
// table (go test -run '^$' -bench SparseSmall -benchtime 1x -v ./model);
// "dense" means no step qualified.
func BenchmarkSparseSmall(b *testing.B) {
	shapes := [][2]int{{32, 64}, {64, 64}, {172, 64}, {64, 172}, {512, 64}, {128, 128}, {256, 128}, {128, 256}, {255, 256}}
	rng := rand.New(rand.NewPCG(7, 8))
	for b.Loop() {
		for _, k := range kernels() {
			if !k.Assembly() {
				continue
			}
			var row [2]string
			for ti, threads := range []int{1, 2} {
				m := &Model{sparse: "auto", threads: threads, kern: k, calib: new(calibCache)}
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
						dense, sparse := m.timeBoth(w, rows, cols, cols, 1, 40)
						b.Logf("%s threads %d %dx%d %d%%: dense %v sparse %v (%.2f)", k.Name(), threads, rows, cols, 5*step, dense, sparse, float64(sparse)/float64(dense))
						if !sparseFaster(dense, sparse) {
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
