package bpe

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmsparse/lmsparse/tokenizer"
)

// byteLevel is the ByteLevel pre-tokenizer, post-processor and decoder.
type byteLevel struct {
	Type           string `json:"type"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	TrimOffsets    bool   `json:"trim_offsets"`
	UseRegex       bool   `json:"use_regex"`
}

// The fields of tokenizer.json, in the order Hugging Face tokenizers
// writes them.
type tokenizerFile struct {
	Version       string       `json:"version"`
	Truncation    any          `json:"truncation"`
	Padding       any          `json:"padding"`
	AddedTokens   []addedToken `json:"added_tokens"`
	Normalizer    any          `json:"normalizer"`
	PreTokenizer  byteLevel    `json:"pre_tokenizer"`
	PostProcessor byteLevel    `json:"post_processor"`
	Decoder       byteLevel    `json:"decoder"`
	Model         bpeFile      `json:"model"`
}

type bpeFile struct {
	Type                    string      `json:"type"`
	Dropout                 *float64    `json:"dropout"`
	UnkToken                *string     `json:"unk_token"`
	ContinuingSubwordPrefix string      `json:"continuing_subword_prefix"`
	EndOfWordSuffix         string      `json:"end_of_word_suffix"`
	FuseUnk                 bool        `json:"fuse_unk"`
	ByteFallback            bool        `json:"byte_fallback"`
	IgnoreMerges            bool        `json:"ignore_merges"`
	Vocab                   vocabFile   `json:"vocab"`
	Merges                  [][2]string `json:"merges"`
}

// addedToken is an entry of added_tokens.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// vocabFile is the vocabulary, token strings in id order; it is written as
// a JSON object in that order, as Hugging Face writes it.
type vocabFile []string

func (v vocabFile) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for id, s := range v {
		if id > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(s, "")
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		k, _ = json.Marshal(id)
		b.Write(k)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// configFile is tokenizer_config.json.
type configFile struct {
	AddBOSToken               bool   `json:"add_bos_token"`
	AddEOSToken               bool   `json:"add_eos_token"`
	CleanUpTokenizationSpaces bool   `json:"clean_up_tokenization_spaces"`
	ModelMaxLength            int    `json:"model_max_length"`
	TokenizerClass            string `json:"tokenizer_class"`
	BOSToken                  string `json:"bos_token,omitempty"`
	EOSToken                  string `json:"eos_token,omitempty"`
	UNKToken                  string `json:"unk_token,omitempty"`
}

// marshal encodes v as JSON without escaping <, > and & (the strings stay
// readable), indented by indent when it is not empty.
func marshal(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// spell returns s with each byte spelled by GPT-2's byte-to-unicode map, as
// byte-level tokens appear in tokenizer.json.
func spell(s string, u *[256]rune) string {
	var b strings.Builder
	for i := range len(s) {
		b.WriteRune(u[s[i]])
	}
	return b.String()
}

// WriteTokenizer writes the model to dir (created if needed) as
// tokenizer.json and tokenizer_config.json (see the package comment). The
// files depend only on the model, byte for byte.
func (m *Model) WriteTokenizer(dir string) error {
	u := tokenizer.ByteToUnicode()
	vocab := make(vocabFile, len(m.tokens))
	for id, s := range m.tokens {
		vocab[id] = spell(s, &u)
	}
	merges := make([][2]string, len(m.merges))
	for i, mg := range m.merges {
		merges[i] = [2]string{vocab[mg.Left], vocab[mg.Right]}
	}
	added := []addedToken{}
	if m.EOT != "" {
		added = append(added, addedToken{ID: len(vocab), Content: m.EOT, Special: true})
		vocab = append(vocab, m.EOT)
	}
	level := byteLevel{Type: "ByteLevel", AddPrefixSpace: false, TrimOffsets: true, UseRegex: true}
	tok := tokenizerFile{
		Version:       "1.0",
		AddedTokens:   added,
		PreTokenizer:  level,
		PostProcessor: level,
		Decoder:       level,
		Model:         bpeFile{Type: "BPE", Vocab: vocab, Merges: merges},
	}
	cfg := configFile{ModelMaxLength: m.MaxLength, TokenizerClass: "PreTrainedTokenizerFast", BOSToken: m.EOT, EOSToken: m.EOT, UNKToken: m.EOT}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"tokenizer.json", tok}, {"tokenizer_config.json", cfg}} {
		b, err := marshal(f.v, "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
