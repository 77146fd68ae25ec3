package run

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// pruned returns a random [rows, cols] weight with a fraction frac of its
// values set to exact zeros.
func pruned(r *rand.Rand, frac float64, rows, cols int) *Tensor {
	w := randF32(r, 1, rows, cols)
	for i := range w.F32 {
		if r.Float64() < frac {
			w.F32[i] = 0
		}
	}
	return w
}

// sparseGraph: Relu(x·W1) → ·W2 + bias (a MatMul+Add) → ·W3, and
// Gemm(a, W4, transB) with alpha and a bias; W1, W2 and W4 with 90% zeros,
// W3 with 30%.
func sparseGraph(r *rand.Rand, k int) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	a := b.input("a", tensor.F32)
	y1 := b.op("Relu", []string{b.op("MatMul", []string{x, b.init(pruned(r, 0.9, k, 48))})})
	y2 := b.op("Add", []string{b.op("MatMul", []string{y1, b.init(pruned(r, 0.9, 48, k))}), b.init(randF32(r, 1, k))})
	y3 := b.op("MatMul", []string{y2, b.init(pruned(r, 0.3, k, 20))})
	y4 := b.op("Gemm", []string{a, b.init(pruned(r, 0.9, 24, k)), b.init(randF32(r, 1, 24))},
		aInt("transB", 1), aFloat("alpha", 0.5))
	b.output(y2, y3, y4)
	return b.model(17)
}

// oneCopy checks that every prepared weight is held once: packed or
// sparse, its initializer dropped.
func oneCopy(t *testing.T, s *Session) {
	t.Helper()
	var walk func(ns []*node)
	walk = func(ns []*node) {
		for _, n := range ns {
			if n.fused != nil {
				walk(n.fused.sub)
				continue
			}
			if n.bp != nil && n.sb != nil {
				t.Errorf("%s: weight both packed and sparse", n.label)
			}
			if n.constB() && s.consts[n.in[1]] != nil {
				t.Errorf("%s: initializer kept beside the prepared weight", n.label)
			}
		}
	}
	walk(s.nodes)
}

func TestSparseWeights(t *testing.T) {
	asm := blas.SparseAsm() && kernel.Assembly()
	t.Logf("kernel %s, assembly sparse kernel %v", kernel.Name(), asm)
	// K past the GEMM's block depth too: a plain product by a sparse
	// weight is the dense product's to the bit whatever K; a sparse
	// MatMul+Add adds the bias after the product, as the unfused Add does.
	for _, k := range []int{40, 400} {
		r := rng(t, 31, uint64(k))
		mp := sparseGraph(r, k)
		feeds := map[string]*Tensor{"x": randF32(r, 1, 2, 70, k), "a": randF32(r, 1, 9, k)}
		sess := map[string]*Session{}
		for _, mode := range []string{"on", "off", "auto"} {
			s, err := loadProto(t, mp, Options{Threads: 2, Sparse: mode})
			if err != nil {
				t.Fatal(err)
			}
			oneCopy(t, s)
			sess[mode] = s
		}
		check := func(mode string, sparse, dense int) {
			t.Helper()
			if p := sess[mode].Plan(); p.SparseWeights != sparse || p.DenseWeights != dense {
				t.Errorf("k %d, %s: %d sparse and %d dense weights, want %d and %d", k, mode, p.SparseWeights, p.DenseWeights, sparse, dense)
			}
		}
		check("on", 4, 0)
		check("off", 0, 4)
		if asm {
			check("auto", 3, 1) // W3 (30% zeros) stays dense
		} else {
			check("auto", 0, 4) // no assembly sparse kernel: dense
		}
		if sess["on"].Plan().Count(FuseMatMulAdd) != 1 {
			t.Errorf("k %d: the sparse MatMul+Add is not fused", k)
		}
		if !asm {
			// The scalar kernels agree to rounding only.
			ro, err := sess["on"].Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := sess["off"].Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range rf {
				if err := sameTensor(ro[name], want, 1e-5); err != nil {
					t.Errorf("k %d, output %s: %v", k, name, err)
				}
			}
			continue
		}
		unfused, err := loadProto(t, mp, Options{Threads: 2, Sparse: "off", NoFusion: true})
		if err != nil {
			t.Fatal(err)
		}
		if k <= kernel.KBlock(k) {
			// One block: the dense MatMul+Add adds the bias as the sparse one.
			sameBits(t, sess["on"], sess["off"], feeds)
			sameBits(t, sess["auto"], sess["off"], feeds)
		}
		sameBits(t, sess["on"], unfused, feeds)
		unfusedOn, err := loadProto(t, mp, Options{Threads: 1, Sparse: "on", NoFusion: true})
		if err != nil {
			t.Fatal(err)
		}
		sameBits(t, unfusedOn, unfused, feeds)
	}
}

