package run

import (
	"testing"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
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
