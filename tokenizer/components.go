package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// modelType returns the model's type and its fields. The older
// serialization without "type" is recognized as tokenizers.js does: a list
// vocabulary is Unigram; continuing_subword_prefix and unk_token make BPE
// when there are merges and WordPiece otherwise.
func (l *loader) modelType(raw json.RawMessage) (string, map[string]json.RawMessage, error) {
	fields, err := objectFields(raw, true)
	if err != nil {
		return "", nil, l.errorf(ErrFormat, "model is not an object: %v", err)
	}
	var typ string
	if r, ok := fields["type"]; ok {
		if err := l.unmarshal(r, &typ, "model.type"); err != nil {
			return "", nil, err
		}
	}
	switch typ {
	case "BPE", "WordPiece":
		return typ, fields, nil
	case "":
	default:
		return "", nil, l.errorf(ErrUnsupported, "model type %q (supported: BPE, WordPiece)", typ)
	}
	if v := bytes.TrimSpace(fields["vocab"]); len(v) > 0 && v[0] == '[' {
		return "", nil, l.errorf(ErrUnsupported, "model without \"type\" whose vocab is a list (Unigram)")
	}
	_, hasPrefix := fields["continuing_subword_prefix"]
	_, hasUnk := fields["unk_token"]
	if !hasPrefix || !hasUnk {
		return "", nil, l.errorf(ErrUnsupported, "model without \"type\" that is neither BPE nor WordPiece")
	}
	if _, ok := fields["merges"]; ok {
		return "BPE", fields, nil
	}
	return "WordPiece", fields, nil
}

type vocabEntry struct {
	tok string
	id  int32
}

// parseVocab reads the vocab object in file order.
func (l *loader) parseVocab(raw json.RawMessage) ([]vocabEntry, error) {
	if isNull(raw) {
		return nil, l.errorf(ErrFormat, "model has no vocab")
	}
	s := &jsonScanner{b: raw}
	if !s.consume('{') {
		return nil, l.errorf(ErrFormat, "model.vocab is not an object")
	}
	var out []vocabEntry
	if s.consume('}') {
		return out, nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return nil, l.errorf(ErrFormat, "model.vocab: %v", err)
		}
		if !s.consume(':') {
			return nil, l.errorf(ErrFormat, "model.vocab: %v", s.fail("expected ':'"))
		}
		if c := s.peek(); c != '-' && (c < '0' || c > '9') {
			return nil, l.errorf(ErrFormat, "model.vocab[%q] is not a number", key)
		}
		num, err := s.number()
		if err != nil {
			return nil, l.errorf(ErrFormat, "model.vocab: %v", err)
		}
		id, err := strconv.ParseInt(num, 10, 64)
		if err != nil || id < 0 || id >= maxVocab {
			return nil, l.errorf(ErrFormat, "model.vocab[%q] = %s is not an id in 0..%d", key, num, maxVocab-1)
		}
		if len(key) > maxTokenBytes {
			return nil, l.errorf(ErrFormat, "model.vocab has a token of %d bytes (at most %d)", len(key), maxTokenBytes)
		}
		if len(out) >= maxVocab {
			return nil, l.errorf(ErrFormat, "model.vocab has more than %d entries", maxVocab)
		}
		out = append(out, vocabEntry{key, int32(id)})
		if s.consume('}') {
			return out, nil
		}
		if !s.consume(',') {
			return nil, l.errorf(ErrFormat, "model.vocab: %v", s.fail("expected ',' or '}'"))
		}
	}
}

