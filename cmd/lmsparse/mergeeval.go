package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/eval"
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
