package tokenizer

//go:generate node mktables.mjs

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cccRange is a range of non-starters sharing one canonical combining class
// (stored as the rank of the class, see mktables.mjs).
type cccRange struct {
	lo, hi int32
	rank   uint8
}

// isJSSpace reports whether r matches JavaScript's \s: the ECMAScript
// WhiteSpace and LineTerminator characters. It differs from
// unicode.IsSpace: U+FEFF is a space here, U+0085 is not.
func isJSSpace(r rune) bool {
	switch {
	case r == ' ', r >= '\t' && r <= '\r':
		return true
	case r < 0xA0:
		return false
	}
	switch r {
	case 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// trimJSSpace trims JavaScript whitespace from both ends (String.trim).
func trimJSSpace(s string) string { return strings.TrimFunc(s, isJSSpace) }

// isBertPunct reports whether r is punctuation for the BERT pre-tokenizer:
// a Unicode punctuation character (category P) or any ASCII character that
// is neither a letter, a digit, a space nor a control.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0x21 && r <= 0x2F || r >= 0x3A && r <= 0x40 || r >= 0x5B && r <= 0x60 || r >= 0x7B && r <= 0x7E
	}
	return unicode.IsPunct(r)
}

// isBertControl reports whether the BERT normalizer's clean_text drops r:
// categories Cc, Cf, Co and Cs, except tab, newline and carriage return.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7F
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// isCJK reports whether the BERT normalizer surrounds r with spaces
// (handle_chinese_chars). tokenizers.js tests UTF-16 code units, so only the
// Basic Multilingual Plane blocks take effect: CJK Unified Ideographs,
// Extension A and the Compatibility Ideographs.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF || r >= 0xF900 && r <= 0xFAFF
}

// Hangul syllable decomposition constants (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = 19 * hangulNCount
)

// decomposition returns the full canonical decomposition of r (not for
// Hangul syllables), or "" when r has none.
func decomposition(r rune) string {
	if r < 0xC0 {
		return ""
	}
	i := sort.Search(len(nfdKeys), func(i int) bool { return nfdKeys[i] >= r })
	if i == len(nfdKeys) || nfdKeys[i] != r {
		return ""
	}
	return nfdData[nfdOffsets[i]:nfdOffsets[i+1]]
}

// cccRank returns the rank of r's canonical combining class (0 for
// starters).
func cccRank(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(cccRanges), func(i int) bool { return cccRanges[i].hi >= r })
	if i == len(cccRanges) || cccRanges[i].lo > r {
		return 0
	}
	return cccRanges[i].rank
}

// needsNFD reports whether r may change under NFD, alone or through
// reordering.
func needsNFD(r rune) bool {
	if r < 0xC0 {
		return false
	}
	if r >= hangulSBase && r < hangulSBase+hangulSCount {
		return true
	}
	return decomposition(r) != "" || cccRank(r) != 0
}

// nfd returns the canonical decomposition (Unicode Normalization Form D) of
// s: every character fully decomposed, then each run of non-starters put in
// canonical order (stable sort by combining class).
func nfd(s string) string {
	i := 0
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if needsNFD(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	runes := make([]rune, 0, len(s))
	for _, r := range s[:i] {
		runes = append(runes, r)
	}
	for _, r := range s[i:] {
		switch {
		case r >= hangulSBase && r < hangulSBase+hangulSCount:
			si := r - hangulSBase
			runes = append(runes, hangulLBase+si/hangulNCount, hangulVBase+(si%hangulNCount)/hangulTCount)
			if t := si % hangulTCount; t != 0 {
				runes = append(runes, hangulTBase+t)
			}
		default:
			if d := decomposition(r); d != "" {
				for _, dr := range d {
					runes = append(runes, dr)
				}
			} else {
				runes = append(runes, r)
			}
		}
	}
	// Canonical ordering: insertion sort inside each run of non-starters.
	for j := 1; j < len(runes); j++ {
		c := cccRank(runes[j])
		if c == 0 {
			continue
		}
		k := j
		for k > 0 {
			p := cccRank(runes[k-1])
			if p <= c {
				break
			}
			runes[k-1], runes[k] = runes[k], runes[k-1]
			k--
		}
	}
	return string(runes)
}

// removeMn removes the nonspacing marks (category Mn) from s.
func removeMn(s string) string {
	i := 0
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.Is(unicode.Mn, r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r < utf8.RuneSelf || !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isCased reports the Unicode Cased property.
func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable reports the Unicode Case_Ignorable property: categories
// Mn, Me, Cf, Lm and Sk, and the Word_Break classes MidLetter, MidNumLet
// and Single_Quote. The ASCII ones are listed: ' . : (word break) and the
// modifier symbols (Sk) ^ and `.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return r >= utf8.RuneSelf && unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// finalSigma reports whether the capital sigma at s[i:j] lowercases to the
// final form ς: it is preceded by a cased letter and not followed by one,
// case-ignorable characters in between being skipped (as ICU does, a
// character that is both cased and case-ignorable is skipped).
func finalSigma(s string, i, j int) bool {
	before := false
	for k := i; k > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:k])
		k -= size
		if isCaseIgnorable(r) {
			continue
		}
		before = isCased(r)
		break
	}
	if !before {
		return false
	}
	for k := j; k < len(s); {
		r, size := utf8.DecodeRuneInString(s[k:])
		k += size
		if isCaseIgnorable(r) {
			continue
		}
		return !isCased(r)
	}
	return true
}

// toLowerJS lowercases s as JavaScript's String.prototype.toLowerCase (and
// Rust's str::to_lowercase) do: the full, language-independent Unicode
// lowercase mapping. It equals the simple per-character mapping except for
// U+0130 (İ), which becomes "i" + U+0307, and capital sigma, which becomes ς
// at the end of a word (the Final_Sigma condition).
func toLowerJS(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3A3:
			if finalSigma(s, i, i+size) {
				b.WriteRune(0x3C2)
			} else {
				b.WriteRune(0x3C3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
		i += size
	}
	return b.String()
}
