package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
)

// copyOptions are the inputs of "lmsparse copy".
type copyOptions struct {
	Model string
	Out   outputOptions
}

func copyCommand() *command {
	return &command{
		name:    "copy",
		summary: "Copy a checkpoint unchanged, re-sharding it (validates every file on the way)",
		usage:   "copy MODEL -o OUT [--max-shard-size SIZE] [--force]",
		details: `Reads MODEL (a checkpoint directory or a .safetensors file) and writes a
Hugging Face checkpoint directory OUT with the same tensors, bit for bit:
model.safetensors, or shards of at most --max-shard-size with
model.safetensors.index.json, plus config.json and the tokenizer and
generation files. Tensors stream one at a time (in-kernel copies where the
file system allows), so memory does not grow with the model.

OUT must not be the input directory and must be empty or absent unless
--force is given; with --force, weight files already in OUT that the new
checkpoint does not use are removed.`,
		examples: []string{
			"lmsparse copy ./llama -o ./llama-sharded --max-shard-size 2GB",
			"lmsparse copy ./llama-sharded -o ./llama-one-file --max-shard-size 100GB",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o copyOptions
			o.Out.register(fs)
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("copy: want exactly one MODEL argument, got %d (see 'lmsparse copy --help')", len(args))
				}
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
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkpoint.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	es, err := m.Entries()
	if err != nil {
		return err
	}
	for i := range es {
		write := es[i].Write
		es[i].Write = func(w io.Writer) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return write(w)
		}
	}
	if err := checkpoint.WriteDir(o.Out.Dir, m.Dir, es, checkpoint.WriteOptions{MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: m.Metadata()}); err != nil {
		return err
	}
	shards := checkpoint.PlanShards(es, o.Out.MaxShardSize)
	var total int64
	for _, s := range shards {
		total += s.Bytes
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %s in %d file(s)\n", o.Out.Dir, len(es), report.HumanBytes(total), len(shards))
	return nil
}
