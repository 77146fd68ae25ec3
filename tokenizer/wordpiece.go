package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// wordPieceModel is the WordPiece model: each word is split greedily into
// the longest vocabulary entries from the left, pieces after the first
// carrying the continuing-subword prefix ("##"); a word with a part that
// no entry covers, or longer than maxChars characters, is the unk token.
type wordPieceModel struct {
	tokID    map[string]int32 // vocabulary and added tokens
	cont     map[string]int32 // entries with the prefix, keyed without it
	unk      int32
	maxChars int
	maxLen   int // bytes of the longest entry (without the prefix)
	cache    wordCache
}

func newWordPiece(tokID map[string]int32, prefix string, unk int32, maxChars int) *wordPieceModel {
	m := &wordPieceModel{tokID: tokID, unk: unk, maxChars: maxChars, cont: tokID}
	if prefix != "" {
		m.cont = make(map[string]int32)
		for s, id := range tokID {
			if rest, ok := strings.CutPrefix(s, prefix); ok {
				m.cont[rest] = id
			}
		}
	}
	for s := range tokID {
		m.maxLen = max(m.maxLen, len(s))
	}
	return m
}

func (m *wordPieceModel) encode(dst []int, words []string, st *encodeState) []int {
	for _, w := range words {
		if w == "" {
			continue
		}
		ids, ok := []int32(nil), false
		if len(w) < maxCachedWord {
			ids, ok = m.cache.get(w)
		}
		if !ok {
			ids = m.word(st.ids[:0], w)
			st.ids = ids
			if len(w) < maxCachedWord {
				ids = append([]int32(nil), ids...)
				m.cache.put(w, ids)
			}
		}
		for _, id := range ids {
			dst = append(dst, int(id))
		}
	}
	return dst
}

func (m *wordPieceModel) word(dst []int32, w string) []int32 {
	if utf8.RuneCountInString(w) > m.maxChars {
		return append(dst, m.unk)
	}
	n := len(dst)
	for start := 0; start < len(w); {
		table := m.tokID
		if start > 0 {
			table = m.cont
		}
		// No entry is longer than maxLen: start there, at a character
		// boundary, so that a long word costs O(len × maxLen).
		end := min(len(w), start+m.maxLen)
		for end > start && end < len(w) && !utf8.RuneStart(w[end]) {
			end--
		}
		for end > start {
			if id, ok := table[w[start:end]]; ok {
				dst = append(dst, id)
				break
			}
			_, size := utf8.DecodeLastRuneInString(w[start:end])
			end -= size
		}
		if end == start {
			return append(dst[:n], m.unk)
		}
		start = end
	}
	return dst
}
