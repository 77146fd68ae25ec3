package sparse

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/lmsparse/lmsparse/tensor"
)

// ErrFormat reports sparse parts that are inconsistent: wrong dtypes or
// shapes, indices out of range or out of order, counts that do not add up.
var ErrFormat = errors.New("invalid sparse tensor")

// Encoding is how one tensor is stored.
type Encoding string

// Encodings.
const (
	Dense   Encoding = "dense"
	CSR     Encoding = "csr"
	Bitmask Encoding = "bitmask"
	// Bitmask24 is compressed-tensors' sparse-24-bitmask: exactly two
	// values per group of four along the stored last dimension.
	Bitmask24 Encoding = "24bitmask"
)

// CompressedTensors reports whether e is one of compressed-tensors'
// layouts (Bitmask, Bitmask24): their parts are named by module (see
// [ModulePrefix]) and, as compressed-tensors' compressors do, they store
// only values that are not zero, so a kept -0.0 is not stored.
func (e Encoding) CompressedTensors() bool { return e == Bitmask || e == Bitmask24 }

// Count returns the number of elements encoding e stores for a tensor with
// stored elements (any bit set) and nonzero values: nonzero for the
// compressed-tensors layouts, stored otherwise. (Bitmask24 stores
// rows·cols/2 whatever the count.)
func Count(e Encoding, stored, nonzero int64) int64 {
	if e.CompressedTensors() {
		return nonzero
	}
	return stored
}

// ModulePrefix returns the prefix of the parts of tensor name in a
// compressed-tensors layout: the module name, name without ".weight", as
// compressed-tensors 0.9.0 and later write it; ok is false for a tensor
// that is not a module's weight (compressed-tensors compresses none).
func ModulePrefix(name string) (prefix string, ok bool) {
	prefix, ok = strings.CutSuffix(name, ".weight")
	return prefix, ok && prefix != ""
}

// Names of the parts. A tensor NAME stored as CSR becomes NAME.values,
// NAME.col_indices, NAME.crow_indices and NAME.shape; as a bitmask,
// NAME.compressed, NAME.bitmask, NAME.row_offsets and NAME.shape.
const (
	SuffixValues     = ".values"
	SuffixColIndices = ".col_indices"
	SuffixCrow       = ".crow_indices"
	SuffixShape      = ".shape"
	SuffixCompressed = ".compressed"
	SuffixBitmask    = ".bitmask"
	SuffixRowOffsets = ".row_offsets"
)

// MetadataKey is the safetensors __metadata__ key naming the CSR layout
// version, CSRVersion, in files that hold CSR tensors.
const (
	MetadataKey = "lmsparse.format"
	CSRVersion  = "csr-v1"
)

// Matrix is a 2-D tensor in its stored layout: rows×cols elements of DType
// in Raw (little-endian, row-major). An element is stored by the sparse
// encodings when it is not Pruned and its bits are not all zero (so -0.0
// is kept and round-trips exactly). Pruned may be nil.
type Matrix struct {
	DType      tensor.DType
	Rows, Cols int64
	Raw        []byte
	Pruned     []bool
	// Keep, when set, is the precomputed answer for every element: not
	// pruned and not all-zero bits (see [Matrix.ComputeKeep]); encoders
	// then read it instead of testing both.
	Keep []bool
	// DropNegZero makes -0.0 count as zero: not stored (the
	// compressed-tensors layouts, whose compressors keep value != 0).
	DropNegZero bool
}

