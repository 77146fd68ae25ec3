package sparse

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/lmsparse/lmsparse/tensor"
)

// PartData is one stored part as read from a file.
type PartData struct {
	DType tensor.DType
	Shape tensor.Shape
	Data  []byte
}

func readInt(b []byte, dt tensor.DType, i int64) int64 {
	switch dt {
	case tensor.U16:
		return int64(binary.LittleEndian.Uint16(b[2*i:]))
	case tensor.I32:
		return int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
	default: // I64
		return int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
}

// vector checks that p is a 1-D tensor of n elements of one of dts.
func vector(what string, p PartData, n int64, dts ...tensor.DType) error {
	ok := false
	for _, d := range dts {
		ok = ok || p.DType == d
	}
	if !ok {
		return fmt.Errorf("%w: %s has dtype %s, want one of %v", ErrFormat, what, p.DType, dts)
	}
	if len(p.Shape) != 1 || (n >= 0 && p.Shape[0] != n) {
		return fmt.Errorf("%w: %s has shape %v, want [%d]", ErrFormat, what, p.Shape, n)
	}
	if want, err := p.Shape.Bytes(p.DType); err != nil || want != int64(len(p.Data)) {
		return fmt.Errorf("%w: %s holds %d bytes for shape %v", ErrFormat, what, len(p.Data), p.Shape)
	}
	return nil
}

// denseShape decodes a .shape part: I64 [2], non-negative, with a dense
// byte size of dt that fits in an int64.
func denseShape(p PartData, dt tensor.DType) (rows, cols int64, err error) {
	if err := vector("shape", p, 2, tensor.I64); err != nil {
		return 0, 0, err
	}
	rows, cols = readInt(p.Data, tensor.I64, 0), readInt(p.Data, tensor.I64, 1)
	if _, err := (tensor.Shape{rows, cols}).Bytes(dt); err != nil {
		return 0, 0, fmt.Errorf("%w: shape [%d %d]: %w", ErrFormat, rows, cols, err)
	}
	return rows, cols, nil
}

// MaxDenseBytes bounds the dense size a sparse tensor may declare (1 TiB),
// so a corrupt shape cannot make decompression write without end.
const MaxDenseBytes = 1 << 40

// Decoded is a validated sparse tensor that can be written out dense.
type Decoded struct {
	DType      tensor.DType
	Rows, Cols int64
	// row fills dst (cols elements, zeroed by the caller) with row r.
	row func(r int64, dst []byte)
}

// Shape returns [Rows, Cols].
func (d *Decoded) Shape() tensor.Shape { return tensor.Shape{d.Rows, d.Cols} }

// Size returns the dense byte size.
func (d *Decoded) Size() int64 { return d.Rows * d.Cols * int64(d.DType.Size()) }

// WriteTo streams the dense row-major bytes to w, one row at a time.
func (d *Decoded) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, bufSize)
	row := make([]byte, d.Cols*int64(d.DType.Size()))
	var n int64
	for r := int64(0); r < d.Rows; r++ {
		clear(row)
		d.row(r, row)
		m, err := bw.Write(row)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// Bytes returns the dense bytes (for small tensors and tests).
func (d *Decoded) Bytes() []byte {
	var b bytes.Buffer
	d.WriteTo(&b)
	return b.Bytes()
}

func limitDense(rows, cols int64, dt tensor.DType) error {
	b, err := (tensor.Shape{rows, cols}).Bytes(dt)
	if err != nil {
		return fmt.Errorf("%w: shape [%d %d]: %w", ErrFormat, rows, cols, err)
	}
	if b > MaxDenseBytes {
		return fmt.Errorf("%w: shape [%d %d] of %s is %d bytes dense, over the %d-byte limit", ErrFormat, rows, cols, dt, b, int64(MaxDenseBytes))
	}
	return nil
}

// DecodeCSR validates a CSR tensor — its values, col_indices, crow_indices
// and shape parts — checking every index, and returns it ready to be
// written dense. Validation costs O(rows + nnz) and allocates nothing large.
func DecodeCSR(values, colIdx, crow, shape PartData) (*Decoded, error) {
	dt := values.DType
	es := int64(dt.Size())
	if es == 0 {
		return nil, fmt.Errorf("%w: values dtype %s has no fixed size", ErrFormat, dt)
	}
	rows, cols, err := denseShape(shape, dt)
	if err != nil {
		return nil, err
	}
	if err := limitDense(rows, cols, dt); err != nil {
		return nil, err
	}
	if err := vector("values", values, -1, dt); err != nil {
		return nil, err
	}
	nnz := values.Shape[0]
	if err := vector("col_indices", colIdx, nnz, tensor.U16, tensor.I32, tensor.I64); err != nil {
		return nil, err
	}
	if err := vector("crow_indices", crow, rows+1, tensor.I32, tensor.I64); err != nil {
		return nil, err
	}
	if first := readInt(crow.Data, crow.DType, 0); first != 0 {
		return nil, fmt.Errorf("%w: crow_indices[0] = %d, want 0", ErrFormat, first)
	}
	for r := int64(0); r < rows; r++ {
		lo, hi := readInt(crow.Data, crow.DType, r), readInt(crow.Data, crow.DType, r+1)
		if hi < lo || hi > nnz {
			return nil, fmt.Errorf("%w: crow_indices[%d], [%d] = %d, %d: not non-decreasing within [0, %d]", ErrFormat, r, r+1, lo, hi, nnz)
		}
		prev := int64(-1)
		for j := lo; j < hi; j++ {
			c := readInt(colIdx.Data, colIdx.DType, j)
			if c <= prev || c >= cols {
				return nil, fmt.Errorf("%w: row %d: column index %d after %d (columns must ascend within [0, %d))", ErrFormat, r, c, prev, cols)
			}
			prev = c
		}
	}
	if last := readInt(crow.Data, crow.DType, rows); last != nnz {
		return nil, fmt.Errorf("%w: crow_indices[%d] = %d, but there are %d values", ErrFormat, rows, last, nnz)
	}
	return &Decoded{DType: dt, Rows: rows, Cols: cols, row: func(r int64, dst []byte) {
		lo, hi := readInt(crow.Data, crow.DType, r), readInt(crow.Data, crow.DType, r+1)
		for j := lo; j < hi; j++ {
			c := readInt(colIdx.Data, colIdx.DType, j)
			copy(dst[c*es:(c+1)*es], values.Data[j*es:(j+1)*es])
		}
	}}, nil
}

// DecodeBitmask validates a compressed-tensors sparse-bitmask tensor — its
// compressed, bitmask, row_offsets and shape parts — and returns it ready
// to be written dense.
func DecodeBitmask(compressed, bitmask, rowOffsets, shape PartData) (*Decoded, error) {
	dt := compressed.DType
	es := int64(dt.Size())
	if es == 0 {
		return nil, fmt.Errorf("%w: compressed dtype %s has no fixed size", ErrFormat, dt)
	}
	rows, cols, err := denseShape(shape, dt)
	if err != nil {
		return nil, err
	}
	if err := limitDense(rows, cols, dt); err != nil {
		return nil, err
	}
	if err := vector("compressed", compressed, -1, dt); err != nil {
		return nil, err
	}
	nnz := compressed.Shape[0]
	rowBytes := (cols + 7) / 8
	if bitmask.DType != tensor.U8 && bitmask.DType != tensor.BOOL && bitmask.DType != tensor.I8 ||
		!bitmask.Shape.Equal(tensor.Shape{rows, rowBytes}) || int64(len(bitmask.Data)) != rows*rowBytes {
		return nil, fmt.Errorf("%w: bitmask is %s %v, want U8 [%d %d]", ErrFormat, bitmask.DType, bitmask.Shape, rows, rowBytes)
	}
	if err := vector("row_offsets", rowOffsets, rows, tensor.I64, tensor.I32); err != nil {
		return nil, err
	}
	var j int64
	for r := int64(0); r < rows; r++ {
		if off := readInt(rowOffsets.Data, rowOffsets.DType, r); off != j {
			return nil, fmt.Errorf("%w: row_offsets[%d] = %d, but the bitmask puts row %d at %d", ErrFormat, r, off, r, j)
		}
		row := bitmask.Data[r*rowBytes : (r+1)*rowBytes]
		for _, b := range row {
			j += int64(bits.OnesCount8(b))
		}
		if cols%8 != 0 && row[rowBytes-1]>>(cols%8) != 0 {
			return nil, fmt.Errorf("%w: row %d: bitmask bit set past column %d", ErrFormat, r, cols)
		}
	}
	if j != nnz {
		return nil, fmt.Errorf("%w: bitmask marks %d values but compressed holds %d", ErrFormat, j, nnz)
	}
	return &Decoded{DType: dt, Rows: rows, Cols: cols, row: func(r int64, dst []byte) {
		j := readInt(rowOffsets.Data, rowOffsets.DType, r)
		for bi, b := range bitmask.Data[r*rowBytes : (r+1)*rowBytes] {
			for b != 0 {
				c := int64(bi)*8 + int64(bits.TrailingZeros8(b))
				b &= b - 1
				copy(dst[c*es:(c+1)*es], compressed.Data[j*es:(j+1)*es])
				j++
			}
		}
	}}, nil
}
