package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/internal/match"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// onnxPath returns the .onnx file MODEL names: the file itself, or the one
// .onnx file of a directory that holds no safetensors checkpoint.
func onnxPath(model string) (string, bool) { return eval.ONNXPath(model) }

// inspectONNX lists the initializers of an ONNX model in inspect's schema.
func inspectONNX(ctx context.Context, file string, o inspectOptions, stdout io.Writer) error {
	m, err := onnx.Open(file)
	if err != nil {
		return err
	}
	rep := &inspectReport{Schema: "lmsparse.inspect/v1", Path: o.Model, Format: "onnx",
		Metadata: map[string]string{"producer": m.Proto().GetProducerName() + " " + m.Proto().GetProducerVersion(),
			"ir_version": fmt.Sprint(m.Proto().GetIrVersion()), "opset": fmt.Sprint(m.Opset(""))}}
	rep.Files = append(rep.Files, inspectFile{Name: filepath.Base(file), Bytes: m.Size()})
	rep.Totals.FileBytes = m.Size()
	seenFiles := map[string]bool{}
	var scanned int64
	for _, in := range m.Initializers() {
		if err := ctx.Err(); err != nil {
			return err
		}
		params, err := in.Shape.Elems()
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
		}
		row := inspectTensor{Name: in.Name, DType: string(in.DType), Shape: nonNilShape(in.Shape), Parameters: params,
			Bytes: in.Bytes, File: filepath.Base(file)}
		switch in.Storage {
		case onnx.StorageExternal:
			row.File = in.Location
			if !seenFiles[in.Location] {
				seenFiles[in.Location] = true
				if st, err := os.Stat(filepath.Join(filepath.Dir(file), in.Location)); err == nil {
					rep.Files = append(rep.Files, inspectFile{Name: in.Location, Bytes: st.Size()})
					rep.Totals.FileBytes += st.Size()
				}
			}
		case onnx.StorageSparse:
			row.File += " (sparse)"
		}
		if in.DType.Known() {
			b, err := m.InitializerBytes(in.Name)
			if err != nil {
				return err
			}
			var st tensor.Stats
			if err := st.Add(in.DType, b); err != nil {
				return fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
			}
			frac := 0.0
			if params > 0 {
				frac = float64(st.Zeros) / float64(params)
			}
			row.Zeros, row.ZeroFrac, row.NaN, row.Inf = &st.Zeros, &frac, &st.NaN, &st.Inf
			rep.Totals.Zeros += st.Zeros
			rep.Totals.NaN += st.NaN
			rep.Totals.Inf += st.Inf
			scanned += params
		} else {
			rep.Totals.Unscanned++
		}
		rep.Tensors = append(rep.Tensors, row)
		rep.Totals.Tensors++
		rep.Totals.Parameters += params
		rep.Totals.Bytes += max(in.Bytes, 0)
	}
	if scanned > 0 {
		rep.Totals.ZeroFrac = float64(rep.Totals.Zeros) / float64(scanned)
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printInspect(stdout, rep)
}

// onnxTargets picks the pruning targets of an ONNX model: by default the
// weight matrices of MatMul/Gemm that nothing else reads (a tied
// embedding, read by Gather too, is left alone); --include adds, and
// --exclude removes, initializers by name.
func onnxTargets(m *onnx.Model, file string, include, exclude []string) ([]*pruneTarget, error) {
	var names []string
	for _, in := range m.Initializers() {
		names = append(names, in.Name)
	}
	for _, g := range append(append([]string(nil), include...), exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, usageErrorf("prune: bad glob %q: %v", g, err)
		}
		if !anyMatch(g, names) {
			return nil, usageErrorf("prune: glob %q matches no initializer of %s; nearest names: %s", g, file, strings.Join(match.Nearest(g, names, 3), ", "))
		}
	}
	matrices := map[string]onnx.Target{}
	for _, t := range m.PruneTargets() {
		matrices[t.Name] = t
	}
	var out []*pruneTarget
	for _, in := range m.Initializers() {
		mt, isMatrix := matrices[in.Name]
		sel := isMatrix && len(mt.OtherUses) == 0
		for _, g := range include {
			if ok, _ := path.Match(g, in.Name); ok {
				sel = true
			}
		}
		for _, g := range exclude {
			if ok, _ := path.Match(g, in.Name); ok {
				sel = false
			}
		}
		if !sel {
			continue
		}
		if !in.DType.IsFloat() {
			return nil, fmt.Errorf("%s: tensor %q: %w: cannot prune dtype %s (floating-point tensors only)", file, in.Name, tensor.ErrDType, in.DType)
		}
		n, _ := in.Shape.Elems()
		t := &pruneTarget{name: in.Name, info: checkpoint.Tensor{TensorInfo: safetensors.TensorInfo{Name: in.Name, DType: in.DType,
			Shape: in.Shape.Clone(), Size: in.Bytes}, File: file}}
		switch {
		case isMatrix:
			// Stored [out, in] (Transposed) is prune's plain layout; [in, out]
			// is prune's Transposed.
			t.sRows, t.sCols = in.Shape[0], in.Shape[1]
			t.rows, t.cols, t.transposed = int(mt.Out), int(mt.In), !mt.Transposed
		case len(in.Shape) >= 2:
			t.sRows, t.sCols = in.Shape[0], n/max(in.Shape[0], 1)
			t.rows, t.cols = int(t.sRows), int(t.sCols)
		default:
			t.sRows, t.sCols, t.rows, t.cols = 1, n, 1, int(n)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, usageErrorf("prune: no initializer of %s to prune (the default targets are MatMul/Gemm weights; use --include)", file)
	}
	return out, nil
}

