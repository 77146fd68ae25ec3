package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
)

// inspectOptions are the inputs of "lmsparse inspect".
type inspectOptions struct {
	Model string
	JSON  bool
}

func inspectCommand() *command {
	return &command{
		name:    "inspect",
		arg:     "MODEL",
		summary: "Show a checkpoint's architecture and every tensor's dtype, shape, size, zeros and NaN/Inf counts",
		usage:   "inspect MODEL [--json]",
		details: help("inspect"),
		examples: []string{
			"lmsparse inspect ../shared/models/stories260k",
			"lmsparse inspect ./my-model/model.safetensors --json | jq .totals",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o inspectOptions
			fs.BoolVar(&o.JSON, "json", false, "print a JSON report instead of a table")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				o.Model = args[0]
				return runInspect(ctx, o, stdout, stderr)
			}
		},
	}
}

func runInspect(ctx context.Context, o inspectOptions, stdout, stderr io.Writer) error {
	rep, err := checkpoint.InspectPath(ctx, o.Model)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return report.WriteInspect(stdout, rep)
}
