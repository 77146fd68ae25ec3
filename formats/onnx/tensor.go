package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

// tensorMeta is what meta learns about a TensorProto without reading data.
type tensorMeta struct {
	dtype     tensor.DType
	dataType  int32
	shape     tensor.Shape
	elems     int64
	nbytes    int64 // dense bytes; -1 when unknown (STRING)
	storage   Storage
	ext       extRef
	segmented bool
}

// extRef locates external data.
type extRef struct {
	location string // as written in the file
	path     string // resolved, inside the model's directory
	offset   int64
	length   int64
}

// elemBits returns the bits per element of an ONNX data type, or 0 when it
// has no fixed size (STRING, UNDEFINED, unknown numbers).
func elemBits(dataType int32) int64 {
	switch dataType {
	case TypeUint4, TypeInt4, TypeFloat4E2M1:
		return 4
	case TypeUint8, TypeInt8, TypeBool, TypeFloat8E4M3, TypeFloat8E4M3Z, TypeFloat8E5M2, TypeFloat8E5M2Z:
		return 8
	case TypeUint16, TypeInt16, TypeFloat16, TypeBfloat16:
		return 16
	case TypeFloat, TypeInt32, TypeUint32:
		return 32
	case TypeInt64, TypeDouble, TypeUint64, TypeComplex64:
		return 64
	case TypeComplex128:
		return 128
	}
	return 0
}

// shapeOf checks dims: at most tensor.MaxDims, none negative, the element
// count within int64.
func shapeOf(dims []int64) (tensor.Shape, int64, error) {
	if len(dims) > tensor.MaxDims {
		return nil, 0, fmt.Errorf("%d dimensions (at most %d)", len(dims), tensor.MaxDims)
	}
	s := tensor.Shape(append([]int64{}, dims...))
	n, err := s.Elems()
	if err != nil {
		return nil, 0, err
	}
	return s, n, nil
}

// denseBytes returns the byte size of n elements of dataType, -1 when the
// type has no fixed size.
func denseBytes(dataType int32, n int64) (int64, error) {
	bits := elemBits(dataType)
	if bits == 0 {
		return -1, nil
	}
	if bits == 4 {
		return n/2 + n%2, nil
	}
	return tensor.MulInt64(n, bits/8)
}

// typedCount returns how many entries of the typed field used by dataType
// hold n elements, the field's name and its actual length in t.
func typedCount(t *onnxpb.TensorProto, dataType int32, n int64) (want int64, field string, have int) {
	switch dataType {
	case TypeFloat:
		return n, "float_data", len(t.FloatData)
	case TypeComplex64:
		return 2 * n, "float_data", len(t.FloatData)
	case TypeDouble:
		return n, "double_data", len(t.DoubleData)
	case TypeComplex128:
		return 2 * n, "double_data", len(t.DoubleData)
	case TypeInt64:
		return n, "int64_data", len(t.Int64Data)
	case TypeUint32, TypeUint64:
		return n, "uint64_data", len(t.Uint64Data)
	case TypeString:
		return n, "string_data", len(t.StringData)
	case TypeUint4, TypeInt4, TypeFloat4E2M1:
		return n/2 + n%2, "int32_data", len(t.Int32Data)
	default: // INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16, FLOAT8*
		return n, "int32_data", len(t.Int32Data)
	}
}

func typedFields(t *onnxpb.TensorProto) int {
	return len(t.FloatData) + len(t.Int32Data) + len(t.StringData) + len(t.Int64Data) + len(t.DoubleData) + len(t.Uint64Data)
}

