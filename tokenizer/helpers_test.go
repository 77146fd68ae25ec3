package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// Tokenizer files in ../shared.
const (
	stories260kPath = "models/stories260k/tokenizer.json"
	llama2Path      = "tokenizers/llama2/tokenizer.json"
	gpt2Path        = "tokenizers/gpt2/hf/tokenizer.json"
	tinyGPT2Path    = "fixtures/tiny-gpt2-bf16/tokenizer.json"
	minilmPath      = "tokenizers/bert-base-uncased/all-minilm-l6-v2.tokenizer.json"
	bertOldPath     = "tokenizers/bert-base-uncased/bert-base-uncased.tokenizer.json"
	onnxGPT2Path    = "fixtures/onnx-tiny-random-gpt2/tokenizer.json"

	samplePath    = "text/tinystories/tinystories_sample.txt"
	wikiPath      = "text/wikitext-2/wiki.test.raw"
	wikiValidPath = "text/wikitext-2/wiki.valid.raw"
)

// loadShared loads a tokenizer from ../shared (skipping when absent).
func loadShared(t testing.TB, rel string) *Tokenizer {
	t.Helper()
	tk, err := Load(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatalf("Load(%s): %v", rel, err)
	}
	return tk
}

// readShared returns the bytes of a file in ../shared, unmodified.
func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readIDs reads a JSON array of ids from ../shared.
func readIDs(t testing.TB, rel string) []int {
	t.Helper()
	var ids []int
	if err := json.Unmarshal(readShared(t, rel), &ids); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return ids
}

// checkIDs fails t when got differs from want, showing the first mismatch
// with the ids and token strings around it.
func checkIDs(t testing.TB, tk *Tokenizer, what string, got, want []int) {
	t.Helper()
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	if i == n && len(got) == len(want) {
		return
	}
	lo, hi := max(0, i-5), i+6
	show := func(ids []int) string {
		var b strings.Builder
		for k := lo; k < min(hi, len(ids)); k++ {
			s, _ := tk.TokenString(ids[k])
			mark := ""
			if k == i {
				mark = ">>"
			}
			fmt.Fprintf(&b, " %s%d:%d(%q)", mark, k, ids[k], s)
		}
		return b.String()
	}
	t.Errorf("%s: %d ids, want %d; first difference at position %d\n got:%s\nwant:%s", what, len(got), len(want), i, show(got), show(want))
}

// writeTokenizer writes a tokenizer.json (and, when config is not empty, a
// tokenizer_config.json) into a new directory and returns the directory.
func writeTokenizer(t testing.TB, tokenizerJSON, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tokenizerJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadJSON loads a synthetic tokenizer.
func loadJSON(t testing.TB, tokenizerJSON, config string) *Tokenizer {
	t.Helper()
	tk, err := Load(writeTokenizer(t, tokenizerJSON, config))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tk
}
