package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/report/html"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// compressOptions are the inputs of "lmsparse compress".
type compressOptions struct {
	Model       string
	Out         outputOptions
	RecipeFile  string
	PrintRecipe bool
	Quiet       bool
	Threads     int
	fs          *pflag.FlagSet
	flags       compressFlags
}

// compressFlags are the flags that override recipe fields.
type compressFlags struct {
	sparsity, maxPPL, maxKL, minTop1, l1, lr   float64
	scope, pattern, structured, format, text   string
	saeTensor, sweep                           string
	include, exclude                           []string
	ctx, stride, maxTokens, latents, k, epochs int
	batch                                      int
	seed                                       uint64
	sae                                        bool
}

func compressCommand() *command {
	return &command{
		name:    "compress",
		summary: "Prune, compress the embedding, write, evaluate against the original and report, with CI gates",
		usage:   "compress MODEL -o OUT [--recipe FILE.yaml] [--text FILE] [prune and sae flags] [--max-ppl-ratio R] [--max-kl K] [--min-top1 A] [--sweep S1,S2,...] [--print-recipe] [--quiet]",
		details: `Runs a recipe's stages in order — prune → sae → store → eval → gates — and
writes OUT: the compressed checkpoint, lmsparse.json, and the reports
report.json (schema lmsparse.report/v1), report.md (for a CI job summary)
and report.html (self-contained, with charts). The recipe is YAML (schema
in README.md); flags override its fields, and --print-recipe prints the
effective recipe without running it.

Fidelity is measured on the written checkpoint against the original MODEL
(perplexity, bits per byte, KL, top-1 agreement; the protocol of "lmsparse
eval"). Gates compare it with thresholds: --max-ppl-ratio (ppl / original
ppl), --max-kl (mean KL, nats) and --min-top1 (top-1 agreement in [0, 1]).
When a gate fails, every file is still written, the failing gate is named on
stderr and in the reports, and the exit code is 3.

--sweep 0.3,0.5,0.7 also prunes and evaluates each sparsity with the same
method, draws perplexity and KL against sparsity, and with gates reports the
highest sparsity that passes them all.

OUT is assembled beside its final place and renamed when complete: an
interrupted run (Ctrl-C) leaves nothing under OUT's final name.
"lmsparse report OUT" re-renders report.md and report.html from report.json.`,
		examples: []string{
			"lmsparse compress ./llama -o ./llama-small --sparsity 0.5 --format auto --text held-out.txt --max-ppl-ratio 1.2",
			"lmsparse compress ./llama -o ./out --recipe recipe.yaml --sweep 0.3,0.5,0.7",
			"lmsparse compress ./llama -o ./out --recipe recipe.yaml --print-recipe",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			o := compressOptions{fs: fs}
			f := &o.flags
			o.Out.register(fs)
			fs.StringVar(&o.RecipeFile, "recipe", "", "recipe file (YAML); flags override its fields")
			fs.BoolVar(&o.PrintRecipe, "print-recipe", false, "print the effective recipe and exit")
			fs.BoolVar(&o.Quiet, "quiet", false, "no progress or stage lines on stderr")
			fs.IntVar(&o.Threads, "threads", runtime.NumCPU(), "threads of the forward pass and the SAE")
			fs.Float64Var(&f.sparsity, "sparsity", 0, "prune: fraction of weights to prune, in [0, 1)")
			fs.StringVar(&f.scope, "scope", "tensor", "prune: tensor, row or global")
			fs.StringVar(&f.pattern, "pattern", "", "prune: N:M pattern instead of --sparsity")
			fs.StringVar(&f.structured, "structured", "", "prune: rows or cols")
			fs.StringArrayVar(&f.include, "include", nil, "prune: also prune tensors matching this glob (repeatable)")
			fs.StringArrayVar(&f.exclude, "exclude", nil, "prune: do not prune tensors matching this glob (repeatable)")
			fs.StringVar(&f.format, "format", "dense", "store: dense, csr, bitmask or auto")
			fs.BoolVar(&f.sae, "sae", false, "compress the token embedding with a sparse autoencoder")
			fs.StringVar(&f.saeTensor, "sae-tensor", "", "sae: tensor to compress (default: the token embedding)")
			fs.IntVar(&f.latents, "latents", 0, "sae: dictionary size m")
			fs.IntVar(&f.k, "k", 0, "sae: nonzeros per row (TopK SAE)")
			fs.Float64Var(&f.l1, "l1", 0, "sae: L1 penalty λ (L1 SAE instead of TopK)")
			fs.IntVar(&f.epochs, "epochs", 0, "sae: training epochs")
			fs.IntVar(&f.batch, "batch", 0, "sae: rows per batch")
			fs.Float64Var(&f.lr, "lr", 0, "sae: Adam learning rate")
			fs.Uint64Var(&f.seed, "seed", 0, "sae: random seed")
			fs.StringVar(&f.text, "text", "", "eval: held-out text file")
			fs.IntVar(&f.ctx, "ctx", 0, "eval: window length (default min(max positions, 512))")
			fs.IntVar(&f.stride, "stride", 0, "eval: stride (default ctx)")
			fs.IntVar(&f.maxTokens, "max-tokens", 0, "eval: score only the first N tokens")
			fs.Float64Var(&f.maxPPL, "max-ppl-ratio", 0, "gate: fail when ppl / original ppl is above R")
			fs.Float64Var(&f.maxKL, "max-kl", 0, "gate: fail when the mean KL(original‖compressed) is above K nats")
			fs.Float64Var(&f.minTop1, "min-top1", 0, "gate: fail when top-1 agreement is below A (0..1)")
			fs.StringVar(&f.sweep, "sweep", "", "also evaluate these sparsities, e.g. 0.3,0.5,0.7")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("compress: want exactly one MODEL argument, got %d (see 'lmsparse compress --help')", len(args))
				}
				o.Model = args[0]
				if o.Threads < 1 {
					return usageErrorf("compress: --threads %d: must be at least 1", o.Threads)
				}
				if !o.PrintRecipe {
					if err := o.Out.check("compress"); err != nil {
						return err
					}
				}
				return runCompress(ctx, o, stdout, stderr)
			}
		},
	}
}

