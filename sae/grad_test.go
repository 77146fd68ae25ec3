package sae

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// ref64 is an independent float64 implementation of the training loss of
// forwardBackward, written from its definition, for finite differences.
type ref64 struct {
	n, d, m, k, auxK int
	l1, alpha        float64
	x                []float64 // [n, d]
	dead             []bool
	e                [][]float64 // the residuals, held constant
}

type params64 struct{ wEnc, bEnc, wDec, bPre []float64 }

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// top returns the k best candidates by value (ties to the lower index).
func top(pre []float64, cand []int, k int) []int {
	c := slices.Clone(cand)
	sort.SliceStable(c, func(a, b int) bool { return pre[c[a]] > pre[c[b]] })
	return c[:min(k, len(c))]
}

// pre returns W_enc·(x_i − b_pre) + b_enc.
func (r *ref64) pre(p *params64, i int) []float64 {
	out := make([]float64, r.m)
	for j := range out {
		s := p.bEnc[j]
		for c := 0; c < r.d; c++ {
			s += p.wEnc[j*r.d+c] * (r.x[i*r.d+c] - p.bPre[c])
		}
		out[j] = s
	}
	return out
}

// margin returns the smallest distance of a pre-activation to a kink of
// the loss (0, or a tie at the edge of a TopK selection), so the test can
// make sure its finite differences do not cross one.
func (r *ref64) margin(p *params64) float64 {
	mg := math.Inf(1)
	all := make([]int, r.m)
	for j := range all {
		all[j] = j
	}
	var deads []int
	for j, d := range r.dead {
		if d {
			deads = append(deads, j)
		}
	}
	for i := 0; i < r.n; i++ {
		pre := r.pre(p, i)
		for _, v := range pre {
			mg = min(mg, math.Abs(v))
		}
		edge := func(cand []int, k int) {
			if k <= 0 || k >= len(cand) {
				return
			}
			s := slices.Clone(cand)
			sort.Slice(s, func(a, b int) bool { return pre[s[a]] > pre[s[b]] })
			mg = min(mg, pre[s[k-1]]-pre[s[k]])
		}
		if r.l1 == 0 {
			edge(all, r.k)
		}
		if r.auxK > 0 {
			edge(deads, r.auxK)
		}
	}
	return mg
}

// loss evaluates L; with setE it first records the residuals e_i.
func (r *ref64) loss(p *params64, setE bool) float64 {
	all := make([]int, r.m)
	for j := range all {
		all[j] = j
	}
	var deads []int
	for j, d := range r.dead {
		if d {
			deads = append(deads, j)
		}
	}
	if setE {
		r.e = make([][]float64, r.n)
	}
	var mse, l1, aux float64
	for i := 0; i < r.n; i++ {
		pre := r.pre(p, i)
		sel := all
		if r.l1 == 0 {
			sel = top(pre, all, r.k)
		}
		xhat := slices.Clone(p.bPre)
		for _, j := range sel {
			if z := pre[j]; z > 0 {
				l1 += z
				for c := range xhat {
					xhat[c] += z * p.wDec[j*r.d+c]
				}
			}
		}
		e := make([]float64, r.d)
		for c := range e {
			e[c] = r.x[i*r.d+c] - xhat[c]
			mse += e[c] * e[c]
		}
		if setE {
			r.e[i] = e
		}
		if r.auxK > 0 && len(deads) > 0 {
			ehat := make([]float64, r.d)
			for _, j := range top(pre, deads, r.auxK) {
				if a := pre[j]; a > 0 {
					for c := range ehat {
						ehat[c] += a * p.wDec[j*r.d+c]
					}
				}
			}
			for c := range ehat {
				df := r.e[i][c] - ehat[c]
				aux += df * df
			}
		}
	}
	n := float64(r.n)
	return mse/n + r.l1*l1/n + r.alpha*aux/n
}

