package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/loader"
	"github.com/lmsparse/lmsparse/tensor"
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

// sparseGroup is one tensor stored in parts.
type sparseGroup struct {
	base     string
	enc      sparse.Encoding
	parts    [4]string // values|compressed, col_indices|bitmask, crow_indices|row_offsets, shape
	dtype    tensor.DType
	shape    tensor.Shape
	size     int64
	partSize int64
}

var groupSuffixes = map[sparse.Encoding][4]string{
	sparse.CSR:     {sparse.SuffixValues, sparse.SuffixColIndices, sparse.SuffixCrow, sparse.SuffixShape},
	sparse.Bitmask: {sparse.SuffixCompressed, sparse.SuffixBitmask, sparse.SuffixRowOffsets, sparse.SuffixShape},
}

// findGroups lists the sparse tensors of m: CSR when the file says
// csr-v1, bitmask when config.json declares sparse-bitmask.
func findGroups(m *loader.Model, cfg []byte) ([]*sparseGroup, error) {
	var encs []sparse.Encoding
	if m.Metadata()[sparse.MetadataKey] == sparse.CSRVersion {
		encs = append(encs, sparse.CSR)
	}
	if cfg != nil {
		var c struct {
			Q struct {
				S struct {
					Format string `json:"format"`
				} `json:"sparsity_config"`
			} `json:"quantization_config"`
		}
		if json.Unmarshal(cfg, &c) == nil && c.Q.S.Format == "sparse-bitmask" {
			encs = append(encs, sparse.Bitmask)
		}
	}
	var groups []*sparseGroup
	for _, enc := range encs {
		sfx := groupSuffixes[enc]
		for _, name := range m.Names() {
			base, ok := strings.CutSuffix(name, sfx[0])
			if !ok {
				continue
			}
			g := &sparseGroup{base: base, enc: enc}
			complete := true
			for i, s := range sfx {
				g.parts[i] = base + s
				if _, ok := m.Tensor(g.parts[i]); !ok {
					complete = false
				}
			}
			if !complete {
				continue
			}
			if _, clash := m.Tensor(base); clash {
				return nil, fmt.Errorf("%s: %w: tensor %q exists both dense and as %s parts", m.Path, loader.ErrFormat, base, enc)
			}
			shapeRaw, err := m.Bytes(g.parts[3])
			if err != nil {
				return nil, err
			}
			vals, _ := m.Tensor(g.parts[0])
			shapeInfo, _ := m.Tensor(g.parts[3])
			if shapeInfo.DType != tensor.I64 || len(shapeRaw) != 16 {
				return nil, fmt.Errorf("%s: tensor %q: %w: want I64 [2], found %s %v", shapeInfo.File, g.parts[3], sparse.ErrFormat, shapeInfo.DType, shapeInfo.Shape)
			}
			g.dtype = vals.DType
			g.shape = tensor.Shape{int64(binary.LittleEndian.Uint64(shapeRaw)), int64(binary.LittleEndian.Uint64(shapeRaw[8:]))}
			g.size, err = g.shape.Bytes(g.dtype)
			if err != nil || g.size > sparse.MaxDenseBytes {
				return nil, fmt.Errorf("%s: tensor %q: %w: dense shape %v of %s is invalid or too large", shapeInfo.File, g.parts[3], sparse.ErrFormat, g.shape, g.dtype)
			}
			for _, p := range g.parts {
				info, _ := m.Tensor(p)
				g.partSize += info.Size
			}
			groups = append(groups, g)
		}
	}
	return groups, nil
}

