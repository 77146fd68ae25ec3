package tokenizer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimalBPE is a valid tokenizer.json with a tiny character-level BPE
// model; tests replace parts of it.
const minimalBPE = `{
  "version": "1.0",
  "added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": null,
  "post_processor": null,
  "decoder": null,
  "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}
}`

func TestLoadErrors(t *testing.T) {
	model := func(m string) string {
		return strings.Replace(minimalBPE, `{"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}`, m, 1)
	}
	replace := func(old, new string) string {
		if !strings.Contains(minimalBPE, old) {
			t.Fatalf("%q not in minimalBPE", old)
		}
		return strings.Replace(minimalBPE, old, new, 1)
	}
	cases := []struct {
		name, json, config string
		kind               error
		msg                string // the error message must contain it
	}{
		{"invalid JSON", `{"model": `, "", ErrFormat, "invalid JSON"},
		{"not an object", `[1, 2]`, "", ErrFormat, "expected an object"},
		{"trailing data", minimalBPE + "}", "", ErrFormat, "data after the object"},
		{"no model", `{"version": "1.0"}`, "", ErrFormat, "no model"},
		{"Unigram", model(`{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}`), "", ErrUnsupported, `model type "Unigram"`},
		{"WordLevel", model(`{"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}`), "", ErrUnsupported, `model type "WordLevel"`},
		{"untyped list vocab", model(`{"unk_id": 0, "vocab": [["<unk>", 0.0]]}`), "", ErrUnsupported, "Unigram"},
		{"Split pre-tokenizer", replace(`"pre_tokenizer": null`, `"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}`), "", ErrUnsupported, `pre_tokenizer "Split" with pattern {"Regex":"\\s+"}`},
		{"Sequence pre-tokenizer", replace(`"pre_tokenizer": null`, `"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"type": "ByteLevel"}]}`), "", ErrUnsupported, `pre_tokenizer "Sequence" of [Digits, ByteLevel]`},
		{"Regex Replace", replace(`"normalizer": null`, `"normalizer": {"type": "Replace", "pattern": {"Regex": " +"}, "content": " "}`), "", ErrUnsupported, `normalizer "Replace" with pattern {"Regex":" +"}`},
		{"NFKC", replace(`"normalizer": null`, `"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}]}`), "", ErrUnsupported, `normalizer "NFKC"`},
		{"post-processor", replace(`"post_processor": null`, `"post_processor": {"type": "Fancy"}`), "", ErrUnsupported, `post_processor "Fancy"`},
		{"dropout", model(`{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}`), "", ErrUnsupported, "BPE dropout 0.1"},
		{"single_word", replace(`"special": true, "normalized": false`, `"special": true, "normalized": false, "single_word": true`), "", ErrUnsupported, `added token "<unk>" with single_word`},
		{"vocab id negative", model(`{"type": "BPE", "vocab": {"a": -1}, "merges": []}`), "", ErrFormat, `model.vocab["a"] = -1`},
		{"vocab id huge", model(`{"type": "BPE", "vocab": {"a": 99999999999}, "merges": []}`), "", ErrFormat, `model.vocab["a"] = 99999999999`},
		{"vocab id fraction", model(`{"type": "BPE", "vocab": {"a": 1.5}, "merges": []}`), "", ErrFormat, `model.vocab["a"] = 1.5`},
		{"vocab id string", model(`{"type": "BPE", "vocab": {"a": "1"}, "merges": []}`), "", ErrFormat, `model.vocab["a"] is not a number`},
		{"no vocab", model(`{"type": "BPE", "merges": []}`), "", ErrFormat, "no vocab"},
		{"bad merge", model(`{"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}`), "", ErrFormat, `merge 0 ("a b c")`},
		{"bad merge pair", model(`{"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}`), "", ErrFormat, "merge 0 is not a pair"},
		{"unk missing", model(`{"type": "BPE", "unk_token": "<x>", "vocab": {"a": 0}, "merges": []}`), "", ErrFormat, `unk_token "<x>" is not in the vocabulary`},
		{"added token without id", replace(`{"id": 0, "content": "<unk>"`, `{"content": "<unk>"`), "", ErrFormat, "added_tokens[0] has no id"},
		{"added token wrong type", replace(`"special": true, "normalized": false`, `"special": "yes", "normalized": false`), "", ErrFormat, `"special" has the wrong type`},
		{"template without sequence", replace(`"post_processor": null`, `"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<unk>", "type_id": 0}}], "special_tokens": {}}`), "", ErrFormat, "no sequence $A"},
		{"template unknown token", replace(`"post_processor": null`, `"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}`), "", ErrFormat, `special token "<s>" is not defined`},
		{"nested too deep", replace(`"normalizer": null`, `"normalizer": `+strings.Repeat(`{"type": "Sequence", "normalizers": [`, 20)+`{"type": "Lowercase"}`+strings.Repeat(`]}`, 20)), "", ErrFormat, "nested more than 16 deep"},
		{"config invalid", minimalBPE, `{"add_bos_token": tru`, ErrFormat, "invalid JSON"},
		{"config wrong type", minimalBPE, `{"add_bos_token": "yes"}`, ErrFormat, `field "add_bos_token" has the wrong type`},
		{"config unknown bos", minimalBPE, `{"add_bos_token": true, "bos_token": "<s>"}`, ErrFormat, `bos_token "<s>" is not in the vocabulary`},
		{"config null bos", minimalBPE, `{"add_bos_token": true, "bos_token": null}`, ErrFormat, "add_bos_token is true but bos_token is null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTokenizer(t, c.json, c.config)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %q does not wrap %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			file := filepath.Join(dir, "tokenizer.json")
			if c.config != "" {
				file = filepath.Join(dir, "tokenizer_config.json")
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name %s", err, file)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "nope.json"), dir} {
		_, err := Load(p)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Errorf("Load(%s) = %v, want a not-exist error naming the file", p, err)
		}
	}
}

func TestLoadTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFileSize + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(p); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a %d-byte file = %v, want ErrFormat", maxFileSize+1, err)
	}
}

func TestLoadTruncated(t *testing.T) {
	data := readShared(t, gpt2Path)
	for _, n := range []int{1, 100, len(data) / 2, len(data) - 2} {
		p := writeTokenizer(t, string(data[:n]), "")
		if _, err := Load(p); !errors.Is(err, ErrFormat) {
			t.Errorf("Load of the first %d bytes = %v, want ErrFormat", n, err)
		}
	}
}

// TestDecoderUnsupported: an unknown decoder does not stop encoding.
func TestDecoderUnsupported(t *testing.T) {
	js := strings.Replace(minimalBPE, `"decoder": null`, `"decoder": {"type": "CTC", "pad_token": "<pad>"}`, 1)
	tk := loadJSON(t, js, "")
	checkIDs(t, tk, "encode", tk.Encode("ab"), []int{3})
	_, err := tk.Decode([]int{3})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `decoder "CTC"`) {
		t.Errorf("Decode = %v, want ErrUnsupported naming the decoder", err)
	}
}
