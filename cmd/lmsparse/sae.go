package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gonum.org/v1/gonum/mat"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/internal/match"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// saeOptions are the inputs of "lmsparse sae". Latents, K and Epochs of 0
// with the flag not given take their defaults (see saeCommand).
type saeOptions struct {
	Model   string
	Out     outputOptions
	Tensor  string
	Latents int
	K       int
	L1      float64
	Epochs  int
	Batch   int
	LR      float64
	Seed    uint64
	Threads int
	Compare string
	Text    string
	NoRefit bool
	JSON    bool

	latentsSet, kSet, epochsSet bool
}

// Defaults of the training flags (shared with compress's sae stage).
const (
	saeDefaultBatch = 64
	saeDefaultLR    = 3e-3
)

// saeEmbeddingNames returns the token embeddings --tensor defaults to, in
// order.
func saeEmbeddingNames() []string {
	return []string{"model.embed_tokens.weight", "transformer.wte.weight", "wte.weight", "embed_tokens.weight"}
}

// saeStepsTarget is the number of Adam steps the default --epochs aims at.
const saeStepsTarget = 8000

func saeCommand() *command {
	return &command{
		name:    "sae",
		summary: "Replace the token embedding by sparse codes over a learned dictionary (sparse autoencoder)",
		usage:   "sae MODEL -o OUT [--tensor NAME] [--latents M] [--k K | --l1 λ] [--epochs N] [--batch B] [--lr η] [--seed S] [--threads T] [--compare svd] [--text FILE] [--json]",
		details: `Trains a sparse autoencoder on the rows of one 2-D tensor E [rows, d] — by
default the token embedding (model.embed_tokens.weight, transformer.wte.weight
or wte.weight) — and stores it as sparse codes Z [rows, M] with K nonzeros per
row (CSR), a dictionary D [M, d] with unit-norm rows and a bias b [d], in the
tensor's dtype: E ≈ Z·D + b (docs/FORMAT.md, "Sparse-autoencoder tensors").
Every other tensor is copied unchanged. "lmsparse decompress" rebuilds a dense
E and "lmsparse eval" runs on OUT directly. For a model with tied embeddings
the LM head is the same tensor, so it uses the rebuilt E too.

The default is a TopK SAE (exactly K codes per row); --l1 λ trains an L1 SAE
(ReLU codes, loss MSE + λ·Σ|z| on the data scaled to unit variance, codes
kept where they are positive). Both use Adam (β1 0.9, β2 0.999), keep the
decoder rows at unit norm, start from b = the mean row and W_enc = W_decᵀ,
and the TopK SAE revives dead latents with an auxiliary-k loss. The stored
code values are refit by least squares on the encoder's support
(--no-refit keeps the encoder's). Results are deterministic for a --seed on
one machine, whatever --threads.

Defaults: --latents 3·d, --k max(1, d/16), --batch 64, --lr 0.003, --epochs
enough for about 8000 steps (ceil(8000·B/rows)). The report gives bytes
before and after (the tensor and the whole model), FVU (fraction of variance
unexplained), mean row cosine, L0 (codes per row) and dead latents; with
--text FILE also perplexity, KL and top-1 agreement against the original (the
protocol of "lmsparse eval", ctx min(max positions, 512)). --compare svd adds
a truncated SVD (PCA around the mean row) of the largest rank whose factors
fit in the SAE's bytes. OUT gets lmsparse.json with the same report.
K ≥ M, K ≤ 0, M ≤ 0, a tensor that is not 2-D, a NaN in it or an unknown
tensor name exit 2 and write nothing.`,
		examples: []string{
			"lmsparse sae ../shared/models/stories260k -o /tmp/s260k-sae --latents 192 --k 4 --compare svd --text ../shared/text/tinystories/tinystories_sample.txt",
			"lmsparse sae ./gpt2 -o ./gpt2-sae --latents 4096 --k 32 --epochs 10 --batch 1024 --json",
			"lmsparse sae ./llama -o ./llama-sae-l1 --latents 512 --l1 0.05",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o saeOptions
			o.Out.register(fs)
			fs.StringVar(&o.Tensor, "tensor", "", "2-D tensor to compress (default: the token embedding)")
			fs.IntVar(&o.Latents, "latents", 0, "dictionary size M (default 3·d)")
			fs.IntVar(&o.K, "k", 0, "nonzero codes per row of the TopK SAE (default max(1, d/16))")
			fs.Float64Var(&o.L1, "l1", 0, "train an L1 SAE with this penalty λ instead of TopK")
			fs.IntVar(&o.Epochs, "epochs", 0, "passes over the rows (default ceil(8000·batch/rows))")
			fs.IntVar(&o.Batch, "batch", saeDefaultBatch, "rows per Adam step")
			fs.Float64Var(&o.LR, "lr", saeDefaultLR, "Adam step size")
			fs.Uint64Var(&o.Seed, "seed", 0, "random seed (initialisation and shuffling)")
			fs.IntVar(&o.Threads, "threads", runtime.NumCPU(), "threads")
			fs.StringVar(&o.Compare, "compare", "", "also fit a baseline of equal bytes: svd")
			fs.StringVar(&o.Text, "text", "", "held-out text: evaluate against the original (ppl, KL, top-1)")
			fs.BoolVar(&o.NoRefit, "no-refit", false, "store the encoder's code values instead of least-squares ones")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON (the content of lmsparse.json)")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("sae: want exactly one MODEL argument, got %d (see 'lmsparse sae --help')", len(args))
				}
				o.Model = args[0]
				o.latentsSet, o.kSet, o.epochsSet = fs.Changed("latents"), fs.Changed("k"), fs.Changed("epochs")
				if fs.Changed("l1") && o.kSet {
					return usageErrorf("sae: give either --k (TopK SAE) or --l1 (L1 SAE), not both")
				}
				if fs.Changed("l1") && !(o.L1 > 0) {
					return usageErrorf("sae: --l1 %g: must be positive", o.L1)
				}
				// Package sae reads 0 as "the default": a 0 given on the
				// command line is refused here.
				for _, f := range []struct {
					name string
					zero bool
				}{{"latents", o.Latents == 0}, {"k", o.K == 0}, {"epochs", o.Epochs == 0}, {"batch", o.Batch == 0}} {
					if f.zero && fs.Changed(f.name) {
						return usageErrorf("sae: --%s 0: must be at least 1", f.name)
					}
				}
				if o.LR == 0 && fs.Changed("lr") {
					return usageErrorf("sae: --lr 0: must be a positive number")
				}
				if o.Compare != "" && o.Compare != "svd" {
					return usageErrorf("sae: --compare %q: the only baseline is svd", o.Compare)
				}
				if o.Threads < 1 {
					return usageErrorf("sae: --threads %d: must be at least 1", o.Threads)
				}
				if err := o.Out.check("sae"); err != nil {
					return err
				}
				return runSAE(ctx, o, stdout, stderr)
			}
		},
	}
}

