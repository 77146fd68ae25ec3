package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sparsify"
)

// decompressOptions are the inputs of "lmsparse decompress".
type decompressOptions struct {
	Model string
	Out   outputOptions
}

func decompressCommand() *command {
	return &command{
		name:    "decompress",
		arg:     "MODEL",
		summary: "Rebuild a dense checkpoint from one with CSR or bitmask tensors",
		usage:   "decompress MODEL -o OUT [--max-shard-size SIZE] [--force]",
		details: help("decompress"),
		examples: []string{
			"lmsparse decompress ./llama-50-csr -o ./llama-50-dense",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o decompressOptions
			o.Out.register(fs)
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if err := o.Out.check("decompress"); err != nil {
					return err
				}
				o.Model = args[0]
				return runDecompress(ctx, o, stdout, stderr)
			}
		},
	}
}

func runDecompress(ctx context.Context, o decompressOptions, stdout, stderr io.Writer) error {
	d, err := writeOutput(ctx, stderr, o.Out, checkpoint.InputDir(o.Model), func(out *checkpoint.Output) (*sparsify.Decompressed, error) {
		return sparsify.Decompress(ctx, o.Model, out, o.Out.MaxShardSize)
	})
	if err != nil {
		return err
	}
	if d.ONNX {
		fmt.Fprintf(stdout, "wrote %s: %d initializers (%d rebuilt from sparse_initializer)\n", o.Out.Dir, d.Tensors, d.Rebuilt["sparse"])
		return nil
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors (%d rebuilt from CSR, %d from bitmask, %d from a sparse autoencoder), %s\n",
		o.Out.Dir, d.Tensors, d.Rebuilt[sparse.CSR], d.Rebuilt[sparse.Bitmask]+d.Rebuilt[sparse.Bitmask24], d.Rebuilt[sparse.SAE], report.HumanBytes(d.Manifest.Totals.BytesAfter))
	return nil
}
