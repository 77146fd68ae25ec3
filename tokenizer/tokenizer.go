package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

var (
	// ErrFormat reports a malformed tokenizer.json or tokenizer_config.json:
	// invalid JSON, a missing or mistyped field, an id out of range, a value
	// over one of the size limits.
	ErrFormat = errors.New("malformed tokenizer file")
	// ErrUnsupported reports a well-formed tokenizer that uses a component
	// lmsparse does not implement; the message names the component, for
	// example `model type "Unigram"` or `pre_tokenizer "Split" with pattern
	// {"Regex": "\\s+"}`.
	ErrUnsupported = errors.New("unsupported tokenizer component")
	// ErrLimit reports text that [Tokenizer.EncodeLimited] refuses: its
	// normalized form is more than [MaxNormalizedFactor] times longer, or
	// a pre-tokenized word is longer than [MaxWordBytes].
	ErrLimit = errors.New("text beyond the tokenizer's limits")
)

// MaxWordBytes bounds one pre-tokenized word (the unit BPE or WordPiece
// runs on; for a tokenizer with no pre-tokenizer, as Llama's, a whole
// section of text between added tokens): 8 MiB, some 400 MB of working
// memory.
const MaxWordBytes = 8 << 20

// Kinds returned by [Tokenizer.Kind].
const (
	KindByteLevelBPE     = "bpe-bytelevel"
	KindSentencePieceBPE = "bpe-sentencepiece"
	KindWordPiece        = "wordpiece"
)

// model encodes the words of one piece of text.
type model interface {
	encode(dst []int, words []string, st *encodeState) []int
}

// Tokenizer encodes text to token ids and back. It is immutable after
// [Load] apart from internal bounded caches, and safe for concurrent use.
type Tokenizer struct {
	path    string
	kind    string
	tokens  []string // id → token string
	present []bool   // whether the id has a token
	tokID   map[string]int32

	rawSplit  *splitter // added tokens matched in the raw text
	normSplit *splitter // added tokens matched after normalization
	norm      normalizer
	pre       preTokenizer
	model     model

	prefix, suffix []int // special tokens around a single sequence

	dec    decoder
	decErr error // why Decode is unavailable, if it is
}

// Kind returns the kind of tokenizer: "bpe-bytelevel" (BPE over the
// ByteLevel pre-tokenizer, GPT-2 style), "bpe-sentencepiece" (any other BPE,
// SentencePiece style with "▁" for spaces, Llama) or "wordpiece" (BERT).
func (t *Tokenizer) Kind() string { return t.kind }

// VocabSize returns the number of token ids, added tokens included: one more
// than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenString returns the string of token id as the vocabulary spells it
// ("Ġthe" for byte-level BPE, "▁the" for SentencePiece BPE, "##ing" for
// WordPiece; an added token's content) and whether id is a token.
func (t *Tokenizer) TokenString(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || !t.present[id] {
		return "", false
	}
	return t.tokens[id], true
}

// Encode returns the token ids of text with the special tokens added as the
// tokenizer says (see the package documentation).
func (t *Tokenizer) Encode(text string) []int { return t.EncodeOptions(text, true) }

// EncodeOptions returns the token ids of text, with the special tokens of
// the post-processor (or of tokenizer_config.json) added when addSpecial is
// true. Added tokens that occur in text are always matched.
//
// It does not bound its work: for text from outside, use
// [Tokenizer.EncodeLimited]. Text beyond the limits gives the ids encoded
// before the limit was hit.
func (t *Tokenizer) EncodeOptions(text string, addSpecial bool) []int {
	ids, _ := t.encode(text, addSpecial, 0, false)
	return ids
}

// EncodeLimited is [Tokenizer.EncodeOptions] for untrusted text, in bounded
// memory: a section whose normalized form would be more than
// [MaxNormalizedFactor] times longer, or a pre-tokenized word longer than
// [MaxWordBytes], is an error wrapping [ErrLimit] that says where. With
// maxTokens > 0 it stops once it has more than maxTokens ids (the suffix
// of special tokens is then not added): the ids it returns start as the
// whole text's would.
func (t *Tokenizer) EncodeLimited(text string, addSpecial bool, maxTokens int) ([]int, error) {
	return t.encode(text, addSpecial, maxTokens, true)
}

func (t *Tokenizer) encode(text string, addSpecial bool, maxTokens int, limited bool) ([]int, error) {
	n := len(text)/3 + len(t.prefix) + len(t.suffix) + 1
	if maxTokens > 0 {
		n = min(n, maxTokens+len(t.prefix)+1)
	}
	ids := make([]int, 0, n)
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	ids, err := t.encodeText(ids, text, maxTokens, limited)
	if err != nil || (maxTokens > 0 && len(ids) > maxTokens) {
		return ids, err
	}
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids, nil
}