// effectiveRecipe loads the recipe file (if any) and applies the flags.
func (o *compressOptions) effectiveRecipe() (*recipe, error) {
	r := &recipe{Version: recipeVersion, lines: map[string]int{}}
	if o.RecipeFile != "" {
		var err error
		if r, err = loadRecipe(o.RecipeFile); err != nil {
			return nil, err
		}
	}
	fs, f := o.fs, &o.flags
	ch := fs.Changed
	if ch("sparsity") || ch("pattern") || ch("structured") || ch("scope") || ch("include") || ch("exclude") {
		if r.Prune == nil {
			r.Prune = &recipePrune{}
		}
		p := r.Prune
		if ch("sparsity") {
			s := f.sparsity
			p.Sparsity = &s
		}
		if ch("pattern") {
			p.Pattern, p.Method = f.pattern, "nm"
			if !ch("sparsity") {
				p.Sparsity = nil
			}
		}
		if ch("structured") {
			p.Structured, p.Method = f.structured, "structured"
		}
		if ch("scope") {
			p.Scope = f.scope
		}
		if ch("include") {
			p.Include = f.include
		}
		if ch("exclude") {
			p.Exclude = f.exclude
		}
	}
	if f.sae || ch("latents") || ch("k") || ch("l1") || ch("epochs") || ch("batch") || ch("lr") || ch("seed") || ch("sae-tensor") {
		if r.SAE == nil {
			r.SAE = &recipeSAE{}
		}
		s := r.SAE
		if ch("sae-tensor") {
			s.Tensor = f.saeTensor
		}
		if ch("latents") {
			s.Latents = f.latents
		}
		if ch("k") {
			s.K = f.k
		}
		if ch("l1") {
			s.L1 = f.l1
		}
		if ch("epochs") {
			s.Epochs = f.epochs
		}
		if ch("batch") {
			s.Batch = f.batch
		}
		if ch("lr") {
			s.LR = f.lr
		}
		if ch("seed") {
			s.Seed = f.seed
		}
	}
	if ch("format") {
		r.Store.Format = f.format
	}
	if ch("max-shard-size") {
		r.Store.MaxShardSize = strconv.FormatInt(o.Out.MaxShardSize, 10)
	}
	if ch("text") || ch("ctx") || ch("stride") || ch("max-tokens") {
		if r.Eval == nil {
			r.Eval = &recipeEval{}
		}
		if ch("text") {
			r.Eval.Text = f.text
		}
		if ch("ctx") {
			r.Eval.Ctx = f.ctx
		}
		if ch("stride") {
			r.Eval.Stride = f.stride
		}
		if ch("max-tokens") {
			r.Eval.MaxTokens = f.maxTokens
		}
	}
	if ch("max-ppl-ratio") || ch("max-kl") || ch("min-top1") {
		if r.Gates == nil {
			r.Gates = &recipeGates{}
		}
		if ch("max-ppl-ratio") {
			v := f.maxPPL
			r.Gates.MaxPPLRatio = &v
		}
		if ch("max-kl") {
			v := f.maxKL
			r.Gates.MaxKL = &v
		}
		if ch("min-top1") {
			v := f.minTop1
			r.Gates.MinTop1 = &v
		}
	}
	if ch("sweep") {
		r.Sweep = nil
		for _, s := range strings.Split(f.sweep, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, usageErrorf("compress: --sweep %q: want comma-separated sparsities such as 0.3,0.5,0.7", f.sweep)
			}
			r.Sweep = append(r.Sweep, v)
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	r.fillDefaults()
	return r, nil
}

// stageLog prints one line per stage on stderr (unless quiet), and draws
// progress bars only when stderr is a terminal.
type stageLog struct {
	w     io.Writer
	quiet bool
	tty   bool
	start time.Time
	times []report.Timing
}

func (l *stageLog) begin() { l.start = time.Now() }

func (l *stageLog) done(stage, format string, args ...any) {
	secs := time.Since(l.start).Seconds()
	l.times = append(l.times, report.Timing{Stage: stage, Seconds: roundTo(secs, 3)})
	if !l.quiet {
		fmt.Fprintf(l.w, "lmsparse: compress: %s: %s (%.2f s)\n", stage, fmt.Sprintf(format, args...), secs)
	}
	l.start = time.Now()
}

// bar returns a progress callback drawing a bar on a terminal, else nil.
func (l *stageLog) bar(what string) func(done, total int) {
	if l.quiet || !l.tty {
		return nil
	}
	var b *progressbar.ProgressBar
	return func(done, total int) {
		if b == nil {
			b = progressbar.NewOptions(total, progressbar.OptionSetWriter(l.w), progressbar.OptionSetDescription(what),
				progressbar.OptionClearOnFinish(), progressbar.OptionShowCount())
		}
		b.Set(done)
		if done == total {
			b.Finish()
		}
	}
}

func runCompress(ctx context.Context, o compressOptions, stdout, stderr io.Writer) error {
	r, err := o.effectiveRecipe()
	if err != nil {
		return err
	}
	if o.PrintRecipe {
		y, err := r.yaml()
		if err != nil {
			return err
		}
		_, err = stdout.Write(y)
		return err
	}
	maxShard := o.Out.MaxShardSize
	if r.Store.MaxShardSize != "" {
		if maxShard, err = parseByteSize(r.Store.MaxShardSize); err != nil {
			return err
		}
	}
	log := &stageLog{w: stderr, quiet: o.Quiet, tty: isTerminal(stderr)}
	total := time.Now()
	log.begin()
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkpoint.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	// Everything about the eval stage that can fail on bad input is
	// checked before any work.
	var ev *evalSetup
	if r.Eval != nil {
		if ev, err = prepareEval(o.Model, r.Eval, o.Threads); err != nil {
			return err
		}
		r.Eval.Ctx, r.Eval.Stride = ev.ctx, ev.stride // report what ran
	}
	var bg *background // started once the targets are known
	defer func() { bg.stop() }()
	log.done("load", "%s: %d tensors", o.Model, len(m.Names()))

	var j *pruneJob
	var pf *prefetcher
	var method prune.Method
	var entries []safetensors.Entry
	meta, config := copyMeta(m.Metadata()), []byte(nil)
	if r.Prune != nil {
		if method, err = r.pruneMethod(); err != nil {
			return err
		}
		if j, err = newPruneJob(m, method, r.Store.Format, r.Prune.Include, r.Prune.Exclude, r.Prune.Overrides); err != nil {
			return err
		}
		bg = startBackground(ctx, m, j.targets, nil)
		if err := j.prepare(ctx); err != nil {
			return err
		}
		if entries, pf, err = pruneEntries(ctx, m, j.targets, j.buf); err != nil {
			return err
		}
		defer pf.stop()
	} else {
		if entries, err = m.Entries(); err != nil {
			return err
		}
	}
	if bg == nil {
		bg = startBackground(ctx, m, nil, nil)
	}
	var saeRep *report.SAE
	if r.SAE != nil {
		if entries, saeRep, meta, err = applySAEStage(ctx, m, r.SAE, entries, meta, o.Threads, log); err != nil {
			return err
		}
	}
	if j != nil {
		jm, jc, err := j.metadataAndConfig()
		if err != nil {
			return err
		}
		for k, v := range jm {
			meta[k] = v
		}
		config = jc
	}

	if pf != nil {
		pf.start(ctx, entries, maxShard) // after the SAE stage: the final entries
	}
	rep := &report.Report{Schema: report.Schema, Tool: manifest.Tool(), Model: o.Model, Output: o.Out.Dir, Recipe: r, Passed: true}
	var manifestBytes []byte
	err = checkpoint.WriteDir(o.Out.Dir, m.Dir, entries, checkpoint.WriteOptions{
		MaxShardSize: maxShard, Force: o.Out.Force, Metadata: meta, Config: config,
		After: func(stage string) (map[string][]byte, error) {
			var targets []*pruneTarget
			if j != nil {
				targets = j.targets
			}
			res, err := bg.wait()
			if err != nil {
				return nil, err
			}
			man := pruneManifest(m, targets, res.nonzero)
			if saeRep != nil {
				patchSAEManifest(man, saeRep)
			}
			man.Command, man.Flags = "compress", map[string]any{"recipe": r}
			if j != nil {
				man.Method = method.String()
			}
			man.Inputs = res.inputs
			if manifestBytes, err = json.MarshalIndent(man, "", "  "); err != nil {
				return nil, err
			}
			fillReportTotals(rep, man, m, stage)
			summary := fmt.Sprintf("%s: %s → %s bytes of tensors (%.3f× smaller)", o.Out.Dir, report.Commas(rep.Totals.BytesBefore), report.Commas(rep.Totals.BytesAfter), rep.Totals.Ratio)
			if j != nil {
				summary = fmt.Sprintf("%s, %d tensors pruned (%s), %.2f%% of their weights zero", summary, len(targets), method, 100*rep.Totals.TargetSparsity)
			}
			log.done("write", "%s", summary)
			if ev != nil {
				if err := runEvalStage(ctx, ev, stage, rep, r, log); err != nil {
					return nil, err
				}
				if len(r.Sweep) > 0 {
					if err := runSweep(ctx, o, r, m, ev, method, rep, log); err != nil {
						return nil, err
					}
				}
			}
			rep.SAE = saeRep
			rep.Timings = append(log.times, report.Timing{Stage: "total", Seconds: roundTo(time.Since(total).Seconds(), 3)})
			rep.PeakRSS = peakRSS()
			return reportFiles(rep, append(manifestBytes, '\n'))
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep.Headline())
	if failed := rep.FailedGates(); len(failed) > 0 {
		for _, g := range rep.Gates {
			if !g.Passed {
				fmt.Fprintf(stderr, "lmsparse: compress: gate %s failed: %.6g is not %s %.6g\n", g.Name, g.Value, g.Op, g.Threshold)
			}
		}
		return fmt.Errorf("%w: %s (reports in %s)", errGate, strings.Join(failed, ", "), o.Out.Dir)
	}
	return nil
}

// reportFiles renders report.json, report.md and report.html.
func reportFiles(rep *report.Report, manifestJSON []byte) (map[string][]byte, error) {
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	page, err := html.Render(rep)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		manifest.File: manifestJSON,
		"report.json": js,
		"report.md":   rep.Markdown(),
		"report.html": page,
	}, nil
}

// fillReportTotals copies the size report into rep and measures the
// weight files before (the input's) and after (in dir).
func fillReportTotals(rep *report.Report, man *manifest.Manifest, m *checkpoint.Model, dir string) {
	rep.Inputs = man.Inputs
	rep.Tensors = man.Tensors
	rep.Totals = report.Totals{Totals: man.Totals}
	for _, f := range m.Files {
		if st, err := os.Stat(f); err == nil {
			rep.Totals.FileBytesBefore += st.Size()
		}
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".safetensors") {
				if st, err := e.Info(); err == nil {
					rep.Totals.FileBytesAfter += st.Size()
				}
			}
		}
	}
}

