package bpe

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	"github.com/lmsparse/lmsparse/tokenizer"
)

// MaxVocab is the largest vocabulary Train builds.
const MaxVocab = 1 << 20

// A Merge is a learned merge: token Left followed by token Right, in a
// word, becomes token Result. Its rank is its index in [Model.Merges].
type Merge struct{ Left, Right, Result int }

// A Model is a trained byte-level BPE tokenizer.
type Model struct {
	// MaxLength is the model_max_length that WriteTokenizer writes to
	// tokenizer_config.json (the longest input the model is meant for);
	// Train sets it to 1024.
	MaxLength int
	// EOT, when set, is a special token (GPT-2's "<|endoftext|>")
	// WriteTokenizer appends after the learned vocabulary, with id
	// VocabSize(), and names as tokenizer_config.json's bos, eos and unk
	// token, as GPT-2's files do. Text is never split into it by Encode.
	EOT string

	tokens []string // token id → its bytes; ids 0..255 are the bytes
	merges []Merge  // in rank order
	rank   map[pair]int32
}

type pair struct{ a, b int32 }

// VocabSize returns the number of tokens.
func (m *Model) VocabSize() int { return len(m.tokens) }

// Token returns the bytes of token id (not spelled with GPT-2's
// characters), or "" when id is not a token.
func (m *Model) Token(id int) string {
	if id < 0 || id >= len(m.tokens) {
		return ""
	}
	return m.tokens[id]
}

// Merges returns the merges in rank order.
func (m *Model) Merges() []Merge {
	return slices.Clone(m.merges)
}

// word is a distinct word of the training text: its current tokens and how
// often it occurs.
type word struct {
	syms []int32
	n    int64
}

// trainer holds the state of Train.
type trainer struct {
	tokens []string
	ids    map[string]int32 // token bytes → id
	words  []word
	count  map[pair]int64   // occurrences of each adjacent pair, > 0
	where  map[pair][]int32 // words that contain a pair, and maybe others
	queue  pairQueue
	seen   []int // per word: the step (from 1) of the last merge that visited it
}

// Train learns a byte-level BPE tokenizer of vocabSize tokens from text
// (see the package comment). It fails when vocabSize is below 256 or above
// MaxVocab, or when the text's words run out of pairs to merge before the
// vocabulary is full.
func Train(text []byte, vocabSize int) (*Model, error) {
	if vocabSize < 256 || vocabSize > MaxVocab {
		return nil, fmt.Errorf("bpe: vocabulary size %d is outside [256, %d]", vocabSize, MaxVocab)
	}
	t := &trainer{ids: make(map[string]int32), count: make(map[pair]int64), where: make(map[pair][]int32)}
	for b := range 256 {
		t.addToken(string([]byte{byte(b)}))
	}
	freq := make(map[string]int64)
	for _, w := range tokenizer.SplitGPT2(string(text)) {
		freq[w]++
	}
	// Words in byte order, so that everything below is reproducible.
	distinct := make([]string, 0, len(freq))
	for w := range freq {
		distinct = append(distinct, w)
	}
	slices.Sort(distinct)
	for i, w := range distinct {
		syms := make([]int32, len(w))
		for j := range len(w) {
			syms[j] = int32(w[j])
		}
		t.words = append(t.words, word{syms, freq[w]})
		t.addPairs(int32(i), nil)
	}
	t.seen = make([]int, len(t.words))
	for p := range t.count {
		t.push(p)
	}
	var merges []Merge
	for len(t.tokens) < vocabSize {
		p, ok := t.best()
		if !ok {
			return nil, fmt.Errorf("bpe: the text's %d distinct words allow only %d tokens, not %d", len(t.words), len(t.tokens), vocabSize)
		}
		r := t.addToken(t.tokens[p.a] + t.tokens[p.b])
		merges = append(merges, Merge{int(p.a), int(p.b), int(r)})
		t.merge(p, r, len(merges))
	}
	m := &Model{MaxLength: 1024, tokens: t.tokens, merges: merges}
	m.buildRanks()
	return m, nil
}

// addToken returns the id of the token with bytes s, adding it when new.
func (t *trainer) addToken(s string) int32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := int32(len(t.tokens))
	t.tokens = append(t.tokens, s)
	t.ids[s] = id
	return id
}

// addPairs adds the pairs of word i to the counts, times its frequency,
// lists word i under each of them in where, and records them in changed
// when it is not nil.
func (t *trainer) addPairs(i int32, changed map[pair]bool) {
	w := t.words[i]
	for j := 0; j+1 < len(w.syms); j++ {
		p := pair{w.syms[j], w.syms[j+1]}
		if ws := t.where[p]; len(ws) == 0 || ws[len(ws)-1] != i {
			t.where[p] = append(ws, i)
		}
		t.count[p] += w.n
		if changed != nil {
			changed[p] = true
		}
	}
}

