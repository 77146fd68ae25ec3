package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// A normalizer rewrites the text of one section (the text between two added
// tokens) before pre-tokenization.
type normalizer interface {
	normalize(s string) string
}

// sequenceNormalizer applies normalizers in order ("Sequence").
type sequenceNormalizer []normalizer

func (q sequenceNormalizer) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// prependNormalizer prepends a string ("Prepend"; Llama's legacy "▁").
type prependNormalizer struct{ prefix string }

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return p.prefix + s
}

// replaceNormalizer replaces every occurrence of a literal string
// ("Replace" with a String pattern).
type replaceNormalizer struct{ from, to string }

func (r replaceNormalizer) normalize(s string) string {
	if r.from == "" {
		return s
	}
	return strings.ReplaceAll(s, r.from, r.to)
}

// lowercaseNormalizer lowercases with the full Unicode mapping
// ("Lowercase").
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string { return toLowerJS(s) }

// nfdNormalizer applies Unicode Normalization Form D ("NFD").
type nfdNormalizer struct{}

func (nfdNormalizer) normalize(s string) string { return nfd(s) }

// stripNormalizer trims whitespace from the ends ("Strip").
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, isJSSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, isJSSpace)
	}
	return s
}

// bertNormalizer is BERT's normalizer ("BertNormalizer"), step for step as
// tokenizers.js applies it:
//
//  1. clean_text: drop U+0000, U+FFFD and the characters of categories Cc,
//     Cf, Co and Cs other than tab, newline and carriage return; then turn
//     every remaining whitespace character into a space.
//  2. handle_chinese_chars: surround each CJK ideograph (see isCJK) with
//     spaces.
//  3. lowercase: the full Unicode lowercase mapping (toLowerJS); then, unless
//     strip_accents is false, strip accents.
//  4. strip_accents without lowercase: strip accents when strip_accents is
//     true.
//
// Stripping accents is NFD followed by removal of the nonspacing marks (Mn).
type bertNormalizer struct {
	cleanText, chineseChars, lowercase bool
	stripAccents                       *bool
}

func (n bertNormalizer) normalize(s string) string {
	if n.cleanText {
		s = bertCleanText(s)
	}
	if n.chineseChars {
		s = bertSpaceCJK(s)
	}
	strip := n.stripAccents != nil && *n.stripAccents
	if n.lowercase {
		s = toLowerJS(s)
		strip = n.stripAccents == nil || *n.stripAccents
	}
	if strip {
		s = removeMn(nfd(s))
	}
	return s
}

func bertCleanText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c < 0x20 && c != ' ' || c == 0x7F {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == 0 || r == utf8.RuneError || isBertControl(r):
		case isJSSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func bertSpaceCJK(s string) string {
	i := 0
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if isCJK(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if isCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