// evalSetup is everything the eval stage needs, prepared before any work:
// the text, its tokens and the original model.
type evalSetup struct {
	text     string
	textSize int64
	ids      []int
	cut      bool
	ctx      int
	stride   int
	threads  int
	base     *model.Model
	baseNLL  float64
	baseBPB  float64
}

// prepareEval reads and tokenizes the text with the original model's
// tokenizer and loads the original model, checking ctx and stride.
func prepareEval(modelPath string, e *recipeEval, threads int) (*evalSetup, error) {
	text, err := os.ReadFile(e.Text)
	if err != nil {
		return nil, err
	}
	if len(text) == 0 {
		return nil, usageErrorf("compress: eval text %s is empty", e.Text)
	}
	tokDir := modelPath
	if st, err := os.Stat(modelPath); err == nil && !st.IsDir() {
		tokDir = filepath.Dir(modelPath)
	}
	if _, err := os.Stat(filepath.Join(tokDir, "tokenizer.json")); err != nil {
		return nil, usageErrorf("compress: eval needs %s/tokenizer.json", tokDir)
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, err
	}
	base, err := loadEvalModel(modelPath, threads)
	if err != nil {
		return nil, err
	}
	s := &evalSetup{text: e.Text, textSize: int64(len(text)), threads: threads, base: base, ctx: e.Ctx, stride: e.Stride}
	if s.ctx == 0 {
		s.ctx = min(base.MaxPositions(), 512)
	}
	if s.ctx > base.MaxPositions() || s.ctx < 2 {
		return nil, usageErrorf("compress: eval ctx %d: must be within 2..%d (the model's positions)", s.ctx, base.MaxPositions())
	}
	if s.stride == 0 {
		s.stride = s.ctx
	}
	if s.stride > s.ctx {
		return nil, usageErrorf("compress: eval stride %d is larger than ctx %d", s.stride, s.ctx)
	}
	s.ids = tok.Encode(string(text))
	if e.MaxTokens > 0 && e.MaxTokens < len(s.ids) {
		s.ids, s.cut = s.ids[:e.MaxTokens], true
	}
	if len(s.ids) < 2 {
		return nil, usageErrorf("compress: eval text %s gives %d token(s); scoring needs at least 2", e.Text, len(s.ids))
	}
	for i, id := range s.ids {
		if id >= base.VocabSize() {
			return nil, usageErrorf("compress: the tokenizer gives id %d at position %d, outside the model's vocabulary of %d", id, i, base.VocabSize())
		}
	}
	return s, nil
}

