package sparse

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

func randomMatrix(rng *rand.Rand, dt tensor.DType, rows, cols int64, density float64) *Matrix {
	es := int64(dt.Size())
	m := &Matrix{DType: dt, Rows: rows, Cols: cols, Raw: make([]byte, rows*cols*es), Pruned: make([]bool, rows*cols)}
	for i := int64(0); i < rows*cols; i++ {
		switch rng.IntN(5) {
		case 0: // exact zero
		case 1: // negative zero: only the sign bit
			m.Raw[(i+1)*es-1] = 0x80
		default:
			for j := int64(0); j < es; j++ {
				m.Raw[i*es+j] = byte(rng.IntN(256))
			}
		}
		m.Pruned[i] = rng.Float64() > density
	}
	return m
}

// encode writes every part of m under e.
func encode(t *testing.T, e Encoding, m *Matrix) map[string]PartData {
	t.Helper()
	m.DropNegZero = false
	stored, err := m.NNZ()
	if err != nil {
		t.Fatal(err)
	}
	m.DropNegZero = true
	nonzero, err := m.NNZ()
	if err != nil {
		t.Fatal(err)
	}
	m.DropNegZero = e.CompressedTensors()
	nnz := Count(e, stored, nonzero)
	parts, err := Parts(e, m.DType, m.Rows, m.Cols, nnz)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]PartData{}
	var total int64
	// The same matrix with Keep precomputed must encode to the same bytes.
	mk := *m
	if err := mk.ComputeKeep(nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		var buf, buf2 bytes.Buffer
		if err := p.Write(&buf, m); err != nil {
			t.Fatal(err)
		}
		if err := p.Write(&buf2, &mk); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("%s part %q: encoding with Keep differs", e, p.Suffix)
		}
		if int64(buf.Len()) != p.Size {
			t.Fatalf("%s part %q: wrote %d bytes, declared %d", e, p.Suffix, buf.Len(), p.Size)
		}
		total += p.Size
		out[p.Suffix] = PartData{p.DType, p.Shape, buf.Bytes()}
	}
	if want := Sizes(m.DType, m.Rows, m.Cols, stored, nonzero)[e]; total != want {
		t.Fatalf("%s: parts total %d bytes, Sizes says %d", e, total, want)
	}
	return out
}

// TestRoundTrip: for every encoding and dtype, decoding gives the dense
// bytes with pruned elements zeroed and every other byte unchanged
// (including -0.0).
func TestRoundTrip(t *testing.T) {
	seed := uint64(42)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for trial := 0; trial < 32; trial++ {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.F8_E4M3, tensor.F64} {
			rows, cols := int64(rng.IntN(9)), int64(1+rng.IntN(40))
			switch trial {
			case 30: // more elements than one block of the value writer
				rows, cols = 300, 1001
			case 31: // I32 column indices
				rows, cols = 2, 70001
			}
			m := randomMatrix(rng, dt, rows, cols, rng.Float64())
			dense := encode(t, Dense, m)[""].Data
			for i := int64(0); i < rows*cols; i++ {
				es := int64(dt.Size())
				want := m.Raw[i*es : (i+1)*es]
				if m.Pruned[i] {
					want = make([]byte, es)
				}
				if !bytes.Equal(dense[i*es:(i+1)*es], want) {
					t.Fatalf("dense element %d wrong", i)
				}
			}
			csr := encode(t, CSR, m)
			d, err := DecodeCSR(csr[SuffixValues], csr[SuffixColIndices], csr[SuffixCrow], csr[SuffixShape])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Bytes(), dense) || d.DType != dt || !d.Shape().Equal(tensor.Shape{rows, cols}) {
				t.Fatalf("%s %dx%d: CSR round trip differs", dt, rows, cols)
			}
			bm := encode(t, Bitmask, m)
			d, err = DecodeBitmask(bm[SuffixCompressed], bm[SuffixBitmask], bm[SuffixRowOffsets], bm[SuffixShape])
			if err != nil {
				t.Fatal(err)
			}
			// compressed-tensors' bitmask keeps value != 0: a kept -0.0
			// comes back +0.0, every other byte as in dense.
			if !bytes.Equal(d.Bytes(), negZeroToZero(dense, dt)) {
				t.Fatalf("%s %dx%d: bitmask round trip differs", dt, rows, cols)
			}
		}
	}
}

// negZeroToZero returns dense with every -0.0 element made +0.0.
func negZeroToZero(dense []byte, dt tensor.DType) []byte {
	out := bytes.Clone(dense)
	es := dt.Size()
	for i := 0; i < len(out)/es; i++ {
		if !NonZeroValue(out, es, int64(i)) {
			clear(out[i*es : (i+1)*es])
		}
	}
	return out
}

