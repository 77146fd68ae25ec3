package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sparsify"
)

func mergeEvalCommand() *command {
	return &command{
		name:     "merge-eval",
		summary:  "Merge the partial files of a sharded eval into the report of one run",
		usage:    "merge-eval PART.json... [--json] [-o REPORT.json]",
		details:  help("merge-eval"),
		examples: []string{"lmsparse merge-eval parts/part-*.json --json -o eval.json"},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			jsonOut := fs.Bool("json", false, "print the JSON report (as eval --json)")
			out := fs.StringP("output", "o", "", "also write the JSON report to this file")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) == 0 {
					return usageErrorf("merge-eval: want the partial files of every shard (see 'lmsparse merge-eval --help')")
				}
				rep, err := eval.MergeFiles(args)
				if err != nil {
					return fmt.Errorf("merge-eval: %w", err)
				}
				if *out != "" {
					if err := eval.WriteReport(*out, rep); err != nil {
						return err
					}
				}
				return rep.Write(stdout, *jsonOut)
			}
		},
	}
}

func mergeShardsCommand() *command {
	return &command{
		name:     "merge-shards",
		summary:  "Assemble the parts of a calibration split across workers (prune --shard/--layers) into the checkpoint",
		usage:    "merge-shards PART... -o OUT [--model MODEL] [--force] [--json]",
		details:  help("merge-shards"),
		examples: []string{"lmsparse merge-shards parts/part-*.safetensors -o ./llama-sgpt50"},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var out outputOptions
			fs.StringVarP(&out.Dir, "output", "o", "", "output checkpoint directory (required)")
			fs.BoolVar(&out.Force, "force", false, "write into a non-empty output directory")
			model := fs.String("model", "", "the checkpoint the parts were pruned from (default: the path the parts name)")
			jsonOut := fs.Bool("json", false, "print the report as JSON (the content of lmsparse.json)")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) == 0 || out.Dir == "" {
					return usageErrorf("merge-shards: want the part files and -o OUT (see 'lmsparse merge-shards --help')")
				}
				job, err := sparsify.PlanMerge(ctx, args, *model)
				if err != nil {
					return pruneErr("merge-shards", err)
				}
				defer job.Close()
				man, err := writeOutput(ctx, stderr, out, job.InputDir(), func(o *checkpoint.Output) (*manifest.Manifest, error) { return job.Execute(ctx, o) })
				if err != nil {
					return pruneErr("merge-shards", err)
				}
				return report.PrintManifest(stdout, man, *jsonOut)
			}
		},
	}
}