// saeTarget returns the tensor to compress: name, or the first of the
// token-embedding names present. It must be a 2-D floating-point tensor of
// a dtype lmsparse can write (F32, F64, F16, BF16).
func saeTarget(m *checkpoint.Model, name string) (checkpoint.Tensor, error) {
	if name == "" {
		for _, n := range saeEmbeddingNames() {
			if _, ok := m.Tensor(n); ok {
				name = n
				break
			}
		}
		if name == "" {
			return checkpoint.Tensor{}, usageErrorf("sae: %s has no token embedding (%s); name the tensor with --tensor", m.Path, strings.Join(saeEmbeddingNames(), ", "))
		}
	}
	info, ok := m.Tensor(name)
	if !ok {
		return info, usageErrorf("sae: %s has no tensor %q; nearest names: %s", m.Path, name, strings.Join(match.Nearest(name, m.Names(), 3), ", "))
	}
	if len(info.Shape) != 2 || info.Shape[0] < 1 || info.Shape[1] < 1 {
		return info, usageErrorf("sae: tensor %q has shape %v: the autoencoder needs a non-empty 2-D matrix", name, info.Shape)
	}
	switch info.DType {
	case tensor.F32, tensor.F64, tensor.F16, tensor.BF16:
	default:
		return info, fmt.Errorf("%s: tensor %q: %w: the autoencoder stores F32, F64, F16 or BF16, not %s", info.File, name, tensor.ErrDType, info.DType)
	}
	return info, nil
}

