package onnx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/tensor"
)

// MetaSparsePositions is the metadata_props key under which [Model.Write]
// records where each sparse initializer stood among the initializers, as
// a JSON object from name to index, so that writing the model dense again
// restores the original order.
const MetaSparsePositions = "lmsparse.sparse_initializer_positions"

// External data layout of [Model.Write].
const (
	// ExternalMinBytes is the smallest tensor moved to the external data
	// file; smaller ones stay inside the model, as onnx's
	// convert_model_to_external_data does by default.
	ExternalMinBytes = 1024
	// ExternalAlign is the alignment of every offset in the external data
	// file: the page size the ONNX specification recommends for mmap.
	ExternalAlign = 4096
)

// WriteOptions configures [Model.Write]. The zero value writes the model
// unchanged.
type WriteOptions struct {
	// Replace gives new data for initializers by name: dense little-endian
	// bytes of the initializer's dtype and exact size. A replaced dense
	// initializer keeps every other field of its TensorProto; its data is
	// written as raw_data.
	Replace map[string][]byte
	// Sparse names initializers to store as sparse_initializers: values
	// [NNZ] of the same dtype and name, int64 linear indices [NNZ] in
	// increasing order, and the dense dims. An element is stored when any
	// of its bytes is nonzero, so -0.0 survives a round trip.
	Sparse []string
	// Dense writes every sparse initializer that Sparse does not name as a
	// dense initializer (raw_data), back at the position recorded under
	// [MetaSparsePositions] when there is one.
	Dense bool
	// ExternalData moves the data of every tensor of at least
	// [ExternalMinBytes] into one file beside the model, named after it
	// with ".data" appended, each at an offset that is a multiple of
	// [ExternalAlign] (zero padding between). The values and the indices
	// of sparse initializers move too (the indices are most of a sparse
	// model: 8 bytes per stored value), so a large sparse model stays under
	// the protobuf limit. Without ExternalData, data the input kept in
	// external files is written inside the model.
	ExternalData bool
}

// DataFileName returns the name of the external data file [Model.Write]
// writes for a model written to path (the base name plus ".data").
func DataFileName(path string) string { return filepath.Base(path) + ".data" }

// entry is one initializer in its logical (dense) order.
type entry struct {
	name   string
	dense  *onnxpb.TensorProto       // source, when dense
	sparse *onnxpb.SparseTensorProto // source, when sparse
	idx    int                       // index in m.inits
}

// Write writes the model to path, atomically (a temporary file renamed
// into place), with the changes o asks for. Everything else — nodes,
// attributes, other initializers, metadata, unknown fields — is written as
// read: the output of a write without changes is byte-identical to a
// canonically serialized input (protobuf's C++, Python and Go runtimes all
// serialize canonically). A model whose encoding would exceed
// [MaxProtoBytes] is an error wrapping [ErrTooLarge] unless ExternalData
// is set.
func (m *Model) Write(path string, o WriteOptions) error {
	return m.write(path, o, MaxProtoBytes)
}

