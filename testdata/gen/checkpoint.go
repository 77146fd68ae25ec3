package gen

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/lmsparse/lmsparse/tensor"
)

// Spec describes a tiny checkpoint. Zero fields take the defaults of
// [Llama] and [GPT2].
type Spec struct {
	Arch    string // "llama" or "gpt2"
	DType   tensor.DType
	Shards  int // 0 or 1: one model.safetensors; more: shards with an index
	Seed    uint64
	Tied    bool // llama: tie_word_embeddings (gpt2 is always tied, as in HF)
	Layers  int
	Hidden  int
	Heads   int
	KVHeads int
	Inter   int
	Vocab   int
	Ctx     int
}

// Llama returns the spec of a tiny llama in dtype dt.
func Llama(dt tensor.DType, shards int) Spec {
	return Spec{Arch: "llama", DType: dt, Shards: shards, Seed: 1, Layers: 2, Hidden: 16,
		Heads: 4, KVHeads: 2, Inter: 24, Vocab: 32, Ctx: 64}
}

// GPT2 returns the spec of a tiny gpt2 in dtype dt.
func GPT2(dt tensor.DType, shards int) Spec {
	return Spec{Arch: "gpt2", DType: dt, Shards: shards, Seed: 2, Layers: 2, Hidden: 16,
		Heads: 2, Inter: 64, Vocab: 40, Ctx: 32, Tied: true}
}

// GPT2Small returns the spec of a random-weight model of GPT-2 small's
// shape (124M parameters: n_embd 768, 12 layers, 12 heads, vocab 50257,
// 1024 positions), for benchmarks.
func GPT2Small(dt tensor.DType) Spec {
	return Spec{Arch: "gpt2", DType: dt, Shards: 1, Seed: 3, Layers: 12, Hidden: 768,
		Heads: 12, Inter: 3072, Vocab: 50257, Ctx: 1024, Tied: true}
}

// Tensor is a generated tensor.
type Tensor struct {
	Name  string
	DType tensor.DType
	Shape []int64
	Data  []byte
}

// Params returns the number of parameters of the tensors.
func Params(ts []Tensor) int64 {
	var n int64
	for _, t := range ts {
		e := int64(1)
		for _, d := range t.Shape {
			e *= d
		}
		n += e
	}
	return n
}

// Weights returns the checkpoint's tensors, sorted by name. Weights are
// N(0, 0.02²) from a PCG seeded with s.Seed; norm weights are 1 and biases
// 0, as Hugging Face initializes them.
func Weights(s Spec) []Tensor {
	rng := rand.New(rand.NewPCG(s.Seed, 0x6c6d7370))
	var out []Tensor
	add := func(name string, kind byte, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			switch kind {
			case 'w':
				v[i] = float32(rng.NormFloat64() * 0.02)
			case '1':
				v[i] = 1
			}
		}
		out = append(out, Tensor{name, s.DType, shape, encode(v, s.DType)})
	}
	h, L, V := int64(s.Hidden), s.Layers, int64(s.Vocab)
	switch s.Arch {
	case "llama":
		hd := h / int64(s.Heads)
		kv := hd * int64(s.KVHeads)
		add("model.embed_tokens.weight", 'w', V, h)
		for l := 0; l < L; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			add(p+"input_layernorm.weight", '1', h)
			add(p+"post_attention_layernorm.weight", '1', h)
			add(p+"self_attn.q_proj.weight", 'w', h, h)
			add(p+"self_attn.k_proj.weight", 'w', kv, h)
			add(p+"self_attn.v_proj.weight", 'w', kv, h)
			add(p+"self_attn.o_proj.weight", 'w', h, h)
			add(p+"mlp.gate_proj.weight", 'w', int64(s.Inter), h)
			add(p+"mlp.up_proj.weight", 'w', int64(s.Inter), h)
			add(p+"mlp.down_proj.weight", 'w', h, int64(s.Inter))
		}
		add("model.norm.weight", '1', h)
		if !s.Tied {
			add("lm_head.weight", 'w', V, h)
		}
	case "gpt2":
		add("transformer.wte.weight", 'w', V, h)
		add("transformer.wpe.weight", 'w', int64(s.Ctx), h)
		for l := 0; l < L; l++ {
			p := fmt.Sprintf("transformer.h.%d.", l)
			add(p+"ln_1.weight", '1', h)
			add(p+"ln_1.bias", '0', h)
			add(p+"attn.c_attn.weight", 'w', h, 3*h)
			add(p+"attn.c_attn.bias", '0', 3*h)
			add(p+"attn.c_proj.weight", 'w', h, h)
			add(p+"attn.c_proj.bias", '0', h)
			add(p+"ln_2.weight", '1', h)
			add(p+"ln_2.bias", '0', h)
			add(p+"mlp.c_fc.weight", 'w', h, int64(s.Inter))
			add(p+"mlp.c_fc.bias", '0', int64(s.Inter))
			add(p+"mlp.c_proj.weight", 'w', int64(s.Inter), h)
			add(p+"mlp.c_proj.bias", '0', h)
		}
		add("transformer.ln_f.weight", '1', h)
		add("transformer.ln_f.bias", '0', h)
	default:
		panic("gen: unknown arch " + s.Arch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func encode(v []float32, dt tensor.DType) []byte {
	b := make([]byte, len(v)*dt.Size())
	if err := tensor.EncodeF32(b, v, dt); err != nil {
		panic(err)
	}
	return b
}

// Config returns the config.json content for s.
func Config(s Spec) map[string]any {
	torch := map[tensor.DType]string{tensor.F32: "float32", tensor.F16: "float16", tensor.BF16: "bfloat16"}[s.DType]
	switch s.Arch {
	case "llama":
		return map[string]any{
			"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
			"hidden_size": s.Hidden, "intermediate_size": s.Inter, "num_hidden_layers": s.Layers,
			"num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads, "vocab_size": s.Vocab,
			"max_position_embeddings": s.Ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
			"tie_word_embeddings": s.Tied, "hidden_act": "silu", "torch_dtype": torch,
			"bos_token_id": 1, "eos_token_id": 2,
		}
	default:
		return map[string]any{
			"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2",
			"n_embd": s.Hidden, "n_layer": s.Layers, "n_head": s.Heads, "n_inner": s.Inter,
			"n_positions": s.Ctx, "vocab_size": s.Vocab, "layer_norm_epsilon": 1e-5,
			"activation_function": "gelu_new", "tie_word_embeddings": true, "torch_dtype": torch,
		}
	}
}

// WriteCheckpoint writes a Hugging Face-layout checkpoint for s into dir
// (created if needed): config.json, generation_config.json,
// tokenizer_config.json, and model.safetensors or, with s.Shards > 1,
// model-0000i-of-0000n.safetensors plus model.safetensors.index.json.
// Tensors are split into shards in name order, as evenly as counts allow.
func WriteCheckpoint(dir string, s Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), Config(s)); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), map[string]any{"bos_token_id": 1, "eos_token_id": 2}); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer_config.json"), map[string]any{"add_bos_token": s.Arch == "llama"}); err != nil {
		return err
	}
	ws := Weights(s)
	meta := map[string]string{"format": "pt"}
	if s.Shards <= 1 {
		return os.WriteFile(filepath.Join(dir, "model.safetensors"), Pack(ws, meta).Encode(), 0o644)
	}
	weightMap := map[string]string{}
	var total int64
	per := (len(ws) + s.Shards - 1) / s.Shards
	for i := 0; i < s.Shards; i++ {
		lo, hi := min(i*per, len(ws)), min((i+1)*per, len(ws))
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, s.Shards)
		for _, t := range ws[lo:hi] {
			weightMap[t.Name] = name
			total += int64(len(t.Data))
		}
		if err := os.WriteFile(filepath.Join(dir, name), Pack(ws[lo:hi], meta).Encode(), 0o644); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "model.safetensors.index.json"), map[string]any{
		"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
}

