package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// bombJSON is minimalBPE with a Sequence of n normalizers replacing "a" by
// eight of them: 600 bytes of text would normalize to 600·8^n bytes.
func bombJSON(n int) string {
	var steps []string
	for range n {
		steps = append(steps, `{"type": "Replace", "pattern": {"String": "a"}, "content": "aaaaaaaa"}`)
	}
	return strings.Replace(minimalBPE, `"normalizer": null`, `"normalizer": {"type": "Sequence", "normalizers": [`+strings.Join(steps, ", ")+`]}`, 1)
}

// TestNormalizerBomb: a chain of expanding Replace normalizers is refused
// when text is encoded (before the expansion is built), with ErrLimit;
// a modest expansion within the bound still encodes.
func TestNormalizerBomb(t *testing.T) {
	tk := loadJSON(t, bombJSON(12), "")
	_, err := tk.EncodeLimited(strings.Repeat("a", 600), true, 0)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "normalizers") {
		t.Fatalf("EncodeLimited of a 12-step bomb = %v, want ErrLimit", err)
	}
	tk = loadJSON(t, bombJSON(1), "")
	ids, err := tk.EncodeLimited("aa", true, 0)
	if err != nil || len(ids) != 16 {
		t.Fatalf("EncodeLimited of an 8x expansion = %d ids, %v; want 16 ids", len(ids), err)
	}
	// An added token normalized into a bomb is refused at load.
	js := strings.Replace(bombJSON(12), `{"id": 0, "content": "<unk>", "special": true, "normalized": false}`,
		`{"id": 0, "content": "<unk>", "special": true, "normalized": false}, {"id": 1, "content": "`+strings.Repeat("a", 40)+`", "special": false, "normalized": true}`, 1)
	if _, err := Load(writeTokenizer(t, js, "")); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "times longer") {
		t.Errorf("Load with a normalized added token that explodes = %v, want ErrFormat", err)
	}
}

// TestLongWord: a pre-tokenized word longer than MaxWordBytes is refused
// (one 100 MB line would otherwise take gigabytes in BPE); Llama's
// SentencePiece BPE, which has no pre-tokenizer but cuts at "▁", is bound
// by its pieces, not by the whole text.
func TestLongWord(t *testing.T) {
	tk := loadJSON(t, minimalBPE, "")
	_, err := tk.EncodeLimited(strings.Repeat("ab", MaxWordBytes/2+1), true, 0)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "pre-tokenized word") {
		t.Fatalf("EncodeLimited of a %d-byte word = %v, want ErrLimit", MaxWordBytes+2, err)
	}
	sp := loadJSON(t, spBPE, "")
	if _, err := sp.EncodeLimited(strings.Repeat("ab ", MaxWordBytes/3+2), true, 0); err != nil {
		t.Errorf("SentencePiece text of short words, %d bytes in one section: %v", MaxWordBytes+6, err)
	}
	// maxTokens stops early and agrees with the full encoding.
	text := strings.Repeat("ab a b ", 1000)
	full := sp.Encode(text)
	part, err := sp.EncodeLimited(text, true, 100)
	if err != nil || len(part) <= 100 || fmt.Sprint(part[:100]) != fmt.Sprint(full[:100]) {
		t.Errorf("EncodeLimited(maxTokens 100) = %d ids, %v; want a prefix of the full encoding", len(part), err)
	}
}

// TestFinalSigmaASCII: ASCII Case_Ignorable characters (^ and ` are Sk)
// are skipped when deciding Final_Sigma, as Python and JavaScript do:
// "a^Σ".lower() is "a^ς".
func TestFinalSigmaASCII(t *testing.T) {
	for in, want := range map[string]string{
		"a^Σ": "a^ς", "a`Σ": "a`ς", "a^Σb": "a^σb", "^Σ": "^σ", "a:Σ": "a:ς", "a'Σ": "a'ς",
	} {
		if got := toLowerJS(in); got != want {
			t.Errorf("toLowerJS(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUnknownDecoder: a decoder type Hugging Face tokenizers does not have
// is a malformed file (exit 2), not a silently accepted one.
func TestUnknownDecoder(t *testing.T) {
	js := strings.Replace(minimalBPE, `"decoder": null`, `"decoder": {"type": "NoSuchDecoder"}`, 1)
	if _, err := Load(writeTokenizer(t, js, "")); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "NoSuchDecoder") {
		t.Errorf("Load with an unknown decoder = %v, want ErrFormat naming it", err)
	}
}
