package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Options configure a training run over fixed windows.
type Options struct {
	Steps int // optimizer steps, ≥ 1
	Batch int // windows per batch, ≥ 1
	// Accum batches are run per optimizer step, their gradients summed
	// and divided by Accum (0 means 1): the step's loss is their mean.
	Accum int
	Optim Optim
	// Distill is α: the loss is (1−α)·CE + α·KL(teacher ‖ student) on
	// the logits at temperature 1. α > 0 needs Teacher.
	Distill float64
	Teacher model.LM
	// L1 is λ of the penalty λ·Σ|w| on target weights, applied as a
	// proximal step after each update: w ← sign(w)·max(|w| − η·λ, 0).
	L1 float64
	// KeepMask keeps the zeros of every target weight at the start
	// exactly zero (gradients and updates masked); a target that has a
	// mask already (Net.PruneTargets) keeps that one.
	KeepMask bool
	// Shuffle visits the windows in an order permuted once by Seed
	// instead of in order.
	Shuffle bool
	Seed    uint64
	// Frozen names tensors that are not updated (their gradients are
	// still computed).
	Frozen []string
	// FirstBatch is the batch index of the first step (a run that
	// continues another starts where it stopped).
	FirstBatch int
	// Threads of the passes (below 1: all CPUs); Kernel names the blas
	// kernel ("" the fastest). Results do not depend on Threads.
	Threads int
	Kernel  string
	// Progress receives the stage "train" (one unit per step; Detail
	// holds the loss and tokens/s).
	Progress progress.Func
	// OnStep, when set, is called after every step.
	OnStep func(Step)
}

// Step is the record of one optimizer step.
type Step struct {
	Step int `json:"step"` // 0-based
	// Loss is the batch loss computed before the step's update.
	Loss
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"` // before clipping
	// Tokens processed so far (B·T per batch) and their rate.
	Tokens    int64   `json:"tokens"`
	TokensSec float64 `json:"tokens_per_s"`
}

// Result summarizes a run.
type Result struct {
	Steps     []Step  `json:"steps"`
	Tokens    int64   `json:"tokens"`
	Seconds   float64 `json:"seconds"`
	TokensSec float64 `json:"tokens_per_s"`
	// PeakActivationBytes is the memory the passes keep (activations and
	// scratch), excluding the parameters and optimizer state.
	PeakActivationBytes int64 `json:"activation_bytes"`
}

// Windows cuts ids into the windows ids[k·T : (k+1)·T] for k = 0 …
// ⌊len(ids)/T⌋−1 (a shorter tail is dropped).
func Windows(ids []int, T int) [][]int {
	if T <= 0 {
		return nil
	}
	var w [][]int
	for k := 0; (k+1)*T <= len(ids); k++ {
		w = append(w, ids[k*T:(k+1)*T:(k+1)*T])
	}
	return w
}

func (o *Options) validate(n *Net, wins [][]int) error {
	if o.Accum == 0 {
		o.Accum = 1
	}
	o.Optim.applyDefaults()
	switch {
	case o.Steps < 1:
		return invalidf("steps %d: want at least 1", o.Steps)
	case o.Batch < 1:
		return invalidf("batch %d: want at least 1 window", o.Batch)
	case slices.ContainsFunc(o.Frozen, func(s string) bool { return n.byName[s] == nil }):
		return invalidf("frozen tensors %v: not all are parameters of the model", o.Frozen)
	case o.FirstBatch < 0:
		return invalidf("first batch %d: want 0 or more", o.FirstBatch)
	case o.Accum < 1:
		return invalidf("gradient accumulation %d: want at least 1", o.Accum)
	case math.IsNaN(o.Distill) || o.Distill < 0 || o.Distill > 1:
		return invalidf("distillation weight %g: want 0 … 1", o.Distill)
	case o.Distill > 0 && o.Teacher == nil:
		return invalidf("distillation needs a teacher model")
	case math.IsNaN(o.L1) || math.IsInf(o.L1, 0) || o.L1 < 0:
		return invalidf("L1 penalty %g: want 0 or more", o.L1)
	case len(wins) == 0:
		return invalidf("no training windows: the text is shorter than one window")
	}
	if err := o.Optim.validate(); err != nil {
		return err
	}
	T := len(wins[0])
	if T < 2 {
		return invalidf("context %d: want at least 2 tokens", T)
	}
	if T > n.cfg.MaxPositions {
		return invalidf("context %d is longer than the model's %d positions", T, n.cfg.MaxPositions)
	}
	for i, w := range wins {
		if len(w) != T {
			return invalidf("window %d has %d tokens, want %d", i, len(w), T)
		}
		for _, id := range w {
			if id < 0 || id >= n.cfg.VocabSize {
				return invalidf("window %d: token id %d is outside the vocabulary (%d)", i, id, n.cfg.VocabSize)
			}
		}
	}
	if o.Teacher != nil && o.Teacher.VocabSize() != n.cfg.VocabSize {
		return invalidf("the teacher's vocabulary (%d) differs from the model's (%d)", o.Teacher.VocabSize(), n.cfg.VocabSize)
	}
	return nil
}