// removePairs subtracts the pairs of word i from the counts.
func (t *trainer) removePairs(i int32, changed map[pair]bool) {
	w := t.words[i]
	for j := 0; j+1 < len(w.syms); j++ {
		p := pair{w.syms[j], w.syms[j+1]}
		if t.count[p] -= w.n; t.count[p] == 0 {
			delete(t.count, p)
		}
		changed[p] = true
	}
}

// merge replaces p by r in every word that contains it and updates the
// counts of the pairs that changed. step numbers the merge (from 1).
func (t *trainer) merge(p pair, r int32, step int) {
	changed := make(map[pair]bool)
	for _, i := range t.where[p] {
		if t.seen[i] == step {
			continue
		}
		t.seen[i] = step
		syms := t.words[i].syms
		if !contains(syms, p) {
			continue
		}
		t.removePairs(i, changed)
		out := make([]int32, 0, len(syms)-1)
		for j := 0; j < len(syms); j++ {
			if j+1 < len(syms) && syms[j] == p.a && syms[j+1] == p.b {
				out = append(out, r)
				j++
			} else {
				out = append(out, syms[j])
			}
		}
		t.words[i].syms = out
		t.addPairs(i, changed)
	}
	delete(t.where, p)
	for q := range changed {
		if t.count[q] > 0 {
			t.push(q)
		}
	}
}

func contains(syms []int32, p pair) bool {
	for j := 0; j+1 < len(syms); j++ {
		if syms[j] == p.a && syms[j+1] == p.b {
			return true
		}
	}
	return false
}

// push queues p with its current count.
func (t *trainer) push(p pair) {
	heap.Push(&t.queue, queued{p, t.count[p], t.tokens[p.a], t.tokens[p.b]})
}

// best pops the pair to merge next: the most frequent, ties broken by
// bytes (see better). Queue entries whose count is out of date are
// dropped; the pair was queued again when its count changed.
func (t *trainer) best() (pair, bool) {
	for t.queue.Len() > 0 {
		e := heap.Pop(&t.queue).(queued)
		if t.count[e.p] == e.n {
			return e.p, true
		}
	}
	return pair{}, false
}

// queued is an entry of the pair queue: a pair, its count when queued and
// the bytes of its tokens.
type queued struct {
	p    pair
	n    int64
	a, b string
}

// better reports whether x is merged before y: it is more frequent, or as
// frequent and its merged bytes x.a+x.b are smaller, or those are equal
// and its left token x.a is smaller.
func better(x, y queued) bool {
	if x.n != y.n {
		return x.n > y.n
	}
	if c := compareConcat(x.a, x.b, y.a, y.b); c != 0 {
		return c < 0
	}
	return x.a < y.a
}

// compareConcat compares a1+a2 with b1+b2 bytewise, without building them.
func compareConcat(a1, a2, b1, b2 string) int {
	at := func(s1, s2 string, i int) byte {
		if i < len(s1) {
			return s1[i]
		}
		return s2[i-len(s1)]
	}
	na, nb := len(a1)+len(a2), len(b1)+len(b2)
	for i := 0; i < na && i < nb; i++ {
		if x, y := at(a1, a2, i), at(b1, b2, i); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return na - nb
}

// pairQueue is a max-heap of queued pairs under better.
type pairQueue []queued

func (q pairQueue) Len() int           { return len(q) }
func (q pairQueue) Less(i, j int) bool { return better(q[i], q[j]) }
func (q pairQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *pairQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (m *Model) buildRanks() {
	m.rank = make(map[pair]int32, len(m.merges))
	for r, mg := range m.merges {
		m.rank[pair{int32(mg.Left), int32(mg.Right)}] = int32(r)
	}
}

// Encode returns the token ids of text: the words of tokenizer.SplitGPT2,
// each merged by rank (the lowest-ranked pair first, the leftmost of
// equals) until no merge applies. It is a plain reference encoder.
func (m *Model) Encode(text string) []int {
	var ids []int
	cache := make(map[string][]int)
	for _, w := range tokenizer.SplitGPT2(text) {
		enc, ok := cache[w]
		if !ok {
			enc = m.encodeWord(w)
			cache[w] = enc
		}
		ids = append(ids, enc...)
	}
	return ids
}

func (m *Model) encodeWord(w string) []int {
	syms := make([]int, len(w))
	for i := range len(w) {
		syms[i] = int(w[i])
	}
	for {
		at, best := -1, int32(0)
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := m.rank[pair{int32(syms[i]), int32(syms[i+1])}]; ok && (at < 0 || r < best) {
				at, best = i, r
			}
		}
		if at < 0 {
			return syms
		}
		syms[at] = m.merges[best].Result
		syms = slices.Delete(syms, at+1, at+2)
	}
}

// Decode returns the bytes of ids; ids that are not tokens are skipped.
func (m *Model) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(m.Token(id))
	}
	return b.String()
}