// buildVocab fills the id tables from the vocabulary and the added tokens
// (an added token overrides the vocabulary entry with its id).
func (l *loader) buildVocab(t *Tokenizer, vocab []vocabEntry, added []addedTokenJSON) error {
	if len(added) > maxAddedTokens {
		return l.errorf(ErrFormat, "more than %d added_tokens", maxAddedTokens)
	}
	n := 0
	for _, e := range vocab {
		n = max(n, int(e.id)+1)
	}
	for i, a := range added {
		switch {
		case a.ID == nil:
			return l.errorf(ErrFormat, "added_tokens[%d] has no id", i)
		case *a.ID < 0 || *a.ID >= maxVocab:
			return l.errorf(ErrFormat, "added_tokens[%d].id = %d is not in 0..%d", i, *a.ID, maxVocab-1)
		case a.Content == "":
			return l.errorf(ErrFormat, "added_tokens[%d] has empty content", i)
		case len(a.Content) > maxTokenBytes:
			return l.errorf(ErrFormat, "added_tokens[%d] has %d bytes (at most %d)", i, len(a.Content), maxTokenBytes)
		case a.SingleWord:
			return l.errorf(ErrUnsupported, "added token %q with single_word", a.Content)
		}
		n = max(n, int(*a.ID)+1)
	}
	t.tokens = make([]string, n)
	t.present = make([]bool, n)
	t.tokID = make(map[string]int32, len(vocab)+len(added))
	for _, e := range vocab {
		t.tokID[e.tok] = e.id
	}
	for _, e := range vocab {
		if t.tokID[e.tok] == e.id {
			t.tokens[e.id], t.present[e.id] = e.tok, true
		}
	}
	for _, a := range added {
		id := int32(*a.ID)
		t.tokID[a.Content] = id
		t.tokens[id], t.present[id] = a.Content, true
	}
	return nil
}

// buildSplitters sets up the matching of added tokens: in the raw text, or
// (normalized tokens, when there is a normalizer) in the normalized text,
// by their normalized content.
func (l *loader) buildSplitters(t *Tokenizer, added []addedTokenJSON) error {
	var raw, norm []*addedToken
	for _, a := range added {
		tok := &addedToken{
			content: a.Content,
			id:      int(*a.ID),
			lstrip:  a.LStrip,
			rstrip:  a.RStrip,
		}
		tok.normalized = !a.Special
		if a.Normalized != nil {
			tok.normalized = *a.Normalized
		}
		if tok.normalized && t.norm != nil {
			content, ok := t.norm.normalize(sanitizeUTF8(a.Content), normLimit(len(a.Content)))
			if !ok {
				return l.errorf(ErrFormat, "added token %d: the normalizers make it more than %d times longer", tok.id, MaxNormalizedFactor)
			}
			if tok.content = content; tok.content != "" {
				norm = append(norm, tok)
			}
			continue
		}
		raw = append(raw, tok)
	}
	t.rawSplit, t.normSplit = newSplitter(raw), newSplitter(norm)
	return nil
}

// pattern is the pattern of Replace and Split components.
type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// literal returns the pattern's string, or an error naming the component.
func (l *loader) literal(p pattern, raw json.RawMessage, what string) (string, error) {
	switch {
	case p.String != nil:
		return *p.String, nil
	case p.Regex != nil:
		return "", l.errorf(ErrUnsupported, "%s with pattern %s (only String patterns are supported)", what, compact(raw))
	}
	return "", l.errorf(ErrFormat, "%s has no pattern", what)
}