// ComputeKeep fills Keep (reusing buf when it is long enough) so that the
// several parts of an encoding do not test each element again.
func (m *Matrix) ComputeKeep(buf []bool) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	n := m.Rows * m.Cols
	if int64(cap(buf)) < n {
		buf = make([]bool, n)
	}
	keep := buf[:n]
	bits32 := ^uint32(0)
	if m.DropNegZero && m.DType.IsFloat() {
		bits32 = 1<<31 - 1
	}
	switch {
	case es == 4 && m.Pruned == nil:
		raw := m.Raw[:4*n]
		for i := range keep {
			keep[i] = binary.LittleEndian.Uint32(raw[4*i:])&bits32 != 0
		}
	case es == 4:
		raw, pruned := m.Raw[:4*n], m.Pruned[:n]
		for i := range keep {
			// Without && (a branch per element on random masks).
			keep[i] = b2i(binary.LittleEndian.Uint32(raw[4*i:])&bits32 != 0)&^b2i(pruned[i]) != 0
		}
	case es == 2:
		raw, bits16 := m.Raw[:2*n], uint16(bits32>>16)|0xffff>>1
		for i := range keep {
			keep[i] = binary.LittleEndian.Uint16(raw[2*i:])&bits16 != 0 && (m.Pruned == nil || !m.Pruned[i])
		}
	default:
		for i := range keep {
			keep[i] = m.stored(int64(i), es)
		}
	}
	m.Keep = keep
	return nil
}

func (m *Matrix) stored(i int64, es int) bool {
	if m.Keep != nil {
		return m.Keep[i]
	}
	if m.Pruned != nil && m.Pruned[i] {
		return false
	}
	if m.DropNegZero && m.DType.IsFloat() {
		return NonZeroValue(m.Raw, es, i)
	}
	return NonZeroBits(m.Raw, es, i)
}

// NonZeroValue reports whether float element i (of es bytes) of raw is
// not zero: any bit set other than the sign bit (the top bit of its last
// byte), so false for both +0 and -0.
func NonZeroValue(raw []byte, es int, i int64) bool {
	e := raw[i*int64(es) : (i+1)*int64(es)]
	if e[es-1]&0x7f != 0 {
		return true
	}
	for _, b := range e[:es-1] {
		if b != 0 {
			return true
		}
	}
	return false
}

// NonZeroBits reports whether element i (of es bytes) of raw has any bit
// set: true for every value but +0 (and integer 0).
func NonZeroBits(raw []byte, es int, i int64) bool {
	switch es {
	case 4:
		return binary.LittleEndian.Uint32(raw[4*i:]) != 0
	case 2:
		return binary.LittleEndian.Uint16(raw[2*i:]) != 0
	case 1:
		return raw[i] != 0
	case 8:
		return binary.LittleEndian.Uint64(raw[8*i:]) != 0
	}
	for _, b := range raw[i*int64(es) : (i+1)*int64(es)] {
		if b != 0 {
			return true
		}
	}
	return false
}

func (m *Matrix) check() (int, error) {
	es := m.DType.Size()
	if es == 0 {
		return 0, fmt.Errorf("%w: dtype %s has no fixed element size", ErrFormat, m.DType)
	}
	n, err := tensor.MulInt64(m.Rows, m.Cols)
	if err != nil {
		return 0, err
	}
	if b, err := tensor.MulInt64(n, int64(es)); err != nil || b != int64(len(m.Raw)) {
		return 0, fmt.Errorf("%w: %d bytes for %d×%d %s", ErrFormat, len(m.Raw), m.Rows, m.Cols, m.DType)
	}
	if m.Pruned != nil && int64(len(m.Pruned)) != n || m.Keep != nil && int64(len(m.Keep)) != n {
		return 0, fmt.Errorf("%w: mask of %d for %d elements", ErrFormat, max(len(m.Pruned), len(m.Keep)), n)
	}
	return es, nil
}

// NNZ counts the stored elements of m.
func (m *Matrix) NNZ() (int64, error) {
	es, err := m.check()
	if err != nil {
		return 0, err
	}
	var nnz int64
	for i := int64(0); i < m.Rows*m.Cols; i++ {
		if m.stored(i, es) {
			nnz++
		}
	}
	return nnz, nil
}

// IndexDTypes returns the compact index dtypes of the sparse-autoencoder
// codes: U16 column indices when cols ≤ 65536, else I32, and I32 row
// pointers, or I64 when nnz ≥ 2^31. (CSR tensors use [CSRIndexDType].)
func IndexDTypes(cols, nnz int64) (col, crow tensor.DType) {
	col, crow = tensor.U16, tensor.I32
	if cols > 1<<16 {
		col = tensor.I32
	}
	if nnz >= 1<<31 {
		crow = tensor.I64
	}
	return col, crow
}

