package run

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/tensor"
)

// BenchmarkStoriesWindow runs the general executor on one 512-token
// window of stories260k's ONNX export on 2 threads: ns/op, allocs/op and
// B/op of a steady-state Logits call, and tokens/s.
func BenchmarkStoriesWindow(b *testing.B) {
	m, err := onnx.Open(sharedtest.Path(b, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Load(m, Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	ids := referenceIDs(b)[:512]
	out := make([]float32, len(ids)*s.VocabSize())
	if err := s.Logits(ids, out); err != nil { // warm the buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Logits(ids, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkSparseMatMul times one product of 512 rows by a GPT-2-small
// MLP weight (768×3072) with 90% and 50% zeros, kept sparse (Options.Sparse
// "on") or packed dense ("off"), on 2 threads: compare the ns/op of the
// two at each sparsity.
func BenchmarkSparseMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(41, 42))
	x := randF32(r, 1, 512, 768)
	for _, frac := range []float64{0.9, 0.5} {
		g := newGraph()
		in := g.input("x", tensor.F32)
		g.output(g.op("MatMul", []string{in, g.init(pruned(r, frac, 768, 3072))}))
		mp := g.model(17)
		for _, mode := range []string{"off", "on"} {
			b.Run(fmt.Sprintf("zeros=%.0f%%/sparse=%s", 100*frac, mode), func(b *testing.B) {
				s, err := loadProto(b, mp, Options{Threads: 2, Sparse: mode})
				if err != nil {
					b.Fatal(err)
				}
				feeds := map[string]*Tensor{"x": x}
				for b.Loop() {
					if _, err := s.Run(feeds); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
