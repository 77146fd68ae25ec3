package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/shrink"
	"github.com/lmsparse/lmsparse/sparsify"
)

// pruneOptions are the inputs of "lmsparse prune".
type pruneOptions struct {
	Model        string
	Out          outputOptions
	Sparsity     float64
	SparsitySet  bool
	Scope        string
	Pattern      string
	Structured   string
	Shrink       bool
	Include      []string
	Exclude      []string
	Format       string
	ExternalData bool
	JSON         bool
	calib        calibFlags
	fs           *pflag.FlagSet
}

func pruneCommand() *command {
	return &command{
		name:     "prune",
		arg:      "MODEL",
		positive: []string{"calib-samples", "block-size"},
		summary:  "Prune weights by magnitude (per tensor, per row, global, N:M or structured) and store them dense or sparse",
		usage:    "prune MODEL -o OUT (--sparsity S [--scope tensor|row|global] | --pattern N:M | --sparsity S --structured rows|cols|mlp|heads|qheads [--shrink]) [--include GLOB]... [--exclude GLOB]... [--format dense|csr|bitmask|24bitmask|auto] [--json]",
		details:  help("prune"),
		examples: []string{
			"lmsparse prune ./llama -o ./llama-50 --sparsity 0.5",
			"lmsparse prune ./llama -o ./llama-24 --pattern 2:4 --format bitmask",
			"lmsparse prune ./gpt2 -o ./gpt2-g70 --sparsity 0.7 --scope global --format auto --json",
			"lmsparse prune ./llama -o ./llama-mlp --sparsity 0.6 --exclude 'model.layers.*.self_attn.*'",
			"lmsparse prune ./llama -o ./llama-small --sparsity 0.25 --structured mlp,heads --shrink",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o pruneOptions
			o.Out.register(fs)
			fs.Float64Var(&o.Sparsity, "sparsity", 0, "fraction of weights to prune, in [0, 1)")
			fs.StringVar(&o.Scope, "scope", "tensor", "where the magnitude threshold applies: tensor, row or global")
			fs.StringVar(&o.Pattern, "pattern", "", "N:M semi-structured pattern, e.g. 2:4 (instead of --sparsity)")
			fs.StringVar(&o.Structured, "structured", "", "zero whole output rows or input columns (rows, cols: shapes kept), or MLP channels / attention heads (mlp, heads, qheads, mlp,heads)")
			fs.BoolVar(&o.Shrink, "shrink", false, "with --structured mlp|heads|qheads: remove the units (smaller shapes, config.json updated) instead of zeroing them")
			fs.StringArrayVar(&o.Include, "include", nil, "also prune tensors matching this glob (repeatable)")
			fs.StringArrayVar(&o.Exclude, "exclude", nil, "do not prune tensors matching this glob (repeatable)")
			fs.StringVar(&o.Format, "format", "dense", "storage of pruned tensors: dense, csr, bitmask, 24bitmask (2:4) or auto")
			fs.BoolVar(&o.ExternalData, "external-data", false, "ONNX: write tensors of 1 KiB or more to one external .data file")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON (the content of lmsparse.json)")
			o.calib.register(fs)
			o.fs = fs
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				o.Model = args[0]
				o.SparsitySet = fs.Changed("sparsity")
				if fs.Changed("scope") && (o.Pattern != "" || o.Structured != "") {
					return usageErrorf("prune: --scope applies to unstructured --sparsity only, not with --pattern or --structured")
				}
				if err := o.Out.check("prune"); err != nil {
					return err
				}
				return runPrune(ctx, o, stdout, stderr)
			}
		},
	}
}

// method validates the flags and turns them into a prune.Method.
func (o *pruneOptions) method() (prune.Method, error) {
	var m prune.Method
	switch o.Format {
	case "dense", "csr", "bitmask", "24bitmask", "auto", "sparse":
	default:
		return m, usageErrorf("prune: --format %q: want dense, csr, bitmask, 24bitmask or auto (ONNX: dense, sparse or auto)", o.Format)
	}
	if o.Pattern != "" {
		if o.SparsitySet {
			return m, usageErrorf("prune: give either --sparsity or --pattern, not both (N:M sets the sparsity to 1-N/M)")
		}
		var err error
		if m, err = prune.ParsePattern(o.Pattern); err != nil {
			return m, usageErrorf("prune: --pattern %q: %s", o.Pattern, prune.Reason(err))
		}
	} else {
		if !o.SparsitySet {
			return m, usageErrorf("prune: --sparsity (or --pattern) is required")
		}
		m = prune.Method{Sparsity: o.Sparsity, Scope: prune.Scope(o.Scope), Structured: prune.Structure(o.Structured)}
		if o.Structured != "" {
			m.Scope = ""
		}
	}
	if err := m.Validate(); err != nil {
		return m, usageErrorf("prune: %s", prune.Reason(err))
	}
	return m, nil
}