// trainOptions resolves the defaults that depend on the shape.
func (o *saeOptions) trainOptions(rows, d int) sae.Options {
	opt := sae.Options{Latents: o.Latents, K: o.K, L1: o.L1, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR,
		Seed: o.Seed, Threads: o.Threads, NoRefit: o.NoRefit}
	if !o.latentsSet {
		opt.Latents = 3 * d
	}
	if !o.kSet && o.L1 == 0 {
		opt.K = max(1, d/16)
	}
	if !o.epochsSet && o.Batch > 0 {
		opt.Epochs = max(1, (saeStepsTarget*min(o.Batch, rows)+rows-1)/rows)
	}
	return opt
}

// saeCompressed is one tensor compressed by a sparse autoencoder: its
// stored parts and what they measure against the original.
type saeCompressed struct {
	Info    checkpoint.Tensor
	Rows, D int
	Options sae.Options
	Result  *sae.Result
	Parts   []sparse.EncodedPart // suffixes relative to the tensor's name
	Bytes   int64                // of all parts
	Orig    []float32            // the original tensor
	Rebuilt []float32            // Z·D + b decoded from the parts, as decompress and eval see it
	Stats   sae.Stats            // of Rebuilt against Orig
	Seconds float64              // training time
}

// compressSAE trains the autoencoder on tensor info of m and encodes the
// result in the tensor's dtype. Bad options or data return errors wrapping
// sae.ErrInvalid that name the tensor.
func compressSAE(ctx context.Context, m *checkpoint.Model, info checkpoint.Tensor, opt sae.Options) (*saeCompressed, error) {
	rows, d := int(info.Shape[0]), int(info.Shape[1])
	if err := opt.Validate(rows, d); err != nil {
		return nil, fmt.Errorf("sae: tensor %q %v: %w", info.Name, info.Shape, err)
	}
	x, err := m.Float32(info.Name)
	if err != nil {
		return nil, err
	}
	if err := sae.CheckFinite(x, d); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, info.Name, err)
	}
	start := time.Now()
	res, err := sae.Train(ctx, x, rows, d, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, info.Name, err)
	}
	c := &saeCompressed{Info: info, Rows: rows, D: d, Options: opt, Result: res, Orig: x, Seconds: time.Since(start).Seconds()}
	dt := info.DType
	enc := func(v []float32) ([]byte, error) {
		b := make([]byte, len(v)*dt.Size())
		if err := tensor.EncodeF32(b, v, dt); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", info.Name, err)
		}
		return b, nil
	}
	z := res.Codes
	vals, err := enc(z.Val)
	if err != nil {
		return nil, err
	}
	col := make([]int64, len(z.Col))
	for i, j := range z.Col {
		col[i] = int64(j)
	}
	codes, err := sparse.EncodeCSR(dt, int64(rows), int64(z.Cols), z.RowPtr, col, vals)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", info.Name, err)
	}
	dict, err := enc(res.Dictionary)
	if err != nil {
		return nil, err
	}
	bias, err := enc(res.Bias)
	if err != nil {
		return nil, err
	}
	for _, p := range codes {
		p.Suffix = sparse.SuffixSAECodes + p.Suffix
		c.Parts = append(c.Parts, p)
	}
	c.Parts = append(c.Parts,
		sparse.EncodedPart{Suffix: sparse.SuffixSAEDictionary, DType: dt, Shape: tensor.Shape{int64(z.Cols), int64(d)}, Data: dict},
		sparse.EncodedPart{Suffix: sparse.SuffixSAEBias, DType: dt, Shape: tensor.Shape{int64(d)}, Data: bias})
	pd := make([]sparse.PartData, len(c.Parts))
	for i, p := range c.Parts {
		c.Bytes += int64(len(p.Data))
		pd[i] = sparse.PartData{DType: p.DType, Shape: p.Shape, Data: p.Data}
	}
	dec, err := sparse.DecodeSAE(pd[0], pd[1], pd[2], pd[3], pd[4], pd[5])
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", info.Name, err)
	}
	c.Rebuilt = make([]float32, rows*d)
	if err := tensor.DecodeF32(c.Rebuilt, dec.Bytes(), dt); err != nil {
		return nil, err
	}
	c.Stats = res.Stats
	c.Stats.FVU, c.Stats.Cosine = sae.Metrics(x, c.Rebuilt, rows, d)
	return c, nil
}

