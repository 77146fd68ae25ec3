package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
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

// gpt2SmallNet is a random net of GPT-2 small's shape (124M parameters).
func gpt2SmallNet(b *testing.B) *Net {
	cfg := &checkpoint.Config{ModelType: "gpt2", HiddenSize: 768, NumLayers: 12, NumHeads: 12, NumKVHeads: 12, HeadDim: 64,
		IntermediateSize: 3072, VocabSize: 50257, MaxPositions: 1024, NormEps: 1e-5, TieWordEmbeddings: true, Activation: "gelu_new"}
	rng := rand.New(rand.NewPCG(1, 2))
	vals, shapes := map[string][]float32{}, map[string][]int{}
	add := func(name string, fill float32, shape ...int) {
		k := 1
		for _, d := range shape {
			k *= d
		}
		v := make([]float32, k)
		for i := range v {
			v[i] = fill
			if fill == 0 {
				v[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		vals[name], shapes[name] = v, shape
	}
	D, I := 768, 3072
	add("transformer.wte.weight", 0, 50257, D)
	add("transformer.wpe.weight", 0, 1024, D)
	for l := range 12 {
		p := fmt.Sprintf("transformer.h.%d.", l)
		add(p+"ln_1.weight", 1, D)
		add(p+"ln_1.bias", 0, D)
		add(p+"attn.c_attn.weight", 0, D, 3*D)
		add(p+"attn.c_attn.bias", 0, 3*D)
		add(p+"attn.c_proj.weight", 0, D, D)
		add(p+"attn.c_proj.bias", 0, D)
		add(p+"ln_2.weight", 1, D)
		add(p+"ln_2.bias", 0, D)
		add(p+"mlp.c_fc.weight", 0, D, I)
		add(p+"mlp.c_fc.bias", 0, I)
		add(p+"mlp.c_proj.weight", 0, I, D)
		add(p+"mlp.c_proj.bias", 0, D)
	}
	add("transformer.ln_f.weight", 1, D)
	add("transformer.ln_f.bias", 0, D)
	n, err := NewNet(cfg, MapSource{Values: vals, Shapes: shapes})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkTrainGPT2Small measures AdamW training steps on the GPT-2-small
// shape: batch 4 of ctx 512, 2 threads (the comparison with
// PyTorch; bench/train_torch.py is the PyTorch side). One untimed step
// first (allocations, as the PyTorch script's warm-up); tokens/s is over
// the b.N steps after it.
func BenchmarkTrainGPT2Small(b *testing.B) {
	n := gpt2SmallNet(b)
	rng := rand.New(rand.NewPCG(3, 4))
	wins := make([][]int, 4*(b.N+1))
	for i := range wins {
		wins[i] = make([]int, 512)
		for j := range wins[i] {
			wins[i][j] = rng.IntN(50257)
		}
	}
	var t0 time.Time
	b.ResetTimer()
	res, err := Train(context.Background(), n, wins, Options{Steps: b.N + 1, Batch: 4, Optim: Optim{LR: 1e-4}, Threads: 2,
		OnStep: func(s Step) {
			if s.Step == 0 {
				t0 = time.Now()
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0).Seconds()
	b.ReportMetric(float64(4*512*b.N)/el, "tokens/s")
	b.ReportMetric(el/float64(b.N), "s/step")
	b.ReportMetric(float64(res.PeakActivationBytes)/(1<<20), "act-MiB")
}
