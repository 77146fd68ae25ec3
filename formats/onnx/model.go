package onnx

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"

	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/internal/safeio"
)

var (
	// ErrFormat reports a file that is not a valid ONNX model: a protobuf
	// decoding error, a missing graph, a tensor whose data does not match
	// its shape, an external data reference that escapes the model's
	// directory or points past the end of its file, a count beyond a bound.
	ErrFormat = errors.New("invalid ONNX model")
	// ErrUnsupported reports valid ONNX that this package does not handle:
	// segmented tensors, string tensors where bytes are needed, a sparse
	// initializer of a dtype without a fixed element size.
	ErrUnsupported = errors.New("unsupported ONNX feature")
	// ErrTooLarge reports a model whose protobuf encoding would exceed
	// [MaxProtoBytes]; writing it needs WriteOptions.ExternalData.
	ErrTooLarge = errors.New("ONNX model too large for one protobuf file")
)

// MaxProtoBytes is the largest protobuf file this package reads or writes:
// 2 GiB − 1 bytes, protobuf's limit on one serialized message. Larger models
// keep their tensors in external data files.
const MaxProtoBytes = math.MaxInt32

// Storage tells where an initializer's data lives in the file.
type Storage string

// Storage kinds.
const (
	StorageRaw      Storage = "raw"      // TensorProto.raw_data
	StorageTyped    Storage = "typed"    // float_data, int32_data, int64_data, ...
	StorageExternal Storage = "external" // a byte range of an external file
	StorageSparse   Storage = "sparse"   // a sparse_initializer (COO values and indices)
)

// Initializer describes one initializer of the model's main graph, dense
// (graph.initializer) or sparse (graph.sparse_initializer).
type Initializer struct {
	Name     string
	DType    tensor.DType // a passthrough dtype for types lmsparse cannot decode; see [DType]
	DataType int32        // the ONNX TensorProto.DataType number
	Shape    tensor.Shape // the dense shape
	// Bytes is the size of the dense little-endian data, or -1 when the
	// element size is unknown (STRING).
	Bytes   int64
	Storage Storage
	// Location, Offset and Length locate external data: a file relative to
	// the model's directory (StorageExternal).
	Location       string
	Offset, Length int64
	// NNZ is the number of stored values of a sparse initializer.
	NNZ int64
	// Segmented is set for a TensorProto holding only a segment of a
	// tensor; its data cannot be read ([ErrUnsupported]).
	Segmented bool
}

// Model is an ONNX model read into memory (by [Open], on Linux, a
// read-only memory map of the file whose large initializers are not
// copied). It is not modified after [Open] or [Decode] and may be used
// from several goroutines.
type Model struct {
	name  string // file name for messages
	path  string // file read by Open; "" after Decode
	dir   string // directory for external data; "" when none is allowed
	size  int64  // encoded size of the file
	pb    *onnxpb.ModelProto
	inits []Initializer
	index map[string]int
	// Per inits index, exactly one of dense and sparse is set.
	dense  []*onnxpb.TensorProto
	sparse []*onnxpb.SparseTensorProto
	mapped bool             // large raw_data alias a read-only file mapping (Release may drop their pages)
	mu     sync.Mutex       // guards files
	files  map[string]int64 // external files checked so far: path → size
}

// Open reads and checks the ONNX model at path. External data is looked up
// relative to the model's directory. Errors wrap [ErrFormat] (and
// fs.ErrNotExist for a missing file) and name the file and the tensor.
func Open(path string) (*Model, error) {
	f, st, err := safeio.Open(path)
	if err != nil {
		if errors.Is(err, safeio.ErrInput) {
			return nil, fmt.Errorf("%w (%w)", err, ErrFormat)
		}
		return nil, err
	}
	defer f.Close()
	if st.Size() > MaxProtoBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, over protobuf's 2 GiB limit (larger models keep tensors in external data)", ErrFormat, path, st.Size())
	}
	var m *Model
	if data := mmap.File(f, st.Size()); data != nil {
		// The large initializers stay in the mapping: reading them costs
		// no heap, and Release lets their pages go once they are decoded.
		var aliased bool
		if m, aliased, err = decodeAliased(path, data, filepath.Dir(path)); err != nil {
			return nil, err
		}
		// Release may drop pages only when raw_data points into the
		// mapping; after a fallback decode it is heap memory.
		m.mapped = aliased
	} else {
		data := make([]byte, st.Size())
		if _, err := io.ReadFull(f, data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if m, err = decode(path, data, filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	m.path = path
	return m, nil
}

// Release tells the model that the caller has read initializer name (with
// InitializerBytes) and will not need it again soon. When the model was
// opened by [Open] from a file it could memory-map, large initializers
// live in that mapping and their pages leave the process's resident set
// (they are read again from the file if the initializer is read again);
// otherwise Release does nothing.
func (m *Model) Release(name string) {
	i, ok := m.index[name]
	if !ok || !m.mapped || m.dense[i] == nil {
		return
	}
	mmap.DropPages(m.dense[i].RawData)
}

// Decode reads an ONNX model from memory. dir is the directory external
// data is relative to; with dir "" a model referring to external data is an
// error. Errors wrap [ErrFormat].
func Decode(data []byte, dir string) (*Model, error) {
	name := "ONNX model"
	if dir != "" {
		name = "ONNX model in " + dir
	}
	if int64(len(data)) > MaxProtoBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, over protobuf's 2 GiB limit", ErrFormat, name, len(data))
	}
	return decode(name, data, dir)
}

func decode(name string, data []byte, dir string) (*Model, error) {
	pb := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(data, pb); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFormat, name, err)
	}
	m := &Model{name: name, dir: dir, size: int64(len(data)), pb: pb, index: map[string]int{}, files: map[string]int64{}}
	if err := m.index1(); err != nil {
		return nil, err
	}
	return m, nil
}