func (m *Model) write(path string, o WriteOptions, limit int64) error {
	// Reject external data this writer cannot carry over.
	if err := m.checkOtherExternal(); err != nil {
		return err
	}
	wantSparse := map[string]bool{}
	for _, n := range o.Sparse {
		if _, ok := m.index[n]; !ok {
			return fmt.Errorf("%s: WriteOptions.Sparse: no initializer %q", m.name, n)
		}
		wantSparse[n] = true
	}
	for n, b := range o.Replace {
		i, ok := m.index[n]
		if !ok {
			return fmt.Errorf("%s: WriteOptions.Replace: no initializer %q", m.name, n)
		}
		in := m.inits[i]
		if in.Segmented || in.Bytes < 0 {
			return fmt.Errorf("%w: %s: initializer %q (%s) cannot be replaced", ErrUnsupported, m.name, n, in.DType)
		}
		if int64(len(b)) != in.Bytes {
			return fmt.Errorf("%s: WriteOptions.Replace: initializer %q: %d bytes, %v %s needs %d", m.name, n, len(b), in.Shape, in.DType, in.Bytes)
		}
	}

	order := m.logicalOrder()
	var dense []*onnxpb.TensorProto
	var sparse []*onnxpb.SparseTensorProto
	positions := map[string]int{}
	changed := false // some initializer changes between dense and sparse
	created := false // some dense initializer becomes sparse
	for pos, e := range order {
		rep, replaced := o.Replace[e.name]
		toSparse := wantSparse[e.name] || (e.sparse != nil && !o.Dense)
		if toSparse != (e.sparse != nil) {
			changed = true
		}
		what := fmt.Sprintf("initializer %q", e.name)
		switch {
		case e.dense != nil && !toSparse:
			t := e.dense
			if replaced {
				t = withRaw(t, t.Dims, rep)
			}
			dense = append(dense, t)
		case e.dense != nil && toSparse:
			if !replaced {
				var err error
				if _, _, rep, err = m.tensorData(e.dense, what); err != nil {
					return err
				}
			}
			created = true
			s, err := m.sparsify(e.dense, e.dense.Dims, rep, what)
			if err != nil {
				return err
			}
			sparse = append(sparse, s)
			positions[e.name] = pos
		case toSparse: // sparse source stays sparse
			s := e.sparse
			if replaced {
				var err error
				if s, err = m.sparsify(s.Values, s.Dims, rep, what); err != nil {
					return err
				}
			}
			sparse = append(sparse, s)
			positions[e.name] = pos
		default: // sparse source written dense
			if !replaced {
				var err error
				if _, _, rep, err = m.sparseData(e.sparse, what); err != nil {
					return err
				}
			}
			dense = append(dense, withRaw(e.sparse.Values, e.sparse.Dims, rep))
		}
	}
	if created && m.pb.GetIrVersion() < 6 {
		return fmt.Errorf("%w: %s: sparse initializers need IR version 6 or later; the model has %d", ErrUnsupported, m.name, m.pb.GetIrVersion())
	}

	// External data: plan which tensors go to the data file (or come back
	// inside the model) and at which offsets.
	dataName := DataFileName(path)
	var plan []extJob
	var off int64
	place := func(t *onnxpb.TensorProto, what string) (*onnxpb.TensorProto, error) {
		md, err := m.meta(t, what)
		if err != nil {
			return nil, err
		}
		if md.segmented {
			if md.storage == StorageExternal {
				return nil, fmt.Errorf("%w: %s: %s: segmented external tensor", ErrUnsupported, m.name, what)
			}
			return t, nil
		}
		toExt := o.ExternalData && md.nbytes >= ExternalMinBytes
		if !toExt {
			if md.storage != StorageExternal {
				return t, nil
			}
			_, _, b, err := m.tensorData(t, what)
			if err != nil {
				return nil, err
			}
			return withRaw(t, t.Dims, b), nil
		}
		off = alignUp(off)
		nt := withRaw(t, t.Dims, nil)
		nt.RawData = nil
		nt.DataLocation = proto.Int32(LocationExternal)
		nt.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(dataName)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(off, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(md.nbytes, 10))},
		}
		plan = append(plan, extJob{src: t, what: what, off: off, n: md.nbytes})
		if off, err = tensor.AddInt64(off, md.nbytes); err != nil {
			return nil, fmt.Errorf("%s: external data: %w", m.name, err)
		}
		return nt, nil
	}
	var err error
	for i, t := range dense {
		if dense[i], err = place(t, fmt.Sprintf("initializer %q", t.GetName())); err != nil {
			return err
		}
	}
	for i, s := range sparse {
		what := fmt.Sprintf("sparse initializer %q", s.GetValues().GetName())
		v, err := place(s.Values, what+" values")
		if err != nil {
			return err
		}
		ix, err := place(s.Indices, what+" indices")
		if err != nil {
			return err
		}
		if v != s.Values || ix != s.Indices {
			ns := shallow(s)
			ns.Values, ns.Indices = v, ix
			sparse[i] = ns
		}
	}

	g := shallow(m.pb.GetGraph())
	g.Initializer = dense
	g.SparseInitializer = sparse
	out := shallow(m.pb)
	out.Graph = g
	if changed {
		var props []*onnxpb.StringStringEntryProto
		for _, p := range m.pb.GetMetadataProps() {
			if p.GetKey() != MetaSparsePositions {
				props = append(props, p)
			}
		}
		if len(positions) > 0 {
			js, err := json.Marshal(positions) // keys sorted: deterministic
			if err != nil {
				return err
			}
			props = append(props, &onnxpb.StringStringEntryProto{Key: proto.String(MetaSparsePositions), Value: proto.String(string(js))})
		}
		out.MetadataProps = props
	}

	if size := int64(proto.Size(out)); size > limit {
		if o.ExternalData {
			return fmt.Errorf("%w: %s: %d bytes even with external data (limit %d)", ErrTooLarge, path, size, limit)
		}
		return fmt.Errorf("%w: %s: %d bytes, over the %d-byte protobuf limit: write it with external data", ErrTooLarge, path, size, limit)
	}
	enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return fmt.Errorf("%s: encoding: %w", path, err)
	}
	if len(plan) > 0 {
		if err := m.writeData(filepath.Join(filepath.Dir(path), dataName), plan); err != nil {
			return err
		}
	}
	return atomicfile.WriteBytes(path, enc)
}

