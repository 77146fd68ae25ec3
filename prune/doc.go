// Package prune decides which weights L1-magnitude pruning removes. It
// works on float32 values of one tensor at a time (decoded from any float
// dtype, which is exact) and returns a compact [Plan] — a threshold, a
// pattern or a set of rows — that can be applied later as a mask, so a
// checkpoint can be planned in one pass and written in another with memory
// bounded by one tensor. It imports nothing of lmsparse but tensor.
//
// # Magnitude and ties
//
// An element's importance is |w|. Every rule prunes the elements with the
// smallest |w|; among equal magnitudes the lower flat (stored) index is
// pruned first, so results are deterministic. +0 and -0 have magnitude 0,
// so weights that are already zero are the first chosen and count toward
// the pruned total. A NaN in a tensor being pruned is an error naming the
// tensor; ±Inf is the largest magnitude and is kept last.
//
// # Unstructured scopes
//
//   - ScopeTensor: in a tensor of n elements, exactly k = round-half-even(S·n)
//     elements are pruned.
//   - ScopeRow: the same inside each output row of c columns:
//     k = round-half-even(S·c) per row.
//   - ScopeGlobal: one threshold over all targets ([Global]): k =
//     round-half-even(S·N) over the N elements of all targets, ties broken by
//     position in the concatenation of the targets in the order given, as
//     torch.nn.utils.prune.global_unstructured would with a stable order.
//     Each tensor then has its own sparsity.
//
// Selection is O(n): a two-level radix select on the magnitude bits (16
// high bits, then 16 low bits within one bucket), or a quickselect with a
// three-way partition for rows shorter than 2^17. A tensor-scope
// selection of 2^18 values or more on an AVX-512 CPU first brackets the
// threshold with a strided sample of 4,096 keys and builds the first
// histogram from the keys inside the bracket only (a vector pass instead
// of the scalar one); it falls back to the plain radix select when the
// bracket misses, so the result is the same (TestSampledSelect).
//
// # Kernels
//
// A tensor-scope plan is applied in about one pass: the prefix of the
// tensor up to its last pruned tie is cleared at key ≤ threshold, the rest
// at key < threshold. On amd64 with AVX-512 (and without the purego build
// tag) four small assembly kernels do the bulk work 16 elements at a
// time — clearing below a bound, counting keys equal to the threshold,
// gathering the keys of the radix select's second-level bucket, and the
// sampled select's bracket pass — with Go
// loops for the remainders and for other CPUs. TestZeroThreshold,
// FuzzApplyThreshold and TestExactAgainstSort check them against plain
// reference loops and a sort.
//
// # N:M
//
// In every output row, each group of M consecutive input columns keeps its
// N largest magnitudes (2:4 keeps 2 of 4). A final partial group of g < M
// columns keeps its min(N, g) largest, so it is pruned only when g > N.
//
// # Structured
//
// StructRows removes whole output rows, StructCols whole input columns:
// the k = round-half-even(S·rows) (or S·cols) with the smallest L1 norm,
// summed in float64 in index order, ties by lower index.
//
// # Layout
//
// A [Matrix] is the logical [out, in] matrix. Hugging Face Linear weights
// are stored that way; GPT-2's Conv1D weights are stored [in, out] and are
// passed with Transposed set, so rows, N:M groups and structured lines
// follow the output/input meaning, not the storage order. Flat indices (for
// ties) are always stored indices.
package prune