// index1 checks the main graph's initializers and builds the index.
func (m *Model) index1() error {
	g := m.pb.GetGraph()
	if g == nil {
		return fmt.Errorf("%w: %s: no graph", ErrFormat, m.name)
	}
	if m.pb.IrVersion == nil {
		return fmt.Errorf("%w: %s: no ir_version", ErrFormat, m.name)
	}
	add := func(in Initializer, d *onnxpb.TensorProto, s *onnxpb.SparseTensorProto) error {
		if in.Name == "" {
			return fmt.Errorf("%w: %s: initializer %d has no name", ErrFormat, m.name, len(m.inits))
		}
		if _, dup := m.index[in.Name]; dup {
			return fmt.Errorf("%w: %s: initializer %q appears twice", ErrFormat, m.name, in.Name)
		}
		m.index[in.Name] = len(m.inits)
		m.inits = append(m.inits, in)
		m.dense = append(m.dense, d)
		m.sparse = append(m.sparse, s)
		return nil
	}
	for _, t := range g.Initializer {
		what := fmt.Sprintf("initializer %q", t.GetName())
		md, err := m.meta(t, what)
		if err != nil {
			return err
		}
		in := Initializer{Name: t.GetName(), DType: md.dtype, DataType: md.dataType, Shape: md.shape,
			Bytes: md.nbytes, Storage: md.storage, Segmented: md.segmented}
		if md.storage == StorageExternal {
			in.Location, in.Offset, in.Length = md.ext.location, md.ext.offset, md.ext.length
		}
		if err := add(in, t, nil); err != nil {
			return err
		}
	}
	for i, s := range g.SparseInitializer {
		sm, err := m.sparseMeta(s, fmt.Sprintf("sparse initializer %d (%q)", i, s.GetValues().GetName()))
		if err != nil {
			return err
		}
		in := Initializer{Name: s.GetValues().GetName(), DType: sm.dtype, DataType: sm.dataType, Shape: sm.shape,
			Bytes: sm.nbytes, Storage: StorageSparse, NNZ: sm.nnz}
		if err := add(in, nil, s); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file the model was read from ("" after [Decode]).
func (m *Model) Path() string { return m.path }

// Dir returns the directory external data is read from ("" when none).
func (m *Model) Dir() string { return m.dir }

// Size returns the size of the encoded model file in bytes.
func (m *Model) Size() int64 { return m.size }

// Proto returns the decoded model. It is shared: callers must not modify it.
func (m *Model) Proto() *onnxpb.ModelProto { return m.pb }

// Graph returns the model's main graph (shared: do not modify).
func (m *Model) Graph() *onnxpb.GraphProto { return m.pb.GetGraph() }

// Opset returns the version of the operator set imported for domain ("" and
// "ai.onnx" both name the default ONNX domain), or 0 when it is not imported.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.pb.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.GetVersion()
		}
	}
	return 0
}

// Initializers lists the main graph's initializers: the dense ones in file
// order, then the sparse ones in file order.
func (m *Model) Initializers() []Initializer {
	out := make([]Initializer, len(m.inits))
	for i, in := range m.inits {
		in.Shape = in.Shape.Clone()
		out[i] = in
	}
	return out
}

// Initializer returns the initializer called name.
func (m *Model) Initializer(name string) (Initializer, bool) {
	i, ok := m.index[name]
	if !ok {
		return Initializer{}, false
	}
	in := m.inits[i]
	in.Shape = in.Shape.Clone()
	return in, true
}

// InitializerBytes returns the dense little-endian data of the initializer
// called name (a new slice the caller owns): raw_data copied, typed fields
// encoded, external data read from its file, a sparse initializer expanded
// with zeros. For a passthrough dtype other than STRING the stored bytes
// are returned as they are.
func (m *Model) InitializerBytes(name string) ([]byte, error) {
	i, ok := m.index[name]
	if !ok {
		return nil, fmt.Errorf("%s: no initializer %q", m.name, name)
	}
	what := fmt.Sprintf("initializer %q", name)
	if s := m.sparse[i]; s != nil {
		_, _, b, err := m.sparseData(s, what)
		return b, err
	}
	_, _, b, err := m.tensorData(m.dense[i], what)
	return b, err
}

// TensorData decodes any TensorProto of the model (an initializer, a
// Constant node's value attribute): its dtype, shape and dense
// little-endian bytes (a new slice).
func (m *Model) TensorData(t *onnxpb.TensorProto) (tensor.DType, tensor.Shape, []byte, error) {
	return m.tensorData(t, fmt.Sprintf("tensor %q", t.GetName()))
}

// SparseTensorData decodes a SparseTensorProto of the model to its dtype,
// dense shape and dense little-endian bytes.
func (m *Model) SparseTensorData(s *onnxpb.SparseTensorProto) (tensor.DType, tensor.Shape, []byte, error) {
	return m.sparseData(s, fmt.Sprintf("sparse tensor %q", s.GetValues().GetName()))
}
