package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkRoundTrip fails t unless Decode(Encode(s)) is s with ill-formed
// UTF-8 replaced.
func checkRoundTrip(t testing.TB, tk *Tokenizer, s string) {
	t.Helper()
	got, err := tk.Decode(tk.Encode(s))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if want := sanitizeUTF8(s); got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		lo := max(0, i-20)
		t.Fatalf("round trip of %d bytes differs at byte %d:\n got %q\nwant %q", len(s), i, got[lo:min(len(got), i+20)], want[lo:min(len(want), i+20)])
	}
}

func TestGPT2RoundTripFiles(t *testing.T) {
	tk := loadShared(t, gpt2Path)
	for _, rel := range []string{samplePath, wikiPath} {
		checkRoundTrip(t, tk, string(readShared(t, rel)))
	}
}

// randomText returns a string mixing ASCII, whitespace, the special token,
// characters from several scripts and ill-formed bytes.
func randomText(r *rand.Rand) string {
	pieces := []string{
		" ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\ufeff", "\u0085", "'s", "'ll", "<|endoftext|>", "<|endoftext",
		"é", "e\u0301", "ß", "Σ", "字", "한", "😀", "👍🏽", "\u200d", "\x00", "\x7f", "\ufffd",
		"\xff", "\xe2\x80", "\xf0\x9f", "\xc0\xaf", "\xed\xa0\x80",
	}
	var b strings.Builder
	for n := r.IntN(40); n >= 0; n-- {
		switch r.IntN(4) {
		case 0:
			b.WriteString(pieces[r.IntN(len(pieces))])
		case 1:
			for k := r.IntN(8); k >= 0; k-- {
				b.WriteByte(byte(r.IntN(256)))
			}
		case 2:
			for k := r.IntN(8); k >= 0; k-- {
				b.WriteByte(byte(32 + r.IntN(95)))
			}
		default:
			for k := r.IntN(4); k >= 0; k-- {
				c := rune(r.IntN(0x30000))
				if utf8.ValidRune(c) {
					b.WriteRune(c)
				}
			}
		}
	}
	return b.String()
}

func TestGPT2RoundTripRandom(t *testing.T) {
	tk := loadShared(t, gpt2Path)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		checkRoundTrip(t, tk, randomText(r))
	}
}

func FuzzGPT2RoundTrip(f *testing.F) {
	tk := loadShared(f, gpt2Path)
	for _, s := range []string{
		"", " ", "Hello world", "  hello  \n\n world ", "it's 'S 'll", "<|endoftext|>", "a<|endoftext|>b<|endoftext",
		"naïve café", "Σ字한😀", "\xff\xfe", "\xe2\x80x", "\xf0\x9f\x98", "\ufeff\u0085\u3000", "\x00\x01\x7f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkRoundTrip(t, tk, s)
	})
}

// TestDecode checks the decoders of the other kinds on the sample.
func TestDecode(t *testing.T) {
	text := "Once upon a time, there was a little boy named Ben. He said, “Wow!”"
	cases := []struct {
		tokenizer, want string
	}{
		{llama2Path, "<s> " + text},
		{stories260kPath, "<s> " + text},
		{minilmPath, "[CLS] once upon a time, there was a little boy named ben. he said, “ wow! ” [SEP]"},
	}
	for _, c := range cases {
		tk := loadShared(t, c.tokenizer)
		got, err := tk.Decode(tk.Encode(text))
		if err != nil || got != c.want {
			t.Errorf("%s: Decode = %q, %v; want %q", c.tokenizer, got, err, c.want)
		}
		got, err = tk.Decode(tk.EncodeOptions(text, false))
		if c.tokenizer != minilmPath && (err != nil || got != text) {
			t.Errorf("%s: Decode without specials = %q, %v; want %q", c.tokenizer, got, err, text)
		}
	}
	tk := loadShared(t, gpt2Path)
	if _, err := tk.Decode([]int{50257}); err == nil {
		t.Error("Decode of id 50257 (past the vocabulary) succeeded")
	}
	if _, err := tk.Decode([]int{-1}); err == nil {
		t.Error("Decode of id -1 succeeded")
	}
	// Ids that split a character decode to the bytes they stand for.
	ids := tk.Encode("😀")
	if len(ids) < 2 {
		t.Fatalf("😀 is %v, expected several byte tokens", ids)
	}
	part, err := tk.Decode(ids[:1])
	if err != nil || utf8.ValidString(part) || !strings.HasPrefix("😀", part) {
		t.Errorf("Decode of the first id of 😀 = %q, %v; want a prefix of its bytes", part, err)
	}
}