// meta checks a TensorProto: shape, data type, and that the data it holds
// (or refers to) has the size the shape implies.
func (m *Model) meta(t *onnxpb.TensorProto, what string) (tensorMeta, error) {
	bad := func(format string, args ...any) (tensorMeta, error) {
		return tensorMeta{}, fmt.Errorf("%w: %s: %s: %s", ErrFormat, m.name, what, fmt.Sprintf(format, args...))
	}
	var md tensorMeta
	if t == nil {
		return bad("missing tensor")
	}
	var err error
	if md.shape, md.elems, err = shapeOf(t.Dims); err != nil {
		return bad("dims %v: %v", t.Dims, err)
	}
	md.dataType = t.GetDataType()
	if md.dataType == TypeUndefined {
		return bad("data_type is UNDEFINED")
	}
	md.dtype = DType(md.dataType)
	if md.nbytes, err = denseBytes(md.dataType, md.elems); err != nil {
		return bad("shape %v: %v", md.shape, err)
	}
	md.segmented = t.Segment != nil
	switch loc := t.GetDataLocation(); loc {
	case LocationExternal:
		md.storage = StorageExternal
		if t.RawData != nil || typedFields(t) > 0 {
			return bad("external data and data inside the file")
		}
		if md.dataType == TypeString {
			return bad("STRING tensors cannot use external data")
		}
		if md.ext, err = m.external(t, what); err != nil {
			return tensorMeta{}, err
		}
		if !md.segmented && md.nbytes >= 0 && md.ext.length != md.nbytes {
			return bad("external data %q holds %d bytes at offset %d, shape %v %s needs %d",
				md.ext.location, md.ext.length, md.ext.offset, md.shape, md.dtype, md.nbytes)
		}
	case LocationDefault:
		if len(t.ExternalData) > 0 {
			return bad("external_data entries without data_location EXTERNAL")
		}
		if t.RawData != nil {
			md.storage = StorageRaw
			if typedFields(t) > 0 {
				return bad("both raw_data and a typed data field")
			}
			if md.dataType == TypeString {
				return bad("STRING data in raw_data")
			}
			if !md.segmented && md.nbytes >= 0 && int64(len(t.RawData)) != md.nbytes {
				return bad("raw_data has %d bytes, shape %v %s needs %d", len(t.RawData), md.shape, md.dtype, md.nbytes)
			}
			break
		}
		md.storage = StorageTyped
		want, field, have := typedCount(t, md.dataType, md.elems)
		if typedFields(t) != have {
			return bad("data type %s stored in a field other than %s", md.dtype, field)
		}
		if !md.segmented && int64(have) != want {
			return bad("%s has %d values, shape %v %s needs %d", field, have, md.shape, md.dtype, want)
		}
	default:
		return bad("data_location %d is neither DEFAULT (0) nor EXTERNAL (1)", loc)
	}
	return md, nil
}

// external parses and checks the external_data entries of t.
func (m *Model) external(t *onnxpb.TensorProto, what string) (extRef, error) {
	bad := func(format string, args ...any) (extRef, error) {
		return extRef{}, fmt.Errorf("%w: %s: %s: external data: %s", ErrFormat, m.name, what, fmt.Sprintf(format, args...))
	}
	var r extRef
	var haveLoc, haveOff, haveLen bool
	if len(t.ExternalData) > 16 {
		return bad("%d external_data entries", len(t.ExternalData))
	}
	for _, kv := range t.ExternalData {
		k, v := kv.GetKey(), kv.GetValue()
		num := func(have *bool, dst *int64) error {
			if *have {
				return fmt.Errorf("key %q appears twice", k)
			}
			*have = true
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%s %q is not a non-negative integer", k, v)
			}
			*dst = n
			return nil
		}
		switch k {
		case "location":
			if haveLoc {
				return bad("key %q appears twice", k)
			}
			haveLoc, r.location = true, v
		case "offset":
			if err := num(&haveOff, &r.offset); err != nil {
				return bad("%v", err)
			}
		case "length":
			if err := num(&haveLen, &r.length); err != nil {
				return bad("%v", err)
			}
		}
	}
	if !haveLoc {
		return bad("no location")
	}
	if m.dir == "" {
		return bad("location %q: the model was decoded from memory, so external data cannot be read", r.location)
	}
	p, err := resolveLocation(m.dir, r.location)
	if err != nil {
		return bad("%v", err)
	}
	r.path = p
	m.mu.Lock()
	size, ok := m.files[p]
	m.mu.Unlock()
	if !ok {
		st, err := os.Stat(p)
		if err != nil {
			return extRef{}, fmt.Errorf("%w: %s: %s: external data: %w", ErrFormat, m.name, what, err)
		}
		if !st.Mode().IsRegular() {
			return bad("location %q is not a regular file", r.location)
		}
		size = st.Size()
		m.mu.Lock()
		m.files[p] = size
		m.mu.Unlock()
	}
	if r.offset > size {
		return bad("offset %d is beyond the end of %q (%d bytes)", r.offset, r.location, size)
	}
	if !haveLen {
		r.length = size - r.offset
	}
	if end, err := tensor.AddInt64(r.offset, r.length); err != nil || end > size {
		return bad("bytes [%d, %d+%d) are beyond the end of %q (%d bytes)", r.offset, r.offset, r.length, r.location, size)
	}
	return r, nil
}

