package tokenizer

import (
	"errors"
	"fmt"
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
)

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
func (t *Tokenizer) EncodeOptions(text string, addSpecial bool) []int {
	ids := make([]int, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	ids = t.encodeText(ids, text)
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids
}

// encodeText appends the ids of text: replace ill-formed UTF-8, cut at the
// added tokens, and for each piece between them normalize, cut at the added
// tokens that match normalized text, pre-tokenize and run the model.
func (t *Tokenizer) encodeText(dst []int, text string) []int {
	text = sanitizeUTF8(text)
	st := &encodeState{}
	segs := t.rawSplit.split(nil, text)
	for i, seg := range segs {
		if seg.tok != nil {
			dst = append(dst, seg.tok.id)
			continue
		}
		s := seg.text
		if s == "" {
			continue
		}
		if t.norm != nil {
			if s = t.norm.normalize(s); s == "" {
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
			dst = t.model.encode(dst, st.words, st)
		}
	}
	return dst
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