// score evaluates the checkpoint at dir against the original.
func (s *evalSetup) score(ctx context.Context, dir string, progress func(done, total int)) (*model.Result, error) {
	m, err := loadEvalModel(dir, s.threads)
	if err != nil {
		return nil, err
	}
	if m.VocabSize() != s.base.VocabSize() {
		return nil, fmt.Errorf("%s: vocabulary %d differs from the original's %d", dir, m.VocabSize(), s.base.VocabSize())
	}
	so := model.ScoreOptions{Ctx: s.ctx, Stride: s.stride, Base: s.base, Progress: progress}
	if !s.cut {
		so.TextBytes = s.textSize
	}
	return model.Score(ctx, m, s.ids, so)
}

// runEvalStage measures the written checkpoint and applies the gates.
func runEvalStage(ctx context.Context, ev *evalSetup, dir string, rep *report.Report, r *recipe, log *stageLog) error {
	res, err := ev.score(ctx, dir, log.bar("eval"))
	if err != nil {
		return err
	}
	k := res.KL
	f := &report.Fidelity{Text: ev.text, TextBytes: ev.textSize, Ctx: ev.ctx, Stride: ev.stride, Tokens: res.Tokens, Scored: res.Scored,
		PPL: res.PPL, BasePPL: k.BasePPL, PPLRatio: res.PPL / k.BasePPL, LogPPLRatio: k.LogPPLRatio, BitsPerByte: res.BitsPerByte,
		KLMean: k.Mean, KLMax: k.Max, KLP99: k.P99, KLP90: k.P90, KLP50: k.P50, Top1: k.Top1}
	if res.BitsPerByte != 0 {
		f.BaseBitsPerByte = k.BaseNLLSum / math.Ln2 / float64(ev.textSize)
	}
	rep.Fid = f
	rep.Gates = gates(r.Gates, f.PPLRatio, f.KLMean, f.Top1)
	for _, g := range rep.Gates {
		rep.Passed = rep.Passed && g.Passed
	}
	log.done("eval", "perplexity %.6g (original %.6g, ×%.4f), KL %.4g, top-1 %.2f%% on %d tokens", f.PPL, f.BasePPL, f.PPLRatio, f.KLMean, 100*f.Top1, f.Scored)
	return nil
}

