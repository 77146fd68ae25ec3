package checkpoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/tensor"
)

// InspectReport is the --json output. Its schema is versioned: fields are
// only ever added within a version.
type InspectReport struct {
	Schema       string            `json:"schema"`
	Path         string            `json:"path"`
	Format       string            `json:"format"`
	Files        []InspectFile     `json:"files"`
	Architecture *InspectArch      `json:"architecture"`
	Metadata     map[string]string `json:"metadata"`
	Tensors      []InspectTensor   `json:"tensors"`
	Totals       InspectTotals     `json:"totals"`
}

type InspectFile struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

type InspectArch struct {
	ModelType        string   `json:"model_type"`
	Architectures    []string `json:"architectures"`
	Layers           int      `json:"layers"`
	HiddenSize       int      `json:"hidden_size"`
	Heads            int      `json:"heads"`
	KVHeads          int      `json:"kv_heads"`
	HeadDim          int      `json:"head_dim"`
	IntermediateSize int      `json:"intermediate_size"`
	VocabSize        int      `json:"vocab_size"`
	Context          int      `json:"context"`
	TiedEmbeddings   bool     `json:"tied_embeddings"`
	TorchDType       string   `json:"torch_dtype,omitempty"`
}

type InspectTensor struct {
	Name       string   `json:"name"`
	DType      string   `json:"dtype"`
	Shape      []int64  `json:"shape"`
	Parameters int64    `json:"parameters"`
	Bytes      int64    `json:"bytes"`
	Zeros      *int64   `json:"zeros"` // null for passthrough dtypes
	ZeroFrac   *float64 `json:"zero_fraction"`
	NaN        *int64   `json:"nan"`
	Inf        *int64   `json:"inf"`
	File       string   `json:"file"`
}

type InspectTotals struct {
	Tensors    int     `json:"tensors"`
	Parameters int64   `json:"parameters"`
	Bytes      int64   `json:"bytes"`
	FileBytes  int64   `json:"file_bytes"`
	Zeros      int64   `json:"zeros"`
	ZeroFrac   float64 `json:"zero_fraction"` // of scanned parameters
	NaN        int64   `json:"nan"`
	Inf        int64   `json:"inf"`
	Unscanned  int     `json:"unscanned_tensors"` // passthrough dtypes
}

// Inspect describes a checkpoint: its files, architecture, metadata and
// every tensor with its zeros, NaNs and Infs, reading each tensor through
// a 4 MiB buffer (schema lmsparse.inspect/v1, documented in README.md).
func Inspect(ctx context.Context, m *Model) (*InspectReport, error) {
	rep := &InspectReport{Schema: "lmsparse.inspect/v1", Path: m.Path, Format: "safetensors", Metadata: m.Metadata()}
	for _, f := range m.Files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		rep.Files = append(rep.Files, InspectFile{Name: manifestRel(m.Dir, f), Bytes: st.Size()})
		rep.Totals.FileBytes += st.Size()
	}
	if c := m.Config; c != nil {
		rep.Architecture = &InspectArch{
			ModelType: c.ModelType, Architectures: c.Architectures, Layers: c.NumLayers,
			HiddenSize: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
			IntermediateSize: c.IntermediateSize, VocabSize: c.VocabSize, Context: c.MaxPositions,
			TiedEmbeddings: c.TieWordEmbeddings, TorchDType: c.TorchDType,
		}
	}
	buf := make([]byte, 4<<20) // a multiple of every element size
	var scanned int64
	for _, name := range m.Names() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, _ := m.Tensor(name)
		params, err := info.Shape.Elems()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
		}
		row := InspectTensor{Name: name, DType: string(info.DType), Shape: []int64(info.Shape),
			Parameters: params, Bytes: info.Size, File: manifestRel(m.Dir, info.File)}
		if row.Shape == nil {
			row.Shape = []int64{}
		}
		var st *tensor.Stats
		if info.DType.Known() {
			s, err := m.Stats(name, buf)
			if err != nil {
				return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
			}
			st = &s
		}
		scanned += rep.add(row, st, info.Size)
	}
	if scanned > 0 {
		rep.Totals.ZeroFrac = float64(rep.Totals.Zeros) / float64(scanned)
	}
	return rep, nil
}

