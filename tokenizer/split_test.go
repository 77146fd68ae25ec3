package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSplitGPT2(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"Hello world's  end\n\n 12 ☃", []string{"Hello", " world", "'s", " ", " end", "\n\n", " 12", " ☃"}},
		{"  a", []string{" ", " a"}},
		{"a  ", []string{"a", "  "}},
		{"I'll say \"Hi!\"\tok", []string{"I", "'ll", " say", " \"", "Hi", "!\"", "\t", "ok"}},
		{"Zürich 123\u00a0x", []string{"Zürich", " 123", "\u00a0", "x"}},
		{"a\xffb\xe2\x80", []string{"a", "\ufffd", "b", "\ufffd"}},
	} {
		got := SplitGPT2(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("SplitGPT2(%q) = %q, want %q", c.text, got, c.want)
		}
		if j := strings.Join(got, ""); j != sanitizeUTF8(c.text) {
			t.Errorf("SplitGPT2(%q) joins to %q", c.text, j)
		}
	}
}

// TestSplitGPT2MatchesEncode: on random text, the words of SplitGPT2
// encoded one by one give the ids that GPT-2's tokenizer gives the whole
// text (its only added token, <|endoftext|>, is left out of the text).
func TestSplitGPT2MatchesEncode(t *testing.T) {
	tk := loadShared(t, gpt2Path)
	for i := range 200 {
		text := strings.ReplaceAll(randomText(rand.New(rand.NewPCG(uint64(i), 15))), "<|endoftext|>", "")
		var got []int
		for _, w := range SplitGPT2(text) {
			got = append(got, tk.Encode(w)...)
		}
		checkIDs(t, tk, fmt.Sprintf("text %d", i), got, tk.Encode(text))
	}
}

func TestByteToUnicode(t *testing.T) {
	u := ByteToUnicode()
	seen := map[rune]bool{}
	for b, r := range u {
		if seen[r] {
			t.Fatalf("rune %q mapped twice", r)
		}
		seen[r] = true
		if printable := b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE; printable != (r == rune(b)) {
			t.Errorf("byte %#x → %q", b, r)
		}
	}
	if u[' '] != 'Ġ' || u['\n'] != 'Ċ' || u[0] != 'Ā' || u[0xAD] != 0x143 {
		t.Errorf("byte map differs from GPT-2's: space → %q, newline → %q, 0 → %q, 0xAD → %q", u[' '], u['\n'], u[0], u[0xAD])
	}
}
