package gen

import (
	"path/filepath"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// WriteByteTokenizer writes a byte-level BPE tokenizer.json with no merges
// — token i is byte i, as GPT-2 spells bytes — and a tokenizer_config.json,
// so a generated checkpoint of vocabulary 256 can be evaluated on any text.
func WriteByteTokenizer(dir string) error {
	vocab := map[string]int{}
	for b, r := range tokenizer.ByteToUnicode() {
		vocab[string(r)] = b
	}
	level := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	tok := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{}, "normalizer": nil,
		"pre_tokenizer": level, "post_processor": level, "decoder": level,
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []string{}},
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer.json"), tok); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "tokenizer_config.json"), map[string]any{"add_bos_token": false, "add_eos_token": false})
}

// Demo returns the spec of the demo model: a tiny random-weight llama with
// a 256-token byte vocabulary (see WriteByteTokenizer).
func Demo() Spec {
	s := Llama(tensor.F32, 1)
	s.Vocab, s.Ctx, s.Hidden, s.Inter, s.Layers = 256, 128, 32, 64, 2
	return s
}

// WriteDemo writes the demo checkpoint with its byte tokenizer.
func WriteDemo(dir string) error {
	if err := WriteCheckpoint(dir, Demo()); err != nil {
		return err
	}
	return WriteByteTokenizer(dir)
}
