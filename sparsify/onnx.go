package sparsify

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// planONNX plans pruning an ONNX model: dense initializers, ONNX
// sparse_initializers (format sparse), or the smaller of the two per
// tensor (auto).
func planONNX(file string, opts Options) (*Job, error) {
	opts.applyDefaults()
	switch opts.Format {
	case Dense, ONNXSparse, Auto:
	default:
		return nil, invalidf("format %s is for safetensors; an ONNX model is written dense, sparse (sparse_initializer) or auto", opts.Format)
	}
	if len(opts.Overrides) > 0 {
		return nil, invalidf("per-glob sparsity overrides are for safetensors checkpoints")
	}
	if opts.CopyOnly {
		return nil, invalidf("an ONNX model is pruned, not copied")
	}
	if opts.Algorithm != Magnitude {
		return nil, invalidf("%s runs the model on calibration data: ONNX models are pruned by magnitude", opts.Algorithm)
	}
	if err := validMethod(opts.Method); err != nil {
		return nil, err
	}
	m, err := onnx.Open(file)
	if err != nil {
		return nil, err
	}
	targets, err := onnxTargets(m, file, opts.Include, opts.Exclude)
	if err != nil {
		return nil, err
	}
	if err := applyMethod(targets, opts.Method, nil); err != nil {
		return nil, err
	}
	return &Job{opts: opts, om: m, onnxFile: file, targets: targets}, nil
}

// executeONNX prunes the ONNX model into out/<name>.onnx (with the
// tokenizer and config files beside it). The whole model is in memory
// already (protobuf); each target is pruned from its decoded values.
func (j *Job) executeONNX(ctx context.Context, out *checkpoint.Output) (*manifest.Manifest, error) {
	m, file, method := j.om, j.onnxFile, j.opts.Method
	load := func(t *target) (*prune.Matrix, []byte, error) {
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
	if global(method) {
		var total int64
		for _, t := range j.targets {
			total += t.sRows * t.sCols
		}
		g, err := prune.NewGlobal(method, total)
		if err != nil {
			return nil, err
		}
		for pass := 0; pass < 3; pass++ {
			for _, t := range j.targets {
				x, _, err := load(t)
				if err != nil {
					return nil, err
				}
				switch pass {
				case 0:
					if err := g.Observe(x); err != nil {
						return nil, fmt.Errorf("%s: %w", file, err)
					}
				case 1:
					g.Refine(x)
				default:
					t.plan = g.Plan(x)
				}
			}
		}
	}
	st := j.opts.Progress.Start("prune", int64(len(j.targets)), "tensors")
	replace := map[string][]byte{}
	var sparseNames []string
	var sel prune.Selector
	for _, t := range j.targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, raw, err := load(t)
		if err != nil {
			return nil, err
		}
		if t.plan == nil {
			if t.plan, err = sel.NewPlan(t.method, x); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		zeroPruned(t, x.Vals, raw, make([]bool, len(x.Vals)))
		replace[t.name] = raw
		// ONNX COO: values plus one int64 index per stored element.
		sparseBytes := t.stored * (int64(t.info.DType.Size()) + 8)
		if j.opts.Format == ONNXSparse || j.opts.Format == Auto && sparseBytes < t.info.Size {
			t.enc = "sparse"
			sparseNames = append(sparseNames, t.name)
		} else {
			t.enc = "dense"
		}
		st.Add(1)
	}
	st.Finish("")
	rep := onnxManifest(m, j.targets, j.opts.Command)
	rep.Method, rep.Flags = method.String(), j.opts.flags(true)
	written := out.Path(filepath.Base(file))
	if err := m.Write(written, onnx.WriteOptions{Replace: replace, Sparse: sparseNames, ExternalData: j.opts.ExternalData}); err != nil {
		return nil, err
	}
	if err := out.CopyAux(filepath.Dir(file), nil); err != nil {
		return nil, err
	}
	if err := writeONNXManifest(out, written, rep, file); err != nil {
		return nil, err
	}
	return rep, nil
}

// onnxManifest is the manifest of an ONNX model written with targets
// pruned (none for decompress).
func onnxManifest(m *onnx.Model, targets []*target, command string) *manifest.Manifest {
	byName := map[string]*target{}
	for _, t := range targets {
		byName[t.name] = t
	}
	rep := manifest.New(command)
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
		rep.Add(row)
	}
	tot := &rep.Totals
	tot.PrunedTensors = len(targets)
	if tParams > 0 {
		tot.TargetSparsity = manifest.Round(1-float64(tNZ)/float64(tParams), 6)
	}
	rep.Finish(true)
	return rep
}

// writeONNXManifest records the input with its sha256 and the written
// model's size, and writes lmsparse.json into out.
func writeONNXManifest(out *checkpoint.Output, written string, rep *manifest.Manifest, input string) error {
	in, err := manifest.HashFiles(filepath.Dir(input), []string{input})
	if err != nil {
		return err
	}
	rep.Inputs = in
	if n := fileSize(written); n >= 0 {
		if rep.Flags == nil {
			rep.Flags = map[string]any{}
		}
		rep.Flags["output_bytes"] = n
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	return out.WriteFile(manifest.File, js)
}
