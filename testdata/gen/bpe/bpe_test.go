package bpe

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/lmsparse/lmsparse/testdata/gen/corpus"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// text returns n bytes (or a little more) of corpus text from seed.
func text(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := corpus.Generate(&b, seed, n); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// trainText is the training text of the tests, generated once.
var trainText = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	corpus.Generate(&b, 1, 2_000_000)
	return b.Bytes()
})

func train(t testing.TB, text []byte, vocab int) *Model {
	t.Helper()
	m, err := Train(text, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// write writes m to a new directory and returns it with tokenizer.json.
func write(t testing.TB, m *Model) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	if err := m.WriteTokenizer(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// TestSmall checks the merges of a text small enough to follow by hand.
// Words: "ab" once, " ab" twice, " cd" three times. Pairs (a,b), (' ',c)
// and (c,d) occur three times; " c" is the smallest merged string, then
// " cd" beats "ab"; then " ab" (twice) is all that is left.
func TestSmall(t *testing.T) {
	m := train(t, []byte("ab ab ab cd cd cd"), 260)
	var got []string
	for _, mg := range m.Merges() {
		got = append(got, m.Token(mg.Left)+"|"+m.Token(mg.Right))
		if m.Token(mg.Result) != m.Token(mg.Left)+m.Token(mg.Right) {
			t.Errorf("merge %v: result %q", mg, m.Token(mg.Result))
		}
	}
	if want := []string{" |c", " c|d", "a|b", " |ab"}; !slices.Equal(got, want) {
		t.Errorf("merges %q, want %q", got, want)
	}
	if ids, want := m.Encode("ab cd ab c"), []int{258, 257, 259, 256}; !slices.Equal(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	if _, err := Train([]byte("ab ab ab cd cd cd"), 261); err == nil {
		t.Error("Train to 261 tokens with only 4 merges possible: no error")
	}
	if _, err := Train(nil, 255); err == nil {
		t.Error("Train to 255 tokens: no error")
	}
}

// TestTieBreak: at equal counts the smaller merged bytes win, then the
// smaller left token.
func TestTieBreak(t *testing.T) {
	for _, c := range []struct {
		x, y queued
	}{
		{queued{n: 3, a: "z", b: "z"}, queued{n: 2, a: "a", b: "a"}},
		{queued{n: 2, a: " ", b: "c"}, queued{n: 2, a: "a", b: "b"}},
		{queued{n: 2, a: "a", b: "b"}, queued{n: 2, a: "a", b: "bc"}},
		{queued{n: 2, a: "a", b: "bc"}, queued{n: 2, a: "ab", b: "c"}},
		{queued{n: 2, a: "ab", b: "c"}, queued{n: 2, a: "a", b: "bd"}},
	} {
		if !better(c.x, c.y) || better(c.y, c.x) {
			t.Errorf("%+v is not merged before %+v", c.x, c.y)
		}
	}
}

func TestDeterministic(t *testing.T) {
	m := train(t, trainText(), 512)
	dir1, a := write(t, m)
	dir2, b := write(t, train(t, trainText(), 512))
	if !bytes.Equal(a, b) {
		t.Fatal("two trainings on the same text give different tokenizer.json files")
	}
	c1, err1 := os.ReadFile(filepath.Join(dir1, "tokenizer_config.json"))
	c2, err2 := os.ReadFile(filepath.Join(dir2, "tokenizer_config.json"))
	if err1 != nil || err2 != nil || !bytes.Equal(c1, c2) {
		t.Fatalf("tokenizer_config.json files differ (%v, %v)", err1, err2)
	}
	_, c := write(t, train(t, text(t, 3, 2_000_000), 512))
	if bytes.Equal(a, c) {
		t.Error("texts of seeds 1 and 3 give the same tokenizer.json")
	}
}

func TestFile(t *testing.T) {
	const size = 512
	m := train(t, trainText(), size)
	dir, b := write(t, m)
	var f struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	vocab := f.Model.Vocab
	if len(vocab) != size || m.VocabSize() != size {
		t.Fatalf("vocabulary of %d entries (model %d), want %d", len(vocab), m.VocabSize(), size)
	}
	seen := make([]bool, size)
	for s, id := range vocab {
		if id < 0 || id >= size || seen[id] {
			t.Fatalf("token %q has id %d (out of range or repeated)", s, id)
		}
		seen[id] = true
	}
	u := tokenizer.ByteToUnicode()
	for b, r := range u {
		if vocab[string(r)] != b {
			t.Errorf("byte %#x (%q) has id %d", b, r, vocab[string(r)])
		}
	}
	if len(f.Model.Merges) != len(m.Merges()) || len(f.Model.Merges) < size-256 {
		t.Fatalf("%d merges in the file, %d in the model, vocabulary %d", len(f.Model.Merges), len(m.Merges()), size)
	}
	mm := m.Merges()
	for i, p := range f.Model.Merges {
		mg := mm[i]
		_, okA := vocab[p[0]]
		_, okB := vocab[p[1]]
		id, okR := vocab[p[0]+p[1]]
		if !okA || !okB || !okR || id != mg.Result || vocab[p[0]] != mg.Left || vocab[p[1]] != mg.Right {
			t.Fatalf("merge %d %q: parts or result not in the vocabulary, or not the model's %v", i, p, mg)
		}
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil || cfg["add_bos_token"] != false || cfg["add_eos_token"] != false ||
		cfg["tokenizer_class"] != "PreTrainedTokenizerFast" || cfg["model_max_length"] != 1024.0 {
		t.Errorf("tokenizer_config.json: %v, %s", err, b)
	}
}

// TestLoad: lmsparse's tokenizer reads the files and encodes held-out text
// exactly as the reference encoder does, and decodes it back.
func TestLoad(t *testing.T) {
	held := string(text(t, 2, 50_000))
	for _, size := range []int{512, 1024} {
		m := train(t, trainText(), size)
		dir, _ := write(t, m)
		tk, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Kind() != "bpe-bytelevel" || tk.VocabSize() != size {
			t.Fatalf("loaded kind %s, vocabulary %d", tk.Kind(), tk.VocabSize())
		}
		for _, c := range []struct{ s, dec string }{
			{held, held},
			{"Zürich 123 ☃\t\n", "Zürich 123 ☃\t\n"},
			{"  Once upon a time,\r\n\n\n\"Look!\"  ", "  Once upon a time,\r\n\n\n\"Look!\"  "},
			{"a\xffb\xe2\x80", "a\ufffdb\ufffd"}, // ill-formed UTF-8 is replaced
			{"", ""},
		} {
			s := c.s
			got, want := tk.Encode(s), m.Encode(s)
			if !slices.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("vocab %d: tokenizer and reference encodings of %d bytes differ at token %d: %v vs %v",
					size, len(s), i, got[i:min(i+5, len(got))], want[i:min(i+5, len(want))])
			}
			dec, err := tk.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.dec; dec != want || m.Decode(got) != want {
				t.Errorf("vocab %d: %q decodes to %q (reference %q)", size, trunc(want), trunc(dec), trunc(m.Decode(got)))
			}
		}
		t.Logf("vocab %d: %d merges, held-out %d bytes → %d tokens, %.2f bytes/token",
			size, len(m.Merges()), len(held), len(m.Encode(held)), float64(len(held))/float64(len(m.Encode(held))))
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// naiveMerges trains like Train but recounts every pair of every word
// before each merge, without the incremental bookkeeping. It returns the
// merges as "left|right" and the vocabulary size reached, which is below
// vocab when the pairs ran out.
func naiveMerges(text string, vocab int) ([]string, int) {
	freq := map[string]int64{}
	for _, w := range tokenizer.SplitGPT2(text) {
		freq[w]++
	}
	type nword struct {
		toks []string
		n    int64
	}
	var words []nword
	for w, n := range freq {
		var toks []string
		for i := range len(w) {
			toks = append(toks, w[i:i+1])
		}
		words = append(words, nword{toks, n})
	}
	have := map[string]bool{}
	for b := range 256 {
		have[string([]byte{byte(b)})] = true
	}
	var merges []string
	for len(have) < vocab {
		count := map[[2]string]int64{}
		for _, w := range words {
			for i := 0; i+1 < len(w.toks); i++ {
				count[[2]string{w.toks[i], w.toks[i+1]}] += w.n
			}
		}
		var best queued
		for p, n := range count {
			if q := (queued{n: n, a: p[0], b: p[1]}); best.n == 0 || better(q, best) {
				best = q
			}
		}
		if best.n == 0 {
			return merges, len(have)
		}
		merges = append(merges, best.a+"|"+best.b)
		have[best.a+best.b] = true
		for k, w := range words {
			var out []string
			for i := 0; i < len(w.toks); i++ {
				if i+1 < len(w.toks) && w.toks[i] == best.a && w.toks[i+1] == best.b {
					out = append(out, best.a+best.b)
					i++
				} else {
					out = append(out, w.toks[i])
				}
			}
			words[k].toks = out
		}
	}
	return merges, len(have)
}

// TestIncremental: Train's incremental pair counts give the merges of the
// naive trainer, on corpus text and, to exhaustion, on text with repeated
// letters, where occurrences of a pair overlap ("aaaa").
func TestIncremental(t *testing.T) {
	for _, c := range []struct {
		text  string
		vocab int
	}{
		{string(text(t, 4, 100_000)), 900},
		{"aaaa aaa aa a aaaaaaa abab ababab aba bab abc bca cab abcabc cabcab bcabca aabb aaabbb " +
			"abcd bcda cdab dabc abcdabcd dcba", MaxVocab},
	} {
		want, vocab := naiveMerges(c.text, c.vocab)
		if vocab < min(c.vocab, 256+20) {
			t.Fatalf("naive trainer: vocabulary %d", vocab)
		}
		m := train(t, []byte(c.text), vocab)
		var got []string
		for _, mg := range m.Merges() {
			got = append(got, m.Token(mg.Left)+"|"+m.Token(mg.Right))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d bytes, vocab %d: merges differ from the naive trainer's:\n got %q\nwant %q", len(c.text), vocab, got, want)
		}
		if m.VocabSize() != vocab {
			t.Errorf("vocabulary %d, want %d", m.VocabSize(), vocab)
		}
		if _, err := Train([]byte(c.text), vocab+1); err == nil && vocab < c.vocab {
			t.Errorf("Train to %d tokens, past the last pair: no error", vocab+1)
		}
	}
}

// TestEOT: the special token gets the id after the learned vocabulary, is
// one token when it appears in text, and the BPE ids around it are the
// reference encoder's.
func TestEOT(t *testing.T) {
	m := train(t, trainText(), 300)
	m.EOT = "<|endoftext|>"
	dir, _ := write(t, m)
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	id, ok := tok.TokenID(m.EOT)
	if !ok || id != m.VocabSize() {
		t.Fatalf("TokenID(%q) = %d, %v; want %d", m.EOT, id, ok, m.VocabSize())
	}
	a, b := "Lily was happy.\n\n", "Tom ran home."
	got := tok.EncodeOptions(a+m.EOT+b, false)
	want := append(append(m.Encode(a), id), m.Encode(b)...)
	if !slices.Equal(got, want) {
		t.Errorf("encode with EOT: %v, want %v", got, want)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil || !bytes.Contains(cfg, []byte(`"eos_token": "<|endoftext|>"`)) {
		t.Errorf("tokenizer_config.json does not name the EOT token: %s %v", cfg, err)
	}
}
