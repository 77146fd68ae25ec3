package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/report/html"
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
	rep, err := report.Load(filepath.Join(o.Dir, "report.json"))
	if err != nil {
		return err
	}
	page, err := html.Render(rep)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(o.Dir, "report.md"), rep.Markdown()); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(o.Dir, "report.html"), page); err != nil {
		return err
	}
	if o.Charts != "" {
		charts, err := html.Charts(rep)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(o.Charts, 0o755); err != nil {
			return err
		}
		for _, c := range charts {
			if err := atomicfile.WriteBytes(filepath.Join(o.Charts, c.ID+".svg"), c.SVG); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(stdout, rep.Headline())
	return nil
}
