package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// gpt2SmallConfig is the shape of GPT-2 small (124M parameters).
func gpt2SmallConfig() *checkpoint.Config {
	return &checkpoint.Config{ModelType: "gpt2", HiddenSize: 768, NumLayers: 12, NumHeads: 12, NumKVHeads: 12,
		HeadDim: 64, IntermediateSize: 3072, VocabSize: 50257, MaxPositions: 1024, NormEps: 1e-5,
		TieWordEmbeddings: true, Activation: "gelu_new"}
}

// randomWeights returns weights for cfg with the tensor names and shapes
// of a Hugging Face checkpoint: matrices uniform with standard deviation
// 0.02, norm weights near 1, biases near 0.
func randomWeights(cfg *checkpoint.Config, seed uint64) map[string][]float32 {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f64656c))
	w := map[string][]float32{}
	add := func(name string, center, spread float32, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			// Uniform on [-√3·spread, √3·spread]: standard deviation spread.
			v[i] = center + spread*1.7320508*(2*float32(rng.Uint32()>>8)/(1<<24)-1)
		}
		w[name] = v
	}
	D, H, KV, hd, I, V := cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.IntermediateSize, cfg.VocabSize
	switch cfg.ModelType {
	case "gpt2":
		add("transformer.wte.weight", 0, 0.02, V, D)
		add("transformer.wpe.weight", 0, 0.01, cfg.MaxPositions, D)
		for l := 0; l < cfg.NumLayers; l++ {
			p := fmt.Sprintf("transformer.h.%d.", l)
			add(p+"ln_1.weight", 1, 0.1, D)
			add(p+"ln_1.bias", 0, 0.02, D)
			add(p+"attn.c_attn.weight", 0, 0.02, D, 3*D)
			add(p+"attn.c_attn.bias", 0, 0.02, 3*D)
			add(p+"attn.c_proj.weight", 0, 0.02, D, D)
			add(p+"attn.c_proj.bias", 0, 0.02, D)
			add(p+"ln_2.weight", 1, 0.1, D)
			add(p+"ln_2.bias", 0, 0.02, D)
			add(p+"mlp.c_fc.weight", 0, 0.02, D, I)
			add(p+"mlp.c_fc.bias", 0, 0.02, I)
			add(p+"mlp.c_proj.weight", 0, 0.02, I, D)
			add(p+"mlp.c_proj.bias", 0, 0.02, D)
		}
		add("transformer.ln_f.weight", 1, 0.1, D)
		add("transformer.ln_f.bias", 0, 0.02, D)
		if !cfg.TieWordEmbeddings {
			add("lm_head.weight", 0, 0.02, V, D)
		}
	default:
		add("model.embed_tokens.weight", 0, 0.02, V, D)
		for l := 0; l < cfg.NumLayers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			add(p+"input_layernorm.weight", 1, 0.1, D)
			add(p+"post_attention_layernorm.weight", 1, 0.1, D)
			add(p+"self_attn.q_proj.weight", 0, 0.02, H*hd, D)
			add(p+"self_attn.k_proj.weight", 0, 0.02, KV*hd, D)
			add(p+"self_attn.v_proj.weight", 0, 0.02, KV*hd, D)
			add(p+"self_attn.o_proj.weight", 0, 0.02, D, H*hd)
			add(p+"mlp.gate_proj.weight", 0, 0.02, I, D)
			add(p+"mlp.up_proj.weight", 0, 0.02, I, D)
			add(p+"mlp.down_proj.weight", 0, 0.02, D, I)
			if cfg.ModelType == "qwen2" {
				add(p+"self_attn.q_proj.bias", 0, 0.02, H*hd)
				add(p+"self_attn.k_proj.bias", 0, 0.02, KV*hd)
				add(p+"self_attn.v_proj.bias", 0, 0.02, KV*hd)
			}
		}
		add("model.norm.weight", 1, 0.1, D)
		if !cfg.TieWordEmbeddings {
			add("lm_head.weight", 0, 0.02, V, D)
		}
	}
	return w
}

