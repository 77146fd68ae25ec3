package blas

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkGemm measures the blocked matrix multiply of the forward pass
// (A packed per call, B pre-packed like a weight) on GPT-2 small shapes.
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kr := range All() {
		for _, s := range [][3]int{{512, 2304, 768}, {512, 768, 768}, {512, 3072, 768}, {512, 768, 3072}, {512, 50257, 768}} {
			m, n, k := s[0], s[1], s[2]
			a, w := randSlice(rng, m*k), randSlice(rng, n*k)
			bp := kr.PackB(w, n, k, k, 1, 1)
			c := make([]float32, m*n)
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%dx%dx%d/threads%d", kr.name, m, n, k, threads), func(b *testing.B) {
					for b.Loop() {
						ap := kr.PackA(a, m, k, k, 1, threads)
						kr.Gemm(c, n, ap, bp, m, n, k, threads)
					}
					b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
				})
			}
		}
	}
}

// BenchmarkMicroKernel measures each micro-kernel alone on panels that
// stay in L1: the ceiling for Gemm.
func BenchmarkMicroKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kr := range All() {
		b.Run(kr.name, func(b *testing.B) {
			kc := 128
			a := randSlice(rng, kc*kr.mr)
			bb := randSlice(rng, kc*kr.nr)
			c := make([]float32, kr.mr*kr.nr)
			for b.Loop() {
				for i := 0; i < 1000; i++ {
					kr.micro(kc, a, bb, c, kr.nr, true)
				}
			}
			b.ReportMetric(2*float64(kc*kr.mr*kr.nr)*1000*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// BenchmarkSpMMT measures the sparse product against the dense one on the
// GPT-2-small projection shapes (weights [n, k], M = 512 rows), as the
// forward pass runs them: the dense weight pre-packed, the sparse one a
// SparseB, A packed per call. It locates the sparsity above which the
// sparse kernel wins (model.SparseThreshold), for each assembly kernel
// (AVX-512, AVX2+FMA) with its own dense GEMM.
func BenchmarkSpMMT(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := 512
	for _, kr := range All() {
		if !kr.asm {
			continue
		}
		for _, s := range [][2]int{{768, 768}, {3072, 768}, {768, 3072}} {
			n, k := s[0], s[1]
			a, w := randSlice(rng, m*k), randSlice(rng, n*k)
			c := make([]float32, m*n)
			flops := 2 * float64(m*n*k)
			for _, threads := range []int{1, 2} {
				bp := kr.PackB(w, n, k, k, 1, 1)
				b.Run(fmt.Sprintf("%s/w%dx%d/threads%d/dense", kr.name, n, k, threads), func(b *testing.B) {
					for b.Loop() {
						ap := kr.PackA(a, m, k, k, 1, threads)
						kr.Gemm(c, n, ap, bp, m, n, k, threads)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "denseGFLOPS")
				})
				for _, sp := range []int{30, 40, 50, 60, 70, 80, 90, 95} {
					ws := slices.Clone(w)
					for i := range ws {
						if rng.IntN(100) < sp {
							ws[i] = 0
						}
					}
					sb := NewSparseB(NewCSR(ws, n, k, k, 1))
					b.Run(fmt.Sprintf("%s/w%dx%d/threads%d/sparse%d", kr.name, n, k, threads, sp), func(b *testing.B) {
						for b.Loop() {
							ap := kr.PackMatrix(a, m, k, k, 1, SpanelRows, threads)
							kr.SpMMTPacked(c, n, ap, sb, m, threads)
						}
						b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "denseGFLOPS")
					})
				}
			}
		}
	}
}

// BenchmarkMatMulForms measures the three product forms of a training
// step on GPT-2-small shapes (2,048 rows, widths 768 and 3,072): MatMulT
// (forward, C = A·Bᵀ), MatMul (input gradient, C = A·B) and MatMulTN
// (weight gradient, C = Aᵀ·B), each on every (m, n, k) so that the forms
// compare at equal work, packing included; the pack runs time the
// packing of both operands alone.
func BenchmarkMatMulForms(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	forms := []struct {
		name string
		mul  func(kr *Kernel, c, a, b []float32, m, n, k, threads int)
		// strides of the A and B operands of Gemm as (si, sj)
		pack func(m, n, k int) (asi, asj, bsi, bsj int)
	}{
		{"T", (*Kernel).MatMulT, func(m, n, k int) (int, int, int, int) { return k, 1, k, 1 }},
		{"NN", (*Kernel).MatMul, func(m, n, k int) (int, int, int, int) { return k, 1, 1, n }},
		{"TN", (*Kernel).MatMulTN, func(m, n, k int) (int, int, int, int) { return 1, m, 1, n }},
	}
	for _, kr := range All() {
		if !kr.asm {
			continue
		}
		for _, s := range [][3]int{{2048, 3072, 768}, {2048, 768, 3072}, {768, 3072, 2048}, {3072, 768, 2048}} {
			m, n, k := s[0], s[1], s[2]
			a, bb := randSlice(rng, m*k), randSlice(rng, n*k)
			c := make([]float32, m*n)
			flops := 2 * float64(m*n*k)
			for _, threads := range []int{1, 2} {
				for _, f := range forms {
					b.Run(fmt.Sprintf("%s/%dx%dx%d/threads%d/%s", kr.name, m, n, k, threads, f.name), func(b *testing.B) {
						for b.Loop() {
							f.mul(kr, c, a, bb, m, n, k, threads)
						}
						b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
					})
					b.Run(fmt.Sprintf("%s/%dx%dx%d/threads%d/%s-pack", kr.name, m, n, k, threads, f.name), func(b *testing.B) {
						asi, asj, bsi, bsj := f.pack(m, n, k)
						ap, bp := NewPacked(m, k, kr.mr), NewPacked(n, k, kr.nr)
						for b.Loop() {
							kr.Pack(ap, a, asi, asj, threads)
							kr.Pack(bp, bb, bsi, bsj, threads)
						}
					})
				}
			}
		}
	}
}
