package sparse

// Tests written from the peers' documented layouts (compressed-tensors'
// sparse-bitmask and sparse-24-bitmask, PyTorch's sparse CSR tensors):
// each reference below restates a documented rule, independently of the
// encoders under test.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

func f32s(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func i64s(vs ...int64) []byte {
	b := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return b
}

var negZero = float32(math.Copysign(0, -1))

// ctBitmaskReference is compressed-tensors' sparse-bitmask compressor as
// documented: mask = tensor != 0; compressed = tensor[mask] (row-major);
// bitmask = numpy.packbits(mask, axis=-1, bitorder="little");
// row_offsets = cumsum(row counts) - row counts (int64); shape int64 [2].
func ctBitmaskReference(dense []float32, rows, cols int) (compressed, bitmask, rowOffsets, shape []byte) {
	rowBytes := (cols + 7) / 8
	bitmask = make([]byte, rows*rowBytes)
	var n int64
	for r := 0; r < rows; r++ {
		rowOffsets = binary.LittleEndian.AppendUint64(rowOffsets, uint64(n))
		for c := 0; c < cols; c++ {
			if v := dense[r*cols+c]; v != 0 { // -0.0 == 0: not kept
				compressed = binary.LittleEndian.AppendUint32(compressed, math.Float32bits(v))
				bitmask[r*rowBytes+c/8] |= 1 << (c % 8)
				n++
			}
		}
	}
	return compressed, bitmask, rowOffsets, i64s(int64(rows), int64(cols))
}

// TestCompressedTensorsBitmaskBytes: the parts lmsparse writes for a pruned
// tensor equal, byte for byte, what compressed-tensors' compressor makes
// of the dense pruned tensor — kept -0.0 values included (not stored).
func TestCompressedTensorsBitmaskBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	for trial := 0; trial < 20; trial++ {
		rows, cols := 1+rng.IntN(7), 1+rng.IntN(30)
		vals := make([]float32, rows*cols)
		pruned := make([]bool, rows*cols)
		for i := range vals {
			switch rng.IntN(4) {
			case 0:
				vals[i] = negZero
			case 1:
				vals[i] = 0
			default:
				vals[i] = float32(rng.NormFloat64())
			}
			pruned[i] = rng.IntN(2) == 0
		}
		m := &Matrix{DType: tensor.F32, Rows: int64(rows), Cols: int64(cols), Raw: f32s(vals...), Pruned: pruned}
		dense := make([]float32, len(vals)) // what prune --format dense writes
		for i, v := range vals {
			if !pruned[i] {
				dense[i] = v
			}
		}
		got := encode(t, Bitmask, m)
		c, b, ro, sh := ctBitmaskReference(dense, rows, cols)
		for _, p := range []struct {
			sfx   string
			dt    tensor.DType
			shape tensor.Shape
			want  []byte
		}{
			{SuffixCompressed, tensor.F32, tensor.Shape{int64(len(c) / 4)}, c},
			{SuffixBitmask, tensor.U8, tensor.Shape{int64(rows), int64((cols + 7) / 8)}, b},
			{SuffixRowOffsets, tensor.I64, tensor.Shape{int64(rows)}, ro},
			{SuffixShape, tensor.I64, tensor.Shape{2}, sh},
		} {
			g := got[p.sfx]
			if g.DType != p.dt || !g.Shape.Equal(p.shape) || !bytes.Equal(g.Data, p.want) {
				t.Fatalf("%dx%d part %s: got %s %v % x, want %s %v % x", rows, cols, p.sfx, g.DType, g.Shape, g.Data, p.dt, p.shape, p.want)
			}
		}
	}
}

