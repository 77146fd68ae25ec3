package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// refForward is an independent, deliberately naive float64 forward pass
// written straight from the Hugging Face modelling code, one token row at
// a time. It returns logits [T][vocab].
func refForward(cfg *checkpoint.Config, w map[string][]float32, ids []int) [][]float64 {
	D, H, KV, hd, I, V := cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.IntermediateSize, cfg.VocabSize
	T := len(ids)
	get := func(names ...string) []float32 {
		for _, n := range names {
			if v, ok := w[n]; ok {
				return v
			}
		}
		return nil
	}
	// linear: y[o] = Σ_i x[i]·W[o,i] + b[o] for W [out, in]; conv: W [in, out].
	linear := func(x []float64, wt []float32, out int, conv bool, b []float32) []float64 {
		in := len(x)
		y := make([]float64, out)
		for o := range y {
			var s float64
			for i, xi := range x {
				if conv {
					s += xi * float64(wt[i*out+o])
				} else {
					s += xi * float64(wt[o*in+i])
				}
			}
			if b != nil {
				s += float64(b[o])
			}
			y[o] = s
		}
		return y
	}
	rms := func(x []float64, wt []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+cfg.NormEps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * inv * float64(wt[i])
		}
		return y
	}
	ln := func(x []float64, wt, b []float32) []float64 {
		var mean, v float64
		for _, xi := range x {
			mean += xi
		}
		mean /= float64(len(x))
		for _, xi := range x {
			v += (xi - mean) * (xi - mean)
		}
		inv := 1 / math.Sqrt(v/float64(len(x))+cfg.NormEps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = (x[i]-mean)*inv*float64(wt[i]) + float64(b[i])
		}
		return y
	}
	gpt2 := cfg.ModelType == "gpt2"
	p := "model."
	if gpt2 {
		p = "transformer."
		if _, ok := w[p+"wte.weight"]; !ok {
			p = ""
		}
	}
	x := make([][]float64, T)
	for t, id := range ids {
		x[t] = make([]float64, D)
		for i := range x[t] {
			if gpt2 {
				x[t][i] = float64(w[p+"wte.weight"][id*D+i]) + float64(w[p+"wpe.weight"][t*D+i])
			} else {
				x[t][i] = float64(w[p+"embed_tokens.weight"][id*D+i])
			}
		}
	}
	rope := func(v []float64, t int) {
		half := hd / 2
		out := make([]float64, hd)
		for i := 0; i < hd; i++ {
			f := math.Pow(cfg.RopeTheta, -float64(2*(i%half))/float64(hd))
			c, s := math.Cos(float64(t)*f), math.Sin(float64(t)*f)
			var rot float64 // rotate_half: [-x2, x1]
			if i < half {
				rot = -v[i+half]
			} else {
				rot = v[i-half]
			}
			out[i] = v[i]*c + rot*s
		}
		copy(v, out)
	}
	for l := 0; l < cfg.NumLayers; l++ {
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		var lp string
		for t := 0; t < T; t++ {
			if gpt2 {
				lp = fmt.Sprintf("%sh.%d.", p, l)
				h := ln(x[t], w[lp+"ln_1.weight"], w[lp+"ln_1.bias"])
				qkv := linear(h, w[lp+"attn.c_attn.weight"], 3*D, true, w[lp+"attn.c_attn.bias"])
				q[t], k[t], v[t] = qkv[:D], qkv[D:2*D], qkv[2*D:]
			} else {
				lp = fmt.Sprintf("%slayers.%d.", p, l)
				h := rms(x[t], w[lp+"input_layernorm.weight"])
				q[t] = linear(h, w[lp+"self_attn.q_proj.weight"], H*hd, false, w[lp+"self_attn.q_proj.bias"])
				k[t] = linear(h, w[lp+"self_attn.k_proj.weight"], KV*hd, false, w[lp+"self_attn.k_proj.bias"])
				v[t] = linear(h, w[lp+"self_attn.v_proj.weight"], KV*hd, false, w[lp+"self_attn.v_proj.bias"])
				for hh := 0; hh < H; hh++ {
					rope(q[t][hh*hd:(hh+1)*hd], t)
				}
				for hh := 0; hh < KV; hh++ {
					rope(k[t][hh*hd:(hh+1)*hd], t)
				}
			}
		}
		for t := 0; t < T; t++ {
			att := make([]float64, H*hd)
			for hh := 0; hh < H; hh++ {
				g := hh / (H / KV)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for u := 0; u <= t; u++ {
					var s float64
					for d := 0; d < hd; d++ {
						s += q[t][hh*hd+d] * k[u][g*hd+d]
					}
					sc[u] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[u])
				}
				var sum float64
				for u := range sc {
					sc[u] = math.Exp(sc[u] - mx)
					sum += sc[u]
				}
				for u := range sc {
					for d := 0; d < hd; d++ {
						att[hh*hd+d] += sc[u] / sum * v[u][g*hd+d]
					}
				}
			}
			var o []float64
			if gpt2 {
				o = linear(att, w[lp+"attn.c_proj.weight"], D, true, w[lp+"attn.c_proj.bias"])
			} else {
				o = linear(att, w[lp+"self_attn.o_proj.weight"], D, false, w[lp+"self_attn.o_proj.bias"])
			}
			for i := range o {
				x[t][i] += o[i]
			}
		}
		for t := 0; t < T; t++ {
			var y []float64
			if gpt2 {
				h := ln(x[t], w[lp+"ln_2.weight"], w[lp+"ln_2.bias"])
				f := linear(h, w[lp+"mlp.c_fc.weight"], I, true, w[lp+"mlp.c_fc.bias"])
				for i, z := range f {
					if cfg.Activation == "gelu" {
						f[i] = 0.5 * z * (1 + math.Erf(z/math.Sqrt2))
					} else {
						f[i] = 0.5 * z * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(z+0.044715*z*z*z)))
					}
				}
				y = linear(f, w[lp+"mlp.c_proj.weight"], D, true, w[lp+"mlp.c_proj.bias"])
			} else {
				h := rms(x[t], w[lp+"post_attention_layernorm.weight"])
				g := linear(h, w[lp+"mlp.gate_proj.weight"], I, false, w[lp+"mlp.gate_proj.bias"])
				u := linear(h, w[lp+"mlp.up_proj.weight"], I, false, w[lp+"mlp.up_proj.bias"])
				for i := range g {
					g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
				}
				y = linear(g, w[lp+"mlp.down_proj.weight"], D, false, w[lp+"mlp.down_proj.bias"])
			}
			for i := range y {
				x[t][i] += y[i]
			}
		}
	}
	logits := make([][]float64, T)
	for t := range x {
		var h []float64
		var head []float32
		if gpt2 {
			h = ln(x[t], w[p+"ln_f.weight"], w[p+"ln_f.bias"])
			head = get(p + "wte.weight")
		} else {
			h = rms(x[t], w[p+"norm.weight"])
			head = get(p + "embed_tokens.weight")
		}
		if !cfg.TieWordEmbeddings {
			head = w["lm_head.weight"]
		}
		logits[t] = linear(h, head, V, false, nil)
	}
	return logits
}

