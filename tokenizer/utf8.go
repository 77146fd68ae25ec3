package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// sanitizeUTF8 returns s with every maximal ill-formed subsequence replaced
// by one U+FFFD, the replacement rule of the WHATWG Encoding Standard and of
// Unicode's "best practice" (§3.9): what Python's
// bytes.decode("utf-8", errors="replace"), Node's Buffer.toString("utf8")
// and TextDecoder produce. A maximal subsequence is the longest prefix of a
// well-formed sequence (a lead byte and the continuation bytes that may
// follow it); a byte that can start no sequence is one subsequence by
// itself. Valid input is returned unchanged, without copying.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		b.WriteRune(utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return b.String()
}

// maximalSubpart returns the length of the maximal ill-formed subsequence
// at the start of s, which starts with a byte that does not begin a valid
// UTF-8 sequence there.
func maximalSubpart(s string) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the first continuation byte
	switch c := s[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need; k++ {
		if n >= len(s) || s[n] < lo || s[n] > hi {
			return n
		}
		n++
		lo, hi = 0x80, 0xBF
	}
	return n // unreachable for input utf8 rejected
}