func benchForward(b *testing.B, m *Model, T int) {
	ids := make([]int, T)
	for i := range ids {
		ids[i] = (i*7919 + 13) % m.VocabSize()
	}
	logits := make([]float32, T*m.VocabSize())
	if err := m.Forward(ids, logits); err != nil { // warm up
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := m.Forward(ids, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkForward measures whole-window forward passes at ctx 512: the
// real stories260k model (skipped without ../shared) and a random model
// of GPT-2 small's shape, on 1 and 2 threads.
func BenchmarkForward(b *testing.B) {
	var stories, gpt2 *Model
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("stories260k/ctx512/threads%d", threads), func(b *testing.B) {
			if stories == nil {
				stories = loadShared(b, storiesPath, Options{})
			}
			benchForward(b, stories.WithThreads(threads), 512)
		})
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("gpt2-small/ctx512/threads%d", threads), func(b *testing.B) {
			if gpt2 == nil {
				cfg := gpt2SmallConfig()
				m, err := New(cfg, randomWeights(cfg, 1), Options{})
				if err != nil {
					b.Fatal(err)
				}
				gpt2 = m
			}
			benchForward(b, gpt2.WithThreads(threads), 512)
		})
	}
}

// BenchmarkForwardSparse measures whole-window forward passes at ctx 512
// of the GPT-2-small-shaped random model pruned to 90% (smallest
// magnitudes per matrix), with sparse execution off (packed dense GEMM)
// and auto (CSR kernel), on 1 and 2 threads. "blocks" prunes the 48 block
// projections only, as lmsparse prune does by default (the tied embedding
// / LM head, 30% of the FLOPs at ctx 512, stays dense); "all" prunes the
// tied embedding / LM head too (prune --include 'transformer.wte.weight').
func BenchmarkForwardSparse(b *testing.B) {
	for _, scope := range []string{"blocks", "all"} {
		var models map[string]*Model
		for _, threads := range []int{1, 2} {
			for _, mode := range []string{"off", "auto"} {
				b.Run(fmt.Sprintf("gpt2-small-pruned90-%s/ctx512/threads%d/sparse-%s", scope, threads, mode), func(b *testing.B) {
					if models == nil {
						cfg := gpt2SmallConfig()
						w := randomWeights(cfg, 1)
						if scope == "all" {
							pruneProjections(map[string][]float32{"h.0.wte.weight": w["transformer.wte.weight"]}, 0.9)
						}
						pruneProjections(w, 0.9)
						models = map[string]*Model{}
						for _, md := range []string{"off", "auto"} {
							m, err := New(cfg, w, Options{Sparse: md})
							if err != nil {
								b.Fatal(err)
							}
							models[md] = m
						}
						sp, total := models["auto"].SparseProjections()
						b.Logf("auto: %d of %d projections in CSR, sparse head %v", sp, total, models["auto"].SparseHead())
					}
					benchForward(b, models[mode].WithThreads(threads), 512)
				})
			}
		}
	}
}

