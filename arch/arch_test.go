package arch

import "testing"

func TestDefaultTargets(t *testing.T) {
	llama, gpt2 := Lookup("llama"), Lookup("gpt2")
	for _, c := range []struct {
		a     Arch
		name  string
		shape []int64
		want  bool
	}{
		{llama, "model.layers.0.mlp.down_proj.weight", []int64{64, 172}, true},
		{llama, "model.layers.10.self_attn.q_proj.weight", []int64{64, 64}, true},
		{llama, "model.layers.0.input_layernorm.weight", []int64{64}, false},
		{llama, "model.embed_tokens.weight", []int64{512, 64}, false},
		{llama, "lm_head.weight", []int64{512, 64}, false},
		{llama, "model.layers.0.self_attn.q_proj.bias", []int64{64, 1}, false},
		{gpt2, "transformer.h.1.attn.c_attn.weight", []int64{32, 96}, true},
		{gpt2, "h.1.mlp.c_proj.weight", []int64{128, 32}, true},
		{gpt2, "transformer.wte.weight", []int64{50257, 32}, false},
		{Lookup(""), "blocks.3.ff.weight", []int64{8, 8}, true},
		{Lookup(""), "xlayers.3.ff.weight", []int64{8, 8}, false},
	} {
		if got := c.a.DefaultTarget(c.name, c.shape); got != c.want {
			t.Errorf("%s %q %v: DefaultTarget = %v, want %v", c.a.Family, c.name, c.shape, got, c.want)
		}
	}
}

func TestTransposed(t *testing.T) {
	gpt2 := Lookup("gpt2")
	for name, want := range map[string]bool{
		"transformer.h.0.attn.c_attn.weight": true,
		"h.0.attn.c_proj.weight":             true,
		"transformer.h.0.mlp.c_fc.weight":    true,
		"transformer.h.0.mlp.c_proj.weight":  true,
		"transformer.h.0.attn.c_attn.bias":   false,
		"transformer.wte.weight":             false,
	} {
		if got := gpt2.Transposed(name); got != want {
			t.Errorf("gpt2 %q: Transposed = %v, want %v", name, got, want)
		}
		if Lookup("llama").Transposed(name) {
			t.Errorf("llama %q: Transposed = true", name)
		}
	}
}