// CSRIndexDType returns the dtype of both CSR index parts, col_indices and
// crow_indices: I32, or I64 when a column or a count does not fit (cols or
// nnz ≥ 2^31). PyTorch's sparse_csr_tensor takes exactly these: both index
// tensors of one dtype, int32 or int64.
func CSRIndexDType(cols, nnz int64) tensor.DType {
	if cols >= 1<<31 || nnz >= 1<<31 {
		return tensor.I64
	}
	return tensor.I32
}

// Sizes returns the bytes each encoding takes for a rows×cols tensor of dt
// with stored elements (any bit set) and nonzero values (all parts
// together). Bitmask24 is only meaningful when cols is a multiple of 4.
func Sizes(dt tensor.DType, rows, cols, stored, nonzero int64) map[Encoding]int64 {
	es := int64(dt.Size())
	ix := int64(CSRIndexDType(cols, stored).Size())
	return map[Encoding]int64{
		Dense:     rows * cols * es,
		CSR:       stored*es + stored*ix + (rows+1)*ix + 16,
		Bitmask:   nonzero*es + rows*((cols+7)/8) + rows*8 + 16,
		Bitmask24: rows*(cols/2)*es + rows*((cols+7)/8) + 16,
	}
}

// Choose returns the smallest of dense, CSR and bitmask; on a tie dense
// wins, then CSR. (Bitmask24 is never chosen: it is asked for.)
func Choose(dt tensor.DType, rows, cols, stored, nonzero int64) Encoding {
	s := Sizes(dt, rows, cols, stored, nonzero)
	best := Dense
	for _, e := range []Encoding{CSR, Bitmask} {
		if s[e] < s[best] {
			best = e
		}
	}
	return best
}

// Part is one tensor of an encoded tensor's representation.
type Part struct {
	Suffix string
	DType  tensor.DType
	Shape  tensor.Shape
	Size   int64
	// Write streams the part's bytes; it reads m only.
	Write func(w io.Writer, m *Matrix) error
}

// Parts describes the tensors that store a rows×cols matrix of dt with nnz
// stored elements (see [Count]) under encoding e (Dense: one part with
// suffix ""). For the compressed-tensors layouts the Matrix written must
// have DropNegZero set.
func Parts(e Encoding, dt tensor.DType, rows, cols, nnz int64) ([]Part, error) {
	es := int64(dt.Size())
	if es == 0 {
		return nil, fmt.Errorf("%w: dtype %s has no fixed element size", ErrFormat, dt)
	}
	shape := Part{SuffixShape, tensor.I64, tensor.Shape{2}, 16, writeShape}
	switch e {
	case Dense:
		return []Part{{"", dt, tensor.Shape{rows, cols}, rows * cols * es, writeDense}}, nil
	case CSR:
		ix := CSRIndexDType(cols, nnz)
		return []Part{
			{SuffixValues, dt, tensor.Shape{nnz}, nnz * es, writeValues},
			{SuffixColIndices, ix, tensor.Shape{nnz}, nnz * int64(ix.Size()), writeColIndices(ix)},
			{SuffixCrow, ix, tensor.Shape{rows + 1}, (rows + 1) * int64(ix.Size()), writeCrow(ix)},
			shape,
		}, nil
	case Bitmask:
		return []Part{
			{SuffixCompressed, dt, tensor.Shape{nnz}, nnz * es, writeValues},
			{SuffixBitmask, tensor.U8, tensor.Shape{rows, (cols + 7) / 8}, rows * ((cols + 7) / 8), writeBitmask},
			{SuffixRowOffsets, tensor.I64, tensor.Shape{rows}, rows * 8, writeRowOffsets},
			shape,
		}, nil
	case Bitmask24:
		if cols%4 != 0 {
			return nil, fmt.Errorf("%w: 2:4 layout needs a multiple of 4 columns, have %d", ErrFormat, cols)
		}
		return []Part{
			{SuffixCompressed, dt, tensor.Shape{rows, cols / 2}, rows * (cols / 2) * es, write24Values},
			{SuffixBitmask, tensor.U8, tensor.Shape{rows, (cols + 7) / 8}, rows * ((cols + 7) / 8), write24Bitmask},
			{SuffixShape, tensor.I64, tensor.Shape{2, 1}, 16, writeShape},
		}, nil
	}
	return nil, fmt.Errorf("%w: unknown encoding %q", ErrFormat, e)
}

