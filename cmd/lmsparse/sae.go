package main

import (
	"context"
	"errors"
	"io"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/saestore"
)

// saeOptions are the inputs of "lmsparse sae". Latents, K and Epochs of 0
// (flag not given) take the defaults of package saestore; an explicit 0 is
// refused.
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
}

// store returns the library's options (without progress).
func (o *saeOptions) store() saestore.Options {
	return saestore.Options{Tensor: o.Tensor, Latents: o.Latents, K: o.K, L1: o.L1, Epochs: o.Epochs, Batch: o.Batch,
		LR: o.LR, Seed: o.Seed, Threads: o.Threads, NoRefit: o.NoRefit}
}

func saeCommand() *command {
	return &command{
		name: "sae",
		arg:  "MODEL",
		// Package saestore reads 0 as "the default": the command line
		// refuses it.
		positive: []string{"latents", "k", "epochs", "batch"},
		summary:  "Replace the token embedding by sparse codes over a learned dictionary (sparse autoencoder)",
		usage:    "sae MODEL -o OUT [--tensor NAME] [--latents M] [--k K | --l1 λ] [--epochs N] [--batch B] [--lr η] [--seed S] [--threads T] [--compare svd] [--text FILE] [--json]",
		details:  help("sae"),
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
			fs.IntVar(&o.Batch, "batch", sae.DefaultBatch, "rows per Adam step")
			fs.Float64Var(&o.LR, "lr", sae.DefaultLR, "Adam step size")
			fs.Uint64Var(&o.Seed, "seed", 0, "random seed (initialisation and shuffling)")
			fs.IntVar(&o.Threads, "threads", runtime.NumCPU(), "threads")
			fs.StringVar(&o.Compare, "compare", "", "also fit a baseline of equal bytes: svd")
			fs.StringVar(&o.Text, "text", "", "held-out text: evaluate against the original (ppl, KL, top-1)")
			fs.BoolVar(&o.NoRefit, "no-refit", false, "store the encoder's code values instead of least-squares ones")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON (the content of lmsparse.json)")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				o.Model = args[0]
				if fs.Changed("l1") && fs.Changed("k") {
					return usageErrorf("sae: give either --k (TopK SAE) or --l1 (L1 SAE), not both")
				}
				if fs.Changed("l1") && !(o.L1 > 0) {
					return usageErrorf("sae: --l1 %g: must be positive", o.L1)
				}
				if o.LR == 0 && fs.Changed("lr") {
					return usageErrorf("sae: --lr 0: must be a positive number")
				}
				if o.Compare != "" && o.Compare != "svd" {
					return usageErrorf("sae: --compare %q: the only baseline is svd", o.Compare)
				}
				if err := o.Out.check("sae"); err != nil {
					return err
				}
				return runSAE(ctx, o, stdout, stderr)
			}
		},
	}
}

// saeTargetError turns saestore's missing-tensor error into a usage error
// that names the flag choosing the tensor; other errors pass unchanged.
func saeTargetError(err error, flag string) error {
	var nf *saestore.NotFoundError
	if !errors.As(err, &nf) {
		return err
	}
	if nf.Name == "" {
		return usageErrorf("sae: %v; name the tensor with %s", nf, flag)
	}
	return usageErrorf("sae: %v", nf)
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
	opts := o.store()
	show := newProgress(stderr, "sae", false, false)
	defer show.close()
	opts.Progress = show.event
	job, err := saestore.Plan(ctx, m, opts)
	if err != nil {
		return saeTargetError(err, "--tensor")
	}
	var ev *saestore.Evaluator
	if o.Text != "" {
		text, err := eval.ReadText(o.Text)
		if err != nil {
			return evalError(err)
		}
		tok, err := eval.LoadTokenizer(o.Model, "")
		if err != nil {
			return evalError(err)
		}
		warnInvalidUTF8(stderr, text)
		opts := eval.Options{BaseLabel: o.Model, Progress: show.event}
		if ev, err = saestore.NewEvaluator(m, text, tok, o.Threads, opts); err != nil {
			return evalError(err)
		}
	}
	res, err := job.Execute(ctx)
	if err != nil {
		return err
	}
	var svd *saestore.SVDBaseline
	if o.Compare == "svd" {
		if svd, err = res.CompareSVD(); err != nil {
			return err
		}
	}
	if ev != nil {
		if err := res.Evaluate(ctx, ev, svd); err != nil {
			return evalError(err)
		}
	}

	flags := map[string]any{"max_shard_size": o.Out.MaxShardSize}
	if o.Compare != "" {
		flags["compare"] = o.Compare
	}
	if o.Text != "" {
		flags["text"] = o.Text
	}
	man, err := writeOutput(ctx, stderr, o.Out, m.Dir, func(out *checkpoint.Output) (*manifest.Manifest, error) {
		return res.Write(out, o.Out.MaxShardSize, flags)
	})
	if err != nil {
		return err
	}
	if o.JSON {
		js, err := man.JSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(js)
		return err
	}
	return report.WriteSAE(stdout, o.Model, o.Out.Dir, res.Report, res.Compressed.Seconds)
}
