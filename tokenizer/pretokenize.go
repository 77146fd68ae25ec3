package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A preTokenizer splits normalized text into the words the model encodes one
// by one. section is the index of the text's section among the sections
// that the added tokens cut the input into (Metaspace's "first" scheme
// needs it). Words are appended to dst.
type preTokenizer interface {
	split(dst []string, s string, section int) []string
}

// Character classes of the GPT-2 pattern.
const (
	classOther  = iota // [^\s\p{L}\p{N}]
	classLetter        // \p{L}
	classNumber        // \p{N}
	classSpace         // \s (JavaScript's)
)

// byteLevelPre is the ByteLevel pre-tokenizer: the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matched by hand (Go's regexp has no lookahead). The byte-to-unicode
// mapping of the words is folded into the BPE model's initial symbols.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
	ascii          [utf8.RuneSelf]uint8 // class of each ASCII character
}

func newByteLevelPre(addPrefixSpace, useRegex bool) *byteLevelPre {
	p := &byteLevelPre{addPrefixSpace: addPrefixSpace, useRegex: useRegex}
	for c := rune(0); c < utf8.RuneSelf; c++ {
		p.ascii[c] = classOf(c)
	}
	return p
}

func classOf(r rune) uint8 {
	switch {
	case isJSSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// class returns the class of the character at s[i] and its length in bytes.
func (p *byteLevelPre) class(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return p.ascii[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return classOf(r), size
}

func (p *byteLevelPre) split(dst []string, s string, _ int) []string {
	if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if !p.useRegex {
		if s != "" {
			dst = append(dst, s)
		}
		return dst
	}
	for i := 0; i < len(s); {
		j := p.match(s, i)
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// match returns the end of the pattern's match starting at s[i]. Every
// character matches one of the alternatives, so the matches tile s.
func (p *byteLevelPre) match(s string, i int) int {
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	// " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+": an optional space,
	// then a run of one class.
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		j = i + 1
	}
	c, size := p.class(s, j)
	if c != classSpace {
		j += size
		for j < len(s) {
			c2, size2 := p.class(s, j)
			if c2 != c {
				break
			}
			j += size2
		}
		return j
	}
	// "\s+(?!\S)|\s+": a run of whitespace, less its last character when a
	// non-space follows and the run has more than one character.
	_, size = p.class(s, i)
	j, last := i+size, i
	for j < len(s) {
		c2, size2 := p.class(s, j)
		if c2 != classSpace {
			if last > i {
				return last
			}
			return j
		}
		last = j
		j += size2
	}
	return j
}

// bertPre is BERT's pre-tokenizer ("BertPreTokenizer"): words are runs of
// characters that are neither whitespace nor punctuation (isBertPunct);
// each punctuation character is a word of its own; whitespace separates.
type bertPre struct{}

func (bertPre) split(dst []string, s string, _ int) []string {
	start := -1
	for i, r := range s {
		switch {
		case isJSSpace(r):
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		case isBertPunct(r):
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
			dst = append(dst, s[i:i+utf8.RuneLen(r)])
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// Metaspace prepend schemes.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

// metaspacePre is the Metaspace pre-tokenizer: spaces become the replacement
// character (normally "▁"), which is prepended to the text unless it starts
// with it (scheme "always", or "first" for the first section only); with
// split (cut), the text is cut before each replacement character.
type metaspacePre struct {
	replacement string
	scheme      int
	cut         bool
}

func (m *metaspacePre) split(dst []string, s string, section int) []string {
	s = strings.ReplaceAll(s, " ", m.replacement)
	if !strings.HasPrefix(s, m.replacement) && (m.scheme == prependAlways || m.scheme == prependFirst && section == 0) {
		s = m.replacement + s
	}
	if !m.cut {
		if s != "" {
			dst = append(dst, s)
		}
		return dst
	}
	// Cut before every replacement character but a leading one.
	for s != "" {
		off := 1
		if strings.HasPrefix(s, m.replacement) {
			off = len(m.replacement)
		}
		k := strings.Index(s[off:], m.replacement)
		if k < 0 {
			dst = append(dst, s)
			break
		}
		dst = append(dst, s[:off+k])
		s = s[off+k:]
	}
	return dst
}