// pruneONNX prunes an ONNX model into OUT/<name>.onnx (with the tokenizer
// and config files beside it): dense initializers, ONNX sparse_initializers
// (--format sparse), or the smaller of the two per tensor (--format auto);
// --external-data moves large tensors into one .data file.
func pruneONNX(ctx context.Context, o pruneOptions, method prune.Method, file string, stdout io.Writer) error {
	switch o.Format {
	case "dense", "sparse", "auto":
	default:
		return usageErrorf("prune: --format %s is for safetensors; an ONNX model is written dense, sparse (sparse_initializer) or auto", o.Format)
	}
	m, err := onnx.Open(file)
	if err != nil {
		return err
	}
	inDir := filepath.Dir(file)
	if err := checkpoint.CheckOutput(o.Out.Dir, inDir, o.Out.Force); err != nil {
		return err
	}
	targets, err := onnxTargets(m, file, o.Include, o.Exclude)
	if err != nil {
		return err
	}
	for _, t := range targets {
		t.method = method
		if method.Structured != prune.StructNone && len(t.info.Shape) != 2 {
			return usageErrorf("prune: tensor %q has shape %v: structured pruning needs 2-D tensors", t.name, t.info.Shape)
		}
	}
	// The whole model is in memory already (protobuf); prune each target
	// from its decoded values.
	load := func(t *pruneTarget) (*prune.Matrix, []byte, error) {
		raw, err := m.InitializerBytes(t.name)
		if err != nil {
			return nil, nil, err
		}
		raw = append([]byte(nil), raw...)
		vals := make([]float32, t.sRows*t.sCols)
		if err := tensor.DecodeF32(vals, raw, t.info.DType); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", file, t.name, err)
		}
		return &prune.Matrix{Name: t.name, Vals: vals, Rows: t.rows, Cols: t.cols, Transposed: t.transposed}, raw, nil
	}
	global := method.Scope == prune.ScopeGlobal && !method.IsNM() && method.Structured == prune.StructNone
	if global {
		var total int64
		for _, t := range targets {
			total += t.sRows * t.sCols
		}
		g, err := prune.NewGlobal(method, total)
		if err != nil {
			return err
		}
		for pass := 0; pass < 3; pass++ {
			for _, t := range targets {
				x, _, err := load(t)
				if err != nil {
					return err
				}
				switch pass {
				case 0:
					if err := g.Observe(x); err != nil {
						return fmt.Errorf("%s: %w", file, err)
					}
				case 1:
					g.Refine(x)
				default:
					t.plan = g.Plan(x)
				}
			}
		}
	}
	replace := map[string][]byte{}
	var sparseNames []string
	var sel prune.Selector
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		x, raw, err := load(t)
		if err != nil {
			return err
		}
		if t.plan == nil {
			if t.plan, err = sel.NewPlan(t.method, x); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		zeroPruned(t, x.Vals, raw, make([]bool, len(x.Vals)))
		replace[t.name] = raw
		// ONNX COO: values plus one int64 index per stored element.
		sparseBytes := t.stored * (int64(t.info.DType.Size()) + 8)
		if o.Format == "sparse" || o.Format == "auto" && sparseBytes < t.info.Size {
			t.enc = "sparse"
			sparseNames = append(sparseNames, t.name)
		} else {
			t.enc = "dense"
		}
	}
	rep := onnxManifest(m, targets, "prune")
	rep.Method, rep.Flags = method.String(), pruneFlags(o)
	rep.Flags["external_data"] = o.ExternalData
	err = checkpoint.Stage(o.Out.Dir, func(dir string) error {
		out := filepath.Join(dir, filepath.Base(file))
		if err := m.Write(out, onnx.WriteOptions{Replace: replace, Sparse: sparseNames, ExternalData: o.ExternalData}); err != nil {
			return err
		}
		if err := checkpoint.CopyAux(inDir, dir); err != nil {
			return err
		}
		return writeONNXManifest(dir, out, rep, file)
	})
	if err != nil {
		return err
	}
	if o.JSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_, err := stdout.Write(append(b, '\n'))
		return err
	}
	return printSizeReport(stdout, rep)
}

