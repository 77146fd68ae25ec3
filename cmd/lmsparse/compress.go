package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/spf13/pflag"
)

// compressOptions are the inputs of "lmsparse compress".
type compressOptions struct {
	Model       string
	Out         outputOptions
	RecipeFile  string
	PrintRecipe bool
	Quiet       bool
	Threads     int
	Shard       string // "i/n", parsed into shard
	Partial     string
	shard       model.Shard
	fs          *pflag.FlagSet
	flags       compressFlags
}

// compressFlags are the flags that override recipe fields.
type compressFlags struct {
	sparsity, maxPPL, maxKL, minTop1, l1, lr   float64
	scope, pattern, structured, format, text   string
	saeTensor, sweep                           string
	include, exclude, sweepMethods             []string
	ctx, stride, maxTokens, latents, k, epochs int
	batch, calibSamples, calibLen, blockSize   int
	seed                                       uint64
	sae, owl, find, shrink                     bool
	method, calib                              string
	damp                                       float64
}

func compressCommand() *command {
	return &command{
		name:    "compress",
		arg:     "MODEL",
		summary: "Prune, compress the embedding, write, evaluate against the original and report, with CI gates",
		usage:   "compress MODEL -o OUT [--recipe FILE.yaml] [--text FILE] [prune and sae flags] [--max-ppl-ratio R] [--max-kl K] [--min-top1 A] [--sweep S1,S2,... [--sweep-methods M1,M2,...] [--shard I/N --partial PART.json]] [--print-recipe] [--quiet]",
		details: help("compress"),
		examples: []string{
			"lmsparse compress ./llama -o ./llama-small --sparsity 0.5 --format auto --text held-out.txt --max-ppl-ratio 1.2",
			"lmsparse compress ./llama -o ./out --recipe recipe.yaml --sweep 0.3,0.5,0.7 --sweep-methods magnitude,wanda,sparsegpt",
			"lmsparse compress ./llama -o ./out --recipe recipe.yaml --sweep 0.3,0.5,0.7 --shard 0/4 --partial parts/sweep-0.json",
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
			fs.StringVar(&f.structured, "structured", "", "prune: rows or cols (zeroed, shapes kept), or mlp, heads, mlp,heads (whole units)")
			fs.BoolVar(&f.shrink, "shrink", false, "prune: remove the --structured mlp|heads units (smaller shapes and config.json)")
			fs.StringArrayVar(&f.include, "include", nil, "prune: also prune tensors matching this glob (repeatable)")
			fs.StringArrayVar(&f.exclude, "exclude", nil, "prune: do not prune tensors matching this glob (repeatable)")
			fs.StringVar(&f.method, "method", "magnitude", "prune: magnitude, wanda or sparsegpt (calibrated on --calib)")
			fs.StringVar(&f.calib, "calib", "self", "prune: calibration text file, or self (sampled from the model)")
			fs.IntVar(&f.calibSamples, "calib-samples", 0, "prune: calibration windows (default 64)")
			fs.IntVar(&f.calibLen, "calib-len", 0, "prune: tokens per calibration window (default 128)")
			fs.Float64Var(&f.damp, "damp", 0, "prune: sparsegpt Hessian damping (default 0.01)")
			fs.IntVar(&f.blockSize, "block-size", 0, "prune: sparsegpt columns per block (default 128)")
			fs.BoolVar(&f.owl, "owl", false, "prune: outlier-weighted block sparsities (OWL)")
			fs.BoolVar(&f.find, "find-sparsity", false, "search the highest sparsity passing every gate (to 0.01) and write it")
			fs.StringVar(&f.format, "format", "dense", "store: dense, csr, bitmask, 24bitmask or auto")
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
			fs.StringSliceVar(&f.sweepMethods, "sweep-methods", nil, "sweep: prune each sparsity with each of these methods, e.g. magnitude,wanda,sparsegpt (default: --method)")
			fs.StringVar(&o.Shard, "shard", "", "sweep: run only shard I of N (0 ≤ I < N) of the run's work units; needs --partial")
			fs.StringVar(&o.Partial, "partial", "", "sweep: write the shard's results to this JSON file, for report --merge")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				o.Model = args[0]
				if !o.PrintRecipe {
					if err := o.Out.check("compress"); err != nil {
						return err
					}
				}
				var err error
				if o.shard, err = model.ParseShard(o.Shard); (o.Shard == "") != (o.Partial == "") || o.Shard != "" && err != nil {
					return usageErrorf("compress: --shard I/N (0 ≤ I < N, e.g. 0/4) and --partial PART.json go together")
				} else if err := checkPath("compress", "partial", "its directory", filepath.Dir(o.Partial)); err != nil {
					return err
				}
				return runCompress(ctx, o, stdout, stderr)
			}
		},
	}
}

