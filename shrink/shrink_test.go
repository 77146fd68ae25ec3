package shrink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/shrink"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// ---- a plain float64 reference forward pass (no shortcuts) ----

// refModel is a checkpoint read into float64 values with its config.
type refModel struct {
	cfg   *checkpoint.Config
	w     map[string][]float64
	shape map[string][]int64
	// capture, when set, sees block l's o_proj input (group 1) and
	// down_proj input (group 3) of every row.
	capture func(l, group int, row []float64)
}

func readRef(t *testing.T, dir string) *refModel {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := &refModel{cfg: m.Config, w: map[string][]float64{}, shape: map[string][]int64{}}
	for _, name := range m.Names() {
		v, err := m.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		f := make([]float64, len(v))
		for i, x := range v {
			f[i] = float64(x)
		}
		info, _ := m.Tensor(name)
		r.w[name], r.shape[name] = f, info.Shape
	}
	return r
}

func (r *refModel) get(t *testing.T, name string) []float64 {
	t.Helper()
	v, ok := r.w[name]
	if !ok {
		t.Fatalf("tensor %q missing", name)
	}
	return v
}

// linear returns y = W x (+ b) for W [out, in] row-major.
func linear(W, b, x []float64, out, in int) []float64 {
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += W[o*in+i] * x[i]
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	return y
}

// conv1D returns y = x W (+ b) for a GPT-2 Conv1D W [in, out].
func conv1D(W, b, x []float64, in, out int) []float64 {
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += x[i] * W[i*out+o]
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	return y
}

// attend runs causal attention of query heads over key/value heads
// (query head h reads key/value head h/(H/KV)): q [T][H·hd], k, v [T][KV·hd].
func attend(q, k, v [][]float64, H, KV, hd int) [][]float64 {
	T := len(q)
	out := make([][]float64, T)
	for t := range out {
		out[t] = make([]float64, H*hd)
		for h := 0; h < H; h++ {
			g := h / (H / KV)
			sc := make([]float64, t+1)
			mx := math.Inf(-1)
			for s := 0; s <= t; s++ {
				d := 0.0
				for i := 0; i < hd; i++ {
					d += q[t][h*hd+i] * k[s][g*hd+i]
				}
				sc[s] = d / math.Sqrt(float64(hd))
				mx = math.Max(mx, sc[s])
			}
			z := 0.0
			for s := range sc {
				sc[s] = math.Exp(sc[s] - mx)
				z += sc[s]
			}
			for s := 0; s <= t; s++ {
				for i := 0; i < hd; i++ {
					out[t][h*hd+i] += sc[s] / z * v[s][g*hd+i]
				}
			}
		}
	}
	return out
}

func (r *refModel) opt(name string) []float64 { return r.w[name] }

func (r *refModel) see(l, group int, row []float64) {
	if r.capture != nil {
		r.capture(l, group, row)
	}
}

// prefix is the llama tensor names' prefix: "model." or none.
func (r *refModel) prefix() string {
	if _, ok := r.w["embed_tokens.weight"]; ok {
		return ""
	}
	return "model."
}

