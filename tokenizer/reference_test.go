package tokenizer

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// TestReferenceTinyStories encodes the TinyStories sample (raw bytes) and
// compares with the reference ids of tokenizers.js in ../shared.
func TestReferenceTinyStories(t *testing.T) {
	cases := []struct {
		tokenizer, ref string
		kind           string
		vocab          int
	}{
		{stories260kPath, "stories260k", KindSentencePieceBPE, 512},
		{llama2Path, "llama2", KindSentencePieceBPE, 32000},
		{gpt2Path, "gpt2", KindByteLevelBPE, 50257},
		{tinyGPT2Path, "gpt2", KindByteLevelBPE, 50257},
		{minilmPath, "bert", KindWordPiece, 30522},
		{bertOldPath, "bert", KindWordPiece, 30522},
	}
	text := string(readShared(t, samplePath))
	for _, c := range cases {
		t.Run(c.tokenizer, func(t *testing.T) {
			tk := loadShared(t, c.tokenizer)
			if tk.Kind() != c.kind || tk.VocabSize() != c.vocab {
				t.Errorf("kind %q vocab %d, want %q %d", tk.Kind(), tk.VocabSize(), c.kind, c.vocab)
			}
			want := readIDs(t, "reference/tokens/"+c.ref+".tinystories_sample.json")
			checkIDs(t, tk, "tinystories_sample.txt", tk.Encode(text), want)
		})
	}
}

// idsHash is FNV-1a 64 over the ids as little-endian uint32s.
func idsHash(ids []int) uint64 {
	h := fnv.New64a()
	var buf [4]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint32(buf[:], uint32(id))
		h.Write(buf[:])
	}
	return h.Sum64()
}

// TestReferenceCounts encodes the whole WikiText-2 test and validation
// files. The wiki.test.raw counts (special tokens included) are those of
// ../shared/README.md; the wiki.valid.raw counts and the hashes of both id
// sequences were computed from the ids of tokenizers.js 0.2.0 (npm
// @huggingface/tokenizers), the reference implementation, so the test
// compares every id, not only the count.
func TestReferenceCounts(t *testing.T) {
	cases := []struct {
		tokenizer, text string
		count           int
		hash            uint64
		first, last     int // -1: no special token there
		specialsAdded   int
	}{
		{stories260kPath, wikiPath, 809290, 0x8edf2a66882d0475, 1, -1, 1},
		{llama2Path, wikiPath, 335688, 0xf4e002cf88b51111, 1, -1, 1},
		{gpt2Path, wikiPath, 286221, 0x71dab1e5b175239c, -1, -1, 0},
		{minilmPath, wikiPath, 273180, 0xeea1635850159124, 101, 102, 2},
		{bertOldPath, wikiPath, 273180, 0xeea1635850159124, 101, 102, 2},
		{stories260kPath, wikiValidPath, 716898, 0xf2eeba3ea4c459f8, 1, -1, 1},
		{llama2Path, wikiValidPath, 295043, 0x99145234a60ef092, 1, -1, 1},
		{gpt2Path, wikiValidPath, 249887, 0x83eacd62553d968e, -1, -1, 0},
		{minilmPath, wikiValidPath, 238658, 0x1b8566a60ba63b26, 101, 102, 2},
	}
	for _, c := range cases {
		t.Run(c.tokenizer+"/"+c.text, func(t *testing.T) {
			tk := loadShared(t, c.tokenizer)
			text := string(readShared(t, c.text))
			ids := tk.Encode(text)
			if len(ids) != c.count {
				t.Fatalf("%d ids, want %d", len(ids), c.count)
			}
			if h := idsHash(ids); h != c.hash {
				t.Errorf("ids hash %#016x, want %#016x (the count matches, some ids differ)", h, c.hash)
			}
			if c.first >= 0 && ids[0] != c.first {
				t.Errorf("first id %d, want %d", ids[0], c.first)
			}
			if c.last >= 0 && ids[len(ids)-1] != c.last {
				t.Errorf("last id %d, want %d", ids[len(ids)-1], c.last)
			}
			plain := tk.EncodeOptions(text, false)
			if len(plain) != c.count-c.specialsAdded {
				t.Errorf("without special tokens: %d ids, want %d", len(plain), c.count-c.specialsAdded)
			}
		})
	}
}

// TestSpecialTokens checks what Encode adds to the empty text and to a word.
func TestSpecialTokens(t *testing.T) {
	cases := []struct {
		tokenizer string
		empty     []int
	}{
		{stories260kPath, []int{1}},
		{llama2Path, []int{1}},
		{gpt2Path, []int{}},
		{minilmPath, []int{101, 102}},
		{bertOldPath, []int{101, 102}},
	}
	for _, c := range cases {
		tk := loadShared(t, c.tokenizer)
		checkIDs(t, tk, c.tokenizer+" empty text", tk.Encode(""), c.empty)
		checkIDs(t, tk, c.tokenizer+" empty text without specials", tk.EncodeOptions("", false), []int{})
	}
	gpt2 := loadShared(t, gpt2Path)
	checkIDs(t, gpt2, "gpt2 <|endoftext|>", gpt2.Encode("a<|endoftext|>b"), []int{64, 50256, 65})
	llama := loadShared(t, llama2Path)
	// An added token cuts the text; each piece gets its own "▁".
	checkIDs(t, llama, "llama2 <s> in text", llama.Encode("hi<s>hi"), []int{1, 7251, 1, 7251})
}