// Pack lays tensors out back to back in the order given.
func Pack(ts []Tensor, meta map[string]string) RawFile {
	f := RawFile{Metadata: meta}
	for _, t := range ts {
		begin := int64(len(f.Data))
		f.Data = append(f.Data, t.Data...)
		f.Tensors = append(f.Tensors, RawTensor{t.Name, string(t.DType), t.Shape, begin, int64(len(f.Data))})
	}
	return f
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteSynthetic streams a safetensors file of about total bytes to path:
// F32 tensors "layers.i.weight" of tensorBytes each (the last one smaller),
// filled with a cheap deterministic pattern. Memory use is one tensor.
func WriteSynthetic(path string, total, tensorBytes int64) error {
	if tensorBytes%4 != 0 || tensorBytes <= 0 || total < tensorBytes {
		return fmt.Errorf("gen: bad synthetic sizes %d / %d", total, tensorBytes)
	}
	var f RawFile
	var sizes []int64
	for off := int64(0); off < total; off += tensorBytes {
		n := min(tensorBytes, total-off) / 4 * 4
		if n == 0 {
			break
		}
		sizes = append(sizes, n)
		f.Tensors = append(f.Tensors, RawTensor{fmt.Sprintf("layers.%d.weight", len(sizes)-1), "F32",
			[]int64{n / 4}, off, off + n})
	}
	head := f.Encode() // no data yet: length + header
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := out.Write(head); err != nil {
		out.Close()
		return err
	}
	buf := make([]byte, tensorBytes)
	x := uint32(12345)
	for _, n := range sizes {
		for i := int64(0); i < n; i += 4 {
			x = x*1664525 + 1013904223
			binary.LittleEndian.PutUint32(buf[i:], math.Float32bits(float32(int32(x))/(1<<31)))
		}
		if _, err := out.Write(buf[:n]); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// WriteReversedLlama writes the generated F32 llama checkpoint (one layer)
// to dir with its tensors laid out in reverse name order in the file, the
// first four values of each tensor named in zeroed set to zero.
func WriteReversedLlama(dir string, zeroed ...string) error {
	if err := WriteCheckpoint(dir, Llama(tensor.F32, 1)); err != nil {
		return err
	}
	ws := Weights(Llama(tensor.F32, 1))
	slices.Reverse(ws)
	for i := range ws {
		if slices.Contains(zeroed, ws[i].Name) {
			clear(ws[i].Data[:16])
		}
	}
	return os.WriteFile(filepath.Join(dir, "model.safetensors"), Pack(ws, map[string]string{"format": "pt"}).Encode(), 0o644)
}