func (l *loader) parseNormalizer(raw json.RawMessage, depth int) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	if depth > maxNesting {
		return nil, l.errorf(ErrFormat, "normalizers nested more than %d deep", maxNesting)
	}
	typ, err := l.componentType(raw, "normalizer")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var c struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := l.unmarshal(raw, &c, "normalizer"); err != nil {
			return nil, err
		}
		var q sequenceNormalizer
		for _, r := range c.Normalizers {
			n, err := l.parseNormalizer(r, depth+1)
			if err != nil {
				return nil, err
			}
			if n != nil {
				q = append(q, n)
			}
		}
		if len(q) == 0 {
			return nil, nil
		}
		return q, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := l.unmarshal(raw, &c, "normalizer"); err != nil {
			return nil, err
		}
		return prependNormalizer{c.Prepend}, nil
	case "Replace":
		var c struct {
			Pattern json.RawMessage `json:"pattern"`
			Content string          `json:"content"`
		}
		var p pattern
		if err := l.unmarshal(raw, &c, "normalizer"); err != nil {
			return nil, err
		}
		if !isNull(c.Pattern) {
			if err := l.unmarshal(c.Pattern, &p, "normalizer"); err != nil {
				return nil, err
			}
		}
		from, err := l.literal(p, c.Pattern, `normalizer "Replace"`)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{from, c.Content}, nil
	case "BertNormalizer":
		var c struct {
			CleanText    *bool `json:"clean_text"`
			Chinese      *bool `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}
		if err := l.unmarshal(raw, &c, "normalizer"); err != nil {
			return nil, err
		}
		def := func(b *bool) bool { return b == nil || *b }
		return bertNormalizer{cleanText: def(c.CleanText), chineseChars: def(c.Chinese), lowercase: def(c.Lowercase), stripAccents: c.StripAccents}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFD":
		return nfdNormalizer{}, nil
	case "Strip":
		var c struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := l.unmarshal(raw, &c, "normalizer"); err != nil {
			return nil, err
		}
		return stripNormalizer{c.Left, c.Right}, nil
	}
	return nil, l.errorf(ErrUnsupported, "normalizer %q (supported: Sequence, Prepend, Replace, BertNormalizer, Lowercase, NFD, Strip)", typ)
}

// metaspaceConfig reads the fields shared by the Metaspace pre-tokenizer
// and decoder.
func (l *loader) metaspaceConfig(raw json.RawMessage, what string) (*metaspacePre, error) {
	var c struct {
		Replacement    *string `json:"replacement"`
		PrependScheme  *string `json:"prepend_scheme"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		Split          *bool   `json:"split"`
	}
	if err := l.unmarshal(raw, &c, what); err != nil {
		return nil, err
	}
	m := &metaspacePre{replacement: "\u2581", scheme: prependAlways, cut: c.Split == nil || *c.Split}
	if c.Replacement != nil {
		m.replacement = *c.Replacement
	}
	if r, size := utf8.DecodeRuneInString(m.replacement); size == 0 || size != len(m.replacement) || r == utf8.RuneError {
		return nil, l.errorf(ErrFormat, "%s replacement %q is not one character", what, m.replacement)
	}
	switch {
	case c.PrependScheme != nil:
		switch *c.PrependScheme {
		case "always":
		case "first":
			m.scheme = prependFirst
		case "never":
			m.scheme = prependNever
		default:
			return nil, l.errorf(ErrFormat, "%s prepend_scheme %q", what, *c.PrependScheme)
		}
	case c.AddPrefixSpace != nil && !*c.AddPrefixSpace:
		m.scheme = prependNever
	}
	return m, nil
}

func (l *loader) parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := l.componentType(raw, "pre_tokenizer")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		var c struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := l.unmarshal(raw, &c, "pre_tokenizer"); err != nil {
			return nil, err
		}
		return newByteLevelPre(c.AddPrefixSpace, c.UseRegex == nil || *c.UseRegex), nil
	case "BertPreTokenizer":
		return bertPre{}, nil
	case "Metaspace":
		return l.metaspaceConfig(raw, `pre_tokenizer "Metaspace"`)
	case "Split":
		var c struct {
			Pattern json.RawMessage `json:"pattern"`
		}
		if err := l.unmarshal(raw, &c, "pre_tokenizer"); err != nil {
			return nil, err
		}
		return nil, l.errorf(ErrUnsupported, "pre_tokenizer \"Split\" with pattern %s", compact(c.Pattern))
	case "Sequence":
		var c struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := l.unmarshal(raw, &c, "pre_tokenizer"); err != nil {
			return nil, err
		}
		var types []string
		for _, r := range c.PreTokenizers {
			typ, err := l.componentType(r, "pre_tokenizer")
			if err != nil {
				return nil, err
			}
			types = append(types, typ)
		}
		return nil, l.errorf(ErrUnsupported, "pre_tokenizer \"Sequence\" of [%s]", strings.Join(types, ", "))
	}
	return nil, l.errorf(ErrUnsupported, "pre_tokenizer %q (supported: ByteLevel, BertPreTokenizer, Metaspace)", typ)
}