// forward returns the logits [T][vocab] of ids.
func (r *refModel) forward(t *testing.T, ids []int) [][]float64 {
	t.Helper()
	c := r.cfg
	D, V, L := c.HiddenSize, c.VocabSize, c.NumLayers
	H, KV, hd, I := c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize
	T := len(ids)
	gpt2 := c.ModelType == "gpt2"
	p := "model."
	if gpt2 {
		p = "transformer."
	}
	if _, ok := r.w["embed_tokens.weight"]; ok {
		p = ""
	}
	x := make([][]float64, T)
	for i, id := range ids {
		x[i] = make([]float64, D)
		if gpt2 {
			wte, wpe := r.get(t, p+"wte.weight"), r.get(t, p+"wpe.weight")
			for j := range D {
				x[i][j] = wte[id*D+j] + wpe[i*D+j]
			}
		} else {
			copy(x[i], r.get(t, p+"embed_tokens.weight")[id*D:(id+1)*D])
		}
	}
	rms := func(v, w []float64) []float64 {
		s := 0.0
		for _, a := range v {
			s += a * a
		}
		inv := 1 / math.Sqrt(s/float64(len(v))+c.NormEps)
		out := make([]float64, len(v))
		for i := range v {
			out[i] = v[i] * inv * w[i]
		}
		return out
	}
	ln := func(v, w, b []float64) []float64 {
		mean, vr := 0.0, 0.0
		for _, a := range v {
			mean += a
		}
		mean /= float64(len(v))
		for _, a := range v {
			vr += (a - mean) * (a - mean)
		}
		vr /= float64(len(v))
		out := make([]float64, len(v))
		for i := range v {
			out[i] = (v[i]-mean)/math.Sqrt(vr+c.NormEps)*w[i] + b[i]
		}
		return out
	}
	rope := func(v []float64, heads, pos int) {
		for h := 0; h < heads; h++ {
			for i := 0; i < hd/2; i++ {
				ang := float64(pos) * math.Pow(c.RopeTheta, -float64(2*i)/float64(hd))
				a, b := v[h*hd+i], v[h*hd+i+hd/2]
				v[h*hd+i] = a*math.Cos(ang) - b*math.Sin(ang)
				v[h*hd+i+hd/2] = b*math.Cos(ang) + a*math.Sin(ang)
			}
		}
	}
	for l := 0; l < L; l++ {
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		if gpt2 {
			lp := fmt.Sprintf("%sh.%d.", p, l)
			for i := range T {
				h := ln(x[i], r.get(t, lp+"ln_1.weight"), r.get(t, lp+"ln_1.bias"))
				qkv := conv1D(r.get(t, lp+"attn.c_attn.weight"), r.get(t, lp+"attn.c_attn.bias"), h, D, 3*D)
				q[i], k[i], v[i] = qkv[:D], qkv[D:2*D], qkv[2*D:]
			}
			att := attend(q, k, v, H, H, hd)
			for i := range T {
				r.see(l, 1, att[i])
				o := conv1D(r.get(t, lp+"attn.c_proj.weight"), r.get(t, lp+"attn.c_proj.bias"), att[i], D, D)
				for j := range D {
					x[i][j] += o[j]
				}
				h := ln(x[i], r.get(t, lp+"ln_2.weight"), r.get(t, lp+"ln_2.bias"))
				a := conv1D(r.get(t, lp+"mlp.c_fc.weight"), r.get(t, lp+"mlp.c_fc.bias"), h, D, I)
				for j := range a {
					u := a[j]
					a[j] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
				}
				r.see(l, 3, a)
				m := conv1D(r.get(t, lp+"mlp.c_proj.weight"), r.get(t, lp+"mlp.c_proj.bias"), a, I, D)
				for j := range D {
					x[i][j] += m[j]
				}
			}
			continue
		}
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		a := lp + "self_attn."
		for i := range T {
			h := rms(x[i], r.get(t, lp+"input_layernorm.weight"))
			q[i] = linear(r.get(t, a+"q_proj.weight"), r.opt(a+"q_proj.bias"), h, H*hd, D)
			k[i] = linear(r.get(t, a+"k_proj.weight"), r.opt(a+"k_proj.bias"), h, KV*hd, D)
			v[i] = linear(r.get(t, a+"v_proj.weight"), r.opt(a+"v_proj.bias"), h, KV*hd, D)
			rope(q[i], H, i)
			rope(k[i], KV, i)
		}
		att := attend(q, k, v, H, KV, hd)
		for i := range T {
			r.see(l, 1, att[i])
			o := linear(r.get(t, a+"o_proj.weight"), r.opt(a+"o_proj.bias"), att[i], D, H*hd)
			for j := range D {
				x[i][j] += o[j]
			}
			h := rms(x[i], r.get(t, lp+"post_attention_layernorm.weight"))
			g := linear(r.get(t, lp+"mlp.gate_proj.weight"), r.opt(lp+"mlp.gate_proj.bias"), h, I, D)
			u := linear(r.get(t, lp+"mlp.up_proj.weight"), r.opt(lp+"mlp.up_proj.bias"), h, I, D)
			for j := range g {
				g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
			}
			r.see(l, 3, g)
			m := linear(r.get(t, lp+"mlp.down_proj.weight"), r.opt(lp+"mlp.down_proj.bias"), g, D, I)
			for j := range D {
				x[i][j] += m[j]
			}
		}
	}
	head := "lm_head.weight"
	if c.TieWordEmbeddings {
		head = p + "embed_tokens.weight"
		if gpt2 {
			head = p + "wte.weight"
		}
	}
	logits := make([][]float64, T)
	for i := range T {
		var h []float64
		if gpt2 {
			h = ln(x[i], r.get(t, p+"ln_f.weight"), r.get(t, p+"ln_f.bias"))
		} else {
			h = rms(x[i], r.get(t, p+"norm.weight"))
		}
		logits[i] = linear(r.get(t, head), nil, h, V, D)
	}
	return logits
}

// ---- tiny random models with every optional part ----

type spec struct {
	arch                  string // llama or gpt2
	D, L, H, KV, hd, I, V int
	bias, tied            bool
	dt                    tensor.DType
	headDimKey            bool   // write head_dim to config.json
	modelType             string // llama family: "" means llama
	noPrefix              bool   // names without "model."
}

