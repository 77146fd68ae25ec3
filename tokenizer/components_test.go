package tokenizer

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
)

// spBPE is a SentencePiece-style BPE with byte fallback and fuse_unk.
const spBPE = `{
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true, "normalized": false},
    {"id": 1, "content": "<s>", "special": true, "normalized": false},
    {"id": 2, "content": "</s>", "special": true, "normalized": false}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": null,
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "▁": 5, "a": 6, "b": 7, "▁a": 8, "ab": 9, "▁ab": 10},
    "merges": [["▁", "a"], ["a", "b"], ["▁a", "b"]]}
}`

func TestSentencePieceBPE(t *testing.T) {
	tk := loadJSON(t, spBPE, `{"add_bos_token": true, "bos_token": {"content": "<s>", "__type": "AddedToken"}, "add_eos_token": false}`)
	if tk.Kind() != KindSentencePieceBPE || tk.VocabSize() != 11 {
		t.Errorf("kind %q, vocab %d", tk.Kind(), tk.VocabSize())
	}
	cases := []struct {
		text string
		ids  []int
	}{
		{"ab", []int{1, 10}},
		{"ab ab", []int{1, 10, 10}},
		{"ba", []int{1, 5, 7, 6}},
		{"é", []int{1, 5, 3, 4}},       // byte fallback
		{"€", []int{1, 5, 0}},          // bytes E2 82 AC missing: unk
		{"€€ €", []int{1, 5, 0, 5, 0}}, // consecutive unks fused
		{"ab</s>ab", []int{1, 10, 2, 10}},
	}
	for _, c := range cases {
		checkIDs(t, tk, c.text, tk.Encode(c.text), c.ids)
	}
	checkIDs(t, tk, "no specials", tk.EncodeOptions("ab", false), []int{10})
	if got, err := tk.Decode([]int{10, 10, 5, 3, 4, 2}); err != nil || got != "ab ab é</s>" {
		t.Errorf("Decode = %q, %v", got, err)
	}

	tk = loadJSON(t, spBPE, `{"add_bos_token": false, "add_eos_token": true, "eos_token": "</s>"}`)
	checkIDs(t, tk, "add_eos_token", tk.Encode("ab"), []int{10, 2})
}

func TestBPEMergeOutsideVocabulary(t *testing.T) {
	// "ab" is not a token but a step towards "abc"; a word that stops at it
	// has no token and, without unk or byte fallback, is dropped (as in both
	// reference implementations).
	js := strings.Replace(minimalBPE, `{"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}`,
		`{"type": "BPE", "vocab": {"a": 1, "b": 2, "c": 3, "abc": 4}, "merges": ["a b", "ab c"]}`, 1)
	tk := loadJSON(t, js, "")
	checkIDs(t, tk, "abc", tk.Encode("abc"), []int{4})
	checkIDs(t, tk, "ab", tk.Encode("ab"), []int{})
	checkIDs(t, tk, "cab", tk.Encode("cab"), []int{3})

	js = strings.Replace(minimalBPE, `"merges": ["a b"]}`, `"merges": [], "ignore_merges": true}`, 1)
	tk = loadJSON(t, js, "")
	checkIDs(t, tk, "ignore_merges", tk.Encode("ab"), []int{3})
}

func TestMetaspace(t *testing.T) {
	const js = `{
  "added_tokens": [{"id": 3, "content": "<s>", "special": true, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "SCHEME", "split": false},
  "post_processor": null,
  "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "SCHEME", "split": false},
  "model": {"type": "BPE", "vocab": {"▁": 0, "a": 1, "▁a": 2, "<s>": 3}, "merges": ["▁ a"]}
}`
	cases := []struct {
		scheme, text string
		ids          []int
		decoded      string
	}{
		{"first", "a a", []int{2, 2}, "a a"},
		{"first", "<s>a", []int{3, 1}, "<s>a"},
		{"first", "a<s>a", []int{2, 3, 1}, "a<s>a"},
		{"always", "<s>a", []int{3, 2}, "<s> a"},
		{"never", "a a", []int{1, 2}, "a a"},
	}
	for _, c := range cases {
		tk := loadJSON(t, strings.ReplaceAll(js, "SCHEME", c.scheme), "")
		checkIDs(t, tk, c.scheme+" "+c.text, tk.Encode(c.text), c.ids)
		if got, err := tk.Decode(c.ids); err != nil || got != c.decoded {
			t.Errorf("%s: Decode = %q, %v; want %q", c.scheme, got, err, c.decoded)
		}
	}

	split := &metaspacePre{replacement: "▁", scheme: prependAlways, cut: true}
	if got := split.split(nil, "a  b", 0); !slices.Equal(got, []string{"▁a", "▁", "▁b"}) {
		t.Errorf("split = %q", got)
	}
	split.scheme = prependNever
	if got := split.split(nil, "a b ", 0); !slices.Equal(got, []string{"a", "▁b", "▁"}) {
		t.Errorf("split = %q", got)
	}
}

