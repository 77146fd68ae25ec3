package model

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestSparseCalibration: the rule keeps a weight dense unless sparse
// measured at least 5% faster; weights below calibMinElems skip the
// measurement; "on" always goes sparse; a decision is made once per
// shape, sparsity step and thread count, and agrees with what timeBoth
// measures on a weight where the two differ by far.
func TestSparseCalibration(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		dense, sparse time.Duration
		want          bool
	}{{214 * ms / 100, 250 * ms / 100, false}, {100 * ms, 100 * ms, false}, {105 * ms, 100 * ms, true}, {300 * ms, 100 * ms, true}} {
		if got := sparseFaster(c.dense, c.sparse); got != c.want {
			t.Errorf("dense %v, sparse %v: sparse chosen %v, want %v", c.dense, c.sparse, got, c.want)
		}
	}
	m := &Model{sparse: "auto", threads: 2, calib: new(calibCache)}
	if !m.csrPays(nil, 100, 100, 100, 1, 9000) {
		t.Error("a small weight is not left to the threshold rule")
	}
	if len(m.calib.sure) != 0 {
		t.Error("a small weight was timed")
	}
	on := &Model{sparse: "on", threads: 2, calib: new(calibCache)}
	if !on.csrPays(nil, 1000, 1000, 1000, 1, 0) {
		t.Error(`Sparse "on" did not choose CSR`)
	}
	k, err := findKernel("")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Assembly() {
		t.Skip("no assembly kernel: auto never uses CSR")
	}
	// 99% zeros: sparse is far faster; 50% zeros on 512×512: whatever was
	// measured, the decision is the rule's and is cached.
	rng := rand.New(rand.NewPCG(1, 2))
	m = &Model{sparse: "auto", threads: 2, kern: k, calib: new(calibCache)}
	for _, frac := range []float64{0.99, 0.5} {
		rows, cols := 512, 512
		w := make([]float32, rows*cols)
		zeros := 0
		for i := range w {
			if rng.Float64() < frac {
				zeros++
			} else {
				w[i] = float32(rng.NormFloat64())
			}
		}
		got := m.csrPays(w, rows, cols, cols, 1, zeros)
		if frac == 0.99 && !got {
			t.Errorf("99%% zeros: kept dense")
		}
		if again := m.csrPays(w, rows, cols, cols, 1, zeros); again != got {
			t.Errorf("%.0f%% zeros: decision changed from %v to %v", 100*frac, got, again)
		}
	}
	if len(m.calib.sure) != 2 {
		t.Errorf("%d decisions cached, want 2", len(m.calib.sure))
	}
}
