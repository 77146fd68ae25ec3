package saestore

import (
	"context"
	"fmt"

	"github.com/lmsparse/lmsparse/arch"
	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
)

// Methods of the rows of the report ([manifest.SAERow].Method).
const (
	MethodSAE = "sae"
	MethodSVD = "svd"
)

// Job is a planned "lmsparse sae" run: the tensor to compress and the
// options, checked. Plan writes nothing and trains nothing.
type Job struct {
	Model *checkpoint.Model
	// Tensor is the tensor to compress.
	Tensor checkpoint.Tensor
	// Options are the options given, with the defaults of the tensor's
	// shape applied.
	Options Options
}

// Plan checks that the run can go: the tensor exists (see [Target]), is a
// non-empty 2-D matrix of a dtype lmsparse can write, and the options are
// valid for its shape. Errors name the file and the tensor and wrap
// sae.ErrInvalid for bad options; a missing tensor is a
// [*NotFoundError].
func Plan(ctx context.Context, m *checkpoint.Model, opts Options) (*Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := Target(m, opts.Tensor)
	if err != nil {
		return nil, err
	}
	rows, d, err := shape2(info)
	if err != nil {
		return nil, err
	}
	o := opts.WithDefaults(rows, d)
	if err := o.validate(rows, d); err != nil {
		return nil, fmt.Errorf("%s: tensor %q %v: %w", info.File, info.Name, info.Shape, err)
	}
	return &Job{Model: m, Tensor: info, Options: o}, nil
}

// Result is an executed [Job]: the compressed tensor and its report.
type Result struct {
	Job        *Job
	Compressed *Compressed
	// Report is the "sae" section of lmsparse.json: settings, bytes of the
	// tensor and the model, and a row per method — the SAE's, then the SVD
	// baseline's after [Result.CompareSVD]. Eval stays nil until the
	// caller sets it (with [Result.SetFidelity] for the rows).
	Report *manifest.SAE
}

// Execute trains the autoencoder and encodes the tensor (see [Compress]).
// Nothing is written: [Result.Entries], [Result.Metadata] and
// [Result.Manifest] give what a checkpoint writer needs.
func (j *Job) Execute(ctx context.Context) (*Result, error) {
	c, err := Compress(ctx, j.Model, j.Tensor, j.Options)
	if err != nil {
		return nil, err
	}
	info, o := j.Tensor, c.Options
	shape := []int64(info.Shape)
	if shape == nil {
		shape = []int64{}
	}
	rep := &manifest.SAE{Tensor: info.Name, DType: string(info.DType), Shape: shape,
		Variant: o.Variant(), Latents: o.Latents, K: o.K, L1: o.L1, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR,
		Seed: o.Seed, Threads: o.Threads, Refit: !o.NoRefit}
	if h := c.Result.History; len(h) > 0 {
		rep.FinalLoss = h[len(h)-1].Loss
	}
	cfg := j.Model.Config
	rep.TiedHead = cfg != nil && cfg.TieWordEmbeddings && arch.IsEmbedding(info.Name)
	rep.TensorSize = manifest.Bytes{Before: info.Size, After: c.Bytes, Ratio: manifest.Ratio(info.Size, c.Bytes)}
	var before, after int64
	for _, name := range j.Model.Names() {
		t, _ := j.Model.Tensor(name)
		before += t.Size
		if name == info.Name {
			after += c.Bytes
		} else {
			after += t.Size
		}
	}
	rep.ModelSize = manifest.Bytes{Before: before, After: after, Ratio: manifest.Ratio(before, after)}
	l0, dead, encFVU := c.Stats.L0, c.Stats.Dead, c.Stats.EncoderFVU
	rep.Rows = []manifest.SAERow{{Method: MethodSAE, Bytes: c.Bytes, FVU: c.Stats.FVU, Cosine: c.Stats.Cosine,
		L0: &l0, Dead: &dead, EncoderFVU: &encFVU}}
	return &Result{Job: j, Compressed: c, Report: rep}, nil
}

// CompareSVD fits the truncated-SVD baseline of at most the SAE's bytes
// ([FitSVD]) and adds its row to the report; the baseline's Rebuilt is the
// tensor to evaluate it with.
func (r *Result) CompareSVD() (*SVDBaseline, error) {
	c := r.Compressed
	b, err := FitSVD(c.Orig, c.Rows, c.D, c.Bytes, c.Info.DType)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", c.Info.File, c.Info.Name, err)
	}
	r.Report.Rows = append(r.Report.Rows, manifest.SAERow{Method: MethodSVD, Rank: b.Rank, Bytes: b.Bytes, FVU: b.FVU, Cosine: b.Cosine})
	return b, nil
}

