package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// sampleRNGs returns one PCG per sequence, seeded (seed, i).
func sampleRNGs(seed uint64, n int) []*rand.Rand {
	r := make([]*rand.Rand, n)
	for i := range r {
		r[i] = rand.New(rand.NewPCG(seed, uint64(i)))
	}
	return r
}

// windowSample samples as Sample did before the key/value cache: a
// forward pass over every whole sequence at each step.
func windowSample(t testing.TB, lm LM, prompts [][]int, n int, seed uint64) [][]int {
	t.Helper()
	rngs := sampleRNGs(seed, len(prompts))
	seqs, err := samplePrompts(lm, prompts, n, rngs)
	if err != nil {
		t.Fatal(err)
	}
	if seqs, err = sampleWindows(context.Background(), lm, seqs, n, rngs); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// cachedSample samples as Sample does on a *Model, with the given limits,
// and returns the sequences and, per sequence, the logits each of its
// tokens was drawn from (logits[i][j] for the token at position
// len(prompts[i])+j).
func cachedSample(t *testing.T, m *Model, prompts [][]int, n int, seed uint64, lim sampleLimits) ([][]int, [][][]float32) {
	t.Helper()
	rngs := sampleRNGs(seed, len(prompts))
	seqs, err := samplePrompts(m, prompts, n, rngs)
	if err != nil {
		t.Fatal(err)
	}
	logits := make([][][]float32, len(seqs))
	bufs := make([][]float64, m.threads)
	err = m.generate(context.Background(), seqs, n, lim, func(wk, i int, l []float32) int {
		logits[i] = append(logits[i], slices.Clone(l))
		bufs[wk] = growF64(bufs[wk], len(l))
		return draw(l, rngs[i], bufs[wk])
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs, logits
}

// sameSeqs fails unless two sets of sequences are equal.
func sameSeqs(t testing.TB, what string, got, want [][]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d sequences, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			j := 0
			for j < min(len(got[i]), len(want[i])) && got[i][j] == want[i][j] {
				j++
			}
			t.Fatalf("%s: sequence %d (%d tokens, want %d) differs from position %d", what, i, len(got[i]), len(want[i]), j)
		}
	}
}

// relLogitDiff is the largest absolute difference between two logit rows
// relative to the largest absolute logit of want.
func relLogitDiff(got, want []float32) float64 {
	var d, mx float64
	for i, v := range want {
		d = max(d, math.Abs(float64(got[i])-float64(v)))
		mx = max(mx, math.Abs(float64(v)))
	}
	return d / mx
}

// exactLen is the longest sequence whose logits the cached path computes
// bit for bit as a forward pass over it does: past one block of keys
// (kernel.kBlock), the forward pass sums the attention of earlier rows
// over blocks that depend on the window's length.
func exactLen(m *Model) int {
	m.kern.kBlock(1)
	return m.kern.kc + 1
}

// checkPrefixLogits compares the cached logits of sequence seq (its
// prompt plen tokens long) at the positions in at (all drawn ones when
// nil) with the last row of a forward pass over the sequence up to that
// position: bit for bit up to exactLen tokens, beyond to 1e-5 of the
// largest logit. It returns the largest difference relative to the
// largest logit.
func checkPrefixLogits(t *testing.T, what string, m *Model, seq []int, plen int, logits [][]float32, at []int) float64 {
	t.Helper()
	if at == nil {
		for p := plen - 1; p < len(seq)-1; p++ {
			at = append(at, p)
		}
	}
	V := m.VocabSize()
	var worst float64
	for _, p := range at {
		out := make([]float32, (p+1)*V)
		if err := m.Forward(seq[:p+1], out); err != nil {
			t.Fatal(err)
		}
		got, want := logits[p-(plen-1)], out[p*V:]
		if p+1 <= exactLen(m) {
			sameBits(t, fmt.Sprintf("%s: logits at position %d", what, p), got, want)
		}
		d := relLogitDiff(got, want)
		if d > 1e-5 {
			t.Fatalf("%s: logits at position %d differ from Forward's by %.3g of the largest", what, p, d)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestSampleStories260k samples 16 sequences of 200 tokens from BOS with
// stories260k: the cached path draws the same tokens as the window path
// (a forward pass over each whole sequence at every step), and the logits
// of the last position, and of every position, agree with a forward pass
// over the sequence to 1e-4 of the largest logit — bit for bit up to
// exactLen tokens (193 with the AVX-512 kernel, 385 with the others), to
// rounding beyond. On every kernel, the logits of two sequences equal
// those of forward passes over each prefix alike.
func TestSampleStories260k(t *testing.T) {
	const S, n = 16, 200
	m := loadShared(t, storiesPath, Options{Threads: 2})
	prompts := slices.Repeat([][]int{{1}}, S)
	want := windowSample(t, m, prompts, n, 42)
	got, err := Sample(context.Background(), m, prompts, n, sampleRNGs(42, S))
	if err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, "stories260k cached vs window", got, want)
	seqs, logits := cachedSample(t, m, prompts, n, 42, sampleLimits{cacheBytes: SampleCacheMemory})
	sameSeqs(t, "stories260k cachedSample", seqs, want)
	V := m.VocabSize()
	var worstLast, worstAll float64
	for i, seq := range seqs {
		// The last token was drawn from the logits at position n-2.
		full := forwardAll(t, m, seq[:n-1])
		worstLast = max(worstLast, relLogitDiff(logits[i][n-2], full[(n-2)*V:]))
		for p := range n - 1 {
			worstAll = max(worstAll, relLogitDiff(logits[i][p], full[p*V:(p+1)*V]))
			if p < exactLen(m)-1 {
				sameBits(t, fmt.Sprintf("sequence %d: logits at position %d vs Forward", i, p), logits[i][p], full[p*V:(p+1)*V])
			}
		}
	}
	if worstLast > 1e-4 || worstAll > 1e-4 {
		t.Fatalf("cached logits vs Forward: last position %.3g, any position %.3g (relative to the largest logit); want ≤ 1e-4", worstLast, worstAll)
	}
	t.Logf("stories260k: %d×%d tokens identical to the window path; cached vs Forward logits: last position %.3g, any position %.3g of the largest", S, n, worstLast, worstAll)
	checkPrefixLogits(t, "stories260k sequence 0", m, seqs[0], 1, logits[0], nil)
	for _, kn := range Kernels()[1:] {
		mk := loadShared(t, storiesPath, Options{Threads: 2, Kernel: kn})
		seqs, logits := cachedSample(t, mk, prompts[:2], n, 7, sampleLimits{cacheBytes: SampleCacheMemory})
		for i := range seqs {
			checkPrefixLogits(t, fmt.Sprintf("stories260k %s sequence %d", kn, i), mk, seqs[i], 1, logits[i], []int{0, 1, 7, 8, 63, 190, 191, 192, 193, n - 2})
		}
	}
}

// sampleCases are the architecture variants of TestStreamMatchesResident
// and more attention shapes: head dimensions 8 (eight heads per group of
// kernel accumulators, with padding heads), 16 and 72 (chunks of 8, with
// padding chunks), 4 and 10 (no assembly kernel), GQA groups 1 to 4.
func sampleCases() []struct {
	name string
	cfg  *checkpoint.Config
	edit func(w map[string][]float32)
} {
	cs := streamCases()
	shape := func(mt string, D, H, KV, hd int) *checkpoint.Config {
		c := &checkpoint.Config{ModelType: mt, HiddenSize: D, NumLayers: 2, NumHeads: H, NumKVHeads: KV, HeadDim: hd,
			IntermediateSize: 40, VocabSize: 29, MaxPositions: 160, NormEps: 1e-5, RopeTheta: 10000,
			TieWordEmbeddings: true, Activation: "silu"}
		if mt == "gpt2" {
			c.Activation = "gelu_new"
		}
		return c
	}
	for _, c := range []struct {
		name string
		cfg  *checkpoint.Config
	}{
		{"llama 12 heads of 8, GQA 4", shape("llama", 48, 12, 3, 8)},
		{"qwen2 4 heads of 16, GQA 2", shape("qwen2", 40, 4, 2, 16)},
		{"gpt2 2 heads of 72", shape("gpt2", 144, 2, 2, 72)},
		{"llama 3 heads of 10", shape("llama", 30, 3, 3, 10)},
	} {
		cs = append(cs, struct {
			name string
			cfg  *checkpoint.Config
			edit func(w map[string][]float32)
		}{c.name, c.cfg, nil})
	}
	return cs
}

// TestSampleVariants samples from random models of every architecture
// variant and attention shape, on every kernel, prompts of several
// lengths (one already longer than n): the cached path draws the same
// tokens as the window path and its logits at every drawn position equal
// those of a forward pass over the whole sequence bit for bit (below 192
// keys, the attention of every row sums in one block); splitting prompts
// into passes of 5 rows, groups of 1 and 3 sequences, 1 thread and a
// streaming model change nothing.
func TestSampleVariants(t *testing.T) {
	const n = 70
	for ci, c := range sampleCases() {
		seed := uint64(700 + ci)
		w := randomWeights(c.cfg, seed)
		for k, v := range w {
			if !strings.Contains(k, "norm") && !strings.Contains(k, "ln_") {
				for i := range v {
					v[i] *= 8
				}
			}
		}
		if c.edit != nil {
			c.edit(w)
		}
		V := c.cfg.VocabSize
		prompts := [][]int{{1}, testIDs(5, V), {2}, testIDs(23, V), testIDs(n+3, V), {3, 4}, testIDs(69, V)}
		for _, kn := range Kernels() {
			what := c.name + " " + kn
			m, err := New(c.cfg, w, Options{Threads: 2, Kernel: kn})
			if err != nil {
				t.Fatal(err)
			}
			want := windowSample(t, m, prompts, n, seed)
			got, err := Sample(context.Background(), m, prompts, n, sampleRNGs(seed, len(prompts)))
			if err != nil {
				t.Fatal(err)
			}
			sameSeqs(t, what, got, want)
			if !slices.Equal(got[4], prompts[4]) {
				t.Fatalf("%s: a prompt longer than n came back as %d tokens", what, len(got[4]))
			}
			seqs, logits := cachedSample(t, m, prompts, n, seed, sampleLimits{cacheBytes: SampleCacheMemory})
			sameSeqs(t, what+" cachedSample", seqs, want)
			for i, seq := range seqs {
				if len(prompts[i]) >= n {
					continue
				}
				full := forwardAll(t, m, seq[:n-1])
				for j, l := range logits[i] {
					p := len(prompts[i]) - 1 + j
					sameBits(t, fmt.Sprintf("%s: sequence %d, logits at position %d vs Forward", what, i, p), l, full[p*V:(p+1)*V])
				}
			}
			if kn != Kernels()[0] {
				continue
			}
			for _, lim := range []sampleLimits{{passRows: 5}, {cacheBytes: 1}, {cacheBytes: 3 * m.cacheBytes(n-1)}, {serial: true}} {
				if lim.cacheBytes == 0 {
					lim.cacheBytes = SampleCacheMemory
				}
				s, _ := cachedSample(t, m, prompts, n, seed, lim)
				sameSeqs(t, fmt.Sprintf("%s limits %+v", what, lim), s, want)
			}
			got, err = Sample(context.Background(), m.WithThreads(1), prompts, n, sampleRNGs(seed, len(prompts)))
			if err != nil {
				t.Fatal(err)
			}
			sameSeqs(t, what+" 1 thread", got, want)
			st, err := New(c.cfg, w, Options{Threads: 2, Kernel: kn, Stream: "on"})
			if err != nil {
				t.Fatal(err)
			}
			got, err = Sample(context.Background(), st, prompts, n, sampleRNGs(seed, len(prompts)))
			if err != nil {
				t.Fatal(err)
			}
			sameSeqs(t, what+" streaming", got, want)
		}
	}
}

// TestSampleLongBlocks samples 420 tokens from a random llama whose head
// dimension runs the assembly kernels: past 192 keys (AVX-512) and 384
// (AVX2, pure Go) attention sums the keys in blocks, which the cached
// path forms as the forward pass's kernel does: its logits equal those of
// a forward pass over each prefix bit for bit up to exactLen tokens, and
// to rounding beyond (where the forward pass blocks earlier rows' sums by
// the window's length).
func TestSampleLongBlocks(t *testing.T) {
	const n = 420
	cfg := &checkpoint.Config{ModelType: "llama", HiddenSize: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8,
		IntermediateSize: 40, VocabSize: 31, MaxPositions: 512, NormEps: 1e-5, RopeTheta: 10000, Activation: "silu"}
	w := randomWeights(cfg, 9)
	for k, v := range w {
		if !strings.Contains(k, "norm") {
			for i := range v {
				v[i] *= 4
			}
		}
	}
	prompts := [][]int{{1}, testIDs(190, cfg.VocabSize)}
	for _, kn := range Kernels() {
		m, err := New(cfg, w, Options{Threads: 2, Kernel: kn})
		if err != nil {
			t.Fatal(err)
		}
		seqs, logits := cachedSample(t, m, prompts, n, 3, sampleLimits{cacheBytes: SampleCacheMemory})
		var worst float64
		for i := range seqs {
			worst = max(worst, checkPrefixLogits(t, fmt.Sprintf("%s sequence %d", kn, i), m, seqs[i], len(prompts[i]), logits[i],
				[]int{191, 192, 193, 200, 383, 384, 385, 386, n - 2}))
		}
		t.Logf("%s: bit for bit up to %d tokens; worst logit difference %.3g of the largest", kn, exactLen(m), worst)
		if kn == Kernels()[0] {
			sameSeqs(t, kn, seqs, windowSample(t, m, prompts, n, 3))
		}
	}
}

// TestSampleGenerated samples from tiny generated checkpoints, a gpt2 and
// a llama with grouped-query attention, loaded resident and streaming:
// the same tokens as the window path either way.
func TestSampleGenerated(t *testing.T) {
	for _, s := range []gen.Spec{gen.GPT2(tensor.F32, 1), gen.Llama(tensor.F32, 1), gen.Llama(tensor.BF16, 2)} {
		dir := filepath.Join(t.TempDir(), s.Arch)
		if err := gen.WriteCheckpoint(dir, s); err != nil {
			t.Fatal(err)
		}
		lm, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := min(30, lm.Config.MaxPositions)
		prompts := [][]int{{1}, {1, 2, 3}, {5}, {7, 8}}
		var want [][]int
		for _, mode := range []string{"off", "on"} {
			m, err := Load(lm, Options{Threads: 2, Stream: mode})
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = windowSample(t, m, prompts, n, 11)
			}
			got, err := Sample(context.Background(), m, prompts, n, sampleRNGs(11, len(prompts)))
			if err != nil {
				t.Fatal(err)
			}
			sameSeqs(t, fmt.Sprintf("%s %s stream %s", s.Arch, s.DType, mode), got, want)
			m.Close()
		}
		lm.Close()
	}
}

// TestSampleSparse samples from a 90%-pruned model with every projection
// and the LM head in CSR: the same tokens as the window path.
func TestSampleSparse(t *testing.T) {
	cfg := &checkpoint.Config{ModelType: "qwen2", HiddenSize: 48, NumLayers: 2, NumHeads: 6, NumKVHeads: 2, HeadDim: 8,
		IntermediateSize: 72, VocabSize: 37, MaxPositions: 160, NormEps: 1e-5, RopeTheta: 10000, Activation: "silu"}
	w := randomWeights(cfg, 21)
	for k, v := range w {
		if isProjection(k) {
			for i := range v {
				v[i] *= 8
			}
		}
	}
	pruneProjections(w, 0.9)
	m, err := New(cfg, w, Options{Threads: 2, Sparse: "on"})
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int{{1}, {2, 3}, testIDs(9, 37)}
	got, err := Sample(context.Background(), m, prompts, 80, sampleRNGs(5, 3))
	if err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, "sparse", got, windowSample(t, m, prompts, 80, 5))
}

// windowLM hides a *Model behind the LM interface, so Sample takes the
// path of other runtimes.
type windowLM struct{ m *Model }

func (l windowLM) VocabSize() int    { return l.m.VocabSize() }
func (l windowLM) MaxPositions() int { return l.m.MaxPositions() }
func (l windowLM) Window(ctx context.Context, ids []int, from int) (func(r0, rows int, out []float32), error) {
	return l.m.Window(ctx, ids, from)
}

// TestSampleOtherLM samples through an LM that is not a *Model (run
// through Window): the same tokens as the cached path.
func TestSampleOtherLM(t *testing.T) {
	c := streamCases()[0]
	m, err := New(c.cfg, randomWeights(c.cfg, 4), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int{{1}, {2, 3, 4}}
	want, err := Sample(context.Background(), m, prompts, 40, sampleRNGs(8, 2))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Sample(context.Background(), windowLM{m}, prompts, 40, sampleRNGs(8, 2))
	if err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, "LM through Window", got, want)
}

// TestSampleErrors checks Sample's invalid arguments and cancellation.
func TestSampleErrors(t *testing.T) {
	c := streamCases()[0]
	m, err := New(c.cfg, randomWeights(c.cfg, 4), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, bad := range []struct {
		name    string
		prompts [][]int
		n       int
		rngs    []*rand.Rand
	}{
		{"rng count", [][]int{{1}}, 10, nil},
		{"too long", [][]int{{1}}, c.cfg.MaxPositions + 1, sampleRNGs(1, 1)},
		{"empty prompt", [][]int{{}}, 10, sampleRNGs(1, 1)},
		{"id outside the vocabulary", [][]int{{1, c.cfg.VocabSize}}, 10, sampleRNGs(1, 1)},
		{"negative id", [][]int{{-1}}, 10, sampleRNGs(1, 1)},
		{"nil source", [][]int{{1}}, 10, []*rand.Rand{nil}},
	} {
		if _, err := Sample(ctx, m, bad.prompts, bad.n, bad.rngs); !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", bad.name, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Sample(cctx, m, [][]int{{1}}, 10, sampleRNGs(1, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want context.Canceled", err)
	}
	// A shared source draws serially, in sequence order: the window path's
	// order when the prompts run in one pass.
	shared := rand.New(rand.NewPCG(3, 3))
	got, err := Sample(ctx, m, [][]int{{1}, {2}, {3}}, 20, []*rand.Rand{shared, shared, shared})
	if err != nil {
		t.Fatal(err)
	}
	shared = rand.New(rand.NewPCG(3, 3))
	seqs, _ := samplePrompts(m, [][]int{{1}, {2}, {3}}, 20, []*rand.Rand{shared, shared, shared})
	want, err := sampleWindows(ctx, m, seqs, 20, []*rand.Rand{shared, shared, shared})
	if err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, "shared source", got, want)
}
