package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sparsify"
)

// copyOptions are the inputs of "lmsparse copy".
type copyOptions struct {
	Model string
	Out   outputOptions
}

func copyCommand() *command {
	return &command{
		name:    "copy",
		arg:     "MODEL",
		summary: "Copy a checkpoint unchanged, re-sharding it (validates every file on the way)",
		usage:   "copy MODEL -o OUT [--max-shard-size SIZE] [--force]",
		details: help("copy"),
		examples: []string{
			"lmsparse copy ./llama -o ./llama-sharded --max-shard-size 2GB",
			"lmsparse copy ./llama-sharded -o ./llama-one-file --max-shard-size 100GB",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o copyOptions
			o.Out.register(fs)
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if err := o.Out.check("copy"); err != nil {
					return err
				}
				o.Model = args[0]
				return runCopy(ctx, o, stdout, stderr)
			}
		},
	}
}

func runCopy(ctx context.Context, o copyOptions, stdout, stderr io.Writer) error {
	shards, err := writeOutput(ctx, stderr, o.Out, checkpoint.InputDir(o.Model), func(out *checkpoint.Output) ([]checkpoint.Shard, error) {
		return sparsify.Copy(ctx, o.Model, out, o.Out.MaxShardSize)
	})
	if err != nil {
		return err
	}
	var total int64
	tensors := 0
	for _, s := range shards {
		total += s.Bytes
		tensors += len(s.Entries)
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %s in %d file(s)\n", o.Out.Dir, tensors, report.HumanBytes(total), len(shards))
	return nil
}