// entries returns the parts as tensors named after the compressed tensor.
func (c *saeCompressed) entries() []safetensors.Entry {
	var es []safetensors.Entry
	for _, p := range c.Parts {
		es = append(es, safetensors.BytesEntry(c.Info.Name+p.Suffix, p.DType, p.Shape, p.Data))
	}
	return es
}

// replaceEntry returns entries with the one called name replaced by with.
func replaceEntry(entries []safetensors.Entry, name string, with []safetensors.Entry) []safetensors.Entry {
	var out []safetensors.Entry
	for _, e := range entries {
		if e.Name == name {
			out = append(out, with...)
			continue
		}
		out = append(out, e)
	}
	return out
}

// svdBaseline is the best rank-r approximation of x around its mean row
// (PCA), r the largest rank whose factors — scores [rows, r], components
// [r, d] and the mean [d], in dt — take at most budget bytes.
type svdBaseline struct {
	Rank    int
	Bytes   int64
	Rebuilt []float32
	FVU     float64
	Cosine  float64
}

// fitSVD computes the baseline from the eigenvectors of the d×d scatter
// matrix (float64, gonum); factors are rounded to dt before the product,
// which is rounded to float32 and then to dt, as a checkpoint storing them
// would be read.
func fitSVD(x []float32, rows, d int, budget int64, dt tensor.DType) (*svdBaseline, error) {
	es := int64(dt.Size())
	r := int((budget/es - int64(d)) / int64(rows+d))
	r = max(0, min(r, rows, d))
	b := &svdBaseline{Rank: r, Bytes: (int64(rows*r) + int64(r*d) + int64(d)) * es}
	mean := make([]float64, d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			mean[j] += float64(x[i*d+j])
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	c := mat.NewDense(rows, d, nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			c.Set(i, j, float64(x[i*d+j])-mean[j])
		}
	}
	round := func(v []float64) ([]float64, error) {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		raw := make([]byte, len(f)*dt.Size())
		if err := tensor.EncodeF32(raw, f, dt); err != nil {
			return nil, err
		}
		if err := tensor.DecodeF32(f, raw, dt); err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out, nil
	}
	meanR, err := round(mean)
	if err != nil {
		return nil, err
	}
	xhat := mat.NewDense(rows, d, nil)
	if r > 0 {
		var scatter mat.SymDense
		scatter.SymOuterK(1, c.T())
		var eig mat.EigenSym
		if !eig.Factorize(&scatter, true) {
			return nil, fmt.Errorf("svd baseline: the eigendecomposition did not converge")
		}
		var vecs mat.Dense
		eig.VectorsTo(&vecs)
		// Eigenvalues ascend: the last r columns are the top components.
		comp := mat.DenseCopyOf(vecs.Slice(0, d, d-r, d)) // [d, r]
		var scores mat.Dense
		scores.Mul(c, comp) // [rows, r]
		sr, err := round(scores.RawMatrix().Data)
		if err != nil {
			return nil, err
		}
		cr, err := round(comp.RawMatrix().Data)
		if err != nil {
			return nil, err
		}
		xhat.Mul(mat.NewDense(rows, r, sr), mat.NewDense(d, r, cr).T())
	}
	b.Rebuilt = make([]float32, rows*d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			b.Rebuilt[i*d+j] = float32(xhat.At(i, j) + meanR[j])
		}
	}
	raw := make([]byte, len(b.Rebuilt)*dt.Size())
	if err := tensor.EncodeF32(raw, b.Rebuilt, dt); err != nil {
		return nil, err
	}
	if err := tensor.DecodeF32(b.Rebuilt, raw, dt); err != nil {
		return nil, err
	}
	b.FVU, b.Cosine = sae.Metrics(x, b.Rebuilt, rows, d)
	return b, nil
}

