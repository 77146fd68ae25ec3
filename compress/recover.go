package compress

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/saestore"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/train"
)

// The recover stage: prune into a dense intermediate checkpoint beside the
// output, score it (the "before recovery" fidelity), fine-tune it with
// package train, distilled from the original, and write the result into
// the output in the store format.

// recoverOptions are the training job of the recover stage (its progress
// and hooks are set by the caller).
func (p *Plan) recoverOptions() train.JobOptions {
	v := p.r.Recover
	o := train.JobOptions{
		Train: train.Options{Steps: v.Steps, Batch: v.Batch, Accum: v.Accum,
			Optim: train.Optim{Name: train.Optimizer(v.Optimizer), LR: v.LR, MinLR: v.MinLR, Schedule: train.Schedule(v.Schedule),
				Warmup: v.Warmup, WeightDecay: v.WeightDecay, ClipNorm: v.Clip},
			Seed: v.Seed, Shuffle: v.Shuffle, Threads: p.opts.Threads},
		Ctx: v.Ctx, Text: p.r.recoverText(), Samples: v.Samples, Base: p.model, Mask: train.MaskKeep,
		Format: sparsify.Format(p.r.Store.Format), MaxShardSize: p.maxShard, Command: "compress", Flags: map[string]any{"recipe": p.r},
	}
	if v.Distill != nil {
		o.Train.Distill = *v.Distill
	}
	if p.sae != nil {
		// The autoencoder's reconstruction stays as it is; the writer
		// stores its parts.
		o.Train.Frozen = []string{p.sae.Tensor.Name}
	}
	return o
}

// checkRecover fills in the recover stage's ctx and plans its training on
// the input model, so that options the training refuses fail before any
// work.
func (p *Plan) checkRecover(ctx context.Context) error {
	v := p.r.Recover
	if v.Ctx == 0 && p.m.Config != nil {
		v.Ctx = min(train.DefaultCtx, p.m.Config.MaxPositions) // report what runs
	}
	j, err := train.Plan(ctx, p.model, p.recoverOptions())
	if err != nil {
		return p.recoverErr(err)
	}
	return j.Close()
}

// recoverErr turns a training job's refusal into a recipe error naming the
// recover stage's line.
func (p *Plan) recoverErr(err error) error {
	if !errors.Is(err, train.ErrInvalid) {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), train.ErrInvalid.Error()+": ")
	return p.r.errorf("recover", "recover: %s", msg)
}

// recover prunes into a dense intermediate checkpoint (removed when it
// returns), scores it with the eval stage's harness, trains it and writes
// the result into out.
func (p *Plan) recover(ctx context.Context, out *checkpoint.Output, rep *report.Report, sae *saestore.Compressed) error {
	begin := time.Now()
	opts := p.pruneOptions(nil)
	opts.Format = sparsify.Dense
	if sae != nil {
		// The intermediate holds the autoencoder's reconstruction, so that
		// recovery trains around what the output stores.
		opts.Values = map[string][]float32{sae.Info.Name: sae.Rebuilt}
	}
	job, err := sparsify.PlanCheckpoint(ctx, p.m, opts)
	if err != nil {
		return err
	}
	defer job.Close()
	tmp, err := checkpoint.Create(p.scratch("recover"), checkpoint.OutputOptions{})
	if err != nil {
		return err
	}
	defer tmp.Abort()
	pruned, err := job.Execute(ctx, tmp)
	if err != nil {
		return err
	}
	nTargets, desc := len(job.Targets()), job.Describe()
	p.stage("prune", begin, "%d tensors pruned (%s), %.2f%% of their weights zero; dense, for recovery", nTargets, desc,
		100*pruned.Totals.TargetSparsity)

	begin = time.Now()
	var before *report.Fidelity
	if p.harness != nil {
		if before, err = p.fidelity(ctx, tmp.Staging()); err != nil {
			return err
		}
	}
	o := p.recoverOptions()
	o.Train.Progress = p.inner
	var written time.Time // training ends, writing starts
	var last train.Step
	o.Train.OnStep = func(s train.Step) { last = s }
	o.Prepare = func(j *sparsify.Job) error {
		written = time.Now()
		p.stage("recover", begin, "%s", recoverSummary(p.r.Recover, last, before))
		return replaceSAE(j, sae)
	}
	tj, err := train.Plan(ctx, tmp.Staging(), o)
	if err != nil {
		return p.recoverErr(err)
	}
	defer tj.Close()
	res, err := tj.Execute(ctx, out)
	if err != nil {
		return p.recoverErr(err)
	}
	man := res.Manifest
	fromIntermediate(man, pruned)
	js, err := man.JSON()
	if err != nil {
		return err
	}
	if err := out.WriteFile(manifest.File, js); err != nil {
		return err
	}
	t := res.Training
	rep.Recovery = &report.Recovery{Steps: t.Steps, Batch: t.Batch, Accum: t.Accum, Ctx: t.Ctx, Optimizer: t.Optimizer, LR: t.LR,
		MinLR: t.MinLR, Schedule: t.Schedule, Warmup: t.Warmup, WeightDecay: t.WeightDecay, ClipNorm: t.ClipNorm, Distill: t.Distill,
		Teacher: t.Teacher, Data: t.Data, Tokens: t.Tokens, Seconds: t.Seconds, TokensPerS: t.TokensPerS, Loss: t.Loss, Before: before}
	p.fillTotals(rep, man, out.Staging())
	p.stage("write", written, "%s", p.writeSummary(rep, nTargets, desc))
	return nil
}

// recoverSummary is the recover stage's line.
func recoverSummary(v *Recover, last train.Step, before *report.Fidelity) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d steps of %d×%d tokens (%s, lr %g, distill %g", v.Steps, v.Batch, v.Ctx, v.Optimizer, v.LR, *v.Distill)
	if v.Text == "" {
		fmt.Fprintf(&b, ", %d sequences sampled from the original", v.Samples)
	} else {
		fmt.Fprintf(&b, ", text %s", v.Text)
	}
	fmt.Fprintf(&b, "): last loss %.4f, %.0f tokens/s", last.Total, last.TokensSec)
	if before != nil {
		fmt.Fprintf(&b, "; before recovery: perplexity %.6g (×%.4f), KL %.4g, top-1 %.2f%%", before.PPL, before.PPLRatio, before.KLMean, 100*before.Top1)
	}
	return b.String()
}

// fromIntermediate makes the manifest of the training job, whose input was
// the intermediate checkpoint, describe the run from the original: its
// inputs, the prune method and calibration, each pruned tensor's
// reconstruction error (measured when it was pruned), and as pruned only
// the tensors the prune stage pruned (the training job's writer counts
// every block weight, so a tensor prune.exclude left dense would count).
func fromIntermediate(man, pruned *manifest.Manifest) {
	man.Inputs, man.Method, man.Calibration = pruned.Inputs, pruned.Method, pruned.Calibration
	was := map[string]manifest.Tensor{}
	for _, t := range pruned.Tensors {
		if t.Pruned {
			was[t.Name] = t
		}
	}
	var params, nnz int64
	changed := false
	for i := range man.Tensors {
		t := &man.Tensors[i]
		pt, ok := was[t.Name]
		if !ok {
			changed = changed || t.Pruned
			t.Pruned = false
			continue
		}
		t.ReconError = pt.ReconError
		if t.Nonzeros != nil {
			params += t.Parameters
			nnz += *t.Nonzeros
		}
	}
	if changed {
		man.Totals.PrunedTensors = len(was)
		if params > 0 {
			man.Totals.TargetSparsity = manifest.Round(1-float64(nnz)/float64(params), 6)
		}
	}
}