// checkAgainstRef compares m's logits with refForward's on ids.
func checkAgainstRef(t *testing.T, what string, m *Model, cfg *checkpoint.Config, w map[string][]float32, ids []int, tol float64) {
	t.Helper()
	V := cfg.VocabSize
	got := make([]float32, len(ids)*V)
	if err := m.Forward(ids, got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want := refForward(cfg, w, ids)
	var worst float64
	for i := range want {
		for j, v := range want[i] {
			d := math.Abs(float64(got[i*V+j]) - v)
			worst = max(worst, d)
			if !(d <= tol*(1+math.Abs(v))) {
				t.Fatalf("%s (kernel %s): logit[%d][%d] = %g, reference %g", what, m.Kernel(), i, j, got[i*V+j], v)
			}
		}
	}
	t.Logf("%s (kernel %s): worst |logit diff| %.3g", what, m.Kernel(), worst)
}

// testIDs returns n token ids below vocab from a fixed-seed PCG.
func testIDs(n, vocab int) []int {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(vocab)))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// TestForwardVariants checks every supported architecture variant against
// the naive reference: GQA, untied heads, qwen2 biases, mistral, gpt2 with
// and without the transformer. prefix, exact GELU, on every kernel and
// with windows that end inside an attention query block.
func TestForwardVariants(t *testing.T) {
	llama := func(mt string, tied bool) *checkpoint.Config {
		return &checkpoint.Config{ModelType: mt, HiddenSize: 24, NumLayers: 2, NumHeads: 6, NumKVHeads: 2, HeadDim: 4,
			IntermediateSize: 40, VocabSize: 37, MaxPositions: 160, NormEps: 1e-5, RopeTheta: 10000,
			TieWordEmbeddings: tied, Activation: "silu"}
	}
	gpt := func(act string) *checkpoint.Config {
		return &checkpoint.Config{ModelType: "gpt2", HiddenSize: 24, NumLayers: 2, NumHeads: 3, NumKVHeads: 3, HeadDim: 8,
			IntermediateSize: 52, VocabSize: 41, MaxPositions: 150, NormEps: 1e-5, TieWordEmbeddings: true, Activation: act}
	}
	cases := []struct {
		name string
		cfg  *checkpoint.Config
		edit func(w map[string][]float32)
	}{
		{"llama tied", llama("llama", true), nil},
		{"llama untied", llama("llama", false), nil},
		{"mistral", llama("mistral", false), nil},
		{"qwen2 biases", llama("qwen2", true), nil},
		{"llama head dim 10", func() *checkpoint.Config {
			c := llama("llama", false)
			c.HeadDim, c.RopeTheta = 10, 500000
			return c
		}(), nil},
		{"llama mlp and o_proj biases", llama("llama", true), func(w map[string][]float32) {
			for l := 0; l < 2; l++ {
				p := fmt.Sprintf("model.layers.%d.", l)
				w[p+"self_attn.o_proj.bias"] = slices.Repeat([]float32{0.1, -0.2, 0.3}, 8)
				w[p+"mlp.gate_proj.bias"] = slices.Repeat([]float32{0.05, -0.1}, 20)
				w[p+"mlp.up_proj.bias"] = slices.Repeat([]float32{-0.3, 0.2}, 20)
				w[p+"mlp.down_proj.bias"] = slices.Repeat([]float32{0.01, 0.02, -0.03}, 8)
			}
		}},
		{"gpt2", gpt("gelu_new"), nil},
		{"gpt2 exact gelu", gpt("gelu"), nil},
		{"gpt2 no prefix", gpt("gelu_pytorch_tanh"), func(w map[string][]float32) {
			for k, v := range w {
				if strings.HasPrefix(k, "transformer.") {
					delete(w, k)
					w[strings.TrimPrefix(k, "transformer.")] = v
				}
			}
		}},
		{"gpt2 untied", func() *checkpoint.Config { c := gpt("gelu_new"); c.TieWordEmbeddings = false; return c }(), nil},
	}
	for ci, c := range cases {
		seed := uint64(100 + ci)
		w := randomWeights(c.cfg, seed)
		// Larger weights than at initialization so attention is sharp
		// and every term matters.
		for k, v := range w {
			if !strings.Contains(k, "norm") && !strings.Contains(k, "ln_") {
				for i := range v {
					v[i] *= 8
				}
			}
		}
		if c.edit != nil {
			c.edit(w)
		}
		t.Logf("%s: seed %d", c.name, seed)
		for _, kn := range Kernels() {
			m, err := New(c.cfg, w, Options{Threads: 2, Kernel: kn})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			checkAgainstRef(t, c.name, m, c.cfg, w, testIDs(140, c.cfg.VocabSize), 2e-4)
		}
	}
}