// BenchmarkSparseCrossover locates the sparsity from which CSR execution
// pays in whole forward passes: the GPT-2-small-shaped random model with
// every projection and the tied embedding / LM head pruned to 30–70%
// (smallest magnitudes per matrix), ctx 512, sparse execution off (dense
// GEMM) and on (every weight in CSR), on 1 and 2 threads, with each
// assembly kernel (AVX-512, AVX2). SparseThreshold is set from it and
// blas.BenchmarkSpMMT.
func BenchmarkSparseCrossover(b *testing.B) {
	for _, frac := range []float64{0.3, 0.4, 0.5, 0.6, 0.7} {
		var w map[string][]float32
		models := map[string]*Model{}
		for _, kn := range Kernels() {
			if kn == "go" {
				continue
			}
			for _, threads := range []int{1, 2} {
				for _, mode := range []string{"off", "on"} {
					b.Run(fmt.Sprintf("gpt2-small-pruned%.0f-all/%s/ctx512/threads%d/sparse-%s", 100*frac, kn, threads, mode), func(b *testing.B) {
						if w == nil {
							cfg := gpt2SmallConfig()
							w = randomWeights(cfg, 1)
							pruneProjections(map[string][]float32{"h.0.wte.weight": w["transformer.wte.weight"]}, frac)
							pruneProjections(w, frac)
						}
						m := models[kn+mode]
						if m == nil {
							var err error
							if m, err = New(gpt2SmallConfig(), w, Options{Sparse: mode, Kernel: kn}); err != nil {
								b.Fatal(err)
							}
							models[kn+mode] = m
						}
						benchForward(b, m.WithThreads(threads), 512)
					})
				}
			}
		}
	}
}

// BenchmarkScoreStream measures the throughput Options.Stream costs:
// Score over ten 512-token windows and single-window Forward passes of a
// GPT-2-small-shaped checkpoint (random weights, written to a temporary
// directory and read back through the page cache), resident and
// streaming, on 2 threads. Streaming Score runs its default batch
// (ScoreOptions.Batch 0: five windows) and one window at a time.
func BenchmarkScoreStream(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "gpt2-small")
	if err := gen.WriteCheckpoint(dir, gen.GPT2Small(tensor.F32)); err != nil {
		b.Fatal(err)
	}
	lm, err := checkpoint.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer lm.Close()
	models := map[string]*Model{}
	for _, mode := range []string{"off", "on"} {
		if models[mode], err = Load(lm, Options{Threads: 2, Stream: mode}); err != nil {
			b.Fatal(err)
		}
	}
	defer models["on"].Close()
	ids := make([]int, 10*512+1)
	for i := range ids {
		ids[i] = (i*7919 + 13) % 50257
	}
	for _, c := range []struct {
		name, mode string
		batch      int
	}{{"resident", "off", 0}, {"stream", "on", 0}, {"stream-batch1", "on", 1}} {
		b.Run("score/"+c.name, func(b *testing.B) {
			m := models[c.mode]
			for b.Loop() {
				if _, err := Score(context.Background(), m, ids, ScoreOptions{Ctx: 512, Stride: 512, Batch: c.batch}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(ids))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
	for _, c := range []struct{ name, mode string }{{"resident", "off"}, {"stream", "on"}} {
		b.Run("forward/"+c.name, func(b *testing.B) { benchForward(b, models[c.mode], 512) })
	}
}

// BenchmarkSample measures Sample on stories260k (skipped without
// ../shared): 256 sequences of 256 tokens from BOS, on 2 threads, with
// the key/value cache ("cached", Sample) and without (the "window" path,
// a forward pass over each whole sequence so far at every step, as Sample
// did before the cache). tokens/s counts the tokens drawn.
func BenchmarkSample(b *testing.B) {
	const seqs, n = 256, 256
	m := loadShared(b, storiesPath, Options{Threads: 2})
	for _, path := range []string{"cached", "window"} {
		b.Run(fmt.Sprintf("stories260k/%dx%d/%s", seqs, n, path), func(b *testing.B) {
			for b.Loop() {
				prompts, rngs := make([][]int, seqs), make([]*rand.Rand, seqs)
				for i := range prompts {
					prompts[i], rngs[i] = []int{1}, rand.New(rand.NewPCG(1, uint64(i)))
				}
				var err error
				if path == "cached" {
					_, err = Sample(context.Background(), m, prompts, n, rngs)
				} else {
					var s [][]int
					if s, err = samplePrompts(m, prompts, n, rngs); err == nil {
						_, err = sampleWindows(context.Background(), m, s, n, rngs)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(seqs*(n-1))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