// encodeText appends the ids of text: replace ill-formed UTF-8, cut at the
// added tokens, and for each piece between them normalize, cut at the added
// tokens that match normalized text, pre-tokenize and run the model.
func (t *Tokenizer) encodeText(dst []int, text string, maxTokens int, limited bool) ([]int, error) {
	text = sanitizeUTF8(text)
	st := &encodeState{}
	segs := t.rawSplit.split(nil, text)
	done := func() bool { return maxTokens > 0 && len(dst) > maxTokens }
	for i, seg := range segs {
		if done() {
			return dst, nil
		}
		if seg.tok != nil {
			dst = append(dst, seg.tok.id)
			continue
		}
		s := seg.text
		if s == "" {
			continue
		}
		if t.norm != nil {
			limit := math.MaxInt
			if limited {
				limit = normLimit(len(s))
			}
			var ok bool
			if s, ok = t.norm.normalize(s, limit); !ok {
				return dst, fmt.Errorf("%w: the normalizers make a %d-byte piece of text more than %d times longer (after %d tokens)", ErrLimit, len(s), MaxNormalizedFactor, len(dst))
			}
			if s == "" {
				continue
			}
		}
		st.subs = t.normSplit.split(st.subs[:0], s)
		for _, sub := range st.subs {
			if sub.tok != nil {
				dst = append(dst, sub.tok.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			if t.pre != nil {
				st.words = t.pre.split(st.words[:0], sub.text, i)
			} else {
				st.words = append(st.words[:0], sub.text)
			}
			if limited {
				for _, w := range st.words {
					if len(w) > MaxWordBytes && t.longestUnit(w) > MaxWordBytes {
						return dst, fmt.Errorf("%w: a pre-tokenized word of %d bytes (at most %d; after %d tokens)", ErrLimit, len(w), MaxWordBytes, len(dst))
					}
				}
			}
			dst = t.model.encode(dst, st.words, st)
		}
	}
	return dst, nil
}

// Decode returns the text of ids through the tokenizer.json decoder.
//
// For byte-level BPE it is the exact inverse of encoding: Decode(Encode(s))
// is s (with ill-formed UTF-8 replaced as Encode replaces it), byte for
// byte, and the result is not valid UTF-8 when ids split a character. For
// the other kinds it is best effort, as in Hugging Face tokenizers:
// normalization (lowercasing, accent stripping, the spaces of
// SentencePiece) is not undone, the space that "▁" encodes at the start is
// dropped, ill-formed byte-fallback sequences become U+FFFD, and WordPiece
// words are joined by spaces. Special tokens are kept, spelled as in the
// vocabulary (Hugging Face's skip_special_tokens=False);
// transformers' clean_up_tokenization_spaces is not applied (the WordPiece
// decoder's own cleanup is). An id outside the vocabulary is an error, and
// so is a decoder lmsparse does not implement (wrapping ErrUnsupported).
func (t *Tokenizer) Decode(ids []int) (string, error) {
	if t.decErr != nil {
		return "", t.decErr
	}
	toks := make([]string, len(ids))
	for i, id := range ids {
		s, ok := t.TokenString(id)
		if !ok {
			return "", fmt.Errorf("tokenizer: %s: decode: id %d at position %d is not a token (vocabulary size %d)", t.path, id, i, len(t.tokens))
		}
		toks[i] = s
	}
	if t.dec == nil {
		return strings.Join(toks, " "), nil
	}
	return strings.Join(t.dec.decode(toks), ""), nil
}

// resetCaches empties the word caches (for benchmarks of a cold tokenizer).
func (t *Tokenizer) resetCaches() {
	switch m := t.model.(type) {
	case *bpeModel:
		m.cache.mu.Lock()
		m.cache.m = nil
		m.cache.mu.Unlock()
	case *wordPieceModel:
		m.cache.mu.Lock()
		m.cache.m = nil
		m.cache.mu.Unlock()
	}
}

// TokenID returns the id of a token as the vocabulary spells it (see
// TokenString) and whether it is one.
func (t *Tokenizer) TokenID(s string) (int, bool) {
	id, ok := t.tokID[s]
	return int(id), ok
}

// Prefix returns the special tokens the tokenizer adds before a sequence
// (Llama's BOS), empty for tokenizers that add none (GPT-2).
func (t *Tokenizer) Prefix() []int { return append([]int(nil), t.prefix...) }

// longestUnit returns the length of the longest piece of the word w the
// model encodes as a unit: w, or for a BPE model that cuts at "▁" (Llama's)
// the longest run between two of them.
func (t *Tokenizer) longestUnit(w string) int {
	if m, ok := t.model.(*bpeModel); !ok || !m.cutSpace {
		return len(w)
	}
	longest := 0
	for len(w) > 0 {
		j := strings.Index(w[1:], spaceMark)
		if j < 0 {
			return max(longest, len(w))
		}
		longest = max(longest, j+1)
		w = w[j+1:]
	}
	return longest
}
