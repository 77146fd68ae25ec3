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
