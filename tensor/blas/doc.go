// Package blas is lmsparse's dense float32 matrix multiply: C = A·Bᵀ with A
// [M, K] and B [N, K] row-major — the layout of a Hugging Face Linear
// weight, [out, in] — the A·B and Aᵀ·B forms of the backward pass, and the
// parallel loops around them. It imports nothing of lmsparse; package
// model runs its forward pass on it and package sae its encoder.
//
// # API
//
// [MatMulT] multiplies two row-major matrices with the best kernel;
// [MatMulTRef] is its plain float64-accumulating reference. The other two
// product forms of a training step have the same shape of API, each with
// its reference:
//
//	MatMulT(c, a, b, m, n, k, threads)     C = A·Bᵀ   A [m, k], B [n, k]  forward: Y = X·Wᵀ
//	MatMul(c, a, b, m, n, k, threads)      C = A·B    A [m, k], B [k, n]  input gradient: dX = dY·W
//	MatMulTN(c, a, b, m, n, k, threads)    C = Aᵀ·B   A [k, m], B [k, n]  weight gradient: dW = dYᵀ·X
//	MatMulTNAdd(c, a, b, m, n, k, threads) C += Aᵀ·B  the same, summed over batches
//
// ([MatMul], [MatMulRef], [MatMulTN], [MatMulTNRef], [MatMulTNAdd]; all
// row-major, C [m, n]; the [Kernel] methods of the same names pick the
// kernel.) They pack the transposed operands from their column-major
// storage, which is a copy of contiguous runs, and share [Kernel.Gemm]: on
// GPT-2-small training shapes they run at the speed of MatMulT.
//
// For repeated products with one operand fixed, get a [Kernel] ([Best], or
// [Lookup] by name; [Kernels] lists the names usable on this CPU and
// build), pack the fixed operand once with [Kernel.PackB] (any strides, so
// Bᵀ stored column-major packs as well: an A·B product is A·(Bᵀ)ᵀ), pack A
// per call with [Kernel.PackA] or into a reused [Packed] with
// [Kernel.Pack], and call [Kernel.Gemm], or [Kernel.GemmAdd] to add the
// product into C (C += A·Bᵀ, for gradient accumulation; it sums each block
// of k on its own and adds it to C, so it is as deterministic as Gemm).
//
// # Kernels
//
// The GEMM is cache-blocked and packed in the GotoBLAS style: B is packed
// into panels of nr rows stored k-major, A into panels of mr rows, and a
// register-blocked micro-kernel computes each mr×nr tile of C over blocks
// of at most kc steps. The micro-kernels are AVX-512 (12×32 tile) and
// AVX2+FMA (6×16) in Go assembly, chosen at run time with
// golang.org/x/sys/cpu, and a portable pure-Go 4×4 kernel ("go"), which
// runs no assembly at all (its packing included; the assembly kernels pack
// row-major sources with 16×16 (AVX-512) or 8×8 (AVX2) register
// transposes into panels whose height is a multiple of that, else with
// 4×8 ones). Building with the purego tag leaves only the pure-Go kernel.
// Tests check every kernel against [MatMulTRef], [MatMulRef] and
// [MatMulTNRef], including the differential fuzz tests FuzzMatMulT and
// FuzzMatMulForms (MatMul, MatMulTN, MatMulTNAdd, GemmAdd) over odd, prime
// and off-block sizes.
//
// On the development machine (Xeon with AVX-512, 2 cores) the AVX-512
// micro-kernel runs at about 170 GFLOPS per core with its panels in L1 and
// the GEMM at 120–150 GFLOPS per core on GPT-2-small shapes;
// BenchmarkGemm and BenchmarkMicroKernel measure them, and
// BenchmarkMatMulForms the three product forms of a training step against
// each other (packing a column-major operand costs a few percent of the
// product, like packing a row-major one).
//
// # Sparse weights
//
// [SpMMT] and [Kernel.SpMMTPacked] compute the same C = A·Bᵀ with B sparse
// (a pruned Linear weight): a [CSR] regrouped once by [NewSparseB] into a
// [SparseB], whose nonzeros are grouped by 64 rows of B and blocks of at
// most 128 columns, cut where [Kernel.Gemm] cuts its sums ([Kernel.KBlock]:
// runs of at most 192 terms for AVX-512, 384 for AVX2). A is packed in panels of [SpanelRows] rows; a job (one panel ×
// 64 rows of B) keeps a 64×64 tile of sums in L1 and, block by block, adds
// each row's nonzeros times the matching rows of the panel's 32 KB block,
// then transposes the tile into C in registers. The kernels are AVX-512
// (two rows of B at a time, eight zmm FMA chains), AVX2+FMA (one row, eight
// ymm chains) and, for the pure-Go kernel, a scalar Go loop. Each element
// is summed as the dense GEMM sums it: per run, one FMA chain from zero
// over its row's nonzeros in column order, added to the runs before. A
// zero term adds nothing to an FMA chain, so with a [SparseB] built by
// kr.NewSparseB, kr's assembly sparse kernel gives the very bits of kr's
// dense Gemm (TestSpMMTRandom checks it): choosing sparse or dense for a
// weight changes the speed, never the result. [SpMMTRef] is the reference:
// TestSpMMTRandom and the differential fuzz test FuzzSpMMT check every
// kernel against it over odd sizes, strides and sparsities. On the
// GPT-2-small projection shapes (M = 512) the AVX-512 kernel ties the dense
// GEMM at about 30–40% zeros and is 2.6–4.6× faster at 90%, the AVX2 one
// beats the AVX2 GEMM from below 30% (BenchmarkSpMMT; BENCHMARKS.md at the
// repository root). [SparseAsm] reports whether an assembly kernel exists
// (AVX2+FMA at least).
//
// Package blas/openblas (build tag openblas, cgo) wraps OpenBLAS's
// cblas_sgemm to compare against; the default build has no cgo.
//
// # Threads and determinism
//
// Thread counts are passed in (below 1: GOMAXPROCS; [Threads] resolves
// them). GEMM jobs are blocks of C; every element of C is computed by
// exactly one goroutine, summing in an order fixed by k alone, so results
// are bit-identical for any thread count. [ParallelFor] and [ParallelRows]
// are the loops the callers use for the same purpose. Different kernels
// round differently (FMA or not, other tile shapes) and agree to about
// 1e-5 relative.
package blas