// writeModel writes a random checkpoint of s into dir: weights N(0, 0.3²),
// norm weights 1 ± 0.2, biases N(0, 0.1²), so every part matters.
func writeModel(t *testing.T, dir string, s spec) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(s.D*1000+s.I)))
	var ts []gen.Tensor
	add := func(name string, scale, mean float64, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + scale*rng.NormFloat64())
		}
		b := make([]byte, int(n)*s.dt.Size())
		if err := tensor.EncodeF32(b, v, s.dt); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, gen.Tensor{Name: name, DType: s.dt, Shape: shape, Data: b})
	}
	D, I, V, hd := int64(s.D), int64(s.I), int64(s.V), int64(s.hd)
	var cfg map[string]any
	if s.arch == "gpt2" {
		add("transformer.wte.weight", 0.3, 0, V, D)
		add("transformer.wpe.weight", 0.3, 0, 64, D)
		for l := range s.L {
			p := fmt.Sprintf("transformer.h.%d.", l)
			add(p+"ln_1.weight", 0.2, 1, D)
			add(p+"ln_1.bias", 0.1, 0, D)
			add(p+"attn.c_attn.weight", 0.3, 0, D, 3*D)
			add(p+"attn.c_attn.bias", 0.1, 0, 3*D)
			add(p+"attn.c_proj.weight", 0.3, 0, D, D)
			add(p+"attn.c_proj.bias", 0.1, 0, D)
			add(p+"ln_2.weight", 0.2, 1, D)
			add(p+"ln_2.bias", 0.1, 0, D)
			add(p+"mlp.c_fc.weight", 0.3, 0, D, I)
			add(p+"mlp.c_fc.bias", 0.5, 0, I)
			add(p+"mlp.c_proj.weight", 0.3, 0, I, D)
			add(p+"mlp.c_proj.bias", 0.1, 0, D)
		}
		add("transformer.ln_f.weight", 0.2, 1, D)
		add("transformer.ln_f.bias", 0.1, 0, D)
		cfg = map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2", "n_embd": s.D, "n_layer": s.L,
			"n_head": s.H, "n_inner": s.I, "n_positions": 64, "vocab_size": s.V, "layer_norm_epsilon": 1e-5,
			"activation_function": "gelu_new", "tie_word_embeddings": true}
	} else {
		H, KV := int64(s.H), int64(s.KV)
		add("model.embed_tokens.weight", 0.3, 0, V, D)
		for l := range s.L {
			p := fmt.Sprintf("model.layers.%d.", l)
			add(p+"input_layernorm.weight", 0.2, 1, D)
			add(p+"post_attention_layernorm.weight", 0.2, 1, D)
			add(p+"self_attn.q_proj.weight", 0.3, 0, H*hd, D)
			add(p+"self_attn.k_proj.weight", 0.3, 0, KV*hd, D)
			add(p+"self_attn.v_proj.weight", 0.3, 0, KV*hd, D)
			add(p+"self_attn.o_proj.weight", 0.3, 0, D, H*hd)
			add(p+"mlp.gate_proj.weight", 0.3, 0, I, D)
			add(p+"mlp.up_proj.weight", 0.3, 0, I, D)
			add(p+"mlp.down_proj.weight", 0.3, 0, D, I)
			if s.bias {
				add(p+"self_attn.q_proj.bias", 0.1, 0, H*hd)
				add(p+"self_attn.k_proj.bias", 0.1, 0, KV*hd)
				add(p+"self_attn.v_proj.bias", 0.1, 0, KV*hd)
				add(p+"self_attn.o_proj.bias", 0.1, 0, D)
				add(p+"mlp.gate_proj.bias", 0.5, 0, I)
				add(p+"mlp.up_proj.bias", 0.5, 0, I)
				add(p+"mlp.down_proj.bias", 0.1, 0, D)
			}
		}
		add("model.norm.weight", 0.2, 1, D)
		if !s.tied {
			add("lm_head.weight", 0.3, 0, V, D)
		}
		cfg = map[string]any{"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_size": s.D,
			"intermediate_size": s.I, "num_hidden_layers": s.L, "num_attention_heads": s.H, "num_key_value_heads": s.KV,
			"vocab_size": s.V, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
			"tie_word_embeddings": s.tied, "hidden_act": "silu", "attention_bias": s.bias, "mlp_bias": s.bias}
		if s.headDimKey {
			cfg["head_dim"] = s.hd
		}
	}
	if s.modelType != "" {
		cfg["model_type"] = s.modelType
	}
	if s.noPrefix {
		for i := range ts {
			ts[i].Name = strings.TrimPrefix(ts[i].Name, "model.")
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), gen.Pack(ts, map[string]string{"format": "pt"}).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run executes a job into out and returns its manifest.
func run(t *testing.T, in, out string, opts shrink.Options) (*manifest.Manifest, *shrink.Job) {
	t.Helper()
	ctx := context.Background()
	job, err := shrink.Plan(ctx, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	o, err := checkpoint.Create(out, checkpoint.OutputOptions{Force: true, InputDir: job.InputDir()})
	if err != nil {
		t.Fatal(err)
	}
	man, err := job.Execute(ctx, o)
	if err != nil {
		o.Abort()
		t.Fatal(err)
	}
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return man, job
}

// refSelect is the reference selection: the units' L1 scores summed over
// the coupled weights, the r lowest removed, ties to the lower index.
func refSelect(score []float64, r int) map[int]bool {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		if score[idx[a]] != score[idx[b]] {
			return score[idx[a]] < score[idx[b]]
		}
		return idx[a] < idx[b]
	})
	out := map[int]bool{}
	for _, i := range idx[:r] {
		out[i] = true
	}
	return out
}

// refZero returns the reference's pruning of the original model: per block,
// the selected units' rows/columns/biases of the coupled tensors zeroed
// (zero false: the selection only).
func refPrune(t *testing.T, r *refModel, units []string, s float64) (mlp, groups, qheads []map[int]bool) {
	c := r.cfg
	gpt2 := c.ModelType == "gpt2"
	D, I, H, KV, hd := c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim
	G := H / KV
	for l := 0; l < c.NumLayers; l++ {
		if slices.Contains(units, "mlp") {
			score := make([]float64, I)
			if gpt2 {
				p := fmt.Sprintf("transformer.h.%d.mlp.", l)
				fc, pr := r.get(t, p+"c_fc.weight"), r.get(t, p+"c_proj.weight")
				for j := range I {
					for i := range D {
						score[j] += math.Abs(fc[i*I+j]) + math.Abs(pr[j*D+i])
					}
				}
			} else {
				p := fmt.Sprintf("%slayers.%d.mlp.", r.prefix(), l)
				g, u, d := r.get(t, p+"gate_proj.weight"), r.get(t, p+"up_proj.weight"), r.get(t, p+"down_proj.weight")
				for j := range I {
					for i := range D {
						score[j] += math.Abs(g[j*D+i]) + math.Abs(u[j*D+i]) + math.Abs(d[i*I+j])
					}
				}
			}
			mlp = append(mlp, refSelect(score, int(math.RoundToEven(s*float64(I)))))
		}
		if slices.Contains(units, "heads") {
			p := fmt.Sprintf("%slayers.%d.self_attn.", r.prefix(), l)
			q, k, v, o := r.get(t, p+"q_proj.weight"), r.get(t, p+"k_proj.weight"), r.get(t, p+"v_proj.weight"), r.get(t, p+"o_proj.weight")
			score := make([]float64, KV)
			for h := range H {
				for e := range hd {
					for i := range D {
						score[h/G] += math.Abs(q[(h*hd+e)*D+i]) + math.Abs(o[i*H*hd+h*hd+e])
					}
				}
			}
			for g := range KV {
				for e := range hd {
					for i := range D {
						score[g] += math.Abs(k[(g*hd+e)*D+i]) + math.Abs(v[(g*hd+e)*D+i])
					}
				}
			}
			sel := refSelect(score, int(math.RoundToEven(s*float64(KV))))
			groups = append(groups, sel)
			qs := map[int]bool{}
			for h := range H {
				if sel[h/G] {
					qs[h] = true
				}
			}
			qheads = append(qheads, qs)
		}
		if slices.Contains(units, "qheads") {
			// Query heads alone: q rows and o columns, the same number
			// from every group.
			p := fmt.Sprintf("%slayers.%d.self_attn.", r.prefix(), l)
			q, o := r.get(t, p+"q_proj.weight"), r.get(t, p+"o_proj.weight")
			score := make([]float64, H)
			for h := range H {
				for e := range hd {
					for i := range D {
						score[h] += math.Abs(q[(h*hd+e)*D+i]) + math.Abs(o[i*H*hd+h*hd+e])
					}
				}
			}
			sel := map[int]bool{}
			for g := range KV {
				for h := range refSelect(score[g*G:(g+1)*G], int(math.RoundToEven(s*float64(G)))) {
					sel[g*G+h] = true
				}
			}
			qheads = append(qheads, sel)
		}
	}
	return mlp, groups, qheads
}