func ratioOf(before, after int64) float64 {
	if after == 0 {
		return 0
	}
	return float64(before) / float64(after)
}

// saeEval scores models with one tensor replaced against the original.
type saeEval struct {
	o       evalOptions
	text    []byte
	tok     *tokenizer.Tokenizer
	cfg     *checkpoint.Config
	weights map[string][]float32
	base    *model.Model
	stderr  io.Writer
}

// newSAEEval loads the text, the tokenizer and the original model (its
// sparse tensors expanded) for evaluation.
func newSAEEval(o saeOptions, stderr io.Writer) (*saeEval, error) {
	e := &saeEval{o: evalOptions{Model: o.Model, Text: o.Text, Base: o.Model, Threads: o.Threads}, stderr: stderr}
	var err error
	if e.text, e.tok, err = loadEvalText(e.o); err != nil {
		return nil, err
	}
	lm, err := checkpoint.Open(o.Model)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: --text needs config.json to run the model", o.Model, checkpoint.ErrFormat)
	}
	if _, err := lm.ExpandSparse(); err != nil {
		return nil, err
	}
	e.cfg = lm.Config
	e.weights = map[string][]float32{}
	for _, n := range lm.Names() {
		if info, _ := lm.Tensor(n); !info.DType.IsFloat() {
			continue
		}
		if e.weights[n], err = lm.Float32(n); err != nil {
			return nil, err
		}
	}
	if e.base, err = model.New(e.cfg, e.weights, model.Options{Threads: o.Threads}); err != nil {
		return nil, err
	}
	return e, nil
}

// score evaluates the model whose tensor name is replaced by values.
func (e *saeEval) score(ctx context.Context, label, name string, values []float32) (*evalReport, error) {
	orig := e.weights[name]
	e.weights[name] = values
	m, err := model.New(e.cfg, e.weights, model.Options{Threads: e.o.Threads})
	e.weights[name] = orig
	if err != nil {
		return nil, err
	}
	o := e.o
	o.Model = label
	return scoreText(ctx, o, m, e.base, e.text, e.tok, e.stderr)
}

func setEval(row *manifest.SAERow, rep *evalReport) {
	k := rep.KL
	ppl, lr, mean, p99, top1 := rep.PPL, k.LogPPLRatio, k.Mean, k.P99, k.Top1
	row.PPL, row.LnPPLRatio, row.KLMean, row.KLP99, row.Top1 = &ppl, &lr, &mean, &p99, &top1
}

