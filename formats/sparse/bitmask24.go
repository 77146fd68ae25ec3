package sparse

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"

	"github.com/lmsparse/lmsparse/tensor"
)

// select24 returns the four-bit selection of the group of four elements
// of row r starting at column c0 in the sparse-24-bitmask layout: the
// stored elements, then — when fewer than two are stored — the
// lowest-index other elements, so that exactly two bits are set. A group
// with more than two stored elements is an error.
func select24(m *Matrix, es int, r, c0 int64) (uint8, error) {
	var sel uint8
	n := 0
	for k := int64(0); k < 4; k++ {
		if m.stored(r*m.Cols+c0+k, es) {
			sel |= 1 << k
			n++
		}
	}
	if n > 2 {
		return 0, fmt.Errorf("%w: row %d, columns %d to %d hold %d values: not 2:4 along the stored rows", ErrFormat, r, c0, c0+3, n)
	}
	for k := uint(0); n < 2; k++ {
		if sel&(1<<k) == 0 {
			sel |= 1 << k
			n++
		}
	}
	return sel, nil
}

// write24Values writes, per row, the two selected elements of every group
// of four in column order: rows·cols/2 elements, each the dense value
// (+0 where pruned).
func write24Values(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, bufSize)
	zero := make([]byte, es)
	for r := int64(0); r < m.Rows; r++ {
		for c0 := int64(0); c0+4 <= m.Cols; c0 += 4 {
			sel, err := select24(m, es, r, c0)
			if err != nil {
				return err
			}
			for k := int64(0); k < 4; k++ {
				if sel&(1<<k) == 0 {
					continue
				}
				i := r*m.Cols + c0 + k
				if m.Pruned != nil && m.Pruned[i] {
					bw.Write(zero)
				} else {
					bw.Write(m.Raw[i*int64(es) : (i+1)*int64(es)])
				}
			}
		}
	}
	return bw.Flush()
}

// write24Bitmask writes the selection as rows of ceil(cols/8) bytes, little
// bit order (element c of a row is bit c%8 of byte c/8).
func write24Bitmask(w io.Writer, m *Matrix) error {
	es, err := m.check()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, bufSize)
	row := make([]byte, (m.Cols+7)/8)
	for r := int64(0); r < m.Rows; r++ {
		clear(row)
		for c0 := int64(0); c0+4 <= m.Cols; c0 += 4 {
			sel, err := select24(m, es, r, c0)
			if err != nil {
				return err
			}
			row[c0/8] |= sel << (c0 % 8)
		}
		bw.Write(row)
	}
	return bw.Flush()
}

// DecodeBitmask24 validates a compressed-tensors sparse-24-bitmask tensor
// — its compressed ([rows, cols/2] of the dtype), bitmask (U8 [rows,
// ceil(cols/8)]) and shape (I64 [2, 1], or [2]) parts — and returns it
// ready to be written dense. Every row of the bitmask must mark exactly
// cols/2 elements, so row r's values are row r of compressed.
func DecodeBitmask24(compressed, bitmask, shape PartData) (*Decoded, error) {
	dt := compressed.DType
	es := int64(dt.Size())
	if es == 0 {
		return nil, fmt.Errorf("%w: compressed dtype %s has no fixed size", ErrFormat, dt)
	}
	if shape.Shape.Equal(tensor.Shape{2, 1}) {
		shape.Shape = tensor.Shape{2}
	}
	rows, cols, err := denseShape(shape, dt)
	if err != nil {
		return nil, err
	}
	if err := limitDense(rows, cols, dt); err != nil {
		return nil, err
	}
	if cols%4 != 0 {
		return nil, fmt.Errorf("%w: 2:4 shape [%d %d]: columns not a multiple of 4", ErrFormat, rows, cols)
	}
	half := cols / 2
	if !compressed.Shape.Equal(tensor.Shape{rows, half}) || int64(len(compressed.Data)) != rows*half*es {
		return nil, fmt.Errorf("%w: compressed is %s %v, want [%d %d]", ErrFormat, dt, compressed.Shape, rows, half)
	}
	rowBytes := (cols + 7) / 8
	if bitmask.DType != tensor.U8 && bitmask.DType != tensor.BOOL && bitmask.DType != tensor.I8 ||
		!bitmask.Shape.Equal(tensor.Shape{rows, rowBytes}) || int64(len(bitmask.Data)) != rows*rowBytes {
		return nil, fmt.Errorf("%w: bitmask is %s %v, want U8 [%d %d]", ErrFormat, bitmask.DType, bitmask.Shape, rows, rowBytes)
	}
	for r := int64(0); r < rows; r++ {
		row := bitmask.Data[r*rowBytes : (r+1)*rowBytes]
		var n int64
		for _, b := range row {
			n += int64(bits.OnesCount8(b))
		}
		if n != half {
			return nil, fmt.Errorf("%w: row %d: bitmask marks %d values, want %d (two per group of four)", ErrFormat, r, n, half)
		}
		if cols%8 != 0 && row[rowBytes-1]>>(cols%8) != 0 {
			return nil, fmt.Errorf("%w: row %d: bitmask bit set past column %d", ErrFormat, r, cols)
		}
	}
	return &Decoded{DType: dt, Rows: rows, Cols: cols, row: func(r int64, dst []byte) {
		j := r * half
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