// onnxManifest is the size report of an ONNX run.
func onnxManifest(m *onnx.Model, targets []*pruneTarget, command string) *manifest.Manifest {
	byName := map[string]*pruneTarget{}
	for _, t := range targets {
		byName[t.name] = t
	}
	rep := &manifest.Manifest{Schema: manifest.Schema, Tool: manifest.Tool(), Command: command}
	var tParams, tNZ int64
	for _, in := range m.Initializers() {
		params, _ := in.Shape.Elems()
		row := manifest.Tensor{Name: in.Name, DType: string(in.DType), Shape: nonNilShape(in.Shape), Parameters: params,
			BytesBefore: max(in.Bytes, 0), BytesAfter: max(in.Bytes, 0), Encoding: "dense"}
		if in.Storage == onnx.StorageSparse {
			row.Encoding = "sparse"
		}
		if t := byName[in.Name]; t != nil {
			nz := t.nonzero
			row.Pruned, row.Encoding, row.Nonzeros, row.Stored = true, string(t.enc), &nz, t.stored
			if t.enc == "sparse" {
				row.BytesAfter = t.stored * (int64(t.info.DType.Size()) + 8)
			}
			tParams += params
			tNZ += t.nonzero
		} else if b, err := m.InitializerBytes(in.Name); err == nil && in.DType.Known() {
			var st tensor.Stats
			if st.Add(in.DType, b) == nil {
				nz := params - st.Zeros
				row.Nonzeros = &nz
			}
		}
		if row.Nonzeros != nil && params > 0 {
			row.Sparsity = 1 - float64(*row.Nonzeros)/float64(params)
		}
		rep.Tensors = append(rep.Tensors, row)
		tot := &rep.Totals
		tot.Tensors++
		tot.Parameters += params
		if row.Nonzeros != nil {
			tot.Nonzeros += *row.Nonzeros
		}
		tot.BytesBefore += row.BytesBefore
		tot.BytesAfter += row.BytesAfter
	}
	tot := &rep.Totals
	tot.PrunedTensors = len(targets)
	if tParams > 0 {
		tot.TargetSparsity = roundTo(1-float64(tNZ)/float64(tParams), 6)
	}
	if tot.Parameters > 0 {
		tot.Sparsity = 1 - float64(tot.Nonzeros)/float64(tot.Parameters)
	}
	if tot.BytesAfter > 0 {
		tot.Ratio = float64(tot.BytesBefore) / float64(tot.BytesAfter)
	}
	return rep
}

// writeONNXManifest records the input with its sha256 and writes
// lmsparse.json beside the written model.
func writeONNXManifest(dir, written string, rep *manifest.Manifest, input string) error {
	in, err := manifest.HashFiles(filepath.Dir(input), []string{input})
	if err != nil {
		return err
	}
	rep.Inputs = in
	if st, err := os.Stat(written); err == nil {
		rep.Flags["output_bytes"] = st.Size()
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, manifest.File), append(b, '\n'))
}

// decompressONNX writes every sparse initializer of an ONNX model dense.
func decompressONNX(ctx context.Context, o decompressOptions, file string, stdout io.Writer) error {
	m, err := onnx.Open(file)
	if err != nil {
		return err
	}
	inDir := filepath.Dir(file)
	if err := checkpoint.CheckOutput(o.Out.Dir, inDir, o.Out.Force); err != nil {
		return err
	}
	sparse := 0
	for _, in := range m.Initializers() {
		if in.Storage == onnx.StorageSparse {
			sparse++
		}
	}
	rep := onnxManifest(m, nil, "decompress")
	rep.Flags = map[string]any{}
	err = checkpoint.Stage(o.Out.Dir, func(dir string) error {
		out := filepath.Join(dir, filepath.Base(file))
		if err := m.Write(out, onnx.WriteOptions{Dense: true}); err != nil {
			return err
		}
		if err := checkpoint.CopyAux(inDir, dir); err != nil {
			return err
		}
		return writeONNXManifest(dir, out, rep, file)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d initializers (%d rebuilt from sparse_initializer)\n", o.Out.Dir, len(m.Initializers()), sparse)
	return nil
}