func runDecompress(ctx context.Context, o decompressOptions, stdout, stderr io.Writer) error {
	m, err := loader.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := loader.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	cfg, err := readConfigBytes(m)
	if err != nil {
		return err
	}
	groups, err := findGroups(m, cfg)
	if err != nil {
		return err
	}
	isPart := map[string]bool{}
	byBase := map[string]*sparseGroup{}
	for _, g := range groups {
		for _, p := range g.parts {
			isPart[p] = true
		}
		byBase[g.base] = g
	}
	var names []string
	for _, n := range m.Names() {
		if !isPart[n] {
			names = append(names, n)
		}
	}
	for _, g := range groups {
		names = append(names, g.base)
	}
	loader.SortNames(names)

	rep := &manifest{Schema: manifestSchema, Tool: versionString(), Command: "decompress", Flags: map[string]any{"max_shard_size": o.Out.MaxShardSize}}
	var bufs [4][]byte
	var entries []safetensors.Entry
	for _, name := range names {
		g := byBase[name]
		if g == nil {
			e, err := m.Entry(name)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			info, _ := m.Tensor(name)
			n, _ := info.Shape.Elems()
			rep.Tensors = append(rep.Tensors, manifestTensor{Name: name, Encoding: string(sparse.Dense), DType: string(info.DType),
				Shape: nonNilShape(info.Shape), Parameters: n, BytesBefore: info.Size, BytesAfter: info.Size})
			continue
		}
		entries = append(entries, safetensors.Entry{Name: name, DType: g.dtype, Shape: g.shape, Size: g.size,
			Write: func(w io.Writer) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				var pd [4]sparse.PartData
				for i, p := range g.parts {
					info, _ := m.Tensor(p)
					b, err := m.ReadInto(p, bufs[i])
					if err != nil {
						return err
					}
					bufs[i] = b
					pd[i] = sparse.PartData{DType: info.DType, Shape: info.Shape, Data: b}
				}
				var d *sparse.Decoded
				var err error
				if g.enc == sparse.CSR {
					d, err = sparse.DecodeCSR(pd[0], pd[1], pd[2], pd[3])
				} else {
					d, err = sparse.DecodeBitmask(pd[0], pd[1], pd[2], pd[3])
				}
				if err != nil {
					info, _ := m.Tensor(g.parts[0])
					return fmt.Errorf("%s: tensor %q (%s): %w", info.File, name, g.enc, err)
				}
				if d.DType != g.dtype || !d.Shape().Equal(g.shape) {
					return fmt.Errorf("tensor %q: %w: parts disagree on dtype or shape", name, sparse.ErrFormat)
				}
				_, err = d.WriteTo(w)
				return err
			}})
		n, _ := g.shape.Elems()
		rep.Tensors = append(rep.Tensors, manifestTensor{Name: name, Encoding: string(g.enc), DType: string(g.dtype),
			Shape: nonNilShape(g.shape), Parameters: n, BytesBefore: g.partSize, BytesAfter: g.size})
	}
	for _, t := range rep.Tensors {
		rep.Totals.Tensors++
		rep.Totals.Parameters += t.Parameters
		rep.Totals.BytesBefore += t.BytesBefore
		rep.Totals.BytesAfter += t.BytesAfter
	}
	if rep.Inputs, err = hashInputs(m); err != nil {
		return err
	}
	meta := copyMeta(m.Metadata())
	delete(meta, sparse.MetadataKey)
	var config []byte
	if cfg != nil {
		if config, err = loader.RemoveQuantizationConfig(cfg); err != nil {
			return fmt.Errorf("%s: %w", m.Dir, err)
		}
	}
	man, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	err = loader.WriteDir(o.Out.Dir, m.Dir, entries, loader.WriteOptions{
		MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: meta, Config: config,
		Extra: map[string][]byte{manifestFile: append(man, '\n')},
	})
	if err != nil {
		return err
	}
	counts := map[sparse.Encoding]int{}
	for _, g := range groups {
		counts[g.enc]++
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors (%d rebuilt from CSR, %d from bitmask), %s\n",
		o.Out.Dir, len(entries), counts[sparse.CSR], counts[sparse.Bitmask], humanBytes(rep.Totals.BytesAfter))
	return nil
}