// extJob is one tensor's data in the external data file.
type extJob struct {
	src    *onnxpb.TensorProto
	what   string
	off, n int64
}

func alignUp(off int64) int64 {
	if r := off % ExternalAlign; r != 0 {
		return off + ExternalAlign - r
	}
	return off
}

// writeData writes the external data file, one tensor in memory at a time.
func (m *Model) writeData(path string, plan []extJob) error {
	return atomicfile.Write(path, func(f *os.File) error {
		var pos int64
		zeros := make([]byte, ExternalAlign)
		for _, j := range plan {
			if _, err := f.Write(zeros[:j.off-pos]); err != nil {
				return err
			}
			_, _, b, err := m.tensorData(j.src, j.what)
			if err != nil {
				return err
			}
			if int64(len(b)) != j.n {
				return fmt.Errorf("%s: %d bytes, planned %d", j.what, len(b), j.n)
			}
			if _, err := f.Write(b); err != nil {
				return err
			}
			pos = j.off + j.n
		}
		return nil
	})
}

// logicalOrder lists the initializers in dense order: the dense ones as
// stored, with sparse ones inserted at the positions recorded under
// MetaSparsePositions (when valid) and the others appended.
func (m *Model) logicalOrder() []entry {
	var dense, sparse []entry
	for i := range m.inits {
		e := entry{name: m.inits[i].Name, dense: m.dense[i], sparse: m.sparse[i], idx: i}
		if e.dense != nil {
			dense = append(dense, e)
		} else {
			sparse = append(sparse, e)
		}
	}
	var pos map[string]int
	for _, p := range m.pb.GetMetadataProps() {
		if p.GetKey() == MetaSparsePositions {
			if json.Unmarshal([]byte(p.GetValue()), &pos) != nil {
				pos = nil
			}
		}
	}
	type placed struct {
		e   entry
		pos int
	}
	var at []placed
	var rest []entry
	for _, e := range sparse {
		if p, ok := pos[e.name]; ok && p >= 0 {
			at = append(at, placed{e, p})
		} else {
			rest = append(rest, e)
		}
	}
	slices.SortStableFunc(at, func(a, b placed) int { return a.pos - b.pos })
	out := make([]entry, 0, len(m.inits))
	di := 0
	for _, p := range at {
		for len(out) < p.pos && di < len(dense) {
			out = append(out, dense[di])
			di++
		}
		out = append(out, p.e)
	}
	out = append(out, dense[di:]...)
	return append(out, rest...)
}