// Fidelity is how the model with the tensor replaced scores against the
// original on held-out text: perplexity, ln(ppl/ppl_original), mean and
// 99th-percentile KL(original‖model) and top-1 agreement (a fraction).
type Fidelity struct {
	PPL, LnPPLRatio, KLMean, KLP99, Top1 float64
}

// SetFidelity records the fidelity of the report's row of method
// ([MethodSAE] or [MethodSVD]); it returns an error when there is no such
// row.
func (r *Result) SetFidelity(method string, f Fidelity) error {
	for i := range r.Report.Rows {
		row := &r.Report.Rows[i]
		if row.Method != method {
			continue
		}
		row.PPL, row.LnPPLRatio, row.KLMean, row.KLP99, row.Top1 = &f.PPL, &f.LnPPLRatio, &f.KLMean, &f.KLP99, &f.Top1
		return nil
	}
	return fmt.Errorf("sae report: no %q row", method)
}

// Entries returns the model's tensors to write: every tensor as stored,
// the compressed one replaced by its parts ([Compressed.Entries]).
func (r *Result) Entries() ([]safetensors.Entry, error) {
	es, err := r.Job.Model.Entries()
	if err != nil {
		return nil, err
	}
	return safetensors.Replace(es, r.Job.Tensor.Name, r.Compressed.Entries()), nil
}

// Metadata returns the safetensors metadata to write: a copy of the
// model's (format "pt", as Hugging Face writes, when it has none) with the
// sparse-autoencoder marker ([MarkMetadata]).
func (r *Result) Metadata() map[string]string {
	in := r.Job.Model.Metadata()
	meta := make(map[string]string, len(in)+2)
	for k, v := range in {
		meta[k] = v
	}
	if len(in) == 0 {
		meta["format"] = "pt"
	}
	MarkMetadata(meta)
	return meta
}

// Manifest returns lmsparse.json for the run: command "sae", the method,
// the training settings ([Options.Flags]) with the caller's flags added
// (they win on a clash), the inputs with their sha256, every tensor (the
// compressed one with encoding "sae", its stored codes and its parts'
// bytes) with the totals, and the report.
func (r *Result) Manifest(flags map[string]any) (*manifest.Manifest, error) {
	m, c := r.Job.Model, r.Compressed
	man := manifest.New("sae")
	man.Method, man.Flags, man.SAE = c.Method(), c.Options.Flags(), r.Report
	for k, v := range flags {
		man.Flags[k] = v
	}
	for _, name := range m.Names() {
		t, _ := m.Tensor(name)
		n, _ := t.Shape.Elems()
		shape := []int64(t.Shape)
		if shape == nil {
			shape = []int64{}
		}
		mt := manifest.Tensor{Name: name, Encoding: string(sparse.Dense), DType: string(t.DType),
			Shape: shape, Parameters: n, BytesBefore: t.Size, BytesAfter: t.Size}
		if name == r.Job.Tensor.Name {
			mt.Encoding, mt.BytesAfter, mt.Stored = string(sparse.SAE), c.Bytes, int64(c.Result.Codes.NNZ())
		}
		man.Add(mt)
	}
	man.Finish(false)
	var err error
	if man.Inputs, err = manifest.HashFiles(m.Dir, m.Files); err != nil {
		return nil, err
	}
	return man, nil
}

// Write writes the checkpoint with the tensor replaced into out — the
// weights in shards of at most maxShard tensor bytes (0: 5 GB), the
// configuration and tokenizer files, and lmsparse.json (Manifest with
// flags) — and returns the manifest. It does not commit out.
func (r *Result) Write(out *checkpoint.Output, maxShard int64, flags map[string]any) (*manifest.Manifest, error) {
	entries, err := r.Entries()
	if err != nil {
		return nil, err
	}
	man, err := r.Manifest(flags)
	if err != nil {
		return nil, err
	}
	js, err := man.JSON()
	if err != nil {
		return nil, err
	}
	if _, err := out.WriteTensors(entries, checkpoint.TensorOptions{MaxShardSize: maxShard, Metadata: r.Metadata()}); err != nil {
		return nil, err
	}
	if err := out.CopyAux(r.Job.Model.Dir, nil); err != nil {
		return nil, err
	}
	return man, out.WriteFile(manifest.File, js)
}