// pruneErr adds the command's name, and flag hints, to a library error
// about the request.
func pruneErr(cmd string, err error) error {
	switch {
	case errors.Is(err, sparsify.ErrNoTargets):
		return fmt.Errorf("%s: %w; use --include", cmd, err)
	case errors.Is(err, sparsify.ErrInvalid):
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return err
}

func runPrune(ctx context.Context, o pruneOptions, stdout, stderr io.Writer) error {
	if o.Shrink || shrink.IsUnits(o.Structured) {
		return runShrink(ctx, o, stdout, stderr)
	}
	method, err := o.method()
	if err != nil {
		return err
	}
	_, isONNX := checkpoint.ONNXPath(o.Model)
	if !isONNX && (o.Format == "sparse" || o.ExternalData) {
		return usageErrorf("prune: --format sparse and --external-data are for ONNX models; a safetensors checkpoint takes dense, csr, bitmask, 24bitmask or auto")
	}
	if isONNX && o.Format != "dense" && o.Format != "sparse" && o.Format != "auto" {
		return usageErrorf("prune: --format %s is for safetensors; an ONNX model is written dense, sparse (sparse_initializer) or auto", o.Format)
	}
	show := newProgress(stderr, "prune", false, false)
	defer show.close()
	so := sparsify.Options{Method: method, Include: o.Include, Exclude: o.Exclude,
		Format: sparsify.Format(o.Format), MaxShardSize: o.Out.MaxShardSize, ExternalData: o.ExternalData, Progress: show.event}
	if err := o.calib.apply(o.fs, "prune", &so); err != nil {
		return err
	}
	if so.Algorithm != sparsify.Magnitude && os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(eval.GCPercent)) // as eval: the peak stays near the live heap
	}
	job, err := sparsify.Plan(ctx, o.Model, so)
	if err != nil {
		return pruneErr("prune", err)
	}
	defer job.Close()
	if so.Range != nil { // one worker's part, for merge-shards
		part, err := job.ExecutePart(ctx, o.Out.Dir)
		if err == nil {
			fmt.Fprintf(stdout, "wrote %s: %s\n", o.Out.Dir, part)
			report.WriteNotes(stderr, job.Notes())
		}
		return pruneErr("prune", err)
	}
	man, err := writeOutput(ctx, stderr, o.Out, job.InputDir(), func(out *checkpoint.Output) (*manifest.Manifest, error) {
		return job.Execute(ctx, out)
	})
	if err != nil {
		return pruneErr("prune", err)
	}
	for _, n := range job.Notes() {
		fmt.Fprintf(stderr, "lmsparse: warning: %s\n", n)
	}
	return report.PrintManifest(stdout, man, o.JSON)
}

// runShrink prunes whole MLP channels or attention heads (package shrink).
func runShrink(ctx context.Context, o pruneOptions, stdout, stderr io.Writer) error {
	var so sparsify.Options
	if err := o.calib.apply(o.fs, "prune", &so); err != nil {
		return err
	}
	if !o.SparsitySet || o.Pattern != "" || len(o.Include)+len(o.Exclude) > 0 || o.Format != "dense" || so.Algorithm == sparsify.SparseGPT || so.OWL != nil || so.Pipeline != "" || so.Range != nil {
		return usageErrorf("prune: --structured mlp|heads|qheads [--shrink] takes --sparsity S (the fraction of units per block) and --method magnitude or wanda, not --pattern, --include, --exclude, --format, sparsegpt, --owl, --independent, --layers or --shard")
	}
	show := newProgress(stderr, "prune", false, false)
	defer show.close()
	sh := shrink.Options{Units: o.Structured, Sparsity: o.Sparsity, Remove: o.Shrink, MaxShardSize: o.Out.MaxShardSize, Threads: so.Threads, Progress: show.event}
	if so.Algorithm == sparsify.Wanda {
		sh.Calib = &so.Calib
	}
	job, err := shrink.Plan(ctx, o.Model, sh)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	defer job.Close()
	man, err := writeOutput(ctx, stderr, o.Out, job.InputDir(), func(out *checkpoint.Output) (*manifest.Manifest, error) { return job.Execute(ctx, out) })
	if err != nil {
		return err
	}
	return report.PrintManifest(stdout, man, o.JSON)
}