func runSAE(ctx context.Context, o saeOptions, stdout, stderr io.Writer) error {
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkpoint.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	info, err := saeTarget(m, o.Tensor)
	if err != nil {
		return err
	}
	rows, d := int(info.Shape[0]), int(info.Shape[1])
	opt := o.trainOptions(rows, d)
	if err := opt.Validate(rows, d); err != nil {
		return fmt.Errorf("sae: tensor %q %v: %w", info.Name, info.Shape, err)
	}
	var ev *saeEval
	if o.Text != "" {
		if ev, err = newSAEEval(o, stderr); err != nil {
			return err
		}
	}
	if isTerminal(stderr) {
		every := max(1, opt.Epochs/20)
		opt.Progress = func(e sae.Epoch) {
			if e.Epoch%every == 0 || e.Epoch == opt.Epochs {
				fmt.Fprintf(stderr, "\rlmsparse: sae: epoch %d/%d: loss %.4f, L0 %.1f, %d dead latents", e.Epoch, opt.Epochs, e.Loss, e.L0, e.Dead)
				if e.Epoch == opt.Epochs {
					fmt.Fprintln(stderr)
				}
			}
		}
	}
	c, err := compressSAE(ctx, m, info, opt)
	if err != nil {
		return err
	}

	rep := &manifest.SAE{Tensor: info.Name, DType: string(info.DType), Shape: nonNilShape(info.Shape),
		Variant: "topk", Latents: opt.Latents, K: opt.K, L1: opt.L1, Epochs: opt.Epochs, Batch: opt.Batch, LR: opt.LR,
		Seed: opt.Seed, Threads: opt.Threads, Refit: !opt.NoRefit}
	if opt.L1 > 0 {
		rep.Variant = "l1"
	}
	if h := c.Result.History; len(h) > 0 {
		rep.FinalLoss = h[len(h)-1].Loss
	}
	if m.Config != nil && m.Config.TieWordEmbeddings {
		for _, n := range saeEmbeddingNames() {
			rep.TiedHead = rep.TiedHead || n == info.Name
		}
	}
	rep.TensorSize = manifest.Bytes{Before: info.Size, After: c.Bytes, Ratio: ratioOf(info.Size, c.Bytes)}
	l0, dead, encFVU := c.Stats.L0, c.Stats.Dead, c.Stats.EncoderFVU
	row := manifest.SAERow{Method: "sae", Bytes: c.Bytes, FVU: c.Stats.FVU, Cosine: c.Stats.Cosine, L0: &l0, Dead: &dead, EncoderFVU: &encFVU}
	if ev != nil {
		er, err := ev.score(ctx, "sae", info.Name, c.Rebuilt)
		if err != nil {
			return err
		}
		setEval(&row, er)
		rep.Eval = &manifest.SAEEval{Text: o.Text, Ctx: er.Ctx, Tokens: er.Tokens, Scored: er.Scored, BasePPL: er.KL.BasePPL}
	}
	rep.Rows = append(rep.Rows, row)
	if o.Compare == "svd" {
		b, err := fitSVD(c.Orig, rows, d, c.Bytes, info.DType)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", info.Name, err)
		}
		row := manifest.SAERow{Method: "svd", Rank: b.Rank, Bytes: b.Bytes, FVU: b.FVU, Cosine: b.Cosine}
		if ev != nil {
			er, err := ev.score(ctx, fmt.Sprintf("svd rank %d", b.Rank), info.Name, b.Rebuilt)
			if err != nil {
				return err
			}
			setEval(&row, er)
		}
		rep.Rows = append(rep.Rows, row)
	}

	entries, err := m.Entries()
	if err != nil {
		return err
	}
	entries = replaceEntry(entries, info.Name, c.entries())
	meta := copyMeta(m.Metadata())
	meta[sparse.SAEMetadataKey] = sparse.SAEVersion
	man := &manifest.Manifest{Schema: manifest.Schema, Tool: manifest.Tool(), Command: "sae",
		Method: saeMethod(opt), Flags: saeFlags(o, opt), SAE: rep}
	for _, name := range m.Names() {
		t, _ := m.Tensor(name)
		n, _ := t.Shape.Elems()
		mt := manifest.Tensor{Name: name, Encoding: string(sparse.Dense), DType: string(t.DType),
			Shape: nonNilShape(t.Shape), Parameters: n, BytesBefore: t.Size, BytesAfter: t.Size}
		if name == info.Name {
			mt.Encoding, mt.BytesAfter, mt.Stored = string(sparse.SAE), c.Bytes, int64(c.Result.Codes.NNZ())
		}
		man.Tensors = append(man.Tensors, mt)
		man.Totals.Tensors++
		man.Totals.Parameters += n
		man.Totals.BytesBefore += mt.BytesBefore
		man.Totals.BytesAfter += mt.BytesAfter
	}
	man.Totals.Ratio = ratioOf(man.Totals.BytesBefore, man.Totals.BytesAfter)
	rep.ModelSize = manifest.Bytes{Before: man.Totals.BytesBefore, After: man.Totals.BytesAfter, Ratio: man.Totals.Ratio}
	if man.Inputs, err = manifest.HashFiles(m.Dir, m.Files); err != nil {
		return err
	}
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	err = checkpoint.WriteDir(o.Out.Dir, m.Dir, entries, checkpoint.WriteOptions{
		MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: meta,
		Extra: map[string][]byte{manifest.File: js},
	})
	if err != nil {
		return err
	}
	if o.JSON {
		_, err := stdout.Write(js)
		return err
	}
	return printSAEReport(stdout, o, rep, c.Seconds)
}