// gates evaluates the recipe's gates for one measurement.
func gates(g *recipeGates, pplRatio, kl, top1 float64) []report.Gate {
	if g == nil {
		return nil
	}
	var out []report.Gate
	if g.MaxPPLRatio != nil {
		out = append(out, report.Gate{Name: "max_ppl_ratio", Op: "<=", Threshold: *g.MaxPPLRatio, Value: pplRatio, Passed: pplRatio <= *g.MaxPPLRatio})
	}
	if g.MaxKL != nil {
		out = append(out, report.Gate{Name: "max_kl", Op: "<=", Threshold: *g.MaxKL, Value: kl, Passed: kl <= *g.MaxKL})
	}
	if g.MinTop1 != nil {
		out = append(out, report.Gate{Name: "min_top1", Op: ">=", Threshold: *g.MinTop1, Value: top1, Passed: top1 >= *g.MinTop1})
	}
	return out
}

// runSweep prunes the original at each sweep sparsity with the recipe's
// method (dense, in a temporary directory beside OUT), evaluates it and
// records the curve; with gates, the highest sparsity passing them all.
func runSweep(ctx context.Context, o compressOptions, r *recipe, m *checkpoint.Model, ev *evalSetup, method prune.Method, rep *report.Report, log *stageLog) error {
	parent := filepath.Dir(filepath.Clean(o.Out.Dir))
	for _, s := range r.Sweep {
		if err := ctx.Err(); err != nil {
			return err
		}
		tmp, err := os.MkdirTemp(parent, ".lmsparse-sweep-*")
		if err != nil {
			return err
		}
		dir := filepath.Join(tmp, "model")
		point, err := sweepPoint(ctx, m, r, method, s, dir, ev)
		os.RemoveAll(tmp)
		if err != nil {
			return fmt.Errorf("sweep at sparsity %g: %w", s, err)
		}
		if gs := gates(r.Gates, point.PPLRatio, point.KLMean, point.Top1); gs != nil {
			ok := true
			for _, g := range gs {
				ok = ok && g.Passed
			}
			point.Passed = &ok
			if ok && (rep.Best == nil || s > *rep.Best) {
				best := s
				rep.Best = &best
			}
		}
		rep.Sweep = append(rep.Sweep, point)
	}
	log.done("sweep", "%d sparsities evaluated", len(r.Sweep))
	return nil
}

