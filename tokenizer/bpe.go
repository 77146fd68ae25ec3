package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

const (
	// maxCachedWord is the longest word (in bytes) whose encoding is cached.
	maxCachedWord = 256
	// maxCacheEntries bounds a word cache; a full cache is emptied.
	maxCacheEntries = 1 << 16
	// deadSymbol marks a symbol merged into its left neighbour.
	deadSymbol = -2
	// maxWord is the longest word BPE merges as a whole (bytes); longer
	// words (text without spaces or pre-tokenization, over 256 MiB) are
	// encoded in pieces of this size.
	maxWord = 1 << 28
)

// wordCache maps words to their ids. It is bounded and safe for concurrent
// use; cached slices are never modified.
type wordCache struct {
	mu sync.Mutex
	m  map[string][]int32
}

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[w]
	c.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[string][]int32)
	}
	c.m[strings.Clone(w)] = ids
	c.mu.Unlock()
}

// bpeModel is the BPE model. Symbols are token ids; strings that merges
// name but the vocabulary lacks get ids from nSlots up (extra), so a merge
// is a map from a pair of ids to its rank and result.
type bpeModel struct {
	tokID  map[string]int32 // vocabulary and added tokens
	nSlots int32            // ids below are tokens; above are extra symbols
	extra  map[string]int32 // symbols outside the vocabulary
	merges map[uint64]uint64

	byteLevel bool
	byteSym   [256]int32  // byte-level: the symbol of each byte
	byteStr   [256]string // byte-level: the character of each byte
	asciiSym  [utf8.RuneSelf]int32
	runeSym   map[rune]int32 // single-character symbols

	byteFallback bool
	byteTok      [256]int32 // id of "<0xXX>", or -1
	unk          int32      // unk token id, or -1
	fuseUnk      bool
	ignoreMerges bool
	cutSpace     bool // see canCutSpace

	cache wordCache
}

// symbolFor returns the symbol id of s, or -1.
func (m *bpeModel) symbolFor(s string) int32 {
	if id, ok := m.tokID[s]; ok {
		return id
	}
	if id, ok := m.extra[s]; ok {
		return id
	}
	return -1
}

// addSymbol returns the symbol id of s, creating an extra symbol when s is
// not a token.
func (m *bpeModel) addSymbol(s string) int32 {
	if id := m.symbolFor(s); id >= 0 {
		return id
	}
	id := m.nSlots + int32(len(m.extra))
	m.extra[s] = id
	return id
}

// initMerges builds the merge table from the merges in rank order.
func (m *bpeModel) initMerges(merges [][2]string) error {
	m.extra = make(map[string]int32)
	m.merges = make(map[uint64]uint64, len(merges))
	for rank, p := range merges {
		a, b := m.addSymbol(p[0]), m.addSymbol(p[1])
		r := m.addSymbol(p[0] + p[1])
		if int64(m.nSlots)+int64(len(m.extra)) >= 1<<31-1 {
			return fmt.Errorf("too many merge symbols")
		}
		// A repeated pair keeps its last rank, as in both reference
		// implementations.
		m.merges[uint64(a)<<32|uint64(b)] = uint64(rank)<<32 | uint64(r)
	}
	for c := range m.asciiSym {
		m.asciiSym[c] = m.symbolFor(string(rune(c)))
	}
	m.runeSym = make(map[rune]int32)
	add := func(s string, id int32) {
		if r, size := utf8.DecodeRuneInString(s); size == len(s) && size > 1 {
			m.runeSym[r] = id
		}
	}
	for s, id := range m.extra {
		add(s, id)
	}
	for s, id := range m.tokID {
		add(s, id)
	}
	if m.byteLevel {
		u := byteToUnicode()
		for b := range m.byteSym {
			m.byteStr[b] = string(u[b])
			m.byteSym[b] = m.symbolFor(m.byteStr[b])
		}
	}
	m.cutSpace = m.canCutSpace()
	for b := range m.byteTok {
		m.byteTok[b] = -1
		if id, ok := m.tokID[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteTok[b] = id
		}
	}
	return nil
}

