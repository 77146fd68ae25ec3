package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

const fuzzConfig = `{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32, "max_position_embeddings": 64,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false, "hidden_act": "silu", "torch_dtype": "float32"}`

// FuzzConfig feeds mutated config.json files to ParseConfig: it returns a
// config whose sizes are within the limits, or an error wrapping ErrFormat
// or ErrUnsupported, and never panics.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(fuzzConfig))
	f.Add([]byte(`{"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128, "vocab_size": 50257}`))
	f.Add([]byte(`{"model_type": "mistral", "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 32, "max_position_embeddings": 64, "sliding_window": 32, "rope_scaling": {"type": "linear", "factor": 2}}`))
	f.Add([]byte(fuzzConfig + `{}`))
	f.Add([]byte("{\"model_type\": \"llama\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("ParseConfig: %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		if c.HiddenSize <= 0 || c.HiddenSize > maxDim || c.NumLayers <= 0 || c.NumLayers > maxLayers || c.VocabSize <= 0 ||
			c.VocabSize > maxVocab || c.MaxPositions <= 0 || c.MaxPositions > maxPositions || c.HeadDim <= 0 || c.NumKVHeads <= 0 ||
			c.NumHeads%c.NumKVHeads != 0 || c.SlidingWindow < 0 {
			t.Fatalf("ParseConfig accepted out-of-range sizes: %+v", c)
		}
	})
}

// FuzzIndex feeds mutated model.safetensors.index.json files to readIndex:
// it returns shard names that stay inside the directory, or an error
// wrapping ErrFormat (or safeio.ErrInput), and never panics.
func FuzzIndex(f *testing.F) {
	f.Add([]byte(`{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {"a": "../outside.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {"a": "sub/./x.safetensors", "b": "/etc/passwd"}}`))
	f.Add([]byte(`{"weight_map": {}} trailing`))
	dir := f.TempDir()
	p := filepath.Join(dir, IndexFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files, wm, err := readIndex(p)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, safeio.ErrInput) {
				t.Fatalf("readIndex: %v wraps neither ErrFormat nor safeio.ErrInput", err)
			}
			return
		}
		if len(files) == 0 || len(wm) == 0 {
			t.Fatalf("readIndex accepted an empty weight map")
		}
		for _, f := range files {
			if !filepath.IsLocal(f) || !safeio.Within(dir, filepath.Join(dir, f)) {
				t.Fatalf("readIndex accepted shard %q outside the directory", f)
			}
		}
	})
}