func TestKnownLayout(t *testing.T) {
	// [[1, 0, 2], [0, 0, 3]] in F32 with nothing pruned.
	f := func(v float32) []byte { b := make([]byte, 4); tensor.EncodeF32(b, []float32{v}, tensor.F32); return b }
	raw := bytes.Join([][]byte{f(1), f(0), f(2), f(0), f(0), f(3)}, nil)
	m := &Matrix{DType: tensor.F32, Rows: 2, Cols: 3, Raw: raw}
	csr := encode(t, CSR, m)
	if got := csr[SuffixColIndices].Data; !bytes.Equal(got, []byte{0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0}) || csr[SuffixColIndices].DType != tensor.I32 {
		t.Errorf("col_indices = %v (%s)", got, csr[SuffixColIndices].DType)
	}
	if got := csr[SuffixCrow].Data; !bytes.Equal(got, []byte{0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}) || csr[SuffixCrow].DType != tensor.I32 {
		t.Errorf("crow_indices = %v (%s)", got, csr[SuffixCrow].DType)
	}
	bm := encode(t, Bitmask, m)
	if got := bm[SuffixBitmask].Data; !bytes.Equal(got, []byte{0b101, 0b100}) {
		t.Errorf("bitmask = %08b", got)
	}
	if got := bm[SuffixRowOffsets].Data; !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("row_offsets = %v", got)
	}
	if got := bm[SuffixShape].Data; !bytes.Equal(got, []byte{2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("shape = %v", got)
	}
}

func TestChoose(t *testing.T) {
	if e := Choose(tensor.F32, 1024, 1024, 1024*512, 1024*512); e != Bitmask {
		t.Errorf("F32 at 50%%: %s, want bitmask", e)
	}
	if e := Choose(tensor.F32, 1024, 1024, 1024*1024/50, 1024*1024/50); e != CSR {
		t.Errorf("F32 at 98%%: %s, want csr", e)
	}
	if e := Choose(tensor.F32, 64, 64, 64*64, 64*64); e != Dense {
		t.Errorf("F32 at 0%%: %s, want dense", e)
	}
	if col, crow := IndexDTypes(70000, 1<<31); col != tensor.I32 || crow != tensor.I64 {
		t.Errorf("IndexDTypes(70000, 2^31) = %s, %s", col, crow)
	}
	if col, crow := IndexDTypes(65536, 1<<31-1); col != tensor.U16 || crow != tensor.I32 {
		t.Errorf("IndexDTypes(65536, 2^31-1) = %s, %s", col, crow)
	}
}

// TestCorruptParts mutates good parts; each mutation must be rejected.
func TestCorruptParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	m := randomMatrix(rng, tensor.F32, 6, 20, 0.5)
	csr := encode(t, CSR, m)
	bm := encode(t, Bitmask, m)
	mut := func(p PartData, f func(b []byte)) PartData {
		p.Data = bytes.Clone(p.Data)
		f(p.Data)
		return p
	}
	csrCases := map[string][4]PartData{
		"crow not starting at 0": {csr[SuffixValues], csr[SuffixColIndices], mut(csr[SuffixCrow], func(b []byte) { b[0] = 1 }), csr[SuffixShape]},
		"crow past nnz":          {csr[SuffixValues], csr[SuffixColIndices], mut(csr[SuffixCrow], func(b []byte) { b[len(b)-4]++ }), csr[SuffixShape]},
		"column out of range":    {csr[SuffixValues], mut(csr[SuffixColIndices], func(b []byte) { b[0], b[1] = 99, 0 }), csr[SuffixCrow], csr[SuffixShape]},
		"huge shape":             {csr[SuffixValues], csr[SuffixColIndices], csr[SuffixCrow], mut(csr[SuffixShape], func(b []byte) { b[7] = 0x40 })},
		"negative shape":         {csr[SuffixValues], csr[SuffixColIndices], csr[SuffixCrow], mut(csr[SuffixShape], func(b []byte) { b[7] = 0x80 })},
		"wrong value dtype":      {{tensor.DType("X9"), csr[SuffixValues].Shape, csr[SuffixValues].Data}, csr[SuffixColIndices], csr[SuffixCrow], csr[SuffixShape]},
		"short values":           {{tensor.F32, tensor.Shape{1}, csr[SuffixValues].Data[:4]}, csr[SuffixColIndices], csr[SuffixCrow], csr[SuffixShape]},
	}
	for name, p := range csrCases {
		if _, err := DecodeCSR(p[0], p[1], p[2], p[3]); !errors.Is(err, ErrFormat) {
			t.Errorf("CSR %s: err = %v", name, err)
		}
	}
	bmCases := map[string][4]PartData{
		"offset wrong":        {bm[SuffixCompressed], bm[SuffixBitmask], mut(bm[SuffixRowOffsets], func(b []byte) { b[8]++ }), bm[SuffixShape]},
		"extra bit":           {bm[SuffixCompressed], mut(bm[SuffixBitmask], func(b []byte) { b[len(b)-1] |= 0x80 }), bm[SuffixRowOffsets], bm[SuffixShape]},
		"bitmask wrong shape": {bm[SuffixCompressed], PartData{tensor.U8, tensor.Shape{6, 2}, bm[SuffixBitmask].Data[:12]}, bm[SuffixRowOffsets], bm[SuffixShape]},
	}
	for name, p := range bmCases {
		if _, err := DecodeBitmask(p[0], p[1], p[2], p[3]); !errors.Is(err, ErrFormat) {
			t.Errorf("bitmask %s: err = %v", name, err)
		}
	}
}
