package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/tensor"
)

// SparseTensor is a tensor stored in sparse parts that ExpandSparse
// presents as dense.
type SparseTensor struct {
	Name     string
	Encoding sparse.Encoding
	// Parts names the stored tensors: for CSR values, col_indices,
	// crow_indices, shape; for bitmask compressed, bitmask, row_offsets,
	// shape; for 24bitmask compressed, bitmask, shape; for SAE the four CSR parts of the codes, then the dictionary
	// and the bias (sparse.SAESuffixes).
	Parts []string
	DType tensor.DType
	Shape tensor.Shape
	// PartBytes is the size of the parts on disk; the dense size is
	// Shape.Bytes(DType).
	PartBytes int64
}

var partSuffixes = map[sparse.Encoding][]string{
	sparse.CSR:     {sparse.SuffixValues, sparse.SuffixColIndices, sparse.SuffixCrow, sparse.SuffixShape},
	sparse.Bitmask: {sparse.SuffixCompressed, sparse.SuffixBitmask, sparse.SuffixRowOffsets, sparse.SuffixShape},
	// sparse-24-bitmask: the shape is the last part.
	sparse.Bitmask24: {sparse.SuffixCompressed, sparse.SuffixBitmask, sparse.SuffixShape},
	sparse.SAE:       sparse.SAESuffixes(),
}