// parseMerges reads the merges in rank order: "a b" strings or [a, b]
// pairs.
func (l *loader) parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	s := &jsonScanner{b: raw}
	if !s.consume('[') {
		return nil, l.errorf(ErrFormat, "model.merges is not a list")
	}
	var out [][2]string
	if s.consume(']') {
		return out, nil
	}
	for {
		if len(out) >= maxMerges {
			return nil, l.errorf(ErrFormat, "more than %d merges", maxMerges)
		}
		var p [2]string
		switch s.peek() {
		case '"':
			v, err := s.str()
			if err != nil {
				return nil, l.errorf(ErrFormat, "model.merges: %v", err)
			}
			a, b, ok := strings.Cut(v, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, l.errorf(ErrFormat, "merge %d (%q) is not two tokens separated by a space", len(out), v)
			}
			p = [2]string{a, b}
		case '[':
			s.i++
			a, err1 := s.str()
			comma := s.consume(',')
			b, err2 := s.str()
			if err1 != nil || err2 != nil || !comma || !s.consume(']') {
				return nil, l.errorf(ErrFormat, "merge %d is not a pair of strings", len(out))
			}
			p = [2]string{a, b}
		default:
			return nil, l.errorf(ErrFormat, "merge %d is not a string or a pair", len(out))
		}
		if p[0] == "" || p[1] == "" || len(p[0])+len(p[1]) > maxTokenBytes {
			return nil, l.errorf(ErrFormat, "merge %d (%q %q) has an empty or oversized part", len(out), p[0], p[1])
		}
		out = append(out, p)
		if s.consume(']') {
			return out, nil
		}
		if !s.consume(',') {
			return nil, l.errorf(ErrFormat, "model.merges: %v", s.fail("expected ',' or ']'"))
		}
	}
}

func (l *loader) parseBPE(t *Tokenizer, fields map[string]json.RawMessage, byteLevel bool) (*bpeModel, error) {
	get := func(key string, v any) error {
		if r, ok := fields[key]; ok && !isNull(r) {
			return l.unmarshal(r, v, "model."+key)
		}
		return nil
	}
	var (
		unk                        *string
		byteFallback, fuse, ignore bool
		dropout                    *float64
		prefix, suffix             string
	)
	for _, f := range []struct {
		key string
		v   any
	}{
		{"unk_token", &unk}, {"byte_fallback", &byteFallback}, {"fuse_unk", &fuse},
		{"ignore_merges", &ignore}, {"dropout", &dropout},
		{"continuing_subword_prefix", &prefix}, {"end_of_word_suffix", &suffix},
	} {
		if err := get(f.key, f.v); err != nil {
			return nil, err
		}
	}
	switch {
	case dropout != nil && *dropout != 0:
		return nil, l.errorf(ErrUnsupported, "BPE dropout %g", *dropout)
	case prefix != "":
		return nil, l.errorf(ErrUnsupported, "BPE continuing_subword_prefix %q", prefix)
	case suffix != "":
		return nil, l.errorf(ErrUnsupported, "BPE end_of_word_suffix %q", suffix)
	}
	m := &bpeModel{
		tokID:        t.tokID,
		nSlots:       int32(len(t.tokens)),
		byteLevel:    byteLevel,
		byteFallback: byteFallback,
		fuseUnk:      fuse,
		ignoreMerges: ignore,
		unk:          -1,
	}
	if unk != nil {
		id, ok := t.tokID[*unk]
		if !ok {
			return nil, l.errorf(ErrFormat, "unk_token %q is not in the vocabulary", *unk)
		}
		m.unk = id
	}
	merges, err := l.parseMerges(fields["merges"])
	if err != nil {
		return nil, err
	}
	if err := m.initMerges(merges); err != nil {
		return nil, l.errorf(ErrFormat, "%v", err)
	}
	return m, nil
}

func (l *loader) parseWordPiece(t *Tokenizer, fields map[string]json.RawMessage) (*wordPieceModel, error) {
	unk, prefix, maxChars := "[UNK]", "##", 100
	for key, v := range map[string]any{"unk_token": &unk, "continuing_subword_prefix": &prefix, "max_input_chars_per_word": &maxChars} {
		if r, ok := fields[key]; ok && !isNull(r) {
			if err := l.unmarshal(r, v, "model."+key); err != nil {
				return nil, err
			}
		}
	}
	id, ok := t.tokID[unk]
	if !ok {
		return nil, l.errorf(ErrFormat, "unk_token %q is not in the vocabulary", unk)
	}
	if maxChars < 0 {
		return nil, l.errorf(ErrFormat, "max_input_chars_per_word = %d", maxChars)
	}
	return newWordPiece(t.tokID, prefix, id, maxChars), nil
}