// effectiveRecipe loads the recipe file (if any) and applies the flags.
func (o *compressOptions) effectiveRecipe() (*compress.Recipe, error) {
	r := &compress.Recipe{Version: compress.RecipeVersion}
	if o.RecipeFile != "" {
		var err error
		if r, err = compress.LoadRecipe(o.RecipeFile); err != nil {
			return nil, err
		}
	}
	fs, f := o.fs, &o.flags
	ov := compress.Override{SAE: f.sae, Shrink: f.shrink,
		Sparsity: changed(fs, "sparsity", f.sparsity), Pattern: changed(fs, "pattern", f.pattern), Structured: changed(fs, "structured", f.structured),
		Scope: changed(fs, "scope", f.scope), Include: changed(fs, "include", f.include), Exclude: changed(fs, "exclude", f.exclude),
		Method: changed(fs, "method", f.method), Calib: changed(fs, "calib", f.calib), CalibSamples: changed(fs, "calib-samples", f.calibSamples),
		CalibLen: changed(fs, "calib-len", f.calibLen), Damp: changed(fs, "damp", f.damp), BlockSize: changed(fs, "block-size", f.blockSize), OWL: f.owl,
		SAETensor: changed(fs, "sae-tensor", f.saeTensor), Latents: changed(fs, "latents", f.latents), K: changed(fs, "k", f.k),
		L1: changed(fs, "l1", f.l1), Epochs: changed(fs, "epochs", f.epochs), Batch: changed(fs, "batch", f.batch), LR: changed(fs, "lr", f.lr),
		Seed: changed(fs, "seed", f.seed), Format: changed(fs, "format", f.format),
		MaxShardSize: changed(fs, "max-shard-size", strconv.FormatInt(o.Out.MaxShardSize, 10)),
		Text:         changed(fs, "text", f.text), Ctx: changed(fs, "ctx", f.ctx), Stride: changed(fs, "stride", f.stride), MaxTokens: changed(fs, "max-tokens", f.maxTokens),
		MaxPPLRatio: changed(fs, "max-ppl-ratio", f.maxPPL), MaxKL: changed(fs, "max-kl", f.maxKL), MinTop1: changed(fs, "min-top1", f.minTop1),
		SweepMethods: changed(fs, "sweep-methods", f.sweepMethods)}
	if fs.Changed("sweep") {
		sweep, err := compress.ParseSweep(f.sweep)
		if err != nil {
			return nil, err
		}
		ov.Sweep = &sweep
	}
	if f.find && ov.Sparsity == nil && (r.Prune == nil || r.Prune.Sparsity == nil) {
		zero := 0.0 // a placeholder: the search sets it
		ov.Sparsity = &zero
	}
	if !f.sae && r.SAE == nil {
		for _, name := range []string{"sae-tensor", "latents", "k", "l1", "epochs", "batch", "lr", "seed"} {
			if fs.Changed(name) {
				return nil, usageErrorf("compress: --%s sets the sae stage: add --sae (or an sae stage to the recipe) to train the autoencoder", name)
			}
		}
	}
	r.Apply(ov)
	if err := r.Normalize(); err != nil {
		if errors.Is(err, compress.ErrEmpty) {
			return nil, fmt.Errorf("%w (give --sparsity, --pattern or --sae)", err)
		}
		return nil, err
	}
	return r, nil
}

func runCompress(ctx context.Context, o compressOptions, stdout, stderr io.Writer) error {
	r, err := o.effectiveRecipe()
	if err != nil {
		return compressErr(err)
	}
	if o.PrintRecipe {
		y, err := r.YAML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(y)
		return err
	}
	show := newProgress(stderr, "compress", o.Quiet, true)
	defer show.close()
	plan, err := compress.NewPlan(ctx, o.Model, o.Out.Dir, r, compress.Options{Force: o.Out.Force, MaxShardSize: o.Out.MaxShardSize,
		Threads: o.Threads, Progress: show.event, FindSparsity: o.flags.find, Shard: o.shard})
	if err != nil {
		return compressErr(err)
	}
	defer plan.Close()
	if o.Shard != "" { // one shard of a sharded sweep: its partial file, merged by report --merge
		part, err := plan.RunShard(ctx, o.Partial)
		if report.WriteNotes(stderr, plan.Notes()); err == nil {
			fmt.Fprintf(stdout, "%s → %s\n", part, o.Partial)
		}
		return compressErr(err)
	}
	rep, err := plan.Run(ctx)
	report.WriteNotes(stderr, plan.Notes())
	show.close()
	return printOutcome(stdout, stderr, "compress", rep, compressErr(err))
}

// printOutcome prints a report's outcome (nothing without one); it returns err.
func printOutcome(stdout, stderr io.Writer, verb string, rep *report.Report, err error) error {
	if rep != nil {
		rep.WriteOutcome(stdout, stderr, verb)
	}
	return err
}

// compressErr adds the command's name to library errors about the request.
func compressErr(err error) error {
	switch {
	case errors.Is(err, compress.ErrInvalid):
		return fmt.Errorf("compress: %w", err)
	case errors.Is(err, sparsify.ErrInvalid):
		return pruneErr("prune", err)
	}
	return err
}

// changed returns &v when flag name was given on the command line, else nil.
func changed[T any](fs *pflag.FlagSet, name string, v T) *T {
	if fs.Changed(name) {
		return &v
	}
	return nil
}
