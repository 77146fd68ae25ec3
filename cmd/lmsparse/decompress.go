package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
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
	if file, ok := onnxPath(o.Model); ok {
		return decompressONNX(ctx, o, file, stdout)
	}
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkpoint.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	cfg, err := readConfigBytes(m)
	if err != nil {
		return err
	}
	expanded, err := m.ExpandSparse()
	if err != nil {
		return err
	}
	byName := map[string]*checkpoint.SparseTensor{}
	for i := range expanded {
		byName[expanded[i].Name] = &expanded[i]
	}
	entries, err := m.Entries()
	if err != nil {
		return err
	}
	for i := range entries {
		write := entries[i].Write
		entries[i].Write = func(w io.Writer) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return write(w)
		}
	}
	rep := &manifest.Manifest{Schema: manifest.Schema, Tool: manifest.Tool(), Command: "decompress", Flags: map[string]any{"max_shard_size": o.Out.MaxShardSize}}
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		n, _ := info.Shape.Elems()
		row := manifest.Tensor{Name: name, Encoding: string(sparse.Dense), DType: string(info.DType),
			Shape: nonNilShape(info.Shape), Parameters: n, BytesBefore: info.Size, BytesAfter: info.Size}
		if st := byName[name]; st != nil {
			row.Encoding, row.BytesBefore = string(st.Encoding), st.PartBytes
		}
		rep.Tensors = append(rep.Tensors, row)
		rep.Totals.Tensors++
		rep.Totals.Parameters += n
		rep.Totals.BytesBefore += row.BytesBefore
		rep.Totals.BytesAfter += row.BytesAfter
	}
	if rep.Inputs, err = manifest.HashFiles(m.Dir, m.Files); err != nil {
		return err
	}
	meta := copyMeta(m.Metadata())
	delete(meta, sparse.MetadataKey)
	delete(meta, sparse.SAEMetadataKey)
	var config []byte
	if cfg != nil {
		if config, err = checkpoint.RemoveQuantizationConfig(cfg); err != nil {
			return fmt.Errorf("%s: %w", m.Dir, err)
		}
	}
	man, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	err = checkpoint.WriteDir(o.Out.Dir, m.Dir, entries, checkpoint.WriteOptions{
		MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: meta, Config: config,
		Extra: map[string][]byte{manifest.File: append(man, '\n')},
	})
	if err != nil {
		return err
	}
	counts := map[sparse.Encoding]int{}
	for _, st := range expanded {
		counts[st.Encoding]++
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors (%d rebuilt from CSR, %d from bitmask, %d from a sparse autoencoder), %s\n",
		o.Out.Dir, len(entries), counts[sparse.CSR], counts[sparse.Bitmask], counts[sparse.SAE], report.HumanBytes(rep.Totals.BytesAfter))
	return nil
}