// parsePostProcessor returns the special tokens the post-processor puts
// before and after a single sequence, and whether it adds special tokens at
// all (TemplateProcessing, BertProcessing, RobertaProcessing do; ByteLevel
// does not).
func (l *loader) parsePostProcessor(t *Tokenizer, raw json.RawMessage, depth int) (pre, suf []int, decides bool, err error) {
	if isNull(raw) {
		return nil, nil, false, nil
	}
	if depth > maxNesting {
		return nil, nil, false, l.errorf(ErrFormat, "post_processors nested more than %d deep", maxNesting)
	}
	typ, err := l.componentType(raw, "post_processor")
	if err != nil {
		return nil, nil, false, err
	}
	checkID := func(id int64, what string) error {
		if id < 0 || id >= int64(len(t.tokens)) || !t.present[id] {
			return l.errorf(ErrFormat, "post_processor: %s id %d is not a token", what, id)
		}
		return nil
	}
	switch typ {
	case "ByteLevel":
		return nil, nil, false, nil
	case "TemplateProcessing":
		type ref struct {
			ID string `json:"id"`
		}
		var c struct {
			Single []struct {
				SpecialToken *ref `json:"SpecialToken"`
				Sequence     *ref `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int64 `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := l.unmarshal(raw, &c, "post_processor"); err != nil {
			return nil, nil, false, err
		}
		seen := false
		for _, item := range c.Single {
			switch {
			case item.Sequence != nil:
				if item.Sequence.ID != "A" || seen {
					return nil, nil, false, l.errorf(ErrFormat, "TemplateProcessing single template has sequence %q", item.Sequence.ID)
				}
				seen = true
			case item.SpecialToken != nil:
				name := item.SpecialToken.ID
				var ids []int64
				if s, ok := c.SpecialTokens[name]; ok && len(s.IDs) > 0 {
					ids = s.IDs
				} else if id, ok := t.tokID[name]; ok {
					ids = []int64{int64(id)}
				} else {
					return nil, nil, false, l.errorf(ErrFormat, "TemplateProcessing special token %q is not defined", name)
				}
				for _, id := range ids {
					if err := checkID(id, "special token "+name); err != nil {
						return nil, nil, false, err
					}
					if seen {
						suf = append(suf, int(id))
					} else {
						pre = append(pre, int(id))
					}
				}
			default:
				return nil, nil, false, l.errorf(ErrFormat, "TemplateProcessing single template has an item that is neither SpecialToken nor Sequence")
			}
		}
		if !seen {
			return nil, nil, false, l.errorf(ErrFormat, "TemplateProcessing single template has no sequence $A")
		}
		return pre, suf, true, nil
	case "BertProcessing", "RobertaProcessing":
		var c struct {
			Cls []json.RawMessage `json:"cls"`
			Sep []json.RawMessage `json:"sep"`
		}
		if err := l.unmarshal(raw, &c, "post_processor"); err != nil {
			return nil, nil, false, err
		}
		tokenID := func(p []json.RawMessage, what string) (int, error) {
			var id int64
			if len(p) != 2 || json.Unmarshal(p[1], &id) != nil {
				return 0, l.errorf(ErrFormat, "post_processor %s %s is not a [token, id] pair", typ, what)
			}
			return int(id), checkID(id, what)
		}
		cls, err := tokenID(c.Cls, "cls")
		if err != nil {
			return nil, nil, false, err
		}
		sep, err := tokenID(c.Sep, "sep")
		if err != nil {
			return nil, nil, false, err
		}
		return []int{cls}, []int{sep}, true, nil
	case "Sequence":
		var c struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := l.unmarshal(raw, &c, "post_processor"); err != nil {
			return nil, nil, false, err
		}
		for _, r := range c.Processors {
			p, s, d, err := l.parsePostProcessor(t, r, depth+1)
			if err != nil {
				return nil, nil, false, err
			}
			pre = append(p, pre...)
			suf = append(suf, s...)
			decides = decides || d
		}
		return pre, suf, decides, nil
	}
	return nil, nil, false, l.errorf(ErrUnsupported, "post_processor %q (supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)", typ)
}

// applyConfig reads tokenizer_config.json: when the post-processor adds no
// special tokens, add_bos_token and add_eos_token decide.
func (l *loader) applyConfig(t *Tokenizer, path string, data []byte) error {
	if data == nil {
		return nil
	}
	cl := &loader{path: path}
	var c struct {
		AddBOS *bool           `json:"add_bos_token"`
		AddEOS *bool           `json:"add_eos_token"`
		BOS    json.RawMessage `json:"bos_token"`
		EOS    json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return cl.errorf(ErrFormat, "invalid JSON: %v", err)
		}
		return cl.errorf(ErrFormat, "field %q has the wrong type (%s, want %s)", te.Field, te.Value, te.Type)
	}
	if l.postDecides {
		return nil
	}
	tokenOf := func(raw json.RawMessage, key string) (int, error) {
		var s string
		if isNull(raw) || json.Unmarshal(raw, &s) != nil {
			var o struct {
				Content *string `json:"content"`
			}
			if json.Unmarshal(raw, &o) != nil || o.Content == nil {
				what := compact(raw)
				if len(raw) == 0 {
					what = "missing"
				}
				return 0, cl.errorf(ErrFormat, "add_%s is true but %s is %s", key, key, what)
			}
			s = *o.Content
		}
		id, ok := t.tokID[s]
		if !ok {
			return 0, cl.errorf(ErrFormat, "%s %q is not in the vocabulary", key, s)
		}
		return int(id), nil
	}
	if c.AddBOS != nil && *c.AddBOS {
		id, err := tokenOf(c.BOS, "bos_token")
		if err != nil {
			return err
		}
		t.prefix = []int{id}
	}
	if c.AddEOS != nil && *c.AddEOS {
		id, err := tokenOf(c.EOS, "eos_token")
		if err != nil {
			return err
		}
		t.suffix = []int{id}
	}
	return nil
}

func (l *loader) parseDecoder(raw json.RawMessage, added map[string]bool, depth int) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	if depth > maxNesting {
		return nil, l.errorf(ErrFormat, "decoders nested more than %d deep", maxNesting)
	}
	typ, err := l.componentType(raw, "decoder")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		return newByteLevelDecoder(added), nil
	case "WordPiece":
		var c struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}
		if err := l.unmarshal(raw, &c, "decoder"); err != nil {
			return nil, err
		}
		d := wordPieceDecoder{prefix: "##", cleanup: c.Cleanup == nil || *c.Cleanup}
		if c.Prefix != nil {
			d.prefix = *c.Prefix
		}
		return d, nil
	case "Metaspace":
		m, err := l.metaspaceConfig(raw, `decoder "Metaspace"`)
		if err != nil {
			return nil, err
		}
		return metaspaceDecoder{replacement: m.replacement, scheme: m.scheme}, nil
	case "Replace":
		var c struct {
			Pattern json.RawMessage `json:"pattern"`
			Content string          `json:"content"`
		}
		var p pattern
		if err := l.unmarshal(raw, &c, "decoder"); err != nil {
			return nil, err
		}
		if !isNull(c.Pattern) {
			if err := l.unmarshal(c.Pattern, &p, "decoder"); err != nil {
				return nil, err
			}
		}
		from, err := l.literal(p, c.Pattern, `decoder "Replace"`)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{from, c.Content}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var c struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := l.unmarshal(raw, &c, "decoder"); err != nil {
			return nil, err
		}
		r, size := utf8.DecodeRuneInString(c.Content)
		if size == 0 || size != len(c.Content) || c.Start < 0 || c.Stop < 0 || c.Start > maxStrip || c.Stop > maxStrip {
			return nil, l.errorf(ErrFormat, "decoder \"Strip\" %s", compact(raw))
		}
		return stripDecoder{content: r, start: c.Start, stop: c.Stop}, nil
	case "Sequence":
		var c struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := l.unmarshal(raw, &c, "decoder"); err != nil {
			return nil, err
		}
		var q sequenceDecoder
		for _, r := range c.Decoders {
			d, err := l.parseDecoder(r, added, depth+1)
			if err != nil {
				return nil, err
			}
			if d != nil {
				q = append(q, d)
			}
		}
		return q, nil
	}
	switch typ {
	case "BPEDecoder", "CTC": // Hugging Face tokenizers' other decoders
		return nil, l.errorf(ErrUnsupported, "decoder %q (supported: ByteLevel, WordPiece, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)", typ)
	}
	return nil, l.errorf(ErrFormat, "decoder %q is not a decoder type of Hugging Face tokenizers", typ)
}