func saeMethod(opt sae.Options) string {
	if opt.L1 > 0 {
		return fmt.Sprintf("sae-l1(latents=%d,l1=%g)", opt.Latents, opt.L1)
	}
	return fmt.Sprintf("sae-topk(latents=%d,k=%d)", opt.Latents, opt.K)
}

func saeFlags(o saeOptions, opt sae.Options) map[string]any {
	f := map[string]any{"latents": opt.Latents, "epochs": opt.Epochs, "batch": opt.Batch, "lr": opt.LR,
		"seed": opt.Seed, "threads": opt.Threads, "max_shard_size": o.Out.MaxShardSize, "refit": !opt.NoRefit}
	if opt.L1 > 0 {
		f["l1"] = opt.L1
	} else {
		f["k"] = opt.K
	}
	if o.Tensor != "" {
		f["tensor"] = o.Tensor
	}
	if o.Compare != "" {
		f["compare"] = o.Compare
	}
	if o.Text != "" {
		f["text"] = o.Text
	}
	return f
}

func printSAEReport(w io.Writer, o saeOptions, r *manifest.SAE, secs float64) error {
	tab := &textTable{}
	tab.add("model", o.Model)
	tab.add("output", o.Out.Dir)
	tensorLine := fmt.Sprintf("%s %s %v", r.Tensor, r.DType, r.Shape)
	if r.TiedHead {
		tensorLine += " (tied: the LM head uses the rebuilt embedding too)"
	}
	tab.add("tensor", tensorLine)
	method := fmt.Sprintf("TopK, %d latents, k %d", r.Latents, r.K)
	if r.Variant == "l1" {
		method = fmt.Sprintf("L1, %d latents, λ %g", r.Latents, r.L1)
	}
	refit := "least-squares codes"
	if !r.Refit {
		refit = "encoder codes"
	}
	tab.add("autoencoder", fmt.Sprintf("%s; %d epochs, batch %d, lr %g, seed %d, %d threads, %s (%.1f s, final loss %.4f)",
		method, r.Epochs, r.Batch, r.LR, r.Seed, r.Threads, refit, secs, r.FinalLoss))
	tab.add("tensor bytes", fmt.Sprintf("%s -> %s (%.2fx smaller)", commas(r.TensorSize.Before), commas(r.TensorSize.After), r.TensorSize.Ratio))
	tab.add("model bytes", fmt.Sprintf("%s -> %s (%.2fx smaller)", commas(r.ModelSize.Before), commas(r.ModelSize.After), r.ModelSize.Ratio))
	if e := r.Eval; e != nil {
		tab.add("eval", fmt.Sprintf("%s (%s tokens, ctx %d, %s scored); original perplexity %.4f", e.Text, commas(int64(e.Tokens)), e.Ctx, commas(int64(e.Scored)), e.BasePPL))
	}
	if err := tab.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows := &textTable{right: map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true}}
	rows.add("METHOD", "BYTES", "FVU", "COSINE", "L0", "DEAD", "PPL", "KL MEAN", "KL P99", "TOP-1")
	opt := func(v *float64, f string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(f, *v)
	}
	for _, x := range r.Rows {
		name := "sae"
		if x.Method == "svd" {
			name = fmt.Sprintf("svd rank %d", x.Rank)
		}
		dead := "-"
		if x.Dead != nil {
			dead = fmt.Sprint(*x.Dead)
		}
		var top1 *float64
		if x.Top1 != nil {
			t := 100 * *x.Top1
			top1 = &t
		}
		rows.add(name, commas(x.Bytes), fmt.Sprintf("%.4f", x.FVU), fmt.Sprintf("%.4f", x.Cosine), opt(x.L0, "%.2f"), dead,
			opt(x.PPL, "%.4f"), opt(x.KLMean, "%.4f"), opt(x.KLP99, "%.4f"), opt(top1, "%.2f%%"))
	}
	return rows.write(w)
}