// checkGradient compares forwardBackward's gradient with central finite
// differences of ref64 for every parameter.
func checkGradient(t *testing.T, opt Options, n, d int, deadEvery int) {
	t.Helper()
	for seed := opt.Seed; seed < opt.Seed+50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		x := make([]float32, n*d)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		o := opt
		o.Seed = seed
		tr := newTrainer(x, n, d, o)
		// Move off the initial point so that every parameter matters.
		for _, p := range tr.p.slices() {
			for i := range p {
				p[i] += float32(0.3 * rng.NormFloat64())
			}
		}
		dead := make([]bool, tr.m)
		if deadEvery > 0 {
			for j := range dead {
				dead[j] = j%deadEvery == 0
			}
		}
		ref := &ref64{n: n, d: d, m: tr.m, k: opt.K, auxK: tr.auxK, l1: float64(tr.l1), alpha: float64(tr.auxCoef),
			x: to64(tr.x), dead: dead}
		if deadEvery == 0 {
			ref.auxK = 0
		}
		p := &params64{to64(tr.p.wEnc), to64(tr.p.bEnc), to64(tr.p.wDec), to64(tr.p.bPre)}
		const h = 1e-6
		if mg := ref.margin(p); mg < 1e-3 {
			continue // a kink too close for finite differences: next seed
		}
		t.Logf("seed %d (options %+v, %d×%d, every %dth latent dead)", seed, opt, n, d, deadEvery)
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		tr.b.load(tr.x, all, d)
		got := tr.forwardBackward(tr.b, dead)
		want := ref.loss(p, true)
		if total := got.mse + got.l1 + got.aux; math.Abs(total-want) > 1e-5*(1+want) {
			t.Fatalf("loss %g (mse %g, l1 %g, aux %g), reference %g", total, got.mse, got.l1, got.aux, want)
		}
		if deadEvery > 0 && got.aux == 0 {
			t.Fatalf("the auxiliary loss is 0: the test does not exercise it")
		}
		names := []string{"W_enc", "b_enc", "W_dec", "b_pre"}
		p64 := [][]float64{p.wEnc, p.bEnc, p.wDec, p.bPre}
		grads := tr.g.slices()
		var worst float64
		for a, arr := range p64 {
			var gmax float64
			for _, g := range grads[a] {
				gmax = max(gmax, math.Abs(float64(g)))
			}
			for i := range arr {
				old := arr[i]
				arr[i] = old + h
				lp := ref.loss(p, false)
				arr[i] = old - h
				lm := ref.loss(p, false)
				arr[i] = old
				fd := (lp - lm) / (2 * h)
				g := float64(grads[a][i])
				diff := math.Abs(g - fd)
				worst = max(worst, diff/(1e-3+gmax))
				if diff > 1e-4*(math.Abs(fd)+gmax)+1e-6 {
					t.Fatalf("dL/d%s[%d] = %g, finite difference %g", names[a], i, g, fd)
				}
			}
		}
		t.Logf("worst |analytic − finite difference| relative to the largest gradient: %.2g", worst)
		return
	}
	t.Fatal("no seed gave a point far enough from the kinks")
}

func TestGradientTopK(t *testing.T) {
	checkGradient(t, Options{Latents: 9, K: 3, Epochs: 1, Batch: 7, LR: 1e-3, Seed: 1, Threads: 2}, 7, 5, 0)
}

func TestGradientTopKAux(t *testing.T) {
	checkGradient(t, Options{Latents: 12, K: 3, AuxK: 2, Epochs: 1, Batch: 6, LR: 1e-3, Seed: 100, Threads: 3}, 6, 5, 3)
}

func TestGradientL1(t *testing.T) {
	checkGradient(t, Options{Latents: 8, L1: 0.05, Epochs: 1, Batch: 6, LR: 1e-3, Seed: 200, Threads: 1}, 6, 4, 0)
}

// TestUpdateDecoderTangent checks that a step keeps the decoder rows at
// unit norm and removes the gradient component along each row first.
func TestUpdateDecoderTangent(t *testing.T) {
	seed := uint64(3)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	n, d := 20, 6
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	tr := newTrainer(x, n, d, Options{Latents: 10, K: 2, Epochs: 1, Batch: n, LR: 1e-2, Seed: seed, Threads: 2})
	for i := range tr.g.wDec {
		tr.g.wDec[i] = float32(rng.NormFloat64())
	}
	w0 := slices.Clone(tr.p.wDec)
	g := slices.Clone(tr.g.wDec)
	tr.update()
	for j := 0; j < tr.m; j++ {
		var nn, along float64
		for c := 0; c < d; c++ {
			nn += float64(tr.p.wDec[j*d+c]) * float64(tr.p.wDec[j*d+c])
			along += float64(tr.g.wDec[j*d+c]) * float64(w0[j*d+c])
		}
		if math.Abs(nn-1) > 1e-5 {
			t.Fatalf("row %d has squared norm %g after the step", j, nn)
		}
		if math.Abs(along) > 1e-5*math.Sqrt(float64(dot(g[j*d:(j+1)*d], g[j*d:(j+1)*d]))) {
			t.Fatalf("row %d: projected gradient has component %g along the row", j, along)
		}
	}
}