// sparsify stores dense data of the template's dtype as a SparseTensorProto
// whose values keep every other field of tmpl.
func (m *Model) sparsify(tmpl *onnxpb.TensorProto, dims []int64, data []byte, what string) (*onnxpb.SparseTensorProto, error) {
	dt := tmpl.GetDataType()
	bits := elemBits(dt)
	if bits == 0 || bits%8 != 0 {
		return nil, fmt.Errorf("%w: %s: %s: cannot store data type %s as a sparse tensor", ErrUnsupported, m.name, what, DType(dt))
	}
	size := int(bits / 8)
	if len(data)%size != 0 {
		return nil, fmt.Errorf("%s: %s: %d bytes is not a whole number of %d-byte elements", m.name, what, len(data), size)
	}
	var vals, idx []byte
	n := len(data) / size
	for i := 0; i < n; i++ {
		el := data[i*size : (i+1)*size]
		if allZero(el) {
			continue
		}
		vals = append(vals, el...)
		idx = binary.LittleEndian.AppendUint64(idx, uint64(i))
	}
	nnz := int64(len(vals) / size)
	if vals == nil {
		vals, idx = []byte{}, []byte{}
	}
	return &onnxpb.SparseTensorProto{
		Values:  withRaw(tmpl, []int64{nnz}, vals),
		Indices: &onnxpb.TensorProto{Dims: []int64{nnz}, DataType: proto.Int32(TypeInt64), RawData: idx},
		Dims:    slices.Clone(dims),
	}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// withRaw returns a copy of t with the given dims and raw_data, its typed
// data fields and external data cleared; every other field is kept.
func withRaw(t *onnxpb.TensorProto, dims []int64, raw []byte) *onnxpb.TensorProto {
	n := shallow(t)
	n.Dims = slices.Clone(dims)
	n.FloatData, n.Int32Data, n.StringData, n.Int64Data, n.DoubleData, n.Uint64Data = nil, nil, nil, nil, nil, nil
	if raw == nil {
		raw = []byte{}
	}
	n.RawData = raw
	n.ExternalData = nil
	if n.GetDataLocation() == LocationExternal {
		n.DataLocation = nil
	}
	return n
}

// shallow returns a new message with the fields and unknown fields of m,
// sharing their values (callers replace fields, never modify them).
func shallow[T proto.Message](m T) T {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	return dst.Interface().(T)
}

// checkOtherExternal rejects external data outside the main graph's
// initializers (node attributes, subgraphs), which Write cannot relocate.
func (m *Model) checkOtherExternal() error {
	var bad string
	var walkGraph func(g *onnxpb.GraphProto, top bool, depth int)
	check := func(t *onnxpb.TensorProto) {
		if t != nil && t.GetDataLocation() == LocationExternal && bad == "" {
			bad = t.GetName()
		}
	}
	walkGraph = func(g *onnxpb.GraphProto, top bool, depth int) {
		if g == nil || depth > 64 {
			return
		}
		if !top {
			for _, t := range g.GetInitializer() {
				check(t)
			}
			for _, s := range g.GetSparseInitializer() {
				check(s.GetValues())
				check(s.GetIndices())
			}
		}
		for _, n := range g.GetNode() {
			for _, a := range n.GetAttribute() {
				check(a.GetT())
				for _, t := range a.GetTensors() {
					check(t)
				}
				if s := a.GetSparseTensor(); s != nil {
					check(s.GetValues())
					check(s.GetIndices())
				}
				walkGraph(a.GetG(), false, depth+1)
				for _, sg := range a.GetGraphs() {
					walkGraph(sg, false, depth+1)
				}
			}
		}
	}
	walkGraph(m.pb.GetGraph(), true, 0)
	if bad != "" {
		return fmt.Errorf("%w: %s: tensor %q outside the main graph's initializers uses external data", ErrUnsupported, m.name, bad)
	}
	return nil
}
