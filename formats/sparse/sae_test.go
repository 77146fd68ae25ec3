package sparse

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

// TestEncodeCSRMatchesParts: EncodeCSR of a matrix's nonzeros gives the
// same values and indices as the streaming CSR encoder.
func TestEncodeCSRMatchesParts(t *testing.T) {
	seed := uint64(31)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.F64} {
		m := randomMatrix(rng, dt, 9, 13, 0.4)
		want := encode(t, CSR, m)
		es := int64(dt.Size())
		crow := []int64{0}
		var col []int64
		var vals []byte
		for r := int64(0); r < m.Rows; r++ {
			for c := int64(0); c < m.Cols; c++ {
				if i := r*m.Cols + c; m.stored(i, int(es)) {
					col = append(col, c)
					vals = append(vals, m.Raw[i*es:(i+1)*es]...)
				}
			}
			crow = append(crow, int64(len(col)))
		}
		parts, err := EncodeCSR(dt, m.Rows, m.Cols, crow, col, vals)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			// The codes keep compact index dtypes (IndexDTypes), CSR
			// tensors torch's (CSRIndexDType): compare the indices by value.
			w := want[p.Suffix]
			same := p.DType == w.DType && bytes.Equal(p.Data, w.Data)
			if p.Suffix == SuffixColIndices || p.Suffix == SuffixCrow {
				n := p.Shape[0]
				same = w.Shape[0] == n
				for i := int64(0); same && i < n; i++ {
					same = readInt(p.Data, p.DType, i) == readInt(w.Data, w.DType, i)
				}
			}
			if !same || !p.Shape.Equal(w.Shape) {
				t.Fatalf("%s part %s differs from the streaming encoder", dt, p.Suffix)
			}
		}
	}
	for _, bad := range []struct {
		crow, col []int64
		vals      int
	}{
		{[]int64{0, 2}, []int64{1, 1}, 2}, // repeated column
		{[]int64{0, 1}, []int64{5}, 1},    // column out of range
		{[]int64{0, 2}, []int64{0, 1}, 1}, // values missing
		{[]int64{1, 1}, []int64{0}, 1},    // crow[0] != 0
		{[]int64{0, 1, 0}, []int64{0}, 1}, // wrong number of rows
	} {
		if _, err := EncodeCSR(tensor.F32, 1, 3, bad.crow, bad.col, make([]byte, 4*bad.vals)); !errors.Is(err, ErrFormat) {
			t.Errorf("crow %v col %v: got %v, want ErrFormat", bad.crow, bad.col, err)
		}
	}
}

func f32Part(shape tensor.Shape, v ...float32) PartData {
	b := make([]byte, 4*len(v))
	tensor.EncodeF32(b, v, tensor.F32)
	return PartData{tensor.F32, shape, b}
}

// saeParts encodes Z (given densely, zeros not stored), D and b.
func saeParts(t *testing.T, z []float32, rows, m int, dict []float32, d int, bias []float32) []PartData {
	t.Helper()
	crow := []int64{0}
	var col []int64
	var vals []float32
	for r := 0; r < rows; r++ {
		for j := 0; j < m; j++ {
			if v := z[r*m+j]; v != 0 {
				col = append(col, int64(j))
				vals = append(vals, v)
			}
		}
		crow = append(crow, int64(len(col)))
	}
	parts, err := EncodeCSR(tensor.F32, int64(rows), int64(m), crow, col, f32Part(nil, vals...).Data)
	if err != nil {
		t.Fatal(err)
	}
	var out []PartData
	for _, p := range parts {
		out = append(out, PartData{p.DType, p.Shape, p.Data})
	}
	return append(out, f32Part(tensor.Shape{int64(m), int64(d)}, dict...), f32Part(tensor.Shape{int64(d)}, bias...))
}

func TestDecodeSAE(t *testing.T) {
	// Z [3, 4], D [4, 2], b [2].
	z := []float32{1, 0, 0, 2, 0, 0, 0, 0, 0, -1, 0.5, 0}
	dict := []float32{1, 0, 0, 1, 0.5, 0.5, 0.25, -1}
	bias := []float32{10, 20}
	p := saeParts(t, z, 3, 4, dict, 2, bias)
	d, err := DecodeSAE(p[0], p[1], p[2], p[3], p[4], p[5])
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows != 3 || d.Cols != 2 || d.DType != tensor.F32 || d.Size() != 24 {
		t.Fatalf("decoded %d×%d %s", d.Rows, d.Cols, d.DType)
	}
	got := make([]float32, 6)
	tensor.DecodeF32(got, d.Bytes(), tensor.F32)
	want := []float32{1 + 0.5 + 10, -2 + 20, 10, 20, 0.25 + 10, -1 + 0.25 + 20}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("E = %v, want %v", got, want)
		}
	}

	// BF16 parts: the rebuilt value is rounded to BF16.
	conv := func(q PartData) PartData {
		if q.DType != tensor.F32 {
			return q
		}
		v := make([]float32, len(q.Data)/4)
		tensor.DecodeF32(v, q.Data, tensor.F32)
		b := make([]byte, 2*len(v))
		tensor.EncodeF32(b, v, tensor.BF16)
		return PartData{tensor.BF16, q.Shape, b}
	}
	d, err = DecodeSAE(conv(p[0]), p[1], p[2], p[3], conv(p[4]), conv(p[5]))
	if err != nil {
		t.Fatal(err)
	}
	gotB := make([]float32, 6)
	tensor.DecodeF32(gotB, d.Bytes(), tensor.BF16)
	for i := range want {
		if w := tensor.BF16ToF32(tensor.F32ToBF16(want[i])); gotB[i] != w {
			t.Fatalf("BF16 E[%d] = %g, want %g", i, gotB[i], w)
		}
	}

	// Corrupt parts are errors wrapping ErrFormat.
	bad := []struct {
		name string
		edit func(q []PartData)
	}{
		{"dictionary rows", func(q []PartData) { q[4] = f32Part(tensor.Shape{3, 2}, dict[:6]...) }},
		{"dictionary bytes", func(q []PartData) { q[4].Data = q[4].Data[:8] }},
		{"dictionary dtype", func(q []PartData) { q[4] = conv(q[4]) }},
		{"dictionary 1-D", func(q []PartData) { q[4] = f32Part(tensor.Shape{8}, dict...) }},
		{"bias length", func(q []PartData) { q[5] = f32Part(tensor.Shape{3}, 1, 2, 3) }},
		{"bias dtype", func(q []PartData) { q[5] = conv(q[5]) }},
		{"integer codes", func(q []PartData) { q[0].DType = tensor.I32 }},
		{"column index", func(q []PartData) { q[1].Data[0] = 9 }},
	}
	for _, b := range bad {
		q := saeParts(t, z, 3, 4, dict, 2, bias)
		b.edit(q)
		if _, err := DecodeSAE(q[0], q[1], q[2], q[3], q[4], q[5]); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got %v, want ErrFormat", b.name, err)
		}
	}
}