// bpeSym is a symbol of a word being merged: a token (or extra symbol) id,
// its bytes w[start:end], and its neighbours in a linked list.
type bpeSym struct {
	id         int32
	start, end int32
	prev, next int32
}

// bpeMerge is a candidate merge of the symbol at pos with its right
// neighbour; left and right are their ids when it was queued.
type bpeMerge struct {
	rank        uint32
	pos         int32
	left, right int32
}

func (a bpeMerge) less(b bpeMerge) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// encodeState is the scratch space of one Encode call.
type encodeState struct {
	segs  []segment
	subs  []segment
	words []string
	syms  []bpeSym
	heap  []bpeMerge
	ids   []int32
}

func (st *encodeState) push(e bpeMerge) {
	h := append(st.heap, e)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	st.heap = h
}

func (st *encodeState) pop() bpeMerge {
	h := st.heap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			c = r
		}
		if !h[c].less(h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	st.heap = h
	return top
}

// lookup returns the merge of the pair (a, b).
func (m *bpeModel) lookup(a, b int32) (rank uint32, result int32, ok bool) {
	if a < 0 || b < 0 {
		return 0, 0, false
	}
	v, ok := m.merges[uint64(a)<<32|uint64(b)]
	return uint32(v >> 32), int32(uint32(v)), ok
}

// encode appends the ids of words to dst. Unknown tokens that follow each
// other are fused into one when fuse_unk is set.
func (m *bpeModel) encode(dst []int, words []string, st *encodeState) []int {
	lastUnk := false
	for _, w := range words {
		if !m.cutSpace {
			dst = m.encodeWord(dst, w, st, &lastUnk)
			continue
		}
		// Cut before each "▁" that follows another character: no symbol
		// spans such a place, so the pieces merge independently and are
		// short enough to cache.
		for len(w) > 0 {
			k := 0
			for k < len(w) && strings.HasPrefix(w[k:], spaceMark) {
				k += len(spaceMark)
			}
			j := strings.Index(w[k:], spaceMark)
			if j < 0 {
				j = len(w)
			} else {
				j += k
			}
			dst = m.encodeWord(dst, w[:j], st, &lastUnk)
			w = w[j:]
		}
	}
	return dst
}

// spaceMark is SentencePiece's meta symbol for a space.
const spaceMark = "\u2581"

// canCutSpace reports whether no symbol has "▁" right after another
// character, so that words can be cut before such a "▁".
func (m *bpeModel) canCutSpace() bool {
	if m.byteLevel {
		return false
	}
	bad := func(s string) bool {
		for i := 1; i < len(s); i++ {
			if strings.HasPrefix(s[i:], spaceMark) && !strings.HasSuffix(s[:i], spaceMark) {
				return true
			}
		}
		return false
	}
	for s := range m.tokID {
		if bad(s) {
			return false
		}
	}
	for s := range m.extra {
		if bad(s) {
			return false
		}
	}
	return true
}

func (m *bpeModel) encodeWord(dst []int, w string, st *encodeState, lastUnk *bool) []int {
	if w == "" {
		return dst
	}
	if len(w) > maxWord {
		// Symbol offsets are int32: encode a giant word in pieces, cut at
		// character boundaries.
		for len(w) > maxWord {
			k := maxWord
			for k > 0 && !utf8.RuneStart(w[k]) {
				k--
			}
			dst = m.encodeWord(dst, w[:k], st, lastUnk)
			w = w[k:]
		}
	}
	ids, ok := []int32(nil), false
	if len(w) < maxCachedWord {
		ids, ok = m.cache.get(w)
	}
	if !ok {
		ids = m.word(st.ids[:0], w, st)
		st.ids = ids
		if len(w) < maxCachedWord {
			ids = append([]int32(nil), ids...)
			m.cache.put(w, ids)
		}
	}
	for _, id := range ids {
		if id == m.unk {
			if m.fuseUnk && *lastUnk {
				continue
			}
			*lastUnk = true
		} else {
			*lastUnk = false
		}
		dst = append(dst, int(id))
	}
	return dst
}

