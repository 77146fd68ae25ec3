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
		summary: "Rebuild a dense checkpoint from one with CSR or bitmask tensors",
		usage:   "decompress MODEL -o OUT [--max-shard-size SIZE] [--force]",
		details: `Rebuilds every sparse tensor of MODEL as a dense tensor with its original
name, dtype and shape: lmsparse CSR tensors (NAME.values, NAME.col_indices,
NAME.crow_indices, NAME.shape; files marked "lmsparse.format": "csr-v1") and
compressed-tensors sparse-bitmask tensors (NAME.compressed, NAME.bitmask,
NAME.row_offsets, NAME.shape; config.json quantization_config.sparsity_config
format "sparse-bitmask"). Other tensors are copied unchanged; the CSR marker
and the quantization_config that lmsparse added are removed.

For every format X, the checkpoint files of "decompress" of "prune --format X"
are byte-identical to those of "prune --format dense" with the same flags
(for an ONNX model: sparse_initializers are written back dense, in place)
(only lmsparse.json, which records provenance, differs). Every index is
validated; a corrupt sparse tensor exits 2 and writes nothing.`,
		examples: []string{
			"lmsparse decompress ./llama-50-csr -o ./llama-50-dense",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o decompressOptions
			o.Out.register(fs)
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("decompress: want exactly one MODEL argument, got %d (see 'lmsparse decompress --help')", len(args))
				}
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
	d, err := writeOutput(ctx, o.Out, checkpoint.InputDir(o.Model), func(out *checkpoint.Output) (*sparsify.Decompressed, error) {
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
		o.Out.Dir, d.Tensors, d.Rebuilt[sparse.CSR], d.Rebuilt[sparse.Bitmask], d.Rebuilt[sparse.SAE], report.HumanBytes(d.Manifest.Totals.BytesAfter))
	return nil
}