// TestLoadGenerated loads generated checkpoints through the loader (F32,
// BF16, sharded) and compares with the reference on the decoded weights.
func TestLoadGenerated(t *testing.T) {
	for _, s := range []gen.Spec{gen.Llama(tensor.F32, 1), gen.Llama(tensor.BF16, 3), gen.GPT2(tensor.F16, 1)} {
		dir := filepath.Join(t.TempDir(), s.Arch)
		if err := gen.WriteCheckpoint(dir, s); err != nil {
			t.Fatal(err)
		}
		lm, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		w := map[string][]float32{}
		for _, n := range lm.Names() {
			if w[n], err = lm.Float32(n); err != nil {
				t.Fatal(err)
			}
		}
		m, err := Load(lm, Options{Threads: 2})
		lm.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstRef(t, fmt.Sprintf("generated %s %s", s.Arch, s.DType), m, lm.Config, w, testIDs(s.Ctx, s.Vocab), 1e-4)
	}
}

func TestLoadErrors(t *testing.T) {
	cfg := &checkpoint.Config{ModelType: "llama", HiddenSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4,
		IntermediateSize: 12, VocabSize: 10, MaxPositions: 16, NormEps: 1e-5, RopeTheta: 10000, Activation: "silu"}
	base := randomWeights(cfg, 1)
	edit := func(f func(w map[string][]float32)) map[string][]float32 {
		w := map[string][]float32{}
		for k, v := range base {
			w[k] = v
		}
		f(w)
		return w
	}
	cases := []struct {
		name    string
		cfg     func(c *checkpoint.Config)
		w       map[string][]float32
		target  error
		mention string
	}{
		{"missing tensor", nil, edit(func(w map[string][]float32) { delete(w, "model.layers.0.mlp.up_proj.weight") }),
			checkpoint.ErrFormat, "model.layers.0.mlp.up_proj.weight"},
		{"missing lm_head", nil, edit(func(w map[string][]float32) { delete(w, "lm_head.weight") }),
			checkpoint.ErrFormat, "lm_head.weight"},
		{"wrong shape", nil, edit(func(w map[string][]float32) { w["model.layers.0.self_attn.k_proj.weight"] = make([]float32, 8*8) }),
			checkpoint.ErrFormat, "model.layers.0.self_attn.k_proj.weight"},
		{"qwen2 without biases", func(c *checkpoint.Config) { c.ModelType = "qwen2" }, base, checkpoint.ErrFormat, "q_proj.bias"},
		{"half a bias set", nil, edit(func(w map[string][]float32) { w["model.layers.0.self_attn.k_proj.bias"] = make([]float32, 4) }),
			checkpoint.ErrFormat, "model.layers.0.self_attn.q_proj.bias"},
		{"activation", func(c *checkpoint.Config) { c.Activation = "relu" }, base, checkpoint.ErrUnsupported, "relu"},
		{"odd head dim", func(c *checkpoint.Config) { c.HeadDim = 3 }, base, checkpoint.ErrUnsupported, "even"},
		{"model type", func(c *checkpoint.Config) { c.ModelType = "bert" }, base, checkpoint.ErrUnsupported, "bert"},
		{"kernel", nil, base, ErrInput, "no-such-kernel"},
	}
	for _, c := range cases {
		cc := *cfg
		if c.cfg != nil {
			c.cfg(&cc)
		}
		opt := Options{Threads: 1}
		if c.name == "kernel" {
			opt.Kernel = "no-such-kernel"
		}
		_, err := New(&cc, c.w, opt)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: error %q, want one wrapping %v and naming %q", c.name, err, c.target, c.mention)
		}
	}
}

