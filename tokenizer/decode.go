package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// A decoder turns token strings back into text, as a chain of steps over the
// list of strings (the decoders of Hugging Face tokenizers).
type decoder interface {
	decode(toks []string) []string
}

type sequenceDecoder []decoder

func (q sequenceDecoder) decode(toks []string) []string {
	for _, d := range q {
		toks = d.decode(toks)
	}
	return toks
}

// byteLevelDecoder maps byte-level characters back to bytes. Added tokens are
// kept verbatim. The result is the exact byte string that was encoded, which
// is not valid UTF-8 when the ids split a character.
type byteLevelDecoder struct {
	added map[string]bool
	bytes map[rune]byte
}

func newByteLevelDecoder(added map[string]bool) *byteLevelDecoder {
	d := &byteLevelDecoder{added: added, bytes: make(map[rune]byte, 256)}
	for b, r := range byteToUnicode() {
		d.bytes[r] = byte(b)
	}
	return d
}

func (d *byteLevelDecoder) decode(toks []string) []string {
	var b strings.Builder
	for _, t := range toks {
		if d.added[t] {
			b.WriteString(t)
			continue
		}
		for _, r := range t {
			if c, ok := d.bytes[r]; ok {
				b.WriteByte(c)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return []string{b.String()}
}

// wordPieceDecoder joins WordPiece tokens: a token with the prefix is glued
// to the previous one, any other token after the first gets a leading
// space; with cleanup, the spaces that BERT's tokenization put before
// punctuation and contractions are removed.
type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i > 0 {
			if rest, ok := strings.CutPrefix(t, d.prefix); ok && d.prefix != "" {
				t = rest
			} else {
				t = " " + t
			}
		}
		if d.cleanup {
			t = cleanupTokenization(t)
		}
		out[i] = t
	}
	return out
}

// cleanupTokenization is transformers' clean_up_tokenization: each
// replacement applied to the whole string in turn.
func cleanupTokenization(s string) string {
	for _, p := range [...][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		if strings.Contains(s, p[0]) {
			s = strings.ReplaceAll(s, p[0], p[1])
		}
	}
	return s
}

// metaspaceDecoder turns the replacement character back into spaces and
// drops the space it put before the first token.
type metaspaceDecoder struct {
	replacement string
	scheme      int
}

func (d metaspaceDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		t = strings.ReplaceAll(t, d.replacement, " ")
		if i == 0 && d.scheme != prependNever {
			t = strings.TrimPrefix(t, " ")
		}
		out[i] = t
	}
	return out
}

// replaceDecoder replaces a literal string in every token.
type replaceDecoder struct{ from, to string }

func (d replaceDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.ReplaceAll(t, d.from, d.to)
	}
	return out
}

// byteFallbackDecoder turns runs of "<0xXX>" tokens into the text their
// bytes spell, each ill-formed part becoming U+FFFD.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decode(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) > 0 {
			out = append(out, sanitizeUTF8(string(pending)))
			pending = pending[:0]
		}
	}
	for _, t := range toks {
		if b, ok := byteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// byteToken parses "<0xXX>".
func byteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(t[3])
	lo, ok2 := hexDigit(t[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decode(toks []string) []string { return []string{strings.Join(toks, "")} }

// stripDecoder removes up to start leading and stop trailing occurrences of
// a character from every token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		for k := 0; k < d.start; k++ {
			r, size := utf8.DecodeRuneInString(t)
			if size == 0 || r != d.content {
				break
			}
			t = t[size:]
		}
		for k := 0; k < d.stop; k++ {
			r, size := utf8.DecodeLastRuneInString(t)
			if size == 0 || r != d.content {
				break
			}
			t = t[:len(t)-size]
		}
		out[i] = t
	}
	return out
}