// ExpandSparse makes the sparse tensors of m look dense: afterwards Names
// lists each one under its original name (and no longer its parts), and
// Tensor, Bytes, Float32, Section, ReadInto and Entry decode it on demand.
// CSR tensors are recognised in files whose __metadata__ has
// "lmsparse.format": "csr-v1"; bitmask tensors when config.json declares a
// sparse-bitmask or sparse-24-bitmask sparsity_config, their parts named
// by module as compressed-tensors 0.9.0 and later write them
// (MODULE.compressed stands for MODULE.weight) or, as lmsparse wrote them
// before and compressed-tensors 0.8.1 and older, by tensor
// (NAME.weight.compressed; always so under a quantization_config with a
// top-level "format", lmsparse's old block); sparse-autoencoder tensors (E ≈ Z·D + b:
// NAME.sae_codes.{values,col_indices,crow_indices,shape},
// NAME.sae_dictionary, NAME.sae_bias) in files whose __metadata__ has
// "lmsparse.sae": "v1", their dense value rebuilt as sparse.DecodeSAE
// says. For a tied model the LM head is that same rebuilt tensor. Only the
// small .shape parts are read here; the other parts are validated when a tensor is decoded, and a
// corrupt one is an error wrapping sparse.ErrFormat that names it. It
// returns the tensors it expanded.
func (m *Model) ExpandSparse() ([]SparseTensor, error) {
	var encs []sparse.Encoding
	// SAE first: its codes are CSR parts that must not be expanded alone.
	if m.Metadata()[sparse.SAEMetadataKey] == sparse.SAEVersion {
		encs = append(encs, sparse.SAE)
	}
	if m.Metadata()[sparse.MetadataKey] == sparse.CSRVersion {
		encs = append(encs, sparse.CSR)
	}
	oldNaming := false // lmsparse's old bitmask output: parts named by tensor
	if m.Config != nil {
		cfg, err := ReadFileBounded(filepath.Join(m.Dir, ConfigFile), maxConfigSize)
		if err != nil {
			return nil, err
		}
		var c struct {
			Q struct {
				Format *string `json:"format"`
				S      struct {
					Format string `json:"format"`
				} `json:"sparsity_config"`
			} `json:"quantization_config"`
		}
		if json.Unmarshal(cfg, &c) == nil {
			switch c.Q.S.Format {
			case "sparse-bitmask":
				encs = append(encs, sparse.Bitmask)
			case "sparse-24-bitmask":
				encs = append(encs, sparse.Bitmask24)
			}
			oldNaming = c.Q.Format != nil
		}
	}
	var found []SparseTensor
	isPart := map[string]bool{}
	expanded := map[string]sparse.Encoding{}
	for _, enc := range encs {
		sfx := partSuffixes[enc]
		for _, name := range m.names {
			base, ok := strings.CutSuffix(name, sfx[0])
			if !ok || isPart[name] {
				continue
			}
			dense := base
			if enc.CompressedTensors() && !oldNaming && !strings.HasSuffix(base, ".weight") {
				dense = base + ".weight" // named by module
			}
			st := SparseTensor{Name: dense, Encoding: enc, Parts: make([]string, len(sfx))}
			complete := true
			for i, s := range sfx {
				st.Parts[i] = base + s
				r, ok := m.tensors[st.Parts[i]]
				complete = complete && ok
				st.PartBytes += r.info.Size
			}
			if !complete {
				continue
			}
			if _, clash := m.tensors[dense]; clash {
				return nil, fmt.Errorf("%s: %w: tensor %q exists both dense and as %s parts", m.Path, ErrFormat, dense, enc)
			}
			if prev, dup := expanded[dense]; dup {
				return nil, fmt.Errorf("%s: %w: tensor %q is stored both as %s and as %s parts", m.Path, ErrFormat, dense, prev, enc)
			}
			si := 3 // the .shape part
			if enc == sparse.Bitmask24 {
				si = 2
			}
			vals, shape := m.tensors[st.Parts[0]], m.tensors[st.Parts[si]]
			file := m.Files[shape.shard]
			if shape.info.DType != tensor.I64 || !shape.info.Shape.Equal(tensor.Shape{2}) && !(enc == sparse.Bitmask24 && shape.info.Shape.Equal(tensor.Shape{2, 1})) {
				return nil, fmt.Errorf("%s: tensor %q: %w: want I64 [2], found %s %v", file, st.Parts[si], sparse.ErrFormat, shape.info.DType, shape.info.Shape)
			}
			raw, err := m.ReadInto(st.Parts[si], nil)
			if err != nil {
				return nil, err
			}
			st.DType = vals.info.DType
			st.Shape = tensor.Shape{int64(binary.LittleEndian.Uint64(raw)), int64(binary.LittleEndian.Uint64(raw[8:]))}
			if enc == sparse.SAE {
				// The dense tensor is [rows of the codes, columns of the dictionary].
				dict := m.tensors[st.Parts[4]]
				if len(dict.info.Shape) != 2 {
					return nil, fmt.Errorf("%s: tensor %q: %w: want a 2-D dictionary, found %v", m.Files[dict.shard], st.Parts[4], sparse.ErrFormat, dict.info.Shape)
				}
				st.Shape[1] = dict.info.Shape[1]
			}
			size, err := st.Shape.Bytes(st.DType)
			if err != nil || size > sparse.MaxDenseBytes {
				return nil, fmt.Errorf("%s: tensor %q: %w: dense shape %v of %s is invalid or too large", file, st.Parts[si], sparse.ErrFormat, st.Shape, st.DType)
			}
			for _, p := range st.Parts {
				isPart[p] = true
			}
			expanded[dense] = enc
			found = append(found, st)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	if m.virtual == nil {
		m.virtual = map[string]*SparseTensor{}
	}
	var names []string
	for _, n := range m.names {
		if !isPart[n] {
			names = append(names, n)
		}
	}
	for i := range found {
		st := &found[i]
		m.virtual[st.Name] = st
		names = append(names, st.Name)
	}
	SortNames(names)
	m.names = names
	return found, nil
}

// virtualInfo describes an expanded tensor; its File is the file of its
// values part and its Offset is -1 (it has no bytes of its own on disk).
func (m *Model) virtualInfo(st *SparseTensor) Tensor {
	size, _ := st.Shape.Bytes(st.DType)
	r := m.tensors[st.Parts[0]]
	return Tensor{TensorInfo: safetensors.TensorInfo{Name: st.Name, DType: st.DType, Shape: st.Shape.Clone(), Offset: -1, Size: size},
		File: m.Files[r.shard]}
}

// decode reads and validates the parts of st.
func (m *Model) decode(st *SparseTensor) (*sparse.Decoded, error) { return m.decodeInto(st, nil) }

// decodeInto is decode reading the parts into bufs (one per part, grown
// when too small) when bufs is not nil.
func (m *Model) decodeInto(st *SparseTensor, bufs [][]byte) (*sparse.Decoded, error) {
	pd := make([]sparse.PartData, len(st.Parts))
	for i, p := range st.Parts {
		r := m.tensors[p]
		var buf []byte
		if bufs != nil {
			buf = bufs[i]
		}
		b, err := m.ReadInto(p, buf)
		if err != nil {
			return nil, err
		}
		if bufs != nil {
			bufs[i] = b
		}
		pd[i] = sparse.PartData{DType: r.info.DType, Shape: r.info.Shape, Data: b}
	}
	var d *sparse.Decoded
	var err error
	switch st.Encoding {
	case sparse.CSR:
		d, err = sparse.DecodeCSR(pd[0], pd[1], pd[2], pd[3])
	case sparse.SAE:
		d, err = sparse.DecodeSAE(pd[0], pd[1], pd[2], pd[3], pd[4], pd[5])
	case sparse.Bitmask24:
		d, err = sparse.DecodeBitmask24(pd[0], pd[1], pd[2])
	default:
		d, err = sparse.DecodeBitmask(pd[0], pd[1], pd[2], pd[3])
	}
	if err == nil && (d.DType != st.DType || !d.Shape().Equal(st.Shape)) {
		err = fmt.Errorf("%w: parts disagree on dtype or shape", sparse.ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q (%s): %w", m.virtualInfo(st).File, st.Name, st.Encoding, err)
	}
	return d, nil
}

// denseBytes decodes st into buf (grown when too small).
func (m *Model) denseBytes(st *SparseTensor, buf []byte) ([]byte, error) {
	d, err := m.decode(st)
	if err != nil {
		return nil, err
	}
	w := bytes.NewBuffer(buf[:0])
	w.Grow(int(d.Size()))
	if _, err := d.WriteTo(w); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// virtualEntry streams the decoded tensor.
func (m *Model) virtualEntry(st *SparseTensor) safetensors.Entry {
	info := m.virtualInfo(st)
	return safetensors.Entry{Name: st.Name, DType: st.DType, Shape: st.Shape.Clone(), Size: info.Size,
		Write: func(w io.Writer) error {
			d, err := m.decode(st)
			if err != nil {
				return err
			}
			_, err = d.WriteTo(w)
			return err
		}}
}
