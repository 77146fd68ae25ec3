package main

import (
	"context"
	"encoding/json"
	"io"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/train"
)

func finetuneCommand() *command {
	return &command{
		name:    "finetune",
		arg:     "MODEL",
		summary: "Train a (pruned) model on CPU: recovery with distillation, or L1 sparse training",
		usage:   "finetune MODEL -o OUT (--text FILE | --calib self) [--base ORIGINAL] [--steps N] [--batch B] [--ctx T] [--lr η] [--optimizer adamw|sgd] [--distill α] [--l1 λ] [--target-sparsity S] [--keep-mask] [--seed S] [--threads N] [--eval-text FILE] [--json]",
		details: help("finetune"),
		examples: []string{
			"lmsparse finetune ./s260k-50 -o ./s260k-50-ft --base ../shared/models/stories260k --calib self --samples 2048 --distill 1 --steps 400 --eval-text ../shared/text/tinystories/tinystories_sample.txt",
			"lmsparse finetune ../shared/models/stories260k -o ./s260k-l1 --calib self --l1 0.5 --target-sparsity 0.5 --recover-steps 100",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var out outputOptions
			out.register(fs)
			var o train.JobOptions
			tr := &o.Train
			var calib, opt, sched, format string
			var keep, free, jsonOut bool
			fs.StringVar(&o.Text, "text", "", "training text file (tokenized once, cut into windows of --ctx)")
			fs.StringVar(&calib, "calib", "", "self: train on --samples sequences sampled from the original")
			fs.IntVar(&o.Samples, "samples", train.DefaultSamples, "sequences of --ctx tokens sampled for --calib self")
			fs.StringVar(&o.Base, "base", "", "the dense original to distill from and compare with (default: MODEL)")
			fs.IntVar(&tr.Steps, "steps", 100, "optimizer steps")
			fs.IntVar(&tr.Batch, "batch", 8, "windows per batch")
			fs.IntVar(&tr.Accum, "accum", 1, "batches per step (gradient accumulation)")
			fs.IntVar(&o.Ctx, "ctx", train.DefaultCtx, "tokens per window")
			fs.StringVar(&opt, "optimizer", "adamw", "adamw or sgd")
			fs.Float64Var(&tr.Optim.LR, "lr", 1e-3, "(peak) learning rate")
			fs.StringVar(&sched, "schedule", "constant", "constant or cosine (to --min-lr)")
			fs.Float64Var(&tr.Optim.MinLR, "min-lr", 0, "end of the cosine schedule")
			fs.IntVar(&tr.Optim.Warmup, "warmup", 0, "steps of linear warm-up")
			fs.Float64Var(&tr.Optim.WeightDecay, "weight-decay", 0, "AdamW's decoupled weight decay")
			fs.Float64Var(&tr.Optim.ClipNorm, "clip", 0, "clip the gradient's global norm (0: off)")
			fs.Float64Var(&tr.Distill, "distill", 0, "α: loss (1−α)·CE + α·KL(original‖model)")
			fs.Float64Var(&tr.L1, "l1", 0, "λ of the L1 penalty on target weights (proximal step)")
			fs.Float64Var(&o.TargetSparsity, "target-sparsity", 0, "prune every target to exactly S by magnitude after training")
			fs.IntVar(&o.RecoverSteps, "recover-steps", 0, "steps on the --target-sparsity mask after pruning")
			fs.BoolVar(&keep, "keep-mask", false, "keep the input's zeros exactly zero (default for a pruned input without --l1)")
			fs.BoolVar(&free, "free-mask", false, "let the input's zeros change")
			fs.BoolVar(&tr.Shuffle, "shuffle", false, "visit the windows in a seeded random order")
			fs.Uint64Var(&tr.Seed, "seed", 0, "seed of --calib self and --shuffle")
			fs.IntVar(&tr.Threads, "threads", runtime.NumCPU(), "threads")
			fs.StringVar(&o.EvalText, "eval-text", "", "held-out text scored before and after (ppl, KL, top-1 vs the original)")
			fs.IntVar(&o.EvalCtx, "eval-ctx", 0, "eval window (default min(positions, 512))")
			fs.StringVar(&format, "format", "dense", "storage of the weights: dense, csr, bitmask or auto")
			fs.BoolVar(&jsonOut, "json", false, "print each step's loss as a JSON line, then the manifest")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if err := out.check("finetune"); err != nil {
					return err
				}
				switch {
				case (o.Text == "") == (calib == ""):
					return usageErrorf("finetune: give the training data: --text FILE or --calib self")
				case calib != "" && calib != "self":
					return usageErrorf("finetune: --calib %q: the only source is self (a text file goes to --text)", calib)
				case keep && free:
					return usageErrorf("finetune: --keep-mask and --free-mask exclude each other")
				case o.Base != "":
					if err := checkPath("finetune", "base", "the dense original", o.Base); err != nil {
						return err
					}
				}
				o.Mask = map[bool]train.Mask{true: train.MaskKeep}[keep]
				if free {
					o.Mask = train.MaskFree
				}
				tr.Optim.Name, tr.Optim.Schedule = train.Optimizer(opt), train.Schedule(sched)
				f, err := sparsify.ParseFormat(format)
				if err != nil {
					return usageErrorf("finetune: --%v", err)
				}
				o.Format, o.MaxShardSize, o.Command, o.Flags = f, out.MaxShardSize, "finetune", map[string]any{}
				fs.Visit(func(fl *pflag.Flag) { o.Flags[fl.Name] = fl.Value.String() })
				return runFinetune(ctx, args[0], out, o, jsonOut, stdout, stderr)
			}
		},
	}
}

func runFinetune(ctx context.Context, path string, out outputOptions, o train.JobOptions, jsonOut bool, stdout, stderr io.Writer) error {
	show := newProgress(stderr, "finetune", false, false)
	defer show.close()
	o.Train.Progress = show.event
	enc := json.NewEncoder(stdout)
	if jsonOut {
		o.Train.OnStep = func(s train.Step) { enc.Encode(s) }
	}
	job, err := train.Plan(ctx, path, o)
	if err != nil {
		return err
	}
	defer job.Close()
	res, err := writeOutput(ctx, stderr, out, job.InputDir(), func(dst *checkpoint.Output) (*train.Outcome, error) {
		return job.Execute(ctx, dst)
	})
	if err != nil {
		return err
	}
	if jsonOut {
		return enc.Encode(res.Manifest)
	}
	return report.WriteTraining(stdout, out.Dir, res.Training, res.Manifest.Totals)
}