func TestSparseOption(t *testing.T) {
	r := rng(t, 33, 34)
	if _, err := loadProto(t, sparseGraph(r, 8), Options{Sparse: "yes"}); !errors.Is(err, ErrInput) {
		t.Errorf("Sparse \"yes\": %v, want ErrInput", err)
	}
}

// TestSparseCalibration checks the auto rule on weights large enough to
// be timed, with injected timings: sparse only when it measured at least
// 5% faster, once per shape and sparsity bucket.
func TestSparseCalibration(t *testing.T) {
	if !blas.SparseAsm() || !kernel.Assembly() {
		t.Skip("no assembly sparse kernel: auto keeps every weight dense")
	}
	r := rng(t, 35, 36)
	w := pruned(r, 0.9, 300, 300)
	calls := 0
	var dense, sparse time.Duration
	timer := func([]float32, int, int, int, int) (time.Duration, time.Duration) {
		calls++
		return dense, sparse
	}
	p, err := newSparsePolicy("auto", 2)
	if err != nil {
		t.Fatal(err)
	}
	p.choice.Time = timer
	dense, sparse = 104, 100
	if p.keepSparse(w.F32, 300, 300, 300, 1) {
		t.Error("sparse 4% faster: kept sparse")
	}
	dense, sparse = 200, 100
	if p.keepSparse(w.F32, 300, 300, 1, 300) {
		t.Error("same shape and bucket: the first decision should stand")
	}
	if calls != 1 {
		t.Errorf("%d timings, want 1", calls)
	}
	p, _ = newSparsePolicy("auto", 2) // a new Load: nothing decided yet
	p.choice.Time = timer
	dense, sparse = 105, 100
	if !p.keepSparse(w.F32, 300, 300, 300, 1) {
		t.Error("sparse 5% faster: kept dense")
	}
	// Below the threshold: never timed.
	calls = 0
	if p.keepSparse(pruned(r, 0.3, 300, 300).F32, 300, 300, 300, 1) || calls != 0 {
		t.Errorf("30%% zeros: sparse or timed (%d timings)", calls)
	}
}

// TestSparseQKV: products of one input by sparse and dense weights (a
// sparse MatMul, a sparse MatMul+Add, a dense MatMul) form one QKV group
// whatever is sparse, and give the unfused graph's bits.
func TestSparseQKV(t *testing.T) {
	asm := blas.SparseAsm() && kernel.Assembly()
	for _, k := range []int{24, 400} {
		r := rng(t, 37, uint64(k))
		b := newGraph()
		x := b.input("x", tensor.F32)
		y1 := b.op("MatMul", []string{x, b.init(pruned(r, 0.9, k, 70))})
		y2 := b.op("Add", []string{b.op("MatMul", []string{x, b.init(pruned(r, 0.9, k, 33))}), b.init(randF32(r, 1, 33))})
		y3 := b.op("MatMul", []string{x, b.init(randF32(r, 1, k, 16))})
		b.output(y1, y2, y3)
		mp := b.model(17)
		feeds := map[string]*Tensor{"x": randF32(r, 1, 3, 50, k)}
		unfused, err := loadProto(t, mp, Options{Threads: 2, Sparse: "off", NoFusion: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"on", "auto", "off"} {
			s, err := loadProto(t, mp, Options{Threads: 2, Sparse: mode})
			if err != nil {
				t.Fatal(err)
			}
			p := s.Plan()
			t.Logf("k %d, %s: %d sparse, %d dense, %d QKV", k, mode, p.SparseWeights, p.DenseWeights, p.Count(FuseQKV))
			if p.Count(FuseQKV) != 1 || p.Nodes != 1 {
				t.Errorf("k %d, %s: plan %+v, want one QKV group and nothing else", k, mode, p)
			}
			oneCopy(t, s)
			if !asm {
				continue
			}
			if mode != "off" || k <= kernel.KBlock(k) {
				sameBits(t, s, unfused, feeds)
			}
		}
	}
}