const bufSize = 1 << 20

func writeShape(w io.Writer, m *Matrix) error {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(m.Rows))
	binary.LittleEndian.PutUint64(b[8:], uint64(m.Cols))
	_, err := w.Write(b[:])
	return err
}

// writeDense writes Raw with the pruned elements zeroed.
func writeDense(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, bufSize)
	zero := make([]byte, es)
	n := m.Rows * m.Cols
	for i := int64(0); i < n; {
		// Copy runs of kept elements in one call.
		j := i
		for j < n && (m.Pruned == nil || !m.Pruned[j]) {
			j++
		}
		if j > i {
			bw.Write(m.Raw[i*int64(es) : j*int64(es)])
			i = j
			continue
		}
		bw.Write(zero)
		i++
	}
	return bw.Flush()
}

// writeValues writes the stored elements, row-major.
func writeValues(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	if m.Keep != nil && (es == 4 || es == 2) {
		// Compact a block at a time without branches: every element is
		// copied to the next free slot, which advances only for kept ones.
		const block = bufSize / 4
		out := make([]byte, es*block+8)
		for lo := 0; lo < len(m.Keep); lo += block {
			keep := m.Keep[lo:min(lo+block, len(m.Keep))]
			j := 0
			if es == 4 {
				src := m.Raw[4*lo : 4*(lo+len(keep))]
				for i, k := range keep {
					binary.LittleEndian.PutUint32(out[j:], binary.LittleEndian.Uint32(src[4*i:]))
					j += 4 * b2i(k)
				}
			} else {
				src := m.Raw[2*lo : 2*(lo+len(keep))]
				for i, k := range keep {
					binary.LittleEndian.PutUint16(out[j:], binary.LittleEndian.Uint16(src[2*i:]))
					j += 2 * b2i(k)
				}
			}
			if _, err := w.Write(out[:j]); err != nil {
				return err
			}
		}
		return nil
	}
	bw := bufio.NewWriterSize(w, bufSize)
	for i := int64(0); i < m.Rows*m.Cols; i++ {
		if m.stored(i, es) {
			bw.Write(m.Raw[i*int64(es) : (i+1)*int64(es)])
		}
	}
	return bw.Flush()
}

func putInt(b []byte, dt tensor.DType, v int64) []byte {
	switch dt {
	case tensor.U16:
		return binary.LittleEndian.AppendUint16(b, uint16(v))
	case tensor.I32:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	default:
		return binary.LittleEndian.AppendUint64(b, uint64(v))
	}
}

func writeColIndices(dt tensor.DType) func(io.Writer, *Matrix) error {
	return func(w io.Writer, m *Matrix) error {
		es, err := m.check()
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, bufSize)
		if m.Keep != nil && (dt == tensor.U16 || dt == tensor.I32) {
			// Branch-free per row, as in writeValues.
			is := dt.Size()
			out := make([]byte, int64(is)*m.Cols+8)
			for r := int64(0); r < m.Rows; r++ {
				j := 0
				for c, k := range m.Keep[r*m.Cols : (r+1)*m.Cols] {
					if is == 2 {
						binary.LittleEndian.PutUint16(out[j:], uint16(c))
					} else {
						binary.LittleEndian.PutUint32(out[j:], uint32(c))
					}
					j += is * b2i(k)
				}
				bw.Write(out[:j])
			}
			return bw.Flush()
		}
		var b []byte
		for r := int64(0); r < m.Rows; r++ {
			for c := int64(0); c < m.Cols; c++ {
				if m.stored(r*m.Cols+c, es) {
					b = putInt(b[:0], dt, c)
					bw.Write(b)
				}
			}
		}
		return bw.Flush()
	}
}

