package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds mutated tokenizer.json files to Load: it must return a
// tokenizer or an error wrapping ErrFormat or ErrUnsupported, never panic,
// and a loaded tokenizer must encode and decode without panicking.
func FuzzLoad(f *testing.F) {
	f.Add(minimalBPE, "ab a")
	f.Add(spBPE, "ab é€ </s>")
	f.Add(strings.Replace(minimalBPE, `"pre_tokenizer": null`, `"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}`, 1), "a b")
	f.Add(strings.Replace(minimalBPE, `"pre_tokenizer": null`, `"pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "first"}`, 1), "a  b")
	f.Add(`{"added_tokens": [{"id": 0, "content": "[UNK]", "special": true, "normalized": false, "lstrip": true}],
  "normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "BertProcessing", "sep": ["[UNK]", 0], "cls": ["[UNK]", 0]}, "decoder": {"type": "WordPiece"},
  "model": {"unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 3, "vocab": {"[UNK]": 0, "a": 1, "##b": 2}}}`, "AB, ab [UNK]")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, js, text string) {
		p := filepath.Join(dir, "tokenizer.json")
		if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		tk, err := Load(p)
		if err != nil {
			return
		}
		ids := tk.Encode(text)
		for _, id := range ids {
			if _, ok := tk.TokenString(id); !ok {
				t.Fatalf("Encode(%q) gave id %d, which is not a token", text, id)
			}
		}
		tk.Decode(ids)
	})
}
