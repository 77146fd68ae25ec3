// Package sparse encodes pruned 2-D tensors in smaller layouts and decodes
// them back. It knows dtypes and byte layouts, nothing of models; the
// byte-level specification, with a numpy reader, is docs/FORMAT.md.
//
// # Encodings
//
//   - Dense: the tensor in its dtype and layout with pruned elements set to
//     all-zero bits (+0).
//
//   - CSR (lmsparse csr-v1): NAME.values (dtype, [nnz]), NAME.col_indices (U16
//     when cols ≤ 65536, else I32, [nnz]), NAME.crow_indices (I32, or I64 when
//     nnz ≥ 2^31, [rows+1]) and NAME.shape (I64, [2]); rows ascending, columns
//     ascending within a row.
//
//   - Bitmask: compressed-tensors' legacy sparse-bitmask layout:
//     NAME.compressed (dtype, [nnz], row-major), NAME.bitmask (U8,
//     [rows, ceil(cols/8)], little bit order), NAME.row_offsets (I64, [rows],
//     index of each row's first value) and NAME.shape (I64, [2]).
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
// An element is stored when it was not pruned and its bits are not all
// zero. So -0.0 is stored (and decodes to -0.0), and CSR and bitmask decode
// to exactly the bytes of the dense encoding. SAE is lossy: it decodes to
// its approximation of the tensor.
//
// # Choosing
//
// [Sizes] gives each encoding's total bytes from (dtype, rows, cols, nnz);
// [Choose] picks the smallest (dense on a tie). For F32, bitmask wins near
// 50% sparsity and CSR near 95%.
//
// # Decoding
//
// [DecodeCSR] and [DecodeBitmask] validate every count and index in
// O(rows + nnz) without allocating the dense tensor — a corrupt part is an
// error wrapping [ErrFormat], never a panic — and the returned [Decoded]
// streams the dense rows. A declared dense size over [MaxDenseBytes] is
// rejected.
package sparse