// rowCounts returns the stored elements per row.
func rowCounts(m *Matrix, es int) []int64 {
	counts := make([]int64, m.Rows)
	if m.Keep != nil {
		for r := range counts {
			counts[r] = countTrue(m.Keep[int64(r)*m.Cols : int64(r+1)*m.Cols])
		}
		return counts
	}
	for r := int64(0); r < m.Rows; r++ {
		for c := int64(0); c < m.Cols; c++ {
			if m.stored(r*m.Cols+c, es) {
				counts[r]++
			}
		}
	}
	return counts
}

func writeCrow(dt tensor.DType) func(io.Writer, *Matrix) error {
	return func(w io.Writer, m *Matrix) error {
		es, err := m.check()
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, bufSize)
		var b []byte
		var sum int64
		b = putInt(b[:0], dt, 0)
		bw.Write(b)
		for _, c := range rowCounts(m, es) {
			sum += c
			b = putInt(b[:0], dt, sum)
			bw.Write(b)
		}
		return bw.Flush()
	}
}

// writeBitmask writes one bit per element, rows of ceil(cols/8) bytes,
// little bit order (element c of a row is bit c%8 of byte c/8), as
// numpy.packbits(..., bitorder="little").
func writeBitmask(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, bufSize)
	row := make([]byte, (m.Cols+7)/8)
	if m.Keep != nil {
		for r := int64(0); r < m.Rows; r++ {
			packBits(row, m.Keep[r*m.Cols:(r+1)*m.Cols])
			bw.Write(row)
		}
		return bw.Flush()
	}
	for r := int64(0); r < m.Rows; r++ {
		clear(row)
		for c := int64(0); c < m.Cols; c++ {
			if m.stored(r*m.Cols+c, es) {
				row[c/8] |= 1 << (c % 8)
			}
		}
		bw.Write(row)
	}
	return bw.Flush()
}

// writeRowOffsets writes, per row, the index in .compressed of its first
// element (an exclusive prefix sum of the row counts), as I64.
func writeRowOffsets(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, bufSize)
	var b [8]byte
	var sum int64
	for _, c := range rowCounts(m, es) {
		binary.LittleEndian.PutUint64(b[:], uint64(sum))
		bw.Write(b[:])
		sum += c
	}
	return bw.Flush()
}

// b2i is 1 for true and 0 for false (compiled without a branch).
func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

// boolWord reads 8 bools as the bytes of a little-endian word: each byte
// is 0 or 1.
func boolWord(b []bool) uint64 {
	_ = b[7]
	return uint64(b2i(b[0])) | uint64(b2i(b[1]))<<8 | uint64(b2i(b[2]))<<16 | uint64(b2i(b[3]))<<24 |
		uint64(b2i(b[4]))<<32 | uint64(b2i(b[5]))<<40 | uint64(b2i(b[6]))<<48 | uint64(b2i(b[7]))<<56
}

// countTrue counts the true elements of b.
func countTrue(b []bool) int64 {
	var n int
	i := 0
	for ; i+8 <= len(b); i += 8 {
		n += bits.OnesCount64(boolWord(b[i:]))
	}
	for _, v := range b[i:] {
		n += b2i(v)
	}
	return int64(n)
}

// packBits sets bit c%8 of dst[c/8] to src[c] (little bit order) and
// clears the unused high bits of the last byte; len(dst) = ceil(len(src)/8).
func packBits(dst []byte, src []bool) {
	i := 0
	for ; i+8 <= len(src); i += 8 {
		// With bytes b_j in 0/1, the product puts b_j at bit 56+j and
		// nothing else above bit 55 (the partial products never collide).
		dst[i/8] = byte(boolWord(src[i:]) * 0x0102040810204080 >> 56)
	}
	if i < len(src) {
		var last byte
		for j, v := range src[i:] {
			last |= byte(b2i(v)) << j
		}
		dst[i/8] = last
	}
}