// word encodes one word: split into characters (bytes for byte-level),
// merge the pair of lowest rank (leftmost first) until no pair merges, and
// map symbols outside the vocabulary to byte tokens or unk.
func (m *bpeModel) word(dst []int32, w string, st *encodeState) []int32 {
	if m.ignoreMerges {
		if id, ok := m.tokID[m.symbolString(w)]; ok {
			return append(dst, id)
		}
	}
	syms := st.syms[:0]
	if m.byteLevel {
		for i := 0; i < len(w); i++ {
			syms = append(syms, bpeSym{id: m.byteSym[w[i]], start: int32(i), end: int32(i + 1), prev: int32(i - 1), next: int32(i + 1)})
		}
	} else {
		for i := 0; i < len(w); {
			var id int32
			size := 1
			if c := w[i]; c < utf8.RuneSelf {
				id = m.asciiSym[c]
			} else {
				var r rune
				r, size = utf8.DecodeRuneInString(w[i:])
				var ok bool
				if id, ok = m.runeSym[r]; !ok {
					id = -1
				}
			}
			n := int32(len(syms))
			syms = append(syms, bpeSym{id: id, start: int32(i), end: int32(i + size), prev: n - 1, next: n + 1})
			i += size
		}
	}
	syms[len(syms)-1].next = -1
	st.syms = syms

	st.heap = st.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if r, _, ok := m.lookup(syms[i].id, syms[i+1].id); ok {
			st.push(bpeMerge{rank: r, pos: int32(i), left: syms[i].id, right: syms[i+1].id})
		}
	}
	for len(st.heap) > 0 {
		e := st.pop()
		a := &syms[e.pos]
		if a.id != e.left || a.next < 0 || syms[a.next].id != e.right {
			continue // stale: a side has merged since
		}
		_, res, _ := m.lookup(a.id, syms[a.next].id)
		b := &syms[a.next]
		a.id, a.end, a.next = res, b.end, b.next
		b.id = deadSymbol
		if a.next >= 0 {
			syms[a.next].prev = e.pos
			if r, _, ok := m.lookup(a.id, syms[a.next].id); ok {
				st.push(bpeMerge{rank: r, pos: e.pos, left: a.id, right: syms[a.next].id})
			}
		}
		if a.prev >= 0 {
			p := syms[a.prev].id
			if r, _, ok := m.lookup(p, a.id); ok {
				st.push(bpeMerge{rank: r, pos: a.prev, left: p, right: a.id})
			}
		}
	}

	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		if s.id >= 0 && s.id < m.nSlots {
			dst = append(dst, s.id)
			continue
		}
		dst = m.fallback(dst, m.symbolString(w[s.start:s.end]))
	}
	return dst
}

// symbolString returns the token string of a piece of a word: the piece
// itself, or for byte-level BPE its byte-to-unicode image.
func (m *bpeModel) symbolString(piece string) string {
	if !m.byteLevel {
		return piece
	}
	var b strings.Builder
	for i := 0; i < len(piece); i++ {
		b.WriteString(m.byteStr[piece[i]])
	}
	return b.String()
}

// fallback appends the ids for a symbol outside the vocabulary: its UTF-8
// bytes as "<0xXX>" tokens when byte_fallback is set and all of them exist,
// else the unk token, else nothing.
func (m *bpeModel) fallback(dst []int32, s string) []int32 {
	if m.byteFallback {
		ok := true
		for i := 0; i < len(s); i++ {
			if m.byteTok[s[i]] < 0 {
				ok = false
				break
			}
		}
		if ok {
			for i := 0; i < len(s); i++ {
				dst = append(dst, m.byteTok[s[i]])
			}
			return dst
		}
	}
	if m.unk >= 0 {
		dst = append(dst, m.unk)
	}
	return dst
}

// byteToUnicode returns GPT-2's byte-to-unicode table: printable Latin-1
// bytes map to themselves, the other bytes to U+0100 and up, in order.
func byteToUnicode() [256]rune {
	var t [256]rune
	n := rune(0)
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}
