package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// Mask chooses whether the zeros of the input's target weights are kept.
type Mask string

const (
	// MaskAuto keeps them when the input is pruned (some target has at
	// least 1% exact zeros) and no L1 penalty is asked for.
	MaskAuto Mask = ""
	MaskKeep Mask = "keep"
	MaskFree Mask = "free"
)

// Defaults of a fine-tuning job.
const (
	DefaultCtx     = 128
	DefaultSamples = 256
)

// JobOptions configure fine-tuning a checkpoint ("lmsparse finetune", a
// compress recipe's recover stage).
type JobOptions struct {
	// Train is the training run. Its Teacher is set by the job (from Base)
	// and KeepMask from Mask.
	Train Options
	// Ctx is the window length T (0: DefaultCtx, at most the model's
	// positions).
	Ctx int
	// Text is the training text file. Empty: Samples sequences of Ctx
	// tokens are sampled from the teacher (the dense original: Base, or
	// the input itself) with Seed, as calibration's "self" source does.
	Text    string
	Samples int // 0: DefaultSamples
	// Windows, when set, are the training windows themselves (each Ctx
	// tokens); Text and Samples are then not used.
	Windows [][]int
	// Base is the dense original the pruned input is distilled from; ""
	// means the input itself (L1 training from a dense model).
	Base string
	Mask Mask
	// TargetSparsity, when above 0, prunes every target to exactly this
	// sparsity by magnitude after training (per tensor), then trains
	// RecoverSteps more steps on that mask.
	TargetSparsity float64
	RecoverSteps   int
	// EvalText, when set, is scored (windows of EvalCtx, 0: the eval
	// default) before and after training, with KL and top-1 agreement to
	// the dense original.
	EvalText string
	EvalCtx  int
	// Format and MaxShardSize are the output's (see sparsify.Options).
	Format       sparsify.Format
	MaxShardSize int64
	// Prepare, when set, is called with the writing job before it
	// executes (a compress recipe replaces its SAE tensor there; list such
	// a tensor in Train.Frozen so that its trained values are not
	// written).
	Prepare func(*sparsify.Job) error
	// Command and Flags are recorded in the manifest.
	Command string
	Flags   map[string]any
}

// Job is a planned fine-tuning run: options checked, model and data read.
type Job struct {
	opts     JobOptions
	path     string
	m        *checkpoint.Model
	net      *Net
	tok      *tokenizer.Tokenizer
	textIDs  []int // tokenized Text
	evalText *eval.Text
	pruned   bool // the input's targets hold zeros
}