// resolveLocation maps an external data location to a path inside dir. It
// rejects empty and absolute locations, backslashes and NUL bytes,
// locations whose cleaned form leaves dir, and locations that leave dir
// through a symbolic link.
func resolveLocation(dir, loc string) (string, error) {
	switch {
	case loc == "":
		return "", fmt.Errorf("empty location")
	case strings.ContainsAny(loc, "\x00\\"):
		return "", fmt.Errorf("location %q contains a backslash or NUL byte", loc)
	case path.IsAbs(loc) || filepath.IsAbs(loc) || filepath.VolumeName(loc) != "" || (len(loc) >= 2 && loc[1] == ':'):
		return "", fmt.Errorf("location %q is an absolute path; it must be relative to the model's directory", loc)
	}
	clean := path.Clean(loc)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("location %q escapes the model's directory", loc)
	}
	full := filepath.Join(dir, filepath.FromSlash(clean))
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	realFull, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(realDir, realFull)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("location %q escapes the model's directory through a symbolic link", loc)
	}
	return full, nil
}

// tensorData checks t and returns its dense bytes.
func (m *Model) tensorData(t *onnxpb.TensorProto, what string) (tensor.DType, tensor.Shape, []byte, error) {
	md, err := m.meta(t, what)
	if err != nil {
		return "", nil, nil, err
	}
	if md.segmented {
		return "", nil, nil, fmt.Errorf("%w: %s: %s: segmented tensors (TensorProto.segment) cannot be read", ErrUnsupported, m.name, what)
	}
	if md.dataType == TypeString {
		return "", nil, nil, fmt.Errorf("%w: %s: %s: STRING tensors have no byte encoding", ErrUnsupported, m.name, what)
	}
	switch md.storage {
	case StorageRaw:
		return md.dtype, md.shape, append([]byte(nil), t.RawData...), nil
	case StorageExternal:
		b, err := readExternal(md.ext)
		if err != nil {
			return "", nil, nil, fmt.Errorf("%s: %s: %w", m.name, what, err)
		}
		return md.dtype, md.shape, b, nil
	}
	if md.nbytes < 0 {
		return "", nil, nil, fmt.Errorf("%w: %s: %s: data type %s has no fixed size", ErrUnsupported, m.name, what, md.dtype)
	}
	return md.dtype, md.shape, encodeTyped(t, md), nil
}

func readExternal(r extRef) ([]byte, error) {
	f, _, err := safeio.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("%w: external data %q: %w", ErrFormat, r.location, err)
	}
	defer f.Close()
	b := make([]byte, r.length)
	if _, err := f.ReadAt(b, r.offset); err != nil {
		return nil, fmt.Errorf("%w: external data %q: reading %d bytes at offset %d: %w", ErrFormat, r.location, r.length, r.offset, err)
	}
	return b, nil
}