// zeroAt zeroes, in a copy of r's weights, the selected units: what the
// zeroing job must write.
func zeroAt(t *testing.T, r *refModel, mlp, groups, qheads []map[int]bool) map[string][]float64 {
	c := r.cfg
	D, I, H, KV, hd := c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim
	G := H / KV
	w := map[string][]float64{}
	for k, v := range r.w {
		w[k] = slices.Clone(v)
	}
	// rows zeroes rows (span values each) of a tensor; cols columns of [rows, n].
	rows := func(name string, span int, sel func(i int) bool) {
		v, ok := w[name]
		if !ok {
			return
		}
		for i := 0; i < len(v)/span; i++ {
			if sel(i) {
				clear(v[i*span : (i+1)*span])
			}
		}
	}
	cols := func(name string, n int, sel func(j int) bool) {
		v := w[name]
		for i := range v {
			if sel(i % n) {
				v[i] = 0
			}
		}
	}
	for l := range mlp {
		sel := func(j int) bool { return mlp[l][j] }
		if c.ModelType == "gpt2" {
			p := fmt.Sprintf("transformer.h.%d.mlp.", l)
			cols(p+"c_fc.weight", I, sel)
			rows(p+"c_fc.bias", 1, sel)
			rows(p+"c_proj.weight", D, sel)
		} else {
			p := fmt.Sprintf("%slayers.%d.mlp.", r.prefix(), l)
			rows(p+"gate_proj.weight", D, sel)
			rows(p+"up_proj.weight", D, sel)
			rows(p+"gate_proj.bias", 1, sel)
			rows(p+"up_proj.bias", 1, sel)
			cols(p+"down_proj.weight", I, sel)
		}
	}
	for l := range qheads {
		p := fmt.Sprintf("%slayers.%d.self_attn.", r.prefix(), l)
		qsel := func(i int) bool { return qheads[l][i/hd] }
		rows(p+"q_proj.weight", D, qsel)
		rows(p+"q_proj.bias", 1, qsel)
		cols(p+"o_proj.weight", H*hd, qsel)
	}
	for l := range groups {
		p := fmt.Sprintf("%slayers.%d.self_attn.", r.prefix(), l)
		kvsel := func(i int) bool { return groups[l][i/hd] }
		for _, n := range []string{"k_proj.weight", "v_proj.weight"} {
			rows(p+n, D, kvsel)
		}
		rows(p+"k_proj.bias", 1, kvsel)
		rows(p+"v_proj.bias", 1, kvsel)
	}
	_, _ = KV, G
	return w
}

func maxDiff(a, b [][]float64) (d, scale float64) {
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
			scale = math.Max(scale, math.Abs(a[i][j]))
		}
	}
	return d, scale
}

func tokens(n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7 + 3) % vocab
	}
	return ids
}