// InspectPath describes the model at path: an ONNX model (see [ONNXPath])
// with [InspectONNX], else a checkpoint opened with [Open] with [Inspect].
func InspectPath(ctx context.Context, path string) (*InspectReport, error) {
	if file, ok := ONNXPath(path); ok {
		return InspectONNX(ctx, file, path)
	}
	m, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return Inspect(ctx, m)
}

// InspectONNX describes an ONNX model's initializers in Inspect's schema;
// label is the path to report.
func InspectONNX(ctx context.Context, file, label string) (*InspectReport, error) {
	m, err := onnx.Open(file)
	if err != nil {
		return nil, err
	}
	rep := &InspectReport{Schema: "lmsparse.inspect/v1", Path: label, Format: "onnx",
		Metadata: map[string]string{"producer": m.Proto().GetProducerName() + " " + m.Proto().GetProducerVersion(),
			"ir_version": fmt.Sprint(m.Proto().GetIrVersion()), "opset": fmt.Sprint(m.Opset(""))}}
	rep.Files = append(rep.Files, InspectFile{Name: filepath.Base(file), Bytes: m.Size()})
	rep.Totals.FileBytes = m.Size()
	seenFiles := map[string]bool{}
	var scanned int64
	for _, in := range m.Initializers() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		params, err := in.Shape.Elems()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
		}
		row := InspectTensor{Name: in.Name, DType: string(in.DType), Shape: nonNilShape(in.Shape), Parameters: params,
			Bytes: in.Bytes, File: filepath.Base(file)}
		switch in.Storage {
		case onnx.StorageExternal:
			row.File = in.Location
			if !seenFiles[in.Location] {
				seenFiles[in.Location] = true
				if st, err := os.Stat(filepath.Join(filepath.Dir(file), in.Location)); err == nil {
					rep.Files = append(rep.Files, InspectFile{Name: in.Location, Bytes: st.Size()})
					rep.Totals.FileBytes += st.Size()
				}
			}
		case onnx.StorageSparse:
			row.File += " (sparse)"
		}
		var st *tensor.Stats
		if in.DType.Known() && in.Storage == onnx.StorageSparse {
			// Counted from the stored values, never expanded: the
			// implicit elements are zeros.
			b, err := m.SparseValues(in.Name)
			if err != nil {
				return nil, err
			}
			st = &tensor.Stats{}
			if err := st.Add(in.DType, b); err != nil {
				return nil, fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
			}
			st.Zeros += params - in.NNZ
		} else if in.DType.Known() {
			b, err := m.InitializerBytes(in.Name)
			if err != nil {
				return nil, err
			}
			st = &tensor.Stats{}
			if err := st.Add(in.DType, b); err != nil {
				return nil, fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
			}
		}
		scanned += rep.add(row, st, max(in.Bytes, 0))
	}
	if scanned > 0 {
		rep.Totals.ZeroFrac = float64(rep.Totals.Zeros) / float64(scanned)
	}
	return rep, nil
}

// manifestRel names path relative to dir (as given when it cannot be).
func manifestRel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

func nonNilShape(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// add appends a tensor's row with its value counts (nil: a dtype lmsparse
// does not decode) to the report and its totals, and returns the
// parameters it scanned.
func (rep *InspectReport) add(row InspectTensor, st *tensor.Stats, bytes int64) (scanned int64) {
	if st != nil {
		frac := 0.0
		if row.Parameters > 0 {
			frac = float64(st.Zeros) / float64(row.Parameters)
		}
		row.Zeros, row.ZeroFrac, row.NaN, row.Inf = &st.Zeros, &frac, &st.NaN, &st.Inf
		rep.Totals.Zeros += st.Zeros
		rep.Totals.NaN += st.NaN
		rep.Totals.Inf += st.Inf
		scanned = row.Parameters
	} else {
		rep.Totals.Unscanned++
	}
	rep.Tensors = append(rep.Tensors, row)
	rep.Totals.Tensors++
	rep.Totals.Parameters += row.Parameters
	rep.Totals.Bytes += bytes
	return scanned
}
