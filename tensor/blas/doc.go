// Package blas is lmsparse's dense float32 matrix multiply: C = A·Bᵀ with A
// [M, K] and B [N, K] row-major — the layout of a Hugging Face Linear
// weight, [out, in] — and the parallel loops around it. It imports nothing
// of lmsparse; package model runs its forward pass on it and package sae
// its encoder.
//
// # API
//
// [MatMulT] multiplies two row-major matrices with the best kernel;
// [MatMulTRef] is its plain float64-accumulating reference. For repeated
// products with one operand fixed, get a [Kernel] ([Best], or [Lookup] by
// name; [Kernels] lists the names usable on this CPU and build), pack the
// fixed operand once with [Kernel.PackB] (any strides, so Bᵀ stored
// column-major packs as well: an A·B product is A·(Bᵀ)ᵀ), pack A per call
// with [Kernel.PackA] or into a reused [Packed] with [Kernel.Pack], and call
// [Kernel.Gemm].
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
// row-major sources with 4×8 register transposes). Building with the
// purego tag leaves only the pure-Go kernel. Tests check every kernel
// against [MatMulTRef], including the differential fuzz test FuzzMatMulT
// over odd, prime and off-block sizes.
//
// On the development machine (Xeon with AVX-512, 2 cores) the AVX-512
// micro-kernel runs at about 170 GFLOPS per core with its panels in L1 and
// the GEMM at 120–150 GFLOPS per core on GPT-2-small shapes;
// BenchmarkGemm and BenchmarkMicroKernel measure them.
//
// # Sparse weights
//
// [SpMMT] and [SpMMTPacked] compute the same C = A·Bᵀ with B sparse in
// [CSR] (a pruned Linear weight): A is packed in panels of [SpanelRows]
// rows, and for each CSR row an AVX-512 kernel sums its nonzeros times the
// matching panel rows in registers; [SpMMTRef] is the reference, and
// TestSpMMTRandom and FuzzSpMMT check one against the other. On the
// GPT-2-small projection shapes (M = 512) the CSR kernel ties the dense
// GEMM at about 72–75% zeros and is 1.8–2.8× faster at 90%
// (BenchmarkSpMMT; BENCHMARKS.md at the repository root). Without AVX-512
// ([SparseAsm] false) a scalar pure-Go row kernel runs instead.
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