// encodeTyped converts the typed data field of t (already checked by meta)
// to little-endian bytes.
func encodeTyped(t *onnxpb.TensorProto, md tensorMeta) []byte {
	b := make([]byte, md.nbytes)
	le := binary.LittleEndian
	switch md.dataType {
	case TypeFloat, TypeComplex64:
		for i, v := range t.FloatData {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case TypeDouble, TypeComplex128:
		for i, v := range t.DoubleData {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case TypeInt64:
		for i, v := range t.Int64Data {
			le.PutUint64(b[8*i:], uint64(v))
		}
	case TypeUint64:
		for i, v := range t.Uint64Data {
			le.PutUint64(b[8*i:], v)
		}
	case TypeUint32:
		for i, v := range t.Uint64Data {
			le.PutUint32(b[4*i:], uint32(v))
		}
	case TypeInt32:
		for i, v := range t.Int32Data {
			le.PutUint32(b[4*i:], uint32(v))
		}
	case TypeInt16, TypeUint16, TypeFloat16, TypeBfloat16:
		for i, v := range t.Int32Data {
			le.PutUint16(b[2*i:], uint16(v))
		}
	case TypeBool:
		for i, v := range t.Int32Data {
			if v != 0 {
				b[i] = 1
			}
		}
	case TypeUint4, TypeInt4, TypeFloat4E2M1:
		// Two elements per int32 entry, the first in the low nibble.
		for i, v := range t.Int32Data {
			b[i] = byte(v)
		}
	default: // one byte per element: INT8, UINT8, FLOAT8*
		for i, v := range t.Int32Data {
			b[i] = byte(v)
		}
	}
	return b
}

// sparseMeta describes a SparseTensorProto.
type sparseMeta struct {
	dtype    tensor.DType
	dataType int32
	shape    tensor.Shape
	elems    int64
	nbytes   int64
	nnz      int64
	values   tensorMeta
	indices  tensorMeta
	coords   bool // indices are [nnz, rank] rather than linear [nnz]
}

// sparseMeta checks the structure of a SparseTensorProto (not the index
// values, which sparseData checks as it expands them).
func (m *Model) sparseMeta(s *onnxpb.SparseTensorProto, what string) (sparseMeta, error) {
	bad := func(format string, args ...any) (sparseMeta, error) {
		return sparseMeta{}, fmt.Errorf("%w: %s: %s: %s", ErrFormat, m.name, what, fmt.Sprintf(format, args...))
	}
	var sm sparseMeta
	if s.Values == nil || s.Indices == nil {
		return bad("values or indices missing")
	}
	var err error
	if sm.shape, sm.elems, err = shapeOf(s.Dims); err != nil {
		return bad("dims %v: %v", s.Dims, err)
	}
	if sm.values, err = m.meta(s.Values, what+" values"); err != nil {
		return sparseMeta{}, err
	}
	if sm.indices, err = m.meta(s.Indices, what+" indices"); err != nil {
		return sparseMeta{}, err
	}
	if sm.values.segmented || sm.indices.segmented {
		return bad("segmented values or indices")
	}
	sm.dataType, sm.dtype = sm.values.dataType, sm.values.dtype
	if len(sm.values.shape) != 1 {
		return bad("values have shape %v, want [NNZ]", sm.values.shape)
	}
	sm.nnz = sm.values.shape[0]
	if sm.nnz > sm.elems {
		return bad("%d values for %d elements", sm.nnz, sm.elems)
	}
	if sm.indices.dataType != TypeInt64 {
		return bad("indices have data type %s, want INT64", sm.indices.dtype)
	}
	switch is := sm.indices.shape; {
	case len(is) == 1 && is[0] == sm.nnz:
	case len(is) == 2 && is[0] == sm.nnz && is[1] == int64(len(sm.shape)):
		sm.coords = true
	default:
		return bad("indices have shape %v, want [%d] or [%d %d]", is, sm.nnz, sm.nnz, len(sm.shape))
	}
	if sm.nbytes, err = denseBytes(sm.dataType, sm.elems); err != nil {
		return bad("shape %v: %v", sm.shape, err)
	}
	if sm.nbytes < 0 || elemBits(sm.dataType)%8 != 0 {
		return sparseMeta{}, fmt.Errorf("%w: %s: %s: sparse tensor of data type %s", ErrUnsupported, m.name, what, sm.dtype)
	}
	return sm, nil
}

// MaxSparseDenseBytes bounds the dense size a sparse tensor may expand to
// (64 GiB): its dims are read from the file, so a few bytes could
// otherwise ask for any amount of memory. Below it, a tensor may expand to
// at most [SparseExpandFactor] times the model file's size, or
// [MinSparseBudget] (see [Model.SparseBudget]).
const MaxSparseDenseBytes = 1 << 36

// The budget of a sparse tensor's expansion, tied to the model's real size.
const (
	SparseExpandFactor = 64
	MinSparseBudget    = 256 << 20
)

// SparseBudget returns the most bytes one sparse tensor of m may expand to:
// SparseExpandFactor times the model's file size plus the external data it
// names, at least MinSparseBudget and at most MaxSparseDenseBytes.
func (m *Model) SparseBudget() int64 {
	real := m.StoredBytes()
	return min(max(min(real, MaxSparseDenseBytes/SparseExpandFactor)*SparseExpandFactor, MinSparseBudget), MaxSparseDenseBytes)
}

// StoredBytes returns the model's real size: the bytes of its file plus
// the external data its initializers name (each counted at most
// MaxSparseDenseBytes, so the sum cannot overflow).
func (m *Model) StoredBytes() int64 {
	real := m.size
	for _, in := range m.inits {
		if in.Storage == StorageExternal && in.Length > 0 {
			real += min(in.Length, MaxSparseDenseBytes)
		}
	}
	return real
}

// SparseValues returns the stored values of the sparse initializer name
// (NNZ elements), without expanding it.
func (m *Model) SparseValues(name string) ([]byte, error) {
	i, ok := m.index[name]
	if !ok || m.sparse[i] == nil {
		return nil, fmt.Errorf("%s: no sparse initializer %q", m.name, name)
	}
	_, _, vals, err := m.tensorData(m.sparse[i].Values, fmt.Sprintf("sparse initializer %q values", name))
	return vals, err
}

// sparseIndices reads and checks the indices of a sparse tensor: in range
// and strictly increasing. It returns them linearized.
func (m *Model) sparseIndices(s *onnxpb.SparseTensorProto, sm sparseMeta, what string) ([]int64, error) {
	_, _, idx, err := m.tensorData(s.Indices, what+" indices")
	if err != nil {
		return nil, err
	}
	rank := len(sm.shape)
	lins := make([]int64, sm.nnz)
	prev := int64(-1)
	for i := int64(0); i < sm.nnz; i++ {
		var lin int64
		if sm.coords {
			for d := 0; d < rank; d++ {
				c := int64(binary.LittleEndian.Uint64(idx[8*(i*int64(rank)+int64(d)):]))
				if c < 0 || c >= sm.shape[d] {
					return nil, fmt.Errorf("%w: %s: %s: index %d of value %d is %d, outside dimension %d", ErrFormat, m.name, what, d, i, c, sm.shape[d])
				}
				lin = lin*sm.shape[d] + c // < elems: no overflow
			}
		} else {
			lin = int64(binary.LittleEndian.Uint64(idx[8*i:]))
		}
		if lin < 0 || lin >= sm.elems {
			return nil, fmt.Errorf("%w: %s: %s: index %d of value %d is outside [0, %d)", ErrFormat, m.name, what, lin, i, sm.elems)
		}
		if lin <= prev {
			return nil, fmt.Errorf("%w: %s: %s: indices not strictly increasing at value %d (%d after %d)", ErrFormat, m.name, what, i, lin, prev)
		}
		prev = lin
		lins[i] = lin
	}
	return lins, nil
}

// sparseData expands a SparseTensorProto to dense bytes, checking its
// indices.
func (m *Model) sparseData(s *onnxpb.SparseTensorProto, what string) (tensor.DType, tensor.Shape, []byte, error) {
	sm, err := m.sparseMeta(s, what)
	if err != nil {
		return "", nil, nil, err
	}
	if b := m.SparseBudget(); sm.nbytes > b {
		return "", nil, nil, fmt.Errorf("%w: %s: %s: dense shape %v %s is %d bytes, over the %d-byte budget of expanding a sparse tensor (%d times the model's size, at least %d)",
			ErrFormat, m.name, what, sm.shape, sm.dtype, sm.nbytes, b, SparseExpandFactor, MinSparseBudget)
	}
	lins, err := m.sparseIndices(s, sm, what)
	if err != nil {
		return "", nil, nil, err
	}
	_, _, vals, err := m.tensorData(s.Values, what+" values")
	if err != nil {
		return "", nil, nil, err
	}
	size := elemBits(sm.dataType) / 8
	dense := make([]byte, sm.nbytes)
	for i, lin := range lins {
		copy(dense[lin*size:(lin+1)*size], vals[int64(i)*size:(int64(i)+1)*size])
	}
	return sm.dtype, sm.shape, dense, nil
}

// checkSparse checks a sparse tensor without expanding it.
func (m *Model) checkSparse(s *onnxpb.SparseTensorProto, what string) error {
	sm, err := m.sparseMeta(s, what)
	if err != nil {
		return err
	}
	_, err = m.sparseIndices(s, sm, what)
	return err
}