// check runs zero and shrink jobs on the model in dir and checks: the
// zeroed weights are the reference's, the shrunk checkpoint's shapes,
// kept values and config, the reference forward pass of the shrunk model
// against the zeroed one, and lmsparse's float32 forward pass of both.
func check(t *testing.T, dir string, units string, s float64, ids []int) {
	t.Helper()
	tmp := t.TempDir()
	zeroDir, shrunkDir := filepath.Join(tmp, "zero"), filepath.Join(tmp, "shrunk")
	orig := readRef(t, dir)
	us := strings.Split(units, ",")
	mlpSel, groupSel, qSel := refPrune(t, orig, us, s)
	want := zeroAt(t, orig, mlpSel, groupSel, qSel)

	zman, _ := run(t, dir, zeroDir, shrink.Options{Units: units, Sparsity: s})
	zero := readRef(t, zeroDir)
	for name, v := range want {
		if !slices.Equal(zero.w[name], v) {
			t.Fatalf("%s: zeroed tensor differs from the reference zeroing", name)
		}
		if !slices.Equal(zero.shape[name], orig.shape[name]) {
			t.Fatalf("%s: zeroing changed the shape %v -> %v", name, orig.shape[name], zero.shape[name])
		}
	}
	if zman.Shrink == nil || zman.Shrink.Removed || zman.Shrink.Config != nil {
		t.Errorf("zero manifest shrink = %+v", zman.Shrink)
	}

	man, job := run(t, dir, shrunkDir, shrink.Options{Units: units, Sparsity: s, Remove: true})
	shr := readRef(t, shrunkDir)
	sz := job.Sizes()
	c, sc := orig.cfg, shr.cfg
	if sc.IntermediateSize != sz.InterAfter || sc.NumHeads != sz.HeadsAfter || sc.NumKVHeads != sz.KVAfter || sc.HeadDim != c.HeadDim ||
		sc.HiddenSize != c.HiddenSize || sc.NumLayers != c.NumLayers || sc.VocabSize != c.VocabSize {
		t.Fatalf("shrunk config %+v, sizes %+v, original %+v", *sc, sz, *c)
	}
	if len(mlpSel) > 0 && sz.InterAfter != c.IntermediateSize-len(mlpSel[0]) {
		t.Fatalf("MLP channels after = %d, reference removes %d of %d", sz.InterAfter, len(mlpSel[0]), c.IntermediateSize)
	}
	if len(groupSel) > 0 && sz.KVAfter != c.NumKVHeads-len(groupSel[0]) {
		t.Fatalf("KV heads after = %d, reference removes %d of %d", sz.KVAfter, len(groupSel[0]), c.NumKVHeads)
	}
	if len(qSel) > 0 && sz.HeadsAfter != c.NumHeads-len(qSel[0]) {
		t.Fatalf("query heads after = %d, reference removes %d of %d", sz.HeadsAfter, len(qSel[0]), c.NumHeads)
	}
	// The shrunk tensors are the zeroed ones with the zero rows/columns
	// dropped: compare the zeroed weights with the removed entries
	// filtered out, value for value.
	for name, zv := range zero.w {
		ss := shr.shape[name]
		if ss == nil {
			t.Fatalf("%s missing from the shrunk checkpoint", name)
		}
		n := int64(1)
		for _, d := range ss {
			n *= d
		}
		if int64(len(shr.w[name])) != n {
			t.Fatalf("%s: %d values for shape %v", name, len(shr.w[name]), ss)
		}
		if slices.Equal(ss, orig.shape[name]) {
			if !slices.Equal(shr.w[name], orig.w[name]) {
				t.Fatalf("%s: same shape but other values", name)
			}
			continue
		}
		keep := keepIndices(t, orig, name, mlpSel, groupSel, qSel)
		if len(keep) != len(shr.w[name]) {
			t.Fatalf("%s: %d values kept, reference keeps %d", name, len(shr.w[name]), len(keep))
		}
		for i, k := range keep {
			if shr.w[name][i] != orig.w[name][k] || zv[k] != orig.w[name][k] {
				t.Fatalf("%s: value %d is %g, want original %g at %d", name, i, shr.w[name][i], orig.w[name][k], k)
			}
		}
	}
	var removed int64
	for _, row := range man.Tensors {
		if row.ShapeAfter != nil {
			removed++
			if !slices.Equal(row.ShapeAfter, shr.shape[row.Name]) {
				t.Errorf("%s: manifest shape_after %v, file %v", row.Name, row.ShapeAfter, shr.shape[row.Name])
			}
		}
	}
	if s > 0 && removed == 0 {
		t.Error("manifest has no shape_after")
	}

	// Removing zeroed units does not change the logits.
	lz := (&refModel{cfg: c, w: want}).forward(t, ids)
	ls := shr.forward(t, ids)
	if d, scale := maxDiff(lz, ls); d > 1e-12*math.Max(1, scale) {
		t.Errorf("reference logits: shrunk vs zeroed differ by %g (scale %g)", d, scale)
	}
	// lmsparse's own forward pass runs the smaller model and agrees.
	fz, fs := forward32(t, zeroDir, ids), forward32(t, shrunkDir, ids)
	if d, scale := maxDiff(fz, fs); d > 1e-4*math.Max(1, scale) {
		t.Errorf("model.Forward: shrunk vs zeroed differ by %g (scale %g)", d, scale)
	}
	if d, scale := maxDiff(ls, fs); d > 1e-4*math.Max(1, scale) {
		t.Errorf("model.Forward vs float64 reference on the shrunk model: %g (scale %g)", d, scale)
	}
}

// keepIndices lists, in order, the flat indices of tensor name that the
// reference selection keeps.
func keepIndices(t *testing.T, r *refModel, name string, mlp, groups, qheads []map[int]bool) []int {
	c := r.cfg
	hd := c.HeadDim
	var l int
	if _, err := fmt.Sscanf(name[strings.Index(name, "layers.")+len("layers."):], "%d", &l); err != nil {
		if _, err := fmt.Sscanf(name[strings.Index(name, ".h.")+len(".h."):], "%d", &l); err != nil {
			t.Fatalf("%s: no layer", name)
		}
	}
	shape := r.shape[name]
	R, C := int(shape[0]), 1
	if len(shape) == 2 {
		C = int(shape[1])
	}
	var dropRow, dropCol func(int) bool
	none := func(int) bool { return false }
	dropRow, dropCol = none, none
	mlpSel := func(i int) bool { return mlp[l][i] }
	q := func(i int) bool { return qheads[l][i/hd] }
	kv := func(i int) bool { return groups[l][i/hd] }
	switch {
	case strings.HasSuffix(name, "gate_proj.weight"), strings.HasSuffix(name, "up_proj.weight"), strings.HasSuffix(name, "gate_proj.bias"),
		strings.HasSuffix(name, "up_proj.bias"), strings.HasSuffix(name, "c_fc.bias"), strings.HasSuffix(name, "mlp.c_proj.weight"):
		dropRow = mlpSel
	case strings.HasSuffix(name, "down_proj.weight"), strings.HasSuffix(name, "c_fc.weight"):
		dropCol = mlpSel
	case strings.Contains(name, "q_proj."):
		dropRow = q
	case strings.Contains(name, "k_proj."), strings.Contains(name, "v_proj."):
		dropRow = kv
	case strings.HasSuffix(name, "o_proj.weight"):
		dropCol = q
	default:
		t.Fatalf("%s: unexpected shape change", name)
	}
	var keep []int
	for i := range R {
		for j := range C {
			if !dropRow(i) && !dropCol(j) {
				keep = append(keep, i*C+j)
			}
		}
	}
	return keep
}

