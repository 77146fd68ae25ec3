package main

import (
	"context"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
)

// outputOptions are the flags of every command that writes a checkpoint.
type outputOptions struct {
	Dir          string
	MaxShardSize int64
	Force        bool
	shard        byteSize
}

func (o *outputOptions) register(fs *pflag.FlagSet) {
	o.shard = byteSize(checkpoint.DefaultMaxShardSize)
	fs.StringVarP(&o.Dir, "output", "o", "", "output checkpoint directory (required)")
	fs.Var(&o.shard, "max-shard-size", "largest shard, e.g. 5GB, 500MB, 2GiB (decimal units are powers of 1000)")
	fs.BoolVar(&o.Force, "force", false, "write into a non-empty output directory")
}

func (o *outputOptions) check(cmd string) error {
	if o.Dir == "" {
		return usageErrorf("%s: -o/--output is required", cmd)
	}
	o.MaxShardSize = int64(o.shard)
	return nil
}

// writeOutput creates the output directory (checked against the input
// directory inDir), lets fill write into it and commits it; on any error
// nothing is left under the output's name beyond what was there.
func writeOutput[T any](ctx context.Context, stderr io.Writer, o outputOptions, inDir string, fill func(out *checkpoint.Output) (T, error)) (T, error) {
	var zero T
	out, err := checkpoint.Create(o.Dir, checkpoint.OutputOptions{Force: o.Force, InputDir: inDir})
	if err != nil {
		return zero, err
	}
	defer func() { report.WriteNotes(stderr, out.Notes()) }()
	defer out.Abort() // nothing after a commit
	v, err := fill(out)
	if err == nil {
		err = out.Commit(ctx)
	}
	return v, err // callers use v only without an error
}