func TestAddedTokens(t *testing.T) {
	mask := &addedToken{content: "<mask>", id: 9, lstrip: true, rstrip: true}
	m, x, mas := &addedToken{content: "<m", id: 8}, &addedToken{content: "x", id: 7}, &addedToken{content: "<mas", id: 6}
	s := newSplitter([]*addedToken{mask, m, x, mas})
	got := s.split(nil, "a \t<mask>  b<mx<ma<masx")
	want := []segment{{text: "a"}, {tok: mask}, {text: "b"}, {tok: m}, {tok: x}, {tok: m}, {text: "a"}, {tok: mas}, {tok: x}}
	if !slices.Equal(got, want) {
		t.Errorf("split = %+v, want %+v", got, want)
	}

	// A normalized added token is matched in the normalized text.
	js := strings.Replace(minimalBPE, `"normalizer": null`, `"normalizer": {"type": "Lowercase"}`, 1)
	js = strings.Replace(js, `"special": true, "normalized": false}]`,
		`"special": true, "normalized": false}, {"id": 4, "content": "AB", "special": false, "normalized": true}]`, 1)
	tk := loadJSON(t, js, "")
	checkIDs(t, tk, "normalized added token", tk.Encode("bAbaBa"), []int{2, 4, 4, 1})
}

func TestPostProcessors(t *testing.T) {
	const base = `{"added_tokens": [], "normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": POST,
  "model": {"type": "BPE", "vocab": {"a": 0, "<s>": 1, "</s>": 2}, "merges": []}}`
	cases := []struct {
		post, config string
		ids          []int
	}{
		{`null`, ``, []int{0}},
		{`null`, `{"add_bos_token": true, "bos_token": "<s>", "add_eos_token": true, "eos_token": "</s>"}`, []int{1, 0, 2}},
		{`{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}`, `{"add_bos_token": true, "bos_token": "<s>"}`, []int{1, 0}},
		{`{"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]}`, ``, []int{1, 0, 2}},
		{`{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1], "trim_offsets": true, "add_prefix_space": false}`, ``, []int{1, 0, 2}},
		// The post-processor decides: tokenizer_config.json is not used.
		{`{"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}`,
			`{"add_bos_token": true, "bos_token": "<s>"}`, []int{0, 2}},
		{`{"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}]}`,
			``, []int{1, 0}},
	}
	for _, c := range cases {
		tk := loadJSON(t, strings.Replace(base, "POST", c.post, 1), c.config)
		checkIDs(t, tk, c.post+" "+c.config, tk.Encode("a"), c.ids)
		checkIDs(t, tk, "without specials", tk.EncodeOptions("a", false), []int{0})
	}
}

func TestWordPiece(t *testing.T) {
	const js = `{"added_tokens": [{"id": 0, "content": "[UNK]", "special": true, "normalized": false}],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null,
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": MAX,
    "vocab": {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "a": 4, "##ff": 5, ",": 6, "é": 7}}}`
	tk := loadJSON(t, strings.Replace(js, "MAX", "100", 1), "")
	checkIDs(t, tk, "wordpiece", tk.Encode("UNAFFABLE, unx aff Ä"), []int{1, 2, 3, 6, 0, 4, 5, 4})
	if got, err := tk.Decode([]int{1, 2, 3, 6, 0}); err != nil || got != "unaffable, [UNK]" {
		t.Errorf("Decode = %q, %v", got, err)
	}
	tk = loadJSON(t, strings.Replace(js, "MAX", "5", 1), "")
	checkIDs(t, tk, "max_input_chars_per_word", tk.Encode("unaffable aff"), []int{0, 4, 5})
}