// TestLoadWrongShape checks that Load names the tensor and both shapes when
// a checkpoint tensor has the wrong shape, and rejects a checkpoint
// without config.json.
func TestLoadWrongShape(t *testing.T) {
	dir := t.TempDir()
	s := gen.Llama(tensor.F32, 1)
	ts := gen.Weights(s)
	for i, x := range ts {
		if x.Name == "model.layers.1.mlp.down_proj.weight" {
			ts[i].Shape = []int64{x.Shape[1], x.Shape[0]} // transposed
		}
	}
	if err := gen.WriteCheckpoint(dir, s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), gen.Pack(ts, nil).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	lm, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	_, err = Load(lm, Options{})
	if err == nil || !errors.Is(err, checkpoint.ErrFormat) || !strings.Contains(err.Error(), "model.layers.1.mlp.down_proj.weight") ||
		!strings.Contains(err.Error(), "[24 16]") || !strings.Contains(err.Error(), "[16 24]") {
		t.Fatalf("got %v, want an ErrFormat naming the tensor and both shapes", err)
	}

	lone, err := checkpoint.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer lone.Close()
	lone.Config = nil
	if _, err := Load(lone, Options{}); !errors.Is(err, checkpoint.ErrFormat) {
		t.Fatalf("no config: got %v, want ErrFormat", err)
	}
}

