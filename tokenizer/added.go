package tokenizer

import (
	"sort"
	"strings"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	content    string
	id         int
	normalized bool
	lstrip     bool
	rstrip     bool
}

// segment is a piece of text between added tokens (tok == nil) or one
// matched added token.
type segment struct {
	text string
	tok  *addedToken
}

// splitter finds added tokens in text: at each position the longest token
// that starts there matches, scanning left to right (leftmost-longest, as
// the Aho-Corasick automaton of Hugging Face tokenizers and the trie of
// tokenizers.js do). The tokens are in a byte trie, so a position costs one
// table lookup unless a token starts there.
type splitter struct {
	root  [256]int32 // child of the root per byte; 0 = none
	nodes []trieNode // nodes[0] is unused (the root lives in root)
}

type trieNode struct {
	tok   *addedToken // token ending here, if any
	edges []trieEdge  // sorted by byte
}

type trieEdge struct {
	b    byte
	node int32
}

func newSplitter(toks []*addedToken) *splitter {
	s := &splitter{nodes: make([]trieNode, 1)}
	for _, t := range toks {
		c := t.content
		n := s.root[c[0]]
		if n == 0 {
			n = int32(len(s.nodes))
			s.nodes = append(s.nodes, trieNode{})
			s.root[c[0]] = n
		}
		for i := 1; i < len(c); i++ {
			n = s.child(n, c[i], true)
		}
		s.nodes[n].tok = t // of equal contents the last wins, as in tokenizers.js
	}
	return s
}

// child returns the child of node n for byte b (0 if none), creating it
// when asked.
func (s *splitter) child(n int32, b byte, create bool) int32 {
	edges := s.nodes[n].edges
	k := sort.Search(len(edges), func(k int) bool { return edges[k].b >= b })
	if k < len(edges) && edges[k].b == b {
		return edges[k].node
	}
	if !create {
		return 0
	}
	c := int32(len(s.nodes))
	s.nodes = append(s.nodes, trieNode{})
	edges = append(edges, trieEdge{})
	copy(edges[k+1:], edges[k:])
	edges[k] = trieEdge{b, c}
	s.nodes[n].edges = edges
	return c
}

// match returns the longest token that text starts with, or nil.
func (s *splitter) match(text string) *addedToken {
	n := s.root[text[0]]
	var best *addedToken
	for j := 1; n != 0; j++ {
		if t := s.nodes[n].tok; t != nil {
			best = t
		}
		if j == len(text) {
			break
		}
		n = s.child(n, text[j], false)
	}
	return best
}

// split appends the segments of text to dst; empty text segments are kept
// out. Tokens with lstrip (rstrip) remove the whitespace at the end of the
// text before (at the start of the text after) them.
func (s *splitter) split(dst []segment, text string) []segment {
	if len(s.nodes) == 1 {
		return append(dst, segment{text: text})
	}
	first := len(dst)
	start := 0
	for i := 0; i < len(text); {
		var m *addedToken
		if s.root[text[i]] != 0 {
			m = s.match(text[i:])
		}
		if m == nil {
			i++
			continue
		}
		if i > start {
			dst = append(dst, segment{text: text[start:i]})
		}
		dst = append(dst, segment{tok: m})
		i += len(m.content)
		start = i
	}
	if start < len(text) {
		dst = append(dst, segment{text: text[start:]})
	}
	seg := dst[first:]
	for k := range seg {
		t := seg[k].tok
		if t == nil {
			continue
		}
		if t.lstrip && k > 0 && seg[k-1].tok == nil {
			seg[k-1].text = strings.TrimRightFunc(seg[k-1].text, isJSSpace)
		}
		if t.rstrip && k+1 < len(seg) && seg[k+1].tok == nil {
			seg[k+1].text = strings.TrimLeftFunc(seg[k+1].text, isJSSpace)
		}
	}
	return dst
}
