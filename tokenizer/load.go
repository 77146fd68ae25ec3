package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

// Limits on what is read from files.
const (
	maxFileSize    = 64 << 20 // bytes of tokenizer.json or tokenizer_config.json
	maxVocab       = 1 << 21  // token ids are below this
	maxMerges      = 1 << 22  // BPE merges
	maxAddedTokens = 1 << 16
	maxTokenBytes  = 1 << 16 // bytes of one token string
	maxNesting     = 16      // depth of Sequence components
	maxStrip       = 1 << 10 // Strip decoder counts
)

// Load reads path: a tokenizer.json file, or a directory holding
// tokenizer.json. The tokenizer_config.json beside it is read when present
// (for add_bos_token, add_eos_token, bos_token and eos_token). Errors name
// the file and wrap [ErrFormat] or [ErrUnsupported]; a missing file is an
// error wrapping fs.ErrNotExist.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	dir := ""
	if st.IsDir() {
		dir, path = path, filepath.Join(path, "tokenizer.json")
	}
	data, err := readFile(dir, path)
	if err != nil {
		return nil, err
	}
	l := &loader{path: path}
	t, err := l.load(data)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	cfgData, err := readFile(filepath.Dir(path), cfgPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfgData = nil
	case err != nil:
		return nil, err
	}
	if err := l.applyConfig(t, cfgPath, cfgData); err != nil {
		return nil, err
	}
	return t, nil
}

// readFile reads a regular file of at most maxFileSize bytes, without
// blocking on special files; with dir set, its symbolic links must
// resolve inside dir (see package safeio).
func readFile(dir, path string) ([]byte, error) {
	var data []byte
	var err error
	if dir != "" {
		data, err = safeio.ReadFileIn(dir, path, maxFileSize)
	} else {
		data, err = safeio.ReadFile(path, maxFileSize)
	}
	if errors.Is(err, safeio.ErrInput) {
		return nil, fmt.Errorf("tokenizer: %w (%w)", err, ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return data, nil
}

// loader builds a Tokenizer from one file; its errors name the file.
type loader struct {
	path        string
	postDecides bool // the post-processor adds special tokens
}

func (l *loader) errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("tokenizer: %s: %w: %s", l.path, kind, fmt.Sprintf(format, args...))
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// compact renders a JSON value for an error message, shortened.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// fileJSON holds the parts of tokenizer.json that lmsparse reads.
// truncation and padding are ignored, as a transformers tokenizer call
// ignores them by default.
type fileJSON struct {
	AddedTokens   []addedTokenJSON
	Normalizer    json.RawMessage
	PreTokenizer  json.RawMessage
	Model         json.RawMessage
	PostProcessor json.RawMessage
	Decoder       json.RawMessage
}

type addedTokenJSON struct {
	ID         *int64 `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// unmarshal decodes a component, reporting errors as ErrFormat.
func (l *loader) unmarshal(raw json.RawMessage, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return l.errorf(ErrFormat, "%s: field %q has the wrong type (%s, want %s)", what, te.Field, te.Value, te.Type)
		}
		return l.errorf(ErrFormat, "%s: %v", what, err)
	}
	return nil
}

// componentType returns the "type" of a component object ("" when absent).
func (l *loader) componentType(raw json.RawMessage, what string) (string, error) {
	var h struct {
		Type string `json:"type"`
	}
	if err := l.unmarshal(raw, &h, what); err != nil {
		return "", err
	}
	return h.Type, nil
}

func (l *loader) load(data []byte) (*Tokenizer, error) {
	top, err := objectFields(data, true)
	if err != nil {
		return nil, l.errorf(ErrFormat, "%v", err)
	}
	f := fileJSON{
		Normalizer:    top["normalizer"],
		PreTokenizer:  top["pre_tokenizer"],
		Model:         top["model"],
		PostProcessor: top["post_processor"],
		Decoder:       top["decoder"],
	}
	if raw := top["added_tokens"]; !isNull(raw) {
		if err := l.unmarshal(raw, &f.AddedTokens, "added_tokens"); err != nil {
			return nil, err
		}
	}
	if isNull(f.Model) {
		return nil, l.errorf(ErrFormat, "no model")
	}
	t := &Tokenizer{path: l.path}

	modelType, fields, err := l.modelType(f.Model)
	if err != nil {
		return nil, err
	}
	vocab, err := l.parseVocab(fields["vocab"])
	if err != nil {
		return nil, err
	}
	if err := l.buildVocab(t, vocab, f.AddedTokens); err != nil {
		return nil, err
	}
	if t.norm, err = l.parseNormalizer(f.Normalizer, 0); err != nil {
		return nil, err
	}
	if t.pre, err = l.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	_, byteLevel := t.pre.(*byteLevelPre)
	switch modelType {
	case "BPE":
		m, err := l.parseBPE(t, fields, byteLevel)
		if err != nil {
			return nil, err
		}
		t.model = m
		t.kind = KindSentencePieceBPE
		if byteLevel {
			t.kind = KindByteLevelBPE
		}
	case "WordPiece":
		if byteLevel {
			return nil, l.errorf(ErrUnsupported, "pre_tokenizer \"ByteLevel\" with model type \"WordPiece\"")
		}
		m, err := l.parseWordPiece(t, fields)
		if err != nil {
			return nil, err
		}
		t.model = m
		t.kind = KindWordPiece
	}
	if err := l.buildSplitters(t, f.AddedTokens); err != nil {
		return nil, err
	}
	pre, suf, decides, err := l.parsePostProcessor(t, f.PostProcessor, 0)
	if err != nil {
		return nil, err
	}
	t.prefix, t.suffix, l.postDecides = pre, suf, decides
	added := make(map[string]bool, len(f.AddedTokens))
	for _, a := range f.AddedTokens {
		added[a.Content] = true
	}
	// A decoder lmsparse does not implement only makes Decode unavailable
	// (scoring never decodes); a malformed one, or a type that Hugging
	// Face's tokenizers does not have, is a malformed file.
	t.dec, t.decErr = l.parseDecoder(f.Decoder, added, 0)
	if t.decErr != nil && !errors.Is(t.decErr, ErrUnsupported) {
		return nil, t.decErr
	}
	return t, nil
}
