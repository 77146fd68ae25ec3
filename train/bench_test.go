package train

import (
	"context"
	"testing"
)

// BenchmarkStepStories260k measures one training step (forward, loss,
// backward; no optimizer) of stories260k on 8 windows of 128 tokens.
func BenchmarkStepStories260k(b *testing.B) {
	n, _ := openNet(b, storiesDir)
	ids := sharedTokens(b, storiesToks)
	wins := Windows(ids, 128)[:8]
	ctx := context.Background()
	kr, _ := kernel("")
	p := &mm{kr: kr, threads: 2}
	w := n.newWork(8, 128, 2)
	b.ResetTimer()
	for range b.N {
		n.ZeroGrad()
		if _, err := n.lossGrad(ctx, p, w, wins, nil, 0, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(8*128*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
