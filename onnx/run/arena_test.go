package run

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

// TestInPlaceAndViews runs a graph where values have several readers,
// views (Reshape) share buffers and element-wise operators may write over
// dying operands, against the same arithmetic done directly: buffer reuse
// must never overwrite a value still to be read.
func TestInPlaceAndViews(t *testing.T) {
	b := newGraph()
	x := b.input("x", tensor.F32)
	a := b.op("Exp", []string{x})                               // read by four nodes
	n := b.op("Neg", []string{a})                               // may not write over a
	s := b.op("Add", []string{a, n})                            // zeros; n dies here
	r := b.op("Reshape", []string{a, b.init(i64(sh(2), 4, 3))}) // a view of a
	m := b.op("Mul", []string{s, b.scalar(3)})                  // s dies: in place
	q := b.op("Sub", []string{b.scalar(1), a})                  // 1 - a; a dies
	t2 := b.op("Tanh", []string{r})                             // r dies
	u := b.op("Add", []string{m, q})
	b.output(u, t2)
	sess, err := loadProto(t, b.model(17), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	t.Log("rng: PCG(5, 6)")
	for run := range 3 {
		xv := make([]float32, 12)
		for i := range xv {
			xv[i] = float32(rng.NormFloat64())
		}
		res, err := sess.Run(map[string]*Tensor{"x": f32(sh(3, 4), xv...)})
		if err != nil {
			t.Fatal(err)
		}
		wu, wt := make([]float32, 12), make([]float32, 12)
		for i, v := range xv {
			e := float32(math.Exp(float64(v)))
			wu[i] = (e+(-e))*3 + (1 - e)
			wt[i] = float32(math.Tanh(float64(e)))
		}
		if err := sameTensor(res[u], f32(sh(3, 4), wu...), 1e-6); err != nil {
			t.Errorf("run %d: %s: %v", run, u, err)
		}
		if err := sameTensor(res[t2], f32(sh(4, 3), wt...), 1e-6); err != nil {
			t.Errorf("run %d: %s: %v", run, t2, err)
		}
	}
	// Mul over s and Add over m or q at least (Neg, Sub and Tanh read values
	// another reader still holds).
	if ip := sess.states[0].ar.inplace; ip < 2*3 {
		t.Errorf("%d outputs written in place over 3 runs, want at least 6", ip)
	}
}

// TestArenaSteadyState: after the first window, runs with the same shapes
// make no new buffers, and the free lists hold what one run needs.
func TestArenaSteadyState(t *testing.T) {
	s := loadStories(t)
	ids := referenceIDs(t)[:64]
	out := make([]float32, len(ids)*s.VocabSize())
	made := make([]int, 3)
	for i := range made {
		if err := s.Logits(ids, out); err != nil {
			t.Fatal(err)
		}
		if len(s.states) != 1 {
			t.Fatalf("%d run states after one sequential run", len(s.states))
		}
		made[i] = s.states[0].ar.made
	}
	ar := &s.states[0].ar
	t.Logf("buffers made per run: %v; reused %d; %d bytes pooled", made, ar.reused, ar.pooledBytes())
	if made[0] == 0 || made[1] != made[0] || made[2] != made[0] {
		t.Errorf("buffers made after runs 1, 2, 3: %v; want the first run's count and no more", made)
	}
	// A shorter window reuses the buffers it fits; what it leaves unused
	// is dropped at its end.
	if err := s.Logits(ids[:40], out); err != nil {
		t.Fatal(err)
	}
	if err := s.Logits(ids, out); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(3, func() {
		if err := s.Logits(ids, out); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("steady state: %.0f allocations per window (small headers; no tensor arrays)", allocs)
}