// forward32 runs lmsparse's float32 forward pass on the checkpoint in dir.
func forward32(t *testing.T, dir string, ids []int) [][]float64 {
	t.Helper()
	lm, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	m, err := model.Load(lm, model.Options{Threads: 2, Stream: "off"})
	if err != nil {
		t.Fatal(err)
	}
	V := m.VocabSize()
	lg := make([]float32, len(ids)*V)
	if err := m.Forward(ids, lg); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(ids))
	for i := range out {
		out[i] = make([]float64, V)
		for j := range V {
			out[i][j] = float64(lg[i*V+j])
		}
	}
	return out
}

func TestShrinkEqualsZeroedLlama(t *testing.T) {
	cases := []struct {
		name  string
		s     spec
		units string
		sp    float64
	}{
		{"gqa-mlp", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 2, hd: 4, I: 24, V: 32, dt: tensor.F32}, "mlp", 0.25},
		{"gqa-heads", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 2, hd: 4, I: 24, V: 32, dt: tensor.F32}, "heads", 0.5},
		{"mha-both-bias-untied", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 4, hd: 4, I: 20, V: 32, bias: true, dt: tensor.F32}, "mlp,heads", 0.5},
		{"gqa8-both-headdim-tied-bf16", spec{arch: "llama", D: 16, L: 3, H: 8, KV: 4, hd: 6, I: 30, V: 40, tied: true, headDimKey: true, dt: tensor.BF16}, "heads,mlp", 0.25},
		{"qwen2-no-prefix", spec{arch: "llama", D: 16, L: 2, H: 6, KV: 3, hd: 4, I: 24, V: 32, bias: true, tied: true, modelType: "qwen2", noPrefix: true, headDimKey: true, dt: tensor.BF16}, "mlp,heads", 0.34},
		{"mistral-f16", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 1, hd: 4, I: 24, V: 32, modelType: "mistral", dt: tensor.F16}, "mlp", 0.5},
		{"gqa8-qheads-bias", spec{arch: "llama", D: 16, L: 2, H: 8, KV: 2, hd: 4, I: 24, V: 32, bias: true, headDimKey: true, dt: tensor.F32}, "qheads", 0.5},
		{"mqa-qheads-mlp", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 1, hd: 4, I: 24, V: 32, modelType: "mistral", dt: tensor.BF16}, "mlp,qheads", 0.25},
		{"mha-qheads", spec{arch: "llama", D: 16, L: 1, H: 4, KV: 4, hd: 4, I: 24, V: 32, dt: tensor.F32}, "qheads", 0.5},
		{"nothing", spec{arch: "llama", D: 16, L: 1, H: 4, KV: 2, hd: 4, I: 24, V: 32, dt: tensor.F16}, "mlp,heads", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "in")
			writeModel(t, dir, c.s)
			check(t, dir, c.units, c.sp, tokens(12, c.s.V))
		})
	}
}

func TestShrinkEqualsZeroedGPT2(t *testing.T) {
	for _, sp := range []float64{0.25, 0.5, 0.9} {
		dir := filepath.Join(t.TempDir(), "in")
		writeModel(t, dir, spec{arch: "gpt2", D: 16, L: 2, H: 2, I: 64, V: 40, dt: tensor.F32})
		check(t, dir, "mlp", sp, tokens(10, 40))
	}
	// The generated gpt2 of testdata/gen (zero biases, BF16).
	dir := filepath.Join(t.TempDir(), "gen")
	if err := gen.WriteCheckpoint(dir, gen.GPT2(tensor.BF16, 1)); err != nil {
		t.Fatal(err)
	}
	check(t, dir, "mlp", 0.5, tokens(10, 40))
}

func TestShrinkGenLlama(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	if err := gen.WriteCheckpoint(dir, gen.Llama(tensor.F32, 2)); err != nil { // sharded input
		t.Fatal(err)
	}
	check(t, dir, "mlp,heads", 0.5, tokens(12, 32))
}

func TestShrinkStories260k(t *testing.T) {
	dir := sharedtest.Path(t, "models/stories260k")
	ids := []int{1, 403, 407, 261, 378, 306, 425, 264, 267, 453, 288, 269, 300, 371, 323, 261, 349, 1, 24}
	for _, c := range []struct {
		units string
		s     float64
	}{{"mlp", 0.25}, {"mlp,heads", 0.5}, {"qheads", 0.5}} {
		t.Run(c.units, func(t *testing.T) { check(t, dir, c.units, c.s, ids) })
	}
}