func sweepPoint(ctx context.Context, m *checkpoint.Model, r *recipe, method prune.Method, s float64, dir string, ev *evalSetup) (report.Point, error) {
	method.Sparsity = s
	var overrides []sparsityOverride
	j, err := newPruneJob(m, method, "dense", r.Prune.Include, r.Prune.Exclude, overrides)
	if err != nil {
		return report.Point{}, err
	}
	if err := j.prepare(ctx); err != nil {
		return report.Point{}, err
	}
	entries, pf, err := pruneEntries(ctx, m, j.targets, j.buf)
	if err != nil {
		return report.Point{}, err
	}
	pf.start(ctx, entries, 0)
	defer pf.stop()
	if err := checkpoint.WriteDir(dir, m.Dir, entries, checkpoint.WriteOptions{Metadata: copyMeta(m.Metadata())}); err != nil {
		return report.Point{}, err
	}
	res, err := ev.score(ctx, dir, nil)
	if err != nil {
		return report.Point{}, err
	}
	// Bytes at this sparsity in the recipe's store format.
	var bytes int64
	byName := map[string]*pruneTarget{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		t := byName[name]
		if t == nil {
			bytes += info.Size
			continue
		}
		bytes += sparse.Sizes(info.DType, t.sRows, t.sCols, t.stored)[chooseEncoding(r.Store.Format, t, j.bitmaskOK)]
	}
	return report.Point{Sparsity: s, PPL: res.PPL, PPLRatio: res.PPL / res.KL.BasePPL, KLMean: res.KL.Mean, Top1: res.KL.Top1, Bytes: bytes}, nil
}
