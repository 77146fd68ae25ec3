package tokenizer

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNormalizers builds a tokenizer.json around a mutated normalizer
// (any JSON) and encodes mutated text with EncodeLimited: it must load or
// fail with ErrFormat/ErrUnsupported, and encode or fail with ErrLimit —
// never panic, and never build a normalized text beyond the bound (the
// fuzzer's memory limit catches an expansion that escapes it).
func FuzzNormalizers(f *testing.F) {
	f.Add(`{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}`, "a b")
	f.Add(`{"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": {"String": "a"}, "content": "aaaaaaaa"}, {"type": "Replace", "pattern": {"String": "a"}, "content": "aaaaaaaa"}, {"type": "Replace", "pattern": {"String": "a"}, "content": "aaaaaaaa"}]}`, strings.Repeat("a", 600))
	f.Add(`{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "lowercase": true}`, "Héllo\tWORLD 中文 ΌΣΟΣ a^Σ")
	f.Add(`{"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "Strip", "left": true, "right": true}]}`, "  İSTANBUL  ")
	f.Add(`{"type": "Replace", "pattern": {"String": ""}, "content": "x"}`, "ab")
	f.Fuzz(func(t *testing.T, norm, text string) {
		if len(norm) > 1<<12 || len(text) > 1<<12 {
			return
		}
		js := strings.Replace(minimalBPE, `"normalizer": null`, `"normalizer": `+norm, 1)
		l := &loader{path: "fuzz"}
		tk, err := l.load([]byte(js))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("load: %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		ids, err := tk.EncodeLimited(text, true, 0)
		if err != nil {
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("EncodeLimited: %v does not wrap ErrLimit", err)
			}
			return
		}
		for _, id := range ids {
			if _, ok := tk.TokenString(id); !ok {
				t.Fatalf("EncodeLimited(%q) gave id %d, which is not a token", text, id)
			}
		}
	})
}
