package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// Reference assets in ../shared (see its README, "Reference numbers").
const (
	storiesPath   = "models/stories260k"
	tinyGPT2Path  = "fixtures/tiny-gpt2-bf16"
	storiesTokens = "reference/tokens/stories260k.tinystories_sample.json"
	gpt2Tokens    = "reference/tokens/gpt2.tinystories_sample.json"
	sampleBytes   = 3793 // UTF-8 bytes of text/tinystories/tinystories_sample.txt
)

func loadShared(t testing.TB, rel string, opt Options) *Model {
	t.Helper()
	lm, err := checkpoint.Open(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	m, err := Load(lm, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readTokens(t testing.TB, rel string) []int {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatalf("%s: %v", filepath.Base(rel), err)
	}
	return ids
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

func TestReferencePerplexity(t *testing.T) {
	cases := []struct {
		model, tokens     string
		ntok              int
		ctx, stride       int
		scored            int
		ppl, meanNLL, bpb float64 // 0: not given in the README
	}{
		{storiesPath, storiesTokens, 1879, 512, 512, 1875, 6.124239, 1.812254, 1.292445},
		{storiesPath, storiesTokens, 1879, 128, 128, 1864, 6.043675, 1.799012, 1.275474},
		{storiesPath, storiesTokens, 1879, 256, 128, 1878, 6.295008, 1.839757, 0},
		{tinyGPT2Path, gpt2Tokens, 922, 128, 128, 914, 198863.99, 12.200376, 4.241418},
		{tinyGPT2Path, gpt2Tokens, 922, 128, 64, 921, 199431.13, 12.203224, 0},
	}
	models := map[string]*Model{}
	for _, c := range cases {
		m := models[c.model]
		if m == nil {
			m = loadShared(t, c.model, Options{Threads: 2})
			models[c.model] = m
		}
		ids := readTokens(t, c.tokens)
		if len(ids) != c.ntok {
			t.Fatalf("%s: %d tokens, want %d", c.tokens, len(ids), c.ntok)
		}
		r, err := Score(context.Background(), m, ids, ScoreOptions{Ctx: c.ctx, Stride: c.stride, TextBytes: sampleBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s ctx %d stride %d: scored %d ppl %.6f mean NLL %.6f bits/byte %.6f (kernel %s)",
			filepath.Base(c.model), c.ctx, c.stride, r.Scored, r.PPL, r.MeanNLL, r.BitsPerByte, m.Kernel())
		if r.Scored != c.scored {
			t.Errorf("%s ctx %d stride %d: scored %d, want %d", c.model, c.ctx, c.stride, r.Scored, c.scored)
		}
		if e := relErr(r.PPL, c.ppl); e > 1e-4 {
			t.Errorf("%s ctx %d stride %d: ppl %.6f, want %.6f (rel err %.2g)", c.model, c.ctx, c.stride, r.PPL, c.ppl, e)
		}
		if e := math.Abs(r.MeanNLL - c.meanNLL); e > 1e-4 {
			t.Errorf("%s ctx %d stride %d: mean NLL %.6f, want %.6f", c.model, c.ctx, c.stride, r.MeanNLL, c.meanNLL)
		}
		if c.bpb != 0 {
			if e := relErr(r.BitsPerByte, c.bpb); e > 1e-4 {
				t.Errorf("%s ctx %d stride %d: bits/byte %.6f, want %.6f", c.model, c.ctx, c.stride, r.BitsPerByte, c.bpb)
			}
		}
	}
}

// TestReferenceNLLAndLogits checks the first 8 per-token NLLs and the
// position-0 logits of both reference models, on every kernel.
func TestReferenceNLLAndLogits(t *testing.T) {
	cases := []struct {
		model, tokens string
		ctx           int
		nll           []float64
		id0           int
		logits0       []float64
	}{
		{storiesPath, storiesTokens, 512,
			[]float64{0.243743, 0.017513, 0.012110, 0.000724, 3.549842, 0.150518, 0.001825, 0.758662},
			1, []float64{-6.222914, 8.404342, -6.223739, -6.222544}},
		{tinyGPT2Path, gpt2Tokens, 128,
			[]float64{13.680653, 11.007623, 12.287743, 13.220316, 12.073214, 11.079397, 10.364917, 11.236128},
			7454, []float64{1.056412, -3.181445, -0.568066, -0.024731}},
	}
	for _, c := range cases {
		ids := readTokens(t, c.tokens)
		for _, kn := range Kernels() {
			m := loadShared(t, c.model, Options{Threads: 2, Kernel: kn})
			// One window is enough for positions 1..8.
			r, err := Score(context.Background(), m, ids[:c.ctx], ScoreOptions{Ctx: c.ctx, Stride: c.ctx, KeepNLL: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range c.nll {
				if r.Pos[i] != i+1 || math.Abs(r.NLL[i]-want) > 1e-4 {
					t.Errorf("%s (kernel %s): NLL at position %d = %.6f, want %.6f at position %d", c.model, kn, r.Pos[i], r.NLL[i], want, i+1)
				}
			}
			logits := make([]float32, m.VocabSize())
			if err := m.Forward([]int{c.id0}, logits); err != nil {
				t.Fatal(err)
			}
			for i, want := range c.logits0 {
				if math.Abs(float64(logits[i])-want) > 1e-4 {
					t.Errorf("%s (kernel %s): position-0 logit %d = %.6f, want %.6f", c.model, kn, i, logits[i], want)
				}
			}
			t.Logf("%s (kernel %s): NLL %.6f, logits %.6f", filepath.Base(c.model), kn, r.NLL[:8], logits[:4])
		}
	}
}

// TestThreadsIdentical checks that 1 and 2 threads give bit-identical
// logits, and that the kernels agree within float32 rounding.
func TestThreadsIdentical(t *testing.T) {
	for _, c := range []struct{ model, tokens string }{{storiesPath, storiesTokens}, {tinyGPT2Path, gpt2Tokens}} {
		ids := readTokens(t, c.tokens)[:128]
		var first []float32
		for _, kn := range Kernels() {
			m := loadShared(t, c.model, Options{Threads: 1, Kernel: kn})
			l1 := make([]float32, len(ids)*m.VocabSize())
			l2 := make([]float32, len(ids)*m.VocabSize())
			if err := m.Forward(ids, l1); err != nil {
				t.Fatal(err)
			}
			if err := m.WithThreads(2).Forward(ids, l2); err != nil {
				t.Fatal(err)
			}
			for i := range l1 {
				if l1[i] != l2[i] {
					t.Fatalf("%s (kernel %s): logit %d: %g on 1 thread, %g on 2", c.model, kn, i, l1[i], l2[i])
				}
			}
			if first == nil {
				first = l1
				continue
			}
			var worst float64
			for i := range l1 {
				worst = max(worst, math.Abs(float64(l1[i]-first[i])))
			}
			t.Logf("%s: kernel %s vs %s: worst |logit diff| %.3g", filepath.Base(c.model), kn, Kernels()[0], worst)
			if worst > 1e-4 {
				t.Errorf("%s: kernel %s differs from %s by %g", c.model, kn, Kernels()[0], worst)
			}
		}
	}
}

// TestKL scores stories260k against itself (KL 0, full agreement) and
// against a copy with half of one weight matrix zeroed (KL > 0).
func TestKL(t *testing.T) {
	lm, err := checkpoint.Open(sharedtest.Path(t, storiesPath))
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	base, err := Load(lm, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids := readTokens(t, storiesTokens)[:600]
	o := ScoreOptions{Ctx: 256, Stride: 256, Base: base}

	self, err := Score(context.Background(), base.WithThreads(1), ids, o)
	if err != nil {
		t.Fatal(err)
	}
	k := self.KL
	t.Logf("self: %+v", *k)
	if k.Mean > 1e-9 || k.Max > 1e-9 || k.Top1 != 1 || k.LogPPLRatio != 0 || k.BasePPL != self.PPL {
		t.Errorf("model against itself: %+v, want KL 0, agreement 1, ratio 0", *k)
	}

	w := map[string][]float32{}
	for _, n := range lm.Names() {
		if w[n], err = lm.Float32(n); err != nil {
			t.Fatal(err)
		}
	}
	const victim = "model.layers.2.mlp.down_proj.weight"
	for i := range w[victim] {
		if i%2 == 0 {
			w[victim][i] = 0
		}
	}
	pruned, err := New(lm.Config, w, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Score(context.Background(), pruned, ids, o)
	if err != nil {
		t.Fatal(err)
	}
	k = r.KL
	t.Logf("half of %s zeroed: ppl %.4f (base %.4f) %+v", victim, r.PPL, k.BasePPL, *k)
	if !(k.Mean > 0 && k.P50 <= k.P90 && k.P90 <= k.P99 && k.P99 <= k.Max && k.Mean <= k.Max) {
		t.Errorf("perturbed model: KL stats %+v, want positive and ordered", *k)
	}
	if k.Top1 <= 0 || k.Top1 > 1 || k.BasePPL != self.PPL || math.Abs(k.LogPPLRatio-math.Log(r.PPL/k.BasePPL)) > 1e-12 {
		t.Errorf("perturbed model: %+v", *k)
	}
}
