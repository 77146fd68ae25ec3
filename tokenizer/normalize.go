package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// A normalizer rewrites the text of one section (the text between two added
// tokens) before pre-tokenization.
//
// limit bounds the length of the result: a normalizer whose output would
// be longer returns ok false without building it, so that a chain of
// expanding replacements cannot exhaust memory (see [MaxNormalizedFactor]).
type normalizer interface {
	normalize(s string, limit int) (out string, ok bool)
}

// MaxNormalizedFactor bounds normalization: the normalized form of a piece
// of text of n bytes may have at most MaxNormalizedFactor·n + 1024 bytes;
// a tokenizer.json whose normalizers expand text beyond that is refused
// when text is encoded (an error wrapping [ErrLimit]).
const MaxNormalizedFactor = 64

// normLimit is the longest normalized form of n bytes.
func normLimit(n int) int { return MaxNormalizedFactor*min(n, 1<<40) + 1024 }

// within returns s, and whether it fits limit.
func within(s string, limit int) (string, bool) {
	if len(s) > limit {
		return "", false
	}
	return s, true
}

// sequenceNormalizer applies normalizers in order ("Sequence").
type sequenceNormalizer []normalizer

func (q sequenceNormalizer) normalize(s string, limit int) (string, bool) {
	for _, n := range q {
		var ok bool
		if s, ok = n.normalize(s, limit); !ok {
			return "", false
		}
	}
	return s, true
}

// prependNormalizer prepends a string ("Prepend"; Llama's legacy "▁").
type prependNormalizer struct{ prefix string }

func (p prependNormalizer) normalize(s string, limit int) (string, bool) {
	if s == "" {
		return s, true
	}
	if len(p.prefix) > limit-len(s) {
		return "", false
	}
	return p.prefix + s, true
}

// replaceNormalizer replaces every occurrence of a literal string
// ("Replace" with a String pattern).
type replaceNormalizer struct{ from, to string }

func (r replaceNormalizer) normalize(s string, limit int) (string, bool) {
	if r.from == "" {
		return s, true
	}
	if grow := int64(len(r.to)) - int64(len(r.from)); grow > 0 {
		// The result's length, before building it: at most len(s)
		// occurrences, each at most 64 MiB longer, fit an int64.
		if int64(len(s))+int64(strings.Count(s, r.from))*grow > int64(limit) {
			return "", false
		}
	}
	return strings.ReplaceAll(s, r.from, r.to), true
}

// lowercaseNormalizer lowercases with the full Unicode mapping
// ("Lowercase").
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string, limit int) (string, bool) {
	return within(toLowerJS(s), limit)
}

// nfdNormalizer applies Unicode Normalization Form D ("NFD").
type nfdNormalizer struct{}

func (nfdNormalizer) normalize(s string, limit int) (string, bool) { return within(nfd(s), limit) }

// stripNormalizer trims whitespace from the ends ("Strip").
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string, limit int) (string, bool) {
	if n.left {
		s = strings.TrimLeftFunc(s, isJSSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, isJSSpace)
	}
	return within(s, limit)
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

func (n bertNormalizer) normalize(s string, limit int) (string, bool) {
	return within(n.apply(s), limit)
}

func (n bertNormalizer) apply(s string) string {
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
