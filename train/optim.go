package train

import (
	"math"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Optimizer names a parameter update rule.
type Optimizer string

const (
	// SGD is plain stochastic gradient descent, w ← w − η·g (no momentum).
	SGD Optimizer = "sgd"
	// AdamW is torch.optim.AdamW: decoupled weight decay, then Adam with
	// bias correction (see Optim).
	AdamW Optimizer = "adamw"
)

// Schedule names a learning-rate schedule.
type Schedule string

const (
	// Constant keeps the learning rate (after any warm-up).
	Constant Schedule = "constant"
	// Cosine decays it from LR to MinLR along half a cosine over the steps
	// after the warm-up.
	Cosine Schedule = "cosine"
)

// Optim configures the update of every step.
//
// AdamW follows torch.optim.AdamW's documentation exactly: at step t
// (1-based), for every element, w ← w − η·λ·w; m ← β1·m + (1−β1)·g;
// v ← β2·v + (1−β2)·g²; m̂ = m/(1−β1ᵗ); v̂ = v/(1−β2ᵗ);
// w ← w − η·m̂/(√v̂ + ε). Weight decay λ applies to every tensor, as
// torch.optim.AdamW(model.parameters()) does.
type Optim struct {
	Name              Optimizer // "" means AdamW
	LR                float64   // η, the peak learning rate
	Beta1, Beta2, Eps float64   // AdamW; 0 means 0.9, 0.999, 1e-8
	WeightDecay       float64   // AdamW's λ (default 0)
	ClipNorm          float64   // clip the global gradient norm to this (0: off), as torch.nn.utils.clip_grad_norm_
	Warmup            int       // steps of linear warm-up: step s < Warmup uses η·(s+1)/Warmup
	Schedule          Schedule  // "" means Constant
	MinLR             float64   // the end of the Cosine schedule
}

func (o *Optim) applyDefaults() {
	if o.Name == "" {
		o.Name = AdamW
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	if o.Schedule == "" {
		o.Schedule = Constant
	}
}

func (o *Optim) validate() error {
	switch o.Name {
	case SGD, AdamW:
	default:
		return invalidf("optimizer %q: want sgd or adamw", o.Name)
	}
	switch o.Schedule {
	case Constant, Cosine:
	default:
		return invalidf("schedule %q: want constant or cosine", o.Schedule)
	}
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case bad(o.LR) || o.LR <= 0:
		return invalidf("learning rate %g: want a positive number", o.LR)
	case bad(o.MinLR) || o.MinLR < 0 || o.MinLR > o.LR:
		return invalidf("minimum learning rate %g: want 0 … %g", o.MinLR, o.LR)
	case bad(o.Beta1) || o.Beta1 < 0 || o.Beta1 >= 1 || bad(o.Beta2) || o.Beta2 < 0 || o.Beta2 >= 1:
		return invalidf("betas %g, %g: want values in [0, 1)", o.Beta1, o.Beta2)
	case bad(o.Eps) || o.Eps <= 0:
		return invalidf("epsilon %g: want a positive number", o.Eps)
	case bad(o.WeightDecay) || o.WeightDecay < 0:
		return invalidf("weight decay %g: want 0 or more", o.WeightDecay)
	case bad(o.ClipNorm) || o.ClipNorm < 0:
		return invalidf("gradient clipping %g: want 0 (off) or more", o.ClipNorm)
	case o.Warmup < 0:
		return invalidf("warm-up %d: want 0 or more steps", o.Warmup)
	}
	return nil
}

// rate returns the learning rate of step s (0-based) of steps.
func (o *Optim) rate(s, steps int) float64 {
	if s < o.Warmup {
		return o.LR * float64(s+1) / float64(o.Warmup)
	}
	if o.Schedule == Constant || steps <= o.Warmup {
		return o.LR
	}
	prog := float64(s-o.Warmup) / float64(steps-o.Warmup)
	return o.MinLR + (o.LR-o.MinLR)*0.5*(1+math.Cos(math.Pi*prog))
}

// gradNorm returns the global L2 norm of the gradients, summed in float64
// in parameter order.
func gradNorm(params []*Param) float64 {
	var s float64
	for _, p := range params {
		for _, g := range p.G {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// update applies one optimizer step t (1-based) with learning rate lr to
// every parameter, then the L1 proximal step on targets (soft-thresholding
// by lr·l1) and the masks. It computes in float32, as torch.optim does.
func (o *Optim) update(params []*Param, t int, lr, l1 float64, threads int) {
	b1t := 1 - math.Pow(o.Beta1, float64(t))
	b2t := 1 - math.Pow(o.Beta2, float64(t))
	step := float32(lr / b1t)              // AdamW: η/(1−β1ᵗ)
	rb2 := float32(1 / math.Sqrt(b2t))     // 1/√(1−β2ᵗ)
	decay := float32(1 - lr*o.WeightDecay) // decoupled weight decay
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	eps, sgd := float32(o.Eps), float32(lr)
	for _, p := range params {
		if o.Name == AdamW && p.m == nil {
			p.m, p.v = make([]float32, len(p.W)), make([]float32, len(p.W))
		}
		thr := float32(0)
		if p.Target && l1 > 0 {
			thr = float32(lr * l1)
		}
		blas.ParallelRows(threads, (len(p.W)+updateChunk-1)/updateChunk, 1, func(lo, hi int) {
			w, g := p.W[lo*updateChunk:min(hi*updateChunk, len(p.W))], p.G[lo*updateChunk:]
			if o.Name == SGD {
				for i := range w {
					w[i] -= sgd * g[i]
				}
			} else {
				m, v := p.m[lo*updateChunk:], p.v[lo*updateChunk:]
				g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
				for i, gi := range g {
					mi := b1*m[i] + (1-b1)*gi
					vi := b2*v[i] + (1-b2)*gi*gi
					m[i], v[i] = mi, vi
					w[i] = w[i]*decay - step*mi/(float32(math.Sqrt(float64(vi)))*rb2+eps)
				}
			}
			if thr > 0 {
				for i, x := range w {
					switch {
					case x > thr:
						w[i] = x - thr
					case x < -thr:
						w[i] = x + thr
					default:
						w[i] = 0
					}
				}
			}
		})
		p.applyMask()
	}
}

// updateChunk is the number of elements a goroutine updates at a time.
const updateChunk = 1 << 14

// maskGrad zeroes the gradient of masked elements.
func (p *Param) maskGrad() {
	if p.mask == nil {
		return
	}
	for i := range p.G {
		if p.mask[i>>6]&(1<<(i&63)) == 0 {
			p.G[i] = 0
		}
	}
}

// applyMask zeroes the weights outside the mask.
func (p *Param) applyMask() {
	if p.mask == nil {
		return
	}
	for i := range p.W {
		if p.mask[i>>6]&(1<<(i&63)) == 0 {
			p.W[i] = 0
		}
	}
}

// setMask keeps the currently non-zero elements of W as the mask.
func (p *Param) setMask() {
	p.mask = make([]uint64, (len(p.W)+63)/64)
	for i, v := range p.W {
		if v != 0 {
			p.mask[i>>6] |= 1 << (i & 63)
		}
	}
}

// Masked reports whether the tensor keeps a mask.
func (p *Param) Masked() bool { return p.mask != nil }