// TestBitmask24KnownLayout checks sparse-24-bitmask byte for byte on a
// hand-worked 2×8 F32 tensor (compressed-tensors: compressed [rows,
// cols/2] in the original dtype, two values per group of four along the
// last dimension; bitmask U8 [rows, ceil(cols/8)] little bit order;
// shape I64 [2, 1]; no row offsets).
//
//	row 0: [1, 0, -2, 0 | 0, 0, 0, 3]   groups: {0,2}; {7} + lowest zero 4
//	row 1: [0, 0, 0, 0 | 5, -0, 0, 6]   groups: {} + 0,1;  {4,7} (-0 not kept)
func TestBitmask24KnownLayout(t *testing.T) {
	m := &Matrix{DType: tensor.F32, Rows: 2, Cols: 8, Raw: f32s(1, 0, -2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 5, negZero, 0, 6)}
	got := encode(t, Bitmask24, m)
	want := map[string]PartData{
		SuffixCompressed: {tensor.F32, tensor.Shape{2, 4}, f32s(1, -2, 0, 3, 0, 0, 5, 6)},
		// row 0: bits 0, 2, 4, 7 = 0b10010101; row 1: bits 0, 1, 4, 7 = 0b10010011
		SuffixBitmask: {tensor.U8, tensor.Shape{2, 1}, []byte{0x95, 0x93}},
		SuffixShape:   {tensor.I64, tensor.Shape{2, 1}, i64s(2, 8)},
	}
	if len(got) != len(want) {
		t.Fatalf("parts %v, want compressed, bitmask, shape", len(got))
	}
	for sfx, w := range want {
		g := got[sfx]
		if g.DType != w.DType || !g.Shape.Equal(w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("part %s: got %s %v % x, want %s %v % x", sfx, g.DType, g.Shape, g.Data, w.DType, w.Shape, w.Data)
		}
	}
	d, err := DecodeBitmask24(got[SuffixCompressed], got[SuffixBitmask], got[SuffixShape])
	if err != nil {
		t.Fatal(err)
	}
	if want := f32s(1, 0, -2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 5, 0, 0, 6); !bytes.Equal(d.Bytes(), want) {
		t.Errorf("decoded % x", d.Bytes())
	}
	// The shape written [2] (as sparse-bitmask does) is read too.
	if _, err := DecodeBitmask24(got[SuffixCompressed], got[SuffixBitmask], PartData{tensor.I64, tensor.Shape{2}, i64s(2, 8)}); err != nil {
		t.Error(err)
	}
	// Three values in a group of four is not 2:4.
	bad := &Matrix{DType: tensor.F32, Rows: 1, Cols: 4, Raw: f32s(1, 2, 3, 0)}
	parts, _ := Parts(Bitmask24, tensor.F32, 1, 4, 3)
	if err := parts[0].Write(&bytes.Buffer{}, bad); !errors.Is(err, ErrFormat) {
		t.Errorf("3 of 4: err = %v", err)
	}
	if _, err := Parts(Bitmask24, tensor.F32, 1, 6, 3); !errors.Is(err, ErrFormat) {
		t.Errorf("6 columns: err = %v", err)
	}
	mut := func(p PartData, f func(b []byte)) PartData {
		p.Data = bytes.Clone(p.Data)
		f(p.Data)
		return p
	}
	for name, p := range map[string][3]PartData{
		"three bits in a row": {got[SuffixCompressed], mut(got[SuffixBitmask], func(b []byte) { b[0] |= 2 }), got[SuffixShape]},
		"compressed [8]":      {{tensor.F32, tensor.Shape{8}, got[SuffixCompressed].Data}, got[SuffixBitmask], got[SuffixShape]},
		"columns not 4k":      {got[SuffixCompressed], got[SuffixBitmask], PartData{tensor.I64, tensor.Shape{2, 1}, i64s(2, 6)}},
		"shape I32":           {got[SuffixCompressed], got[SuffixBitmask], PartData{tensor.I32, tensor.Shape{2, 1}, i64s(2, 8)[:8]}},
	} {
		if _, err := DecodeBitmask24(p[0], p[1], p[2]); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestCSRTorchRules: the CSR parts are what torch.sparse_csr_tensor takes
// as they are — crow_indices and col_indices 1-D of one dtype, int32 or
// int64; crow of rows+1 entries, crow[0] = 0, non-decreasing, crow[rows] =
// nnz; columns in [0, cols), strictly increasing within a row; values 1-D
// of nnz — and int32 is used whenever every index fits.
func TestCSRTorchRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	for _, c := range []struct{ rows, cols int64 }{{3, 5}, {7, 40}, {2, 70001}, {0, 4}} {
		m := randomMatrix(rng, tensor.BF16, c.rows, c.cols, 0.5)
		p := encode(t, CSR, m)
		vals, col, crow := p[SuffixValues], p[SuffixColIndices], p[SuffixCrow]
		if col.DType != crow.DType || col.DType != tensor.I32 {
			t.Fatalf("%v: index dtypes %s, %s; torch needs one dtype, int32 here", c, col.DType, crow.DType)
		}
		nnz := vals.Shape[0]
		if len(vals.Shape) != 1 || !col.Shape.Equal(tensor.Shape{nnz}) || !crow.Shape.Equal(tensor.Shape{c.rows + 1}) {
			t.Fatalf("%v: shapes %v %v %v", c, vals.Shape, col.Shape, crow.Shape)
		}
		at := func(b []byte, i int64) int64 { return int64(int32(binary.LittleEndian.Uint32(b[4*i:]))) }
		if at(crow.Data, 0) != 0 || at(crow.Data, c.rows) != nnz {
			t.Fatalf("%v: crow starts %d, ends %d (nnz %d)", c, at(crow.Data, 0), at(crow.Data, c.rows), nnz)
		}
		for r := int64(0); r < c.rows; r++ {
			lo, hi := at(crow.Data, r), at(crow.Data, r+1)
			if hi < lo {
				t.Fatalf("%v: crow decreases at %d", c, r)
			}
			for j := lo; j < hi; j++ {
				if cc := at(col.Data, j); cc < 0 || cc >= c.cols || j > lo && cc <= at(col.Data, j-1) {
					t.Fatalf("%v: row %d column %d out of order or range", c, r, cc)
				}
			}
		}
	}
	if CSRIndexDType(1<<31, 10) != tensor.I64 || CSRIndexDType(10, 1<<31) != tensor.I64 || CSRIndexDType(1<<31-1, 1<<31-1) != tensor.I32 {
		t.Error("CSRIndexDType: I64 exactly when a column or a count reaches 2^31")
	}
}

// TestOldCSRIndices: CSR files written before the index dtypes became
// torch's (U16 columns beside I32 row pointers) still decode.
func TestOldCSRIndices(t *testing.T) {
	vals := PartData{tensor.F32, tensor.Shape{3}, f32s(1, 2, 3)}
	cols := PartData{tensor.U16, tensor.Shape{3}, []byte{0, 0, 2, 0, 2, 0}}
	crow := PartData{tensor.I32, tensor.Shape{3}, []byte{0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}}
	d, err := DecodeCSR(vals, cols, crow, PartData{tensor.I64, tensor.Shape{2}, i64s(2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if want := f32s(1, 0, 2, 0, 0, 3); !bytes.Equal(d.Bytes(), want) {
		t.Errorf("decoded % x", d.Bytes())
	}
}