// Batch returns the windows of batch b: (b·B + j) mod W for j = 0 … B−1,
// through order when it is not nil.
func Batch(wins [][]int, b, B int, order []int) [][]int {
	out := make([][]int, B)
	W := len(wins)
	for j := range B {
		k := (b*B + j) % W
		if order != nil {
			k = order[k]
		}
		out[j] = wins[k]
	}
	return out
}

// Train runs opts.Steps optimizer steps on the windows (all of one
// length T) and updates n in place. Step s runs batches s·Accum …
// s·Accum+Accum−1 (see [Batch]).
func Train(ctx context.Context, n *Net, wins [][]int, opts Options) (*Result, error) {
	if err := opts.validate(n, wins); err != nil {
		return nil, err
	}
	kr, err := kernel(opts.Kernel)
	if err != nil {
		return nil, err
	}
	threads := blas.Threads(opts.Threads)
	T, B := len(wins[0]), opts.Batch
	var order []int
	if opts.Shuffle {
		order = rand.New(rand.NewPCG(opts.Seed, 0x6c6d7370)).Perm(len(wins))
	}
	for _, p := range n.params {
		switch {
		case !opts.KeepMask || !p.Target:
			p.mask = nil
		case p.mask == nil:
			p.setMask()
		}
	}
	trainable := n.params
	if len(opts.Frozen) > 0 {
		trainable = nil
		for _, q := range n.params {
			if !slices.Contains(opts.Frozen, q.Name) {
				trainable = append(trainable, q)
			}
		}
	}
	p := &mm{kr: kr, threads: threads}
	w := n.newWork(B, T, threads)
	res := &Result{PeakActivationBytes: n.workBytes(B, T, threads)}
	st := opts.Progress.Start("train", int64(opts.Steps), "steps")
	start := time.Now()
	for s := range opts.Steps {
		n.ZeroGrad()
		var loss Loss
		for a := range opts.Accum {
			ids := Batch(wins, opts.FirstBatch+s*opts.Accum+a, B, order)
			l, err := n.lossGrad(ctx, p, w, ids, opts.Teacher, opts.Distill, true)
			if err != nil {
				return nil, err
			}
			loss.Total += l.Total / float64(opts.Accum)
			loss.CE += l.CE / float64(opts.Accum)
			loss.KL += l.KL / float64(opts.Accum)
			res.Tokens += int64(B * T)
		}
		if math.IsNaN(loss.Total) || math.IsInf(loss.Total, 0) {
			return nil, fmt.Errorf("step %d: the loss is %g: lower the learning rate", s, loss.Total)
		}
		if opts.Accum > 1 {
			inv := float32(1 / float64(opts.Accum))
			for _, q := range n.params {
				for i := range q.G {
					q.G[i] *= inv
				}
			}
		}
		for _, q := range n.params {
			q.maskGrad()
		}
		norm := gradNorm(n.params)
		if c := opts.Optim.ClipNorm; c > 0 && norm > c {
			coef := float32(c / (norm + 1e-6))
			for _, q := range n.params {
				for i := range q.G {
					q.G[i] *= coef
				}
			}
		}
		lr := opts.Optim.rate(s, opts.Steps)
		opts.Optim.update(trainable, s+1, lr, opts.L1, threads)
		el := time.Since(start).Seconds()
		rec := Step{Step: s, Loss: loss, LR: lr, GradNorm: norm, Tokens: res.Tokens, TokensSec: float64(res.Tokens) / el}
		res.Steps = append(res.Steps, rec)
		if opts.OnStep != nil {
			opts.OnStep(rec)
		}
		st.Set(int64(s+1), fmt.Sprintf("loss %.4f, %.0f tokens/s", loss.Total, rec.TokensSec))
	}
	st.Finish("")
	res.Seconds = time.Since(start).Seconds()
	res.TokensSec = float64(res.Tokens) / res.Seconds
	return res, nil
}

// lossGrad runs the forward pass over one batch, its loss and, with grad,
// the backward pass, adding every gradient into G.
func (n *Net) lossGrad(ctx context.Context, p *mm, w *work, ids [][]int, teacher model.LM, alpha float64, grad bool) (Loss, error) {
	if err := ctx.Err(); err != nil {
		return Loss{}, err
	}
	n.forward(p, w, ids)
	l, err := n.headLoss(ctx, p, w, ids, teacher, alpha, grad)
	if err != nil || !grad {
		return l, err
	}
	n.backward(p, w, ids)
	return l, ctx.Err()
}

// LossGrad computes the loss of one batch of windows (each T tokens) and
// adds its gradient into every parameter's G (call ZeroGrad first). It is
// the step Train repeats, for tests and tools.
func (n *Net) LossGrad(ctx context.Context, ids [][]int, teacher model.LM, alpha float64, threads int) (Loss, error) {
	if len(ids) == 0 || len(ids[0]) < 2 {
		return Loss{}, invalidf("LossGrad needs windows of at least 2 tokens")
	}
	kr, err := kernel("")
	if err != nil {
		return Loss{}, err
	}
	threads = blas.Threads(threads)
	p := &mm{kr: kr, threads: threads}
	return n.lossGrad(ctx, p, n.newWork(len(ids), len(ids[0]), threads), ids, teacher, alpha, true)
}

func kernel(name string) (*blas.Kernel, error) {
	if name == "" || name == "auto" {
		return blas.Best(), nil
	}
	k, err := blas.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return k, nil
}