// Plan opens the checkpoint at path and checks everything a run needs
// before any training: options, the training text (at least one window),
// the eval text. Nothing is written. Close the job when done.
func Plan(ctx context.Context, path string, opts JobOptions) (*Job, error) {
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	j, err := plan(m, path, opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	return j, nil
}

func plan(m *checkpoint.Model, path string, opts JobOptions) (*Job, error) {
	if m.Config == nil {
		return nil, invalidf("%s: training needs config.json", path)
	}
	o := &opts
	if o.Ctx == 0 {
		o.Ctx = min(DefaultCtx, m.Config.MaxPositions)
	}
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	tr := &o.Train
	if tr.Accum == 0 {
		tr.Accum = 1
	}
	tr.Optim.applyDefaults()
	switch {
	case o.Ctx < 2:
		return nil, invalidf("ctx %d: want at least 2 tokens", o.Ctx)
	case o.Ctx > m.Config.MaxPositions:
		return nil, invalidf("ctx %d is longer than the model's %d positions", o.Ctx, m.Config.MaxPositions)
	case o.Samples < 1:
		return nil, invalidf("samples %d: want at least 1", o.Samples)
	case math.IsNaN(o.TargetSparsity) || o.TargetSparsity < 0 || o.TargetSparsity >= 1:
		return nil, invalidf("target sparsity %g: want 0 ≤ S < 1", o.TargetSparsity)
	case o.RecoverSteps < 0:
		return nil, invalidf("recover steps %d: want 0 or more", o.RecoverSteps)
	case o.RecoverSteps > 0 && o.TargetSparsity == 0:
		return nil, invalidf("recover steps need a target sparsity")
	case o.Mask != MaskAuto && o.Mask != MaskKeep && o.Mask != MaskFree:
		return nil, invalidf("mask %q: want keep or free", o.Mask)
	}
	// Check the training options against a stand-in window.
	probe := *tr
	if probe.Distill > 0 && probe.Teacher == nil {
		probe.Teacher = fakeTeacher{m.Config.VocabSize}
	}
	stand := [][]int{make([]int, o.Ctx)}
	n, err := NewNet(m.Config, CheckpointSource(m))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := probe.validate(n, stand); err != nil {
		return nil, err
	}
	j := &Job{opts: opts, path: path, m: m, net: n}
	if j.tok, err = eval.LoadTokenizer(path, ""); err != nil && o.Windows == nil {
		return nil, err
	}
	if o.Windows == nil && o.Text != "" {
		text, err := eval.ReadText(o.Text)
		if err != nil {
			return nil, err
		}
		if j.textIDs, err = j.tok.EncodeLimited(string(text.Data), true, 0); err != nil {
			return nil, invalidf("%s: %v", o.Text, err)
		}
		if len(j.textIDs) < o.Ctx {
			return nil, invalidf("%s gives %d tokens, fewer than one window of %d", o.Text, len(j.textIDs), o.Ctx)
		}
	}
	if o.EvalText != "" {
		if j.evalText, err = eval.ReadText(o.EvalText); err != nil {
			return nil, err
		}
	}
	for _, p := range n.params {
		if p.Target && p.Zeros()*100 >= len(p.W) {
			j.pruned = true
		}
	}
	return j, nil
}

// fakeTeacher stands in for the teacher while options are checked.
type fakeTeacher struct{ vocab int }

func (f fakeTeacher) VocabSize() int    { return f.vocab }
func (f fakeTeacher) MaxPositions() int { return math.MaxInt32 }
func (f fakeTeacher) Window(context.Context, []int, int) (func(int, int, []float32), error) {
	return nil, errors.New("no teacher")
}

// Close releases the input checkpoint.
func (j *Job) Close() error { return j.m.Close() }

// InputDir returns the input checkpoint's directory.
func (j *Job) InputDir() string { return j.m.Dir }

// Net returns the model being trained.
func (j *Job) Net() *Net { return j.net }

// KeepsMask reports whether the run keeps the input's zeros.
func (j *Job) KeepsMask() bool {
	switch j.opts.Mask {
	case MaskKeep:
		return true
	case MaskFree:
		return false
	}
	return j.pruned && j.opts.Train.L1 == 0
}

// Outcome is what a fine-tuning run did.
type Outcome struct {
	Manifest *manifest.Manifest
	Training *manifest.Training
	// Before and After are the eval of the input and of the result (nil
	// without EvalText).
	Before, After *eval.Report
	Result        *Result // the main run
	// SparsityReached is the share of target weights that are zero after
	// the main run (before TargetSparsity prunes).
	SparsityReached float64
	Recover         *Result // the recovery run after TargetSparsity, or nil
}

// Execute trains and writes the result into out (not committed: the
// caller commits or aborts it).
func (j *Job) Execute(ctx context.Context, out *checkpoint.Output) (*Outcome, error) {
	o := &j.opts
	tr := o.Train
	th := tr.Threads
	var teacher *model.Model
	var err error
	tpath := o.Base
	if tpath == "" {
		tpath = j.path
	}
	if tr.Distill > 0 || (o.Windows == nil && o.Text == "") || j.evalText != nil {
		tm, err := checkpoint.Open(tpath)
		if err != nil {
			return nil, err
		}
		teacher, err = model.Load(tm, model.Options{Threads: th})
		tm.Close()
		if err != nil {
			return nil, fmt.Errorf("teacher %s: %w", tpath, err)
		}
		defer teacher.Close()
		if teacher.VocabSize() != j.net.cfg.VocabSize {
			return nil, invalidf("the teacher %s has %d tokens, the model %d", tpath, teacher.VocabSize(), j.net.cfg.VocabSize)
		}
	}
	if tr.Distill > 0 {
		tr.Teacher = teacher
	}
	data := &manifest.TrainingData{Source: o.Text, Seed: tr.Seed, Shuffle: tr.Shuffle}
	wins := o.Windows
	switch {
	case wins != nil:
		data.Source = "windows"
	case o.Text != "":
		wins = Windows(j.textIDs, o.Ctx)
	default:
		data.Source = "self"
		if wins, err = sparsify.SampleWindows(ctx, teacher, j.tok, o.Samples, o.Ctx, tr.Seed, tr.Progress); err != nil {
			return nil, err
		}
	}
	data.Windows, data.Len, data.TokensSHA256 = len(wins), o.Ctx, tokensHash(wins)
	res := &Outcome{}
	var harness *eval.Harness
	if j.evalText != nil {
		if harness, err = eval.NewHarness(teacher, j.tok, j.evalText, eval.Options{Ctx: o.EvalCtx, BaseLabel: tpath, Progress: tr.Progress}); err != nil {
			return nil, err
		}
		before, err := model.New(&j.net.cfg, j.net.Weights(), model.Options{Threads: th})
		if err != nil {
			return nil, err
		}
		if res.Before, err = harness.Score(ctx, before, j.path); err != nil {
			return nil, err
		}
	}
	tr.KeepMask = j.KeepsMask()
	if res.Result, err = Train(ctx, j.net, wins, tr); err != nil {
		return nil, err
	}
	res.SparsityReached = j.net.TargetSparsity()
	if o.TargetSparsity > 0 {
		if err := j.net.PruneTargets(o.TargetSparsity); err != nil {
			return nil, err
		}
		if o.RecoverSteps > 0 {
			rt := tr
			rt.Steps, rt.L1, rt.KeepMask = o.RecoverSteps, 0, true
			rt.FirstBatch = tr.Steps * tr.Accum
			if res.Recover, err = Train(ctx, j.net, wins, rt); err != nil {
				return nil, err
			}
		}
	}
	if harness != nil {
		after, err := model.New(&j.net.cfg, j.net.Weights(), model.Options{Threads: th})
		if err != nil {
			return nil, err
		}
		if res.After, err = harness.Score(ctx, after, "trained"); err != nil {
			return nil, err
		}
	}
	values := j.net.Weights()
	for _, name := range tr.Frozen {
		delete(values, name)
	}
	job, err := sparsify.PlanCheckpoint(ctx, j.m, sparsify.Options{
		Method: prune.Method{Scope: prune.ScopeTensor}, Values: values,
		Format: o.Format, MaxShardSize: o.MaxShardSize, Command: o.Command, Flags: o.Flags, Progress: tr.Progress,
	})
	if err != nil {
		return nil, err
	}
	defer job.Close()
	if o.Prepare != nil {
		if err := o.Prepare(job); err != nil {
			return nil, err
		}
	}
	man, err := job.Execute(ctx, out)
	if err != nil {
		return nil, err
	}
	res.Training = j.record(tr, data, res)
	man.Training = res.Training
	man.Method = "finetune"
	js, err := man.JSON()
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile(manifest.File, js); err != nil {
		return nil, err
	}
	res.Manifest = man
	return res, nil
}

// record is the manifest's account of the run.
func (j *Job) record(tr Options, data *manifest.TrainingData, res *Outcome) *manifest.Training {
	o := &j.opts
	t := &manifest.Training{
		Optimizer: string(tr.Optim.Name), LR: tr.Optim.LR, MinLR: tr.Optim.MinLR, Schedule: string(tr.Optim.Schedule), Warmup: tr.Optim.Warmup,
		WeightDecay: tr.Optim.WeightDecay, ClipNorm: tr.Optim.ClipNorm, Steps: tr.Steps, Batch: tr.Batch, Accum: tr.Accum, Ctx: o.Ctx,
		Distill: tr.Distill, L1: tr.L1, KeepMask: tr.KeepMask, TargetSparsity: o.TargetSparsity, RecoverSteps: o.RecoverSteps,
		SparsityReached: manifest.Round(res.SparsityReached, 6), Data: *data, Tokens: res.Result.Tokens, Seconds: manifest.Round(res.Result.Seconds, 3), TokensPerS: manifest.Round(res.Result.TokensSec, 1),
	}
	if tr.Optim.Name == AdamW {
		t.Betas = []float64{tr.Optim.Beta1, tr.Optim.Beta2}
		t.Eps = tr.Optim.Eps
	}
	if tr.Distill > 0 {
		t.Teacher = o.Base
		if t.Teacher == "" {
			t.Teacher = j.path
		}
	}
	for _, s := range res.Result.Steps {
		t.Loss = append(t.Loss, manifest.Round(s.Total, 6))
	}
	if res.Recover != nil {
		for _, s := range res.Recover.Steps {
			t.RecoverLoss = append(t.RecoverLoss, manifest.Round(s.Total, 6))
		}
	}
	t.Before, t.After = evalSummary(res.Before), evalSummary(res.After)
	return t
}

func evalSummary(r *eval.Report) *manifest.EvalSummary {
	if r == nil {
		return nil
	}
	s := &manifest.EvalSummary{Text: r.Text, Ctx: r.Ctx, PPL: r.PPL, MeanNLL: r.MeanNLL}
	if r.KL != nil {
		s.KLMean, s.Top1 = r.KL.Mean, r.KL.Top1
	}
	return s
}

func tokensHash(wins [][]int) string {
	h := sha256.New()
	var b [4]byte
	for _, w := range wins {
		for _, id := range w {
			binary.LittleEndian.PutUint32(b[:], uint32(id))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TargetSparsity returns the share of target weights that are exactly
// zero.
func (n *Net) TargetSparsity() float64 {
	var z, t int
	for _, p := range n.params {
		if p.Target {
			z += p.Zeros()
			t += len(p.W)
		}
	}
	if t == 0 {
		return 0
	}
	return float64(z) / float64(t)
}

// PruneTargets sets the smallest-magnitude weights of every target to
// zero, exactly round(S·n) per tensor (ties by position, as "lmsparse
// prune" breaks them), and makes the others each target's mask: a kept
// weight that is zero (L1 training may have zeroed more than S) may grow
// again in a later run with Options.KeepMask.
func (n *Net) PruneTargets(S float64) error {
	var sel prune.Selector
	for _, p := range n.params {
		if !p.Target || len(p.Shape) != 2 {
			continue
		}
		x := &prune.Matrix{Name: p.Name, Vals: p.W, Rows: p.Shape[0], Cols: p.Shape[1]}
		plan, err := sel.NewPlan(prune.Method{Scope: prune.ScopeTensor, Sparsity: S}, x)
		if err != nil {
			return err
		}
		pruned := make([]bool, len(p.W))
		plan.Mask(p.W, pruned)
		p.mask = make([]uint64, (len(p.W)+63)/64)
		for i, z := range pruned {
			if z {
				p.W[i] = 0
			} else {
				p.mask[i>>6] |= 1 << (i & 63)
			}
		}
	}
	return nil
}