func TestByteLevelSplit(t *testing.T) {
	// Expected splits from JavaScript's regular expression engine.
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"  hello", []string{" ", " hello"}},
		{"a  \n\nb", []string{"a", "  \n", "\n", "b"}},
		{"it's 'sam 'S", []string{"it", "'s", " '", "sam", " '", "S"}},
		{" 's", []string{" '", "s"}},
		{"123abc", []string{"123", "abc"}},
		{"x  ", []string{"x", "  "}},
		{"x \t\n y", []string{"x", " \t\n", " y"}},
		{" ", []string{" "}},
		{"   ", []string{"   "}},
		{"!!! ??", []string{"!!!", " ??"}},
		{"a\u0301b", []string{"a", "\u0301", "b"}},
		{"\ufeffa", []string{"\ufeff", "a"}},
		{"\u0085a", []string{"\u0085", "a"}},
		{"l'll'd'x", []string{"l", "'ll", "'d", "'", "x"}},
		{"née 12½ x", []string{"née", " 12½", " x"}},
		{"\u3000 a", []string{"\u3000", " a"}},
	}
	p := newByteLevelPre(false, true)
	for _, c := range cases {
		if got := p.split(nil, c.in, 0); !slices.Equal(got, c.want) {
			t.Errorf("split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBertNormalizer(t *testing.T) {
	n := bertNormalizer{cleanText: true, chineseChars: true, lowercase: true}
	cases := []struct{ in, want string }{
		{"Héllo\tWORLD\u200b 中文 ΌΣΟΣ", "hello world  \u4e2d  \u6587  \u03bf\u03c3\u03bf\u03c2"},
		{"\x00a\ufffdb\u0085c\x0bd\u3000e\r\nf", "abcd e  f"},
		{"İSTANBUL Ça Ǆ ﬁ Å", "istanbul ca \u01c6 \ufb01 a"},
		{"한국 𠀀x", "\u1112\u1161\u11ab\u1100\u116e\u11a8 \U00020000x"},
	}
	for _, c := range cases {
		if got, _ := n.normalize(c.in, math.MaxInt); got != c.want {
			t.Errorf("normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	yes, no := true, false
	if got := (bertNormalizer{stripAccents: &yes}).apply("Héllo ÅÇ"); got != "Hello AC" {
		t.Errorf("strip_accents only: %q", got)
	}
	if got := (bertNormalizer{lowercase: true, stripAccents: &no}).apply("Héllo ÅÇ"); got != "héllo åç" {
		t.Errorf("lowercase only: %q", got)
	}
}

func TestUnicode(t *testing.T) {
	cases := []struct {
		f        func(string) string
		in, want string
	}{
		{nfd, "é", "e\u0301"},
		{nfd, "ǖ", "u\u0308\u0304"},
		{nfd, "한", "\u1112\u1161\u11ab"},
		{nfd, "a\u0301\u0316", "a\u0316\u0301"}, // canonical order: ccc 220 before 230
		{nfd, "abc", "abc"},
		{toLowerJS, "ΣΑΣ ΌΣΟΣ Σ aΣ'", "σας όσος σ aς'"},
		{toLowerJS, "İ", "i\u0307"},
		{toLowerJS, "ÀÉÎ Ǆ", "àéî ǆ"},
		{removeMn, "e\u0301x\u0308", "ex"},
	}
	for _, c := range cases {
		if got := c.f(c.in); got != c.want {
			t.Errorf("%q → %q, want %q", c.in, got, c.want)
		}
	}
	if unicodeTablesVersion == "" || len(nfdKeys) < 2000 || len(cccRanges) < 300 {
		t.Errorf("Unicode tables look truncated")
	}
}

func TestSanitizeUTF8(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"\ufffd", "\ufffd"},
		{"\xff", "\ufffd"},
		{"\xff\xfe", "\ufffd\ufffd"},
		{"a\xe2\x80b", "a\ufffdb"},             // truncated 3-byte sequence: one U+FFFD
		{"\xe2\x80", "\ufffd"},                 // truncated at the end
		{"\xf0\x9f\x98", "\ufffd"},             // truncated 4-byte sequence
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"}, // surrogate: ED then two stray continuations
		{"\xc0\xaf", "\ufffd\ufffd"},           // overlong
		{"\xe0\x80\xaf", "\ufffd\ufffd\ufffd"},
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"}, // above U+10FFFF
		{"\x80 \xbf", "\ufffd \ufffd"},
		{"\xf8\x88\x80\x80\x80", "\ufffd\ufffd\ufffd\ufffd\ufffd"},
		{"é\xc3", "é\ufffd"},
	}
	for _, c := range cases {
		if got := sanitizeUTF8(c.in); got != c.want {
			t.Errorf("sanitizeUTF8(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestInvalidUTF8 checks that ill-formed input encodes as its sanitized
// form, on every kind.
func TestInvalidUTF8(t *testing.T) {
	for _, p := range []string{gpt2Path, llama2Path, minilmPath} {
		tk := loadShared(t, p)
		for _, s := range []string{"\xff", "ab\xe2\x80cd", "x \xf0\x9f\x98 y\xc0"} {
			checkIDs(t, tk, p+" "+s, tk.Encode(s), tk.Encode(sanitizeUTF8(s)))
		}
	}
	gpt2 := loadShared(t, gpt2Path)
	checkIDs(t, gpt2, "\\xff", gpt2.Encode("\xff"), gpt2.Encode("\ufffd"))
	bert := loadShared(t, minilmPath)
	checkIDs(t, bert, "bert drops U+FFFD", bert.Encode("a\xffb"), bert.Encode("ab"))
}

// TestConcurrentEncode encodes the lines of wiki.test.raw from several
// goroutines sharing a tokenizer (and its caches).
func TestConcurrentEncode(t *testing.T) {
	lines := strings.SplitAfter(string(readShared(t, wikiPath)), "\n")[:3000]
	for _, p := range []string{gpt2Path, stories260kPath, minilmPath} {
		ref := loadShared(t, p)
		want := make([][]int, len(lines))
		for i, l := range lines {
			want[i] = ref.Encode(l)
		}
		tk := loadShared(t, p)
		var wg sync.WaitGroup
		errs := make(chan int, len(lines))
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < len(lines); i += 2 { // overlapping halves
					if !slices.Equal(tk.Encode(lines[i]), want[i]) {
						errs <- i
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for i := range errs {
			t.Errorf("%s: line %d encodes differently under concurrency", p, i)
		}
	}
}
