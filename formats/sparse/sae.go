package sparse

import (
	"encoding/binary"
	"fmt"

	"github.com/lmsparse/lmsparse/tensor"
)

// The sparse-autoencoder layout (lmsparse sae): a 2-D tensor NAME, E
// [rows, d], stored as sparse codes Z [rows, m] in the CSR layout, a
// dictionary D [m, d] and a bias b [d], with E ≈ Z·D + b.
const (
	// SAE is the encoding of a tensor stored as sparse codes and a
	// dictionary.
	SAE Encoding = "sae"
	// SuffixSAECodes prefixes the four CSR parts of the codes:
	// NAME.sae_codes.values, .col_indices, .crow_indices and .shape.
	SuffixSAECodes = ".sae_codes"
	// SuffixSAEDictionary names the dictionary D [m, d].
	SuffixSAEDictionary = ".sae_dictionary"
	// SuffixSAEBias names the bias b [d].
	SuffixSAEBias = ".sae_bias"
	// SAEMetadataKey and SAEVersion mark files holding SAE tensors in
	// their __metadata__.
	SAEMetadataKey = "lmsparse.sae"
	SAEVersion     = "v1"
)

// SAESuffixes returns the suffixes of the six parts of an SAE tensor in the
// order DecodeSAE takes them: codes values, col_indices, crow_indices,
// shape, then dictionary and bias.
func SAESuffixes() []string {
	return []string{
		SuffixSAECodes + SuffixValues, SuffixSAECodes + SuffixColIndices,
		SuffixSAECodes + SuffixCrow, SuffixSAECodes + SuffixShape,
		SuffixSAEDictionary, SuffixSAEBias,
	}
}

// EncodedPart is one part of an encoded tensor, held in memory.
type EncodedPart struct {
	Suffix string
	DType  tensor.DType
	Shape  tensor.Shape
	Data   []byte
}

// EncodeCSR returns the four CSR parts (values, col_indices, crow_indices,
// shape; the suffixes of [Parts]) of a rows×cols matrix of dt given in
// compressed form: row r holds the entries crow[r] to crow[r+1]-1, whose
// columns are col[j] (ascending within a row) and whose values are the
// little-endian elements of values. Index dtypes follow [IndexDTypes]. An
// entry whose bits are all zero is stored like any other.
func EncodeCSR(dt tensor.DType, rows, cols int64, crow, col []int64, values []byte) ([]EncodedPart, error) {
	es := int64(dt.Size())
	if es == 0 {
		return nil, fmt.Errorf("%w: dtype %s has no fixed element size", ErrFormat, dt)
	}
	if rows < 0 || cols < 0 || int64(len(crow)) != rows+1 || crow[0] != 0 {
		return nil, fmt.Errorf("%w: %d row pointers for %d rows", ErrFormat, len(crow), rows)
	}
	nnz := crow[rows]
	if int64(len(col)) != nnz || int64(len(values)) != nnz*es {
		return nil, fmt.Errorf("%w: %d columns and %d value bytes for %d entries", ErrFormat, len(col), len(values), nnz)
	}
	for r := int64(0); r < rows; r++ {
		if crow[r+1] < crow[r] {
			return nil, fmt.Errorf("%w: row pointers decrease at row %d", ErrFormat, r)
		}
		prev := int64(-1)
		for _, c := range col[crow[r]:crow[r+1]] {
			if c <= prev || c >= cols {
				return nil, fmt.Errorf("%w: row %d: column %d after %d (columns must ascend within [0, %d))", ErrFormat, r, c, prev, cols)
			}
			prev = c
		}
	}
	cdt, rdt := IndexDTypes(cols, nnz)
	cb := make([]byte, 0, nnz*int64(cdt.Size()))
	for _, c := range col {
		cb = putInt(cb, cdt, c)
	}
	rb := make([]byte, 0, (rows+1)*int64(rdt.Size()))
	for _, p := range crow {
		rb = putInt(rb, rdt, p)
	}
	sb := binary.LittleEndian.AppendUint64(nil, uint64(rows))
	sb = binary.LittleEndian.AppendUint64(sb, uint64(cols))
	return []EncodedPart{
		{SuffixValues, dt, tensor.Shape{nnz}, values},
		{SuffixColIndices, cdt, tensor.Shape{nnz}, cb},
		{SuffixCrow, rdt, tensor.Shape{rows + 1}, rb},
		{SuffixShape, tensor.I64, tensor.Shape{2}, sb},
	}, nil
}

// DecodeSAE validates an SAE tensor — the CSR parts of its codes Z [rows, m],
// its dictionary D [m, d] and bias b [d], all of one floating-point dtype —
// and returns the dense E [rows, d] it stands for, computed on demand one
// row at a time: E[r][c] = (Σ_j Z[r][j]·D[j][c]) + b[c], the sum over the
// stored entries of row r in ascending column order, accumulated in
// float64 from the float32 values of the parts, then rounded to float32
// and encoded in the dtype.
func DecodeSAE(values, colIdx, crow, shape, dict, bias PartData) (*Decoded, error) {
	dt := values.DType
	switch dt {
	case tensor.F32, tensor.F64, tensor.F16, tensor.BF16:
	default:
		return nil, fmt.Errorf("%w: sae codes have dtype %s, want F32, F64, F16 or BF16", ErrFormat, dt)
	}
	z, err := DecodeCSR(values, colIdx, crow, shape)
	if err != nil {
		return nil, fmt.Errorf("sae codes: %w", err)
	}
	m := z.Cols
	if dict.DType != dt || len(dict.Shape) != 2 || dict.Shape[0] != m {
		return nil, fmt.Errorf("%w: sae dictionary is %s %v, want %s [%d d] (the codes have %d columns)", ErrFormat, dict.DType, dict.Shape, dt, m, m)
	}
	d := dict.Shape[1]
	if b, err := dict.Shape.Bytes(dt); err != nil || b != int64(len(dict.Data)) {
		return nil, fmt.Errorf("%w: sae dictionary holds %d bytes for shape %v", ErrFormat, len(dict.Data), dict.Shape)
	}
	if err := vector("sae bias", bias, d, dt); err != nil {
		return nil, err
	}
	if err := limitDense(z.Rows, d, dt); err != nil {
		return nil, err
	}
	es := int64(dt.Size())
	dictF := make([]float32, m*d)
	biasF := make([]float32, d)
	if err := tensor.DecodeF32(dictF, dict.Data, dt); err != nil {
		return nil, fmt.Errorf("sae dictionary: %w", err)
	}
	if err := tensor.DecodeF32(biasF, bias.Data, dt); err != nil {
		return nil, fmt.Errorf("sae bias: %w", err)
	}
	return &Decoded{DType: dt, Rows: z.Rows, Cols: d, row: func(r int64, dst []byte) {
		acc := make([]float64, d)
		out := make([]float32, d)
		var one [1]float32
		lo, hi := readInt(crow.Data, crow.DType, r), readInt(crow.Data, crow.DType, r+1)
		for j := lo; j < hi; j++ {
			c := readInt(colIdx.Data, colIdx.DType, j)
			tensor.DecodeF32(one[:], values.Data[j*es:(j+1)*es], dt)
			v := float64(one[0])
			for i, w := range dictF[c*d : (c+1)*d] {
				acc[i] += v * float64(w)
			}
		}
		for i := range out {
			out[i] = float32(acc[i] + float64(biasF[i]))
		}
		tensor.EncodeF32(dst, out, dt)
	}}, nil
}
