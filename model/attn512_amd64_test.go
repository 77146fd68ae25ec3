//go:build amd64 && !purego

package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// TestPVTail8 checks that attention's Oᵀ = Vᵀ·P through the 8-row
// micro-kernel for the last panel gives Gemm's results bit for bit, over
// head sizes whose last panel is partly padding and key counts that split
// the sum into blocks.
func TestPVTail8(t *testing.T) {
	var kr *kernel
	for _, k := range kernels() {
		if k.tail8 != nil {
			kr = k
		}
	}
	if kr == nil {
		t.Skip("no kernel with an 8-row form on this CPU")
	}
	seed := uint64(88)
	t.Logf("seed %d, kernel %s", seed, kr.Name())
	rng := rand.New(rand.NewPCG(seed, 8))
	m := &Model{kern: kr}
	mr, nr := kr.MR(), kr.NR()
	for _, hd := range []int{4, 8, 16, 20, 64, 12, 24} {
		for _, keys := range []int{1, 5, 191, 192, 193, 385, 512} {
			T := keys + 7
			vt := make([]float32, hd*T) // Vᵀ [hd, T]
			for i := range vt {
				vt[i] = float32(rng.NormFloat64())
			}
			v := blas.NewPacked(hd, T, mr)
			kr.Pack(v, vt, T, 1, 1)
			p := &blas.Packed{Data: make([]float32, keys*nr), Rows: nr, K: keys, R: nr}
			for i := range p.Data {
				p.Data[i] = float32(rng.Float64())
			}
			rows := (hd + mr - 1) / mr * mr
			want, got := make([]float32, rows*nr), make([]float32, rows*nr)
			kr.Gemm(want, nr, v, p, rows, nr, keys, 1)
			m.pv(got, v, p, hd, keys)
			for i := range want[:hd*nr] {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("hd %d keys %d: Oᵀ[%d][%d] = %v, Gemm %v", hd, keys, i/nr, i%nr, got[i], want[i])
				}
			}
		}
	}
}