func TestConfigAndManifest(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "in")
	writeModel(t, dir, spec{arch: "llama", D: 16, L: 2, H: 8, KV: 4, hd: 2, I: 24, V: 32, dt: tensor.F32})
	out := filepath.Join(tmp, "out")
	man, _ := run(t, dir, out, shrink.Options{Units: "mlp,heads", Sparsity: 0.25, Remove: true})
	b, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	// 24·0.25 = 6 channels and round-half-even(4·0.25) = 1 group of 2
	// query heads go; head_dim is written because hidden/heads is no longer it.
	for k, v := range map[string]float64{"intermediate_size": 18, "num_attention_heads": 6, "num_key_value_heads": 3, "head_dim": 2, "hidden_size": 16, "rope_theta": 10000} {
		if cfg[k] != v {
			t.Errorf("config %s = %v, want %v", k, cfg[k], v)
		}
	}
	if cfg["model_type"] != "llama" || cfg["hidden_act"] != "silu" {
		t.Errorf("other keys changed: %v", cfg)
	}
	if !json.Valid(b) || b[len(b)-1] != '\n' {
		t.Error("config.json is not valid JSON ending in a newline")
	}
	s := man.Shrink
	if s == nil || !s.Removed || s.Units != "heads,mlp" || len(s.MLPRemoved) != 2 || len(s.MLPRemoved[0]) != 6 || len(s.GroupsRemoved[1]) != 1 ||
		s.Config["intermediate_size"] != [2]int{24, 18} {
		t.Errorf("manifest shrink = %+v", s)
	}
	if man.Totals.BytesAfter >= man.Totals.BytesBefore {
		t.Errorf("totals %+v: not smaller", man.Totals)
	}
	// The written lmsparse.json is the manifest.
	js, _ := man.JSON()
	if got, _ := os.ReadFile(filepath.Join(out, manifest.File)); string(got) != string(js) {
		t.Error("lmsparse.json differs from the returned manifest")
	}
	// Deterministic: a second run writes the same tensor bytes.
	out2 := filepath.Join(tmp, "out2")
	run(t, dir, out2, shrink.Options{Units: "mlp,heads", Sparsity: 0.25, Remove: true})
	a1, _ := os.ReadFile(filepath.Join(out, "model.safetensors"))
	a2, _ := os.ReadFile(filepath.Join(out2, "model.safetensors"))
	if string(a1) != string(a2) {
		t.Error("two runs wrote different model.safetensors")
	}
}

func TestEditConfig(t *testing.T) {
	in := []byte(`{"b": 1.0, "a": "<x>", "n_inner": null,
  "quantization_config": {"format": "sparse-bitmask"}}`)
	out, err := shrink.EditConfig(in, map[string][2]int{"n_inner": {64, 48}})
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": \"<x>\",\n  \"b\": 1.0,\n  \"n_inner\": 48\n}\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	same, err := shrink.EditConfig([]byte(`{"x": 1}`), nil)
	if err != nil || string(same) != `{"x": 1}` {
		t.Errorf("no change: %q, %v", same, err)
	}
}

func TestRefusals(t *testing.T) {
	tmp := t.TempDir()
	llama, gpt2 := filepath.Join(tmp, "llama"), filepath.Join(tmp, "gpt2")
	writeModel(t, llama, spec{arch: "llama", D: 16, L: 1, H: 4, KV: 2, hd: 4, I: 4, V: 32, dt: tensor.F32})
	writeModel(t, gpt2, spec{arch: "gpt2", D: 16, L: 1, H: 2, I: 8, V: 40, dt: tensor.F32})
	cases := []struct {
		path, units string
		s           float64
		want        string
		is          error
	}{
		{gpt2, "heads", 0.5, "gpt2 takes its head size from n_embd/n_head", shrink.ErrInvalid},
		{llama, "rows", 0.5, "can only be zeroed", shrink.ErrInvalid},
		{llama, "mlp,mlp", 0.5, "given twice", shrink.ErrInvalid},
		{llama, "heads,qheads", 0.5, "not both", shrink.ErrInvalid},
		{gpt2, "qheads", 0.5, "gpt2 takes its head size", shrink.ErrInvalid},
		{llama, "qheads", 0.75, "would remove all 2 query heads of every key/value group", shrink.ErrInvalid},
		{llama, "mlp", 0.9, "would remove all 4 MLP channels", shrink.ErrInvalid},
		{llama, "heads", 0.75, "would remove all 2 key/value groups", shrink.ErrInvalid},
		{llama, "mlp", 1, "want a fraction", shrink.ErrInvalid},
		{llama, "mlp", -0.1, "want a fraction", shrink.ErrInvalid},
		{llama + "/x.onnx", "mlp", 0.5, "not an ONNX model", shrink.ErrInvalid},
	}
	os.WriteFile(filepath.Join(llama, "x.onnx"), []byte("not read"), 0o644)
	for _, c := range cases {
		_, err := shrink.Plan(context.Background(), c.path, shrink.Options{Units: c.units, Sparsity: c.s})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("%s %s %g: err = %v, want %q", filepath.Base(c.path), c.units, c.s, err, c.want)
		}
	}
	// A tensor whose shape disagrees with config.json is named.
	bad := filepath.Join(tmp, "bad")
	writeModel(t, bad, spec{arch: "llama", D: 16, L: 1, H: 4, KV: 2, hd: 4, I: 8, V: 32, dt: tensor.F32})
	b, _ := os.ReadFile(filepath.Join(bad, "config.json"))
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(strings.Replace(string(b), `"intermediate_size": 8`, `"intermediate_size": 10`, 1)), 0o644)
	_, err := shrink.Plan(context.Background(), bad, shrink.Options{Units: "mlp", Sparsity: 0.5})
	if err == nil || !strings.Contains(err.Error(), `"model.layers.0.mlp.gate_proj.weight" has shape [8 16], want [10 16]`) || !errors.Is(err, checkpoint.ErrFormat) {
		t.Errorf("bad shape: %v", err)
	}
	// No config.json.
	nocfg := filepath.Join(tmp, "nocfg")
	writeModel(t, nocfg, spec{arch: "llama", D: 16, L: 1, H: 4, KV: 2, hd: 4, I: 8, V: 32, dt: tensor.F32})
	os.Remove(filepath.Join(nocfg, "config.json"))
	if _, err := shrink.Plan(context.Background(), nocfg, shrink.Options{Units: "mlp", Sparsity: 0.5}); err == nil || !errors.Is(err, checkpoint.ErrFormat) {
		t.Errorf("no config: %v", err)
	}
}

