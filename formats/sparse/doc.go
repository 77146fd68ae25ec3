// Package sparse encodes pruned 2-D tensors in smaller layouts and decodes
// them back. It knows dtypes and byte layouts, nothing of models; the
// byte-level specification, with a numpy reader, is docs/FORMAT.md.
//
// # Encodings
//
//   - Dense: the tensor in its dtype and layout with pruned elements set to
//     all-zero bits (+0).
//
//   - CSR (lmsparse csr-v1): NAME.values (dtype, [nnz]), NAME.col_indices and
//     NAME.crow_indices ([nnz] and [rows+1], both I32, or both I64 when a
//     column or nnz reaches 2^31: what torch.sparse_csr_tensor takes) and
//     NAME.shape (I64, [2]); rows ascending, columns ascending within a row.
//     The decoder also reads the older U16 column indices.
//
//   - Bitmask: compressed-tensors' sparse-bitmask layout: PREFIX.compressed
//     (dtype, [nnz], row-major), PREFIX.bitmask (U8, [rows, ceil(cols/8)],
//     little bit order), PREFIX.row_offsets (I64, [rows], index of each
//     row's first value) and PREFIX.shape (I64, [2]). Callers name the
//     parts by module, PREFIX = NAME without ".weight" ([ModulePrefix]).
//
//   - Bitmask24: compressed-tensors' sparse-24-bitmask layout for 2:4
//     sparsity along the stored last dimension: PREFIX.compressed (dtype,
//     [rows, cols/2]: two values per group of four), PREFIX.bitmask (as
//     above, two bits per group) and PREFIX.shape (I64, [2, 1]).
//
//   - SAE (lmsparse sae v1, files marked "lmsparse.sae": "v1"): a tensor
//     E [rows, d] approximated by sparse-autoencoder codes, E ≈ Z·D + b:
//     NAME.sae_codes.{values,col_indices,crow_indices,shape} hold Z
//     [rows, m] in the CSR layout, NAME.sae_dictionary D [m, d] and
//     NAME.sae_bias b [d], all floating-point parts in E's dtype.
//     [EncodeCSR] builds the code parts from compressed rows; [DecodeSAE]
//     validates the six parts and rebuilds E row by row (float64 sums in
//     ascending code order, rounded once to float32, then to the dtype).
//
// In CSR an element is stored when it was not pruned and its bits are not
// all zero, so -0.0 is stored (and decodes to -0.0) and CSR decodes to
// exactly the bytes of the dense encoding. The compressed-tensors layouts
// store, as compressed-tensors' compressors do, values that are not zero
// ([Matrix.DropNegZero]): a kept -0.0 decodes to +0.0. SAE is lossy: it
// decodes to its approximation of the tensor.
//
// # Choosing
//
// [Sizes] gives each encoding's total bytes from (dtype, rows, cols, nnz);
// [Choose] picks the smallest of dense, CSR and bitmask (dense on a tie).
// For F32, bitmask wins from about 3% to 97% sparsity and CSR above.
//
// # Decoding
//
// [DecodeCSR], [DecodeBitmask] and [DecodeBitmask24] validate every count and index in
// O(rows + nnz) without allocating the dense tensor — a corrupt part is an
// error wrapping [ErrFormat], never a panic — and the returned [Decoded]
// streams the dense rows. A declared dense size over [MaxDenseBytes] is
// rejected.
package sparse
