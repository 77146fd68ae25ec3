package saestore

import (
	"context"
	"fmt"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// Evaluator scores the original model with one tensor replaced (by the
// autoencoder's reconstruction, or the SVD baseline's) against the
// original, on held-out text: the fidelity columns of the SAE report.
type Evaluator struct {
	cfg     *checkpoint.Config
	weights map[string][]float32
	threads int
	harness *eval.Harness
	text    *eval.Text
}

// NewEvaluator loads the original model of m (its sparse tensors
// expanded) with threads threads and prepares the harness that scores
// candidates against it on text (opts: windows, progress; BaseLabel
// defaults to m's path).
func NewEvaluator(m *checkpoint.Model, text *eval.Text, tok *tokenizer.Tokenizer, threads int, opts eval.Options) (*Evaluator, error) {
	lm, err := checkpoint.Open(m.Path)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: scoring needs config.json to run the model", m.Path, checkpoint.ErrFormat)
	}
	if _, err := lm.ExpandSparse(); err != nil {
		return nil, err
	}
	e := &Evaluator{cfg: lm.Config, weights: map[string][]float32{}, threads: threads, text: text}
	for _, n := range lm.Names() {
		if info, _ := lm.Tensor(n); !info.DType.IsFloat() {
			continue
		}
		if e.weights[n], err = lm.Float32(n); err != nil {
			return nil, err
		}
	}
	base, err := model.New(e.cfg, e.weights, model.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	if opts.BaseLabel == "" {
		opts.BaseLabel = m.Path
	}
	if e.harness, err = eval.NewHarness(base, tok, text, opts); err != nil {
		return nil, err
	}
	return e, nil
}

// Score evaluates the model whose tensor name is replaced by values.
func (e *Evaluator) Score(ctx context.Context, label, name string, values []float32) (*eval.Report, error) {
	orig := e.weights[name]
	e.weights[name] = values
	m, err := model.New(e.cfg, e.weights, model.Options{Threads: e.threads})
	e.weights[name] = orig
	if err != nil {
		return nil, err
	}
	return e.harness.Score(ctx, m, label)
}

// Evaluate scores the autoencoder's reconstruction and, when given, the
// SVD baseline against the original and records their fidelity in the
// report (its rows and Eval).
func (r *Result) Evaluate(ctx context.Context, e *Evaluator, svd *SVDBaseline) error {
	name := r.Job.Tensor.Name
	er, err := e.Score(ctx, MethodSAE, name, r.Compressed.Rebuilt)
	if err != nil {
		return err
	}
	if err := r.SetFidelity(MethodSAE, fidelity(er)); err != nil {
		return err
	}
	r.Report.Eval = &manifest.SAEEval{Text: e.text.Path, Ctx: er.Ctx, Tokens: er.Tokens, Scored: er.Scored, BasePPL: er.KL.BasePPL}
	if svd == nil {
		return nil
	}
	er, err = e.Score(ctx, fmt.Sprintf("svd rank %d", svd.Rank), name, svd.Rebuilt)
	if err != nil {
		return err
	}
	return r.SetFidelity(MethodSVD, fidelity(er))
}

// fidelity is the part of an eval report the SAE report keeps.
func fidelity(rep *eval.Report) Fidelity {
	k := rep.KL
	return Fidelity{PPL: rep.PPL, LnPPLRatio: k.LogPPLRatio, KLMean: k.Mean, KLP99: k.P99, Top1: k.Top1}
}