func TestForwardErrors(t *testing.T) {
	cfg := &checkpoint.Config{ModelType: "gpt2", HiddenSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 2, HeadDim: 4,
		IntermediateSize: 12, VocabSize: 10, MaxPositions: 16, NormEps: 1e-5, TieWordEmbeddings: true, Activation: "gelu_new"}
	m, err := New(cfg, randomWeights(cfg, 3), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		ids    []int
		logits int
	}{
		{"no tokens", nil, 0},
		{"negative id", []int{1, -1}, 20},
		{"id past vocab", []int{10}, 10},
		{"too long", make([]int, 17), 170},
		{"short logits", []int{1, 2}, 19},
	} {
		if err := m.Forward(c.ids, make([]float32, c.logits)); !errors.Is(err, ErrInput) {
			t.Errorf("%s: got %v, want ErrInput", c.name, err)
		}
	}
	if err := m.Forward(make([]int, 16), make([]float32, 160)); err != nil {
		t.Errorf("full-length window: %v", err)
	}
}

// TestMLPRows checks the MLP's chunking: one chunk up to mlpOne rows, else
// as few chunks as mlpChunk allows, none longer than mlpChunk, of equal
// length but for a shorter last one.
func TestMLPRows(t *testing.T) {
	for rows := 1; rows <= 5000; rows++ {
		c := mlpRows(rows)
		n := (rows + c - 1) / c
		if rows <= mlpOne {
			if c != rows {
				t.Fatalf("rows %d: chunks of %d, want one", rows, c)
			}
			continue
		}
		if c < 1 || c > mlpChunk || n != (rows+mlpChunk-1)/mlpChunk || (c%16 != 0 && c < rows) {
			t.Fatalf("rows %d: chunks of %d (%d of them)", rows, c, n)
		}
		if last := rows - (n-1)*c; last > c || rows > 16*n && last < c-16*n {
			t.Fatalf("rows %d: chunks of %d, last %d", rows, c, last)
		}
	}
	if c := mlpRows(1024); c != 352 {
		t.Fatalf("1024 rows: chunks of %d, want 352", c)
	}
}

// TestGemmRows checks that splitting a product with a small weight by rows
// across threads gives Gemm's result bit for bit, for every kernel.
func TestGemmRows(t *testing.T) {
	seed := uint64(64)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 10))
	for _, kr := range kernels() {
		for _, sh := range [][2]int{{64, 64}, {192, 64}, {344, 64}, {64, 172}, {512, 64}, {512, 256}, {544, 256}} {
			n, k := sh[0], sh[1]
			w := make([]float32, n*k)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			b := kr.PackB(w, n, k, k, 1, 1)
			for _, rows := range []int{1, 12, 13, 100, 511, 512} {
				x := make([]float32, rows*k)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				a := kr.PackA(x, rows, k, k, 1, 1)
				want := make([]float32, rows*n)
				kr.Gemm(want, n, a, b, rows, n, k, 1)
				for _, th := range []int{2, 3} {
					m := &Model{kern: kr, threads: th}
					got := make([]float32, rows*n)
					m.gemmRows(got, n, a, b, rows, n, k)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s %dx%dx%d threads %d: element %d = %v, Gemm %v", kr.Name(), rows, n, k, th, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestPackQ checks attention's small-head query packing against
// PackPanels, padding rows included, for every kernel.
func TestPackQ(t *testing.T) {
	seed := uint64(65)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, kr := range kernels() {
		nr := kr.NR()
		for _, hd := range []int{1, 4, 8, 15} {
			for _, nq := range []int{1, nr / 2, nr} {
				ld := 3*hd + 5
				src := make([]float32, nq*ld)
				for i := range src {
					src[i] = float32(rng.NormFloat64())
				}
				want := blas.NewPacked(nq, hd, nr)
				kr.PackPanels(want, src, ld, 1, 0, 1)
				got := make([]float32, hd*nr)
				for i := range got {
					got[i] = 42 // stale values the padding must overwrite
				}
				packQ(got, src, ld, hd, nq, nr)
				if !slices.Equal(got, want.Data) {
					t.Fatalf("%s hd %d nq %d: packQ %v, PackPanels %v", kr.Name(), hd, nq, got, want.Data)
				}
			}
		}
	}
}
