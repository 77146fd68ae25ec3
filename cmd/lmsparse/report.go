package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/compress"
)

// reportOptions are the inputs of "lmsparse report".
type reportOptions struct {
	Dir    string
	Charts string
}

func reportCommand() *command {
	return &command{
		name:     "report",
		summary:  "Re-render a compress output's report.md and report.html from report.json, or merge a sharded sweep's parts (--merge)",
		usage:    "report OUT [--charts DIR] | report --merge PART.json... -o OUT",
		details:  help("report"),
		examples: []string{"lmsparse report ./llama-small", "lmsparse report --merge parts/sweep-*.json -o ./out"},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o reportOptions
			fs.StringVar(&o.Charts, "charts", "", "also write each chart as DIR/<chart>.svg")
			merge := fs.Bool("merge", false, "merge the partial files of a sharded sweep (compress --shard) into the reports in -o OUT")
			out := fs.StringP("output", "o", "", "with --merge: the directory to write report.json, report.md and report.html into")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if *merge != (*out != "") || *merge && (len(args) == 0 || o.Charts != "") {
					return usageErrorf("report: --merge wants the partial files of every shard and -o OUT, without --charts")
				} else if *merge {
					rep, err := compress.MergeInto(args, *out)
					return printOutcome(stdout, stderr, "report", rep, err)
				}
				if len(args) != 1 {
					return usageErrorf("report: want exactly one OUT argument, got %d (see 'lmsparse report --help')", len(args))
				}
				o.Dir = args[0]
				return runReport(ctx, o, stdout, stderr)
			}
		},
	}
}

func runReport(ctx context.Context, o reportOptions, stdout, stderr io.Writer) error {
	rep, err := compress.Rerender(o.Dir, o.Charts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, rep.Headline())
	return err
}