// TestActivationScores: with calibration windows, the units removed in
// every block are those of lowest Σ_c ‖x_c‖₂·‖W[:,c]‖₂, computed here from
// the float64 reference forward pass over the same windows.
func TestActivationScores(t *testing.T) {
	cases := []struct {
		name, units string
		s           spec
		sp          float64
	}{
		{"llama-gqa", "mlp,heads", spec{arch: "llama", D: 16, L: 2, H: 4, KV: 2, hd: 4, I: 24, V: 32, bias: true, dt: tensor.F32}, 0.5},
		{"llama-qheads", "qheads,mlp", spec{arch: "llama", D: 16, L: 2, H: 8, KV: 2, hd: 4, I: 20, V: 32, headDimKey: true, dt: tensor.F32}, 0.25},
		{"gpt2", "mlp", spec{arch: "gpt2", D: 16, L: 2, H: 2, I: 64, V: 40, dt: tensor.F32}, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "in")
			writeModel(t, dir, c.s)
			wins := [][]int{tokens(10, c.s.V), tokens(7, c.s.V)[2:], {1, 2, 3, 4, 5, 6, 7, 8}}
			man, _ := run(t, dir, filepath.Join(tmp, "out"), shrink.Options{Units: c.units, Sparsity: c.sp, Remove: true,
				Calib: &sparsify.Calibration{Windows: wins}, Threads: 2})
			if !strings.Contains(man.Method, "by activations") || !strings.Contains(man.Shrink.Score, "wanda") {
				t.Errorf("method %q, score %q", man.Method, man.Shrink.Score)
			}
			r := readRef(t, dir)
			cfg := r.cfg
			ss := make([][2][]float64, cfg.NumLayers)
			r.capture = func(l, g int, row []float64) {
				i := g / 2
				if ss[l][i] == nil {
					ss[l][i] = make([]float64, len(row))
				}
				for c, x := range row {
					ss[l][i][c] += x * x
				}
			}
			for _, w := range wins {
				r.forward(t, w)
			}
			// colScore is Σ over span columns of ‖x_c‖·‖W[:,c]‖ for the
			// projection name read as [out, in] (transposed: stored [in, out]).
			colScore := func(name string, transposed bool, x []float64, span int) []float64 {
				w, shape := r.get(t, name), r.shape[name]
				R, C := int(shape[0]), int(shape[1])
				out := make([]float64, len(x)/span)
				for c := range x {
					n := 0.0
					if transposed {
						for k := range C {
							n += w[c*C+k] * w[c*C+k]
						}
					} else {
						for k := range R {
							n += w[k*C+c] * w[k*C+c]
						}
					}
					out[c/span] += math.Sqrt(n) * math.Sqrt(x[c])
				}
				return out
			}
			// lowestSet checks that removed holds the n lowest of score.
			lowestSet := func(what string, score []float64, removed []int) {
				rm := map[int]bool{}
				for _, i := range removed {
					rm[i] = true
				}
				maxR, minK := math.Inf(-1), math.Inf(1)
				for i, v := range score {
					if rm[i] {
						maxR = math.Max(maxR, v)
					} else {
						minK = math.Min(minK, v)
					}
				}
				if len(removed) > 0 && maxR > minK*(1+1e-5) {
					t.Errorf("%s: removed %v scores up to %g, a kept one scores %g (%v)", what, removed, maxR, minK, score)
				}
			}
			G := cfg.NumHeads / cfg.NumKVHeads
			for l := range cfg.NumLayers {
				if strings.Contains(c.units, "mlp") {
					name := fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", l)
					if cfg.ModelType == "gpt2" {
						name = fmt.Sprintf("transformer.h.%d.mlp.c_proj.weight", l)
					}
					lowestSet(fmt.Sprintf("block %d mlp", l), colScore(name, cfg.ModelType == "gpt2", ss[l][1], 1), man.Shrink.MLPRemoved[l])
				}
				if !strings.Contains(c.units, "heads") {
					continue
				}
				heads := colScore(fmt.Sprintf("model.layers.%d.self_attn.o_proj.weight", l), false, ss[l][0], cfg.HeadDim)
				if strings.Contains(c.units, "qheads") {
					for g := range cfg.NumKVHeads {
						var in []int
						for _, h := range man.Shrink.QHeadsRemoved[l] {
							if h/G == g {
								in = append(in, h-g*G)
							}
						}
						lowestSet(fmt.Sprintf("block %d group %d", l, g), heads[g*G:(g+1)*G], in)
					}
					continue
				}
				groups := make([]float64, cfg.NumKVHeads)
				for h, v := range heads {
					groups[h/G] += v
				}
				lowestSet(fmt.Sprintf("block %d groups", l), groups, man.Shrink.GroupsRemoved[l])
			}
		})
	}
}
