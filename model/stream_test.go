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
	"sync/atomic"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// sameBits fails unless got and want are bit-identical.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d = %g, want %g (bit for bit)", what, i, got[i], want[i])
		}
	}
}

// forwardAll returns m's logits for ids.
func forwardAll(t *testing.T, m *Model, ids []int) []float32 {
	t.Helper()
	out := make([]float32, len(ids)*m.VocabSize())
	if err := m.Forward(ids, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameResult fails unless two scores agree exactly.
func sameResult(t *testing.T, what string, got, want *Result) {
	t.Helper()
	if got.Scored != want.Scored || got.Windows != want.Windows || got.NLLSum != want.NLLSum || got.PPL != want.PPL ||
		!slices.Equal(got.NLL, want.NLL) || !slices.Equal(got.Pos, want.Pos) {
		t.Fatalf("%s: scored %d in %d windows, NLL sum %v; want %d in %d, %v", what, got.Scored, got.Windows, got.NLLSum, want.Scored, want.Windows, want.NLLSum)
	}
	if (got.KL == nil) != (want.KL == nil) || (got.KL != nil && *got.KL != *want.KL) {
		t.Fatalf("%s: KL %+v, want %+v", what, got.KL, want.KL)
	}
}

// streamCases are the architecture variants of TestForwardVariants.
func streamCases() []struct {
	name string
	cfg  *checkpoint.Config
	edit func(w map[string][]float32)
} {
	llama := func(mt string, tied bool) *checkpoint.Config {
		return &checkpoint.Config{ModelType: mt, HiddenSize: 24, NumLayers: 3, NumHeads: 6, NumKVHeads: 2, HeadDim: 4,
			IntermediateSize: 40, VocabSize: 37, MaxPositions: 160, NormEps: 1e-5, RopeTheta: 10000,
			TieWordEmbeddings: tied, Activation: "silu"}
	}
	gpt := func(act string, tied bool) *checkpoint.Config {
		return &checkpoint.Config{ModelType: "gpt2", HiddenSize: 24, NumLayers: 3, NumHeads: 3, NumKVHeads: 3, HeadDim: 8,
			IntermediateSize: 52, VocabSize: 41, MaxPositions: 150, NormEps: 1e-5, TieWordEmbeddings: tied, Activation: act}
	}
	return []struct {
		name string
		cfg  *checkpoint.Config
		edit func(w map[string][]float32)
	}{
		{"llama tied", llama("llama", true), nil},
		{"llama untied", llama("llama", false), nil},
		{"mistral", llama("mistral", false), nil},
		{"qwen2 biases", llama("qwen2", true), nil},
		{"llama mlp and o_proj biases", llama("llama", true), func(w map[string][]float32) {
			for l := 0; l < 3; l++ {
				p := fmt.Sprintf("model.layers.%d.", l)
				w[p+"self_attn.o_proj.bias"] = slices.Repeat([]float32{0.1, -0.2, 0.3}, 8)
				w[p+"mlp.gate_proj.bias"] = slices.Repeat([]float32{0.05, -0.1}, 20)
				w[p+"mlp.up_proj.bias"] = slices.Repeat([]float32{-0.3, 0.2}, 20)
				w[p+"mlp.down_proj.bias"] = slices.Repeat([]float32{0.01, 0.02, -0.03}, 8)
			}
		}},
		{"gpt2", gpt("gelu_new", true), nil},
		{"gpt2 exact gelu", gpt("gelu", true), nil},
		{"gpt2 untied", gpt("gelu_new", false), nil},
	}
}

// TestStreamMatchesResident checks that streaming the block projections
// changes nothing: on every architecture variant and kernel, a streaming
// model's logits are bit-identical to the resident model's, and Score
// gives the same result for every batch size — 1, sizes that do not
// divide the window count, and more than there are windows — with and
// without a base model.
func TestStreamMatchesResident(t *testing.T) {
	for ci, c := range streamCases() {
		seed := uint64(500 + ci)
		t.Logf("%s: weights seed %d", c.name, seed)
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
		ids := testIDs(140, c.cfg.VocabSize)
		for _, kn := range Kernels() {
			res, err := New(c.cfg, w, Options{Threads: 2, Kernel: kn, Stream: "off"})
			if err != nil {
				t.Fatal(err)
			}
			st, err := New(c.cfg, w, Options{Threads: 2, Kernel: kn, Stream: "on"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Streaming() || !st.Streaming() {
				t.Fatalf("%s: Streaming() = %v, %v; want false, true", c.name, res.Streaming(), st.Streaming())
			}
			want := forwardAll(t, res, ids)
			sameBits(t, c.name+" "+kn+" streaming", forwardAll(t, st, ids), want)
			sameBits(t, c.name+" "+kn+" streaming, 1 thread", forwardAll(t, st.WithThreads(1), ids), want)
			if kn != Kernels()[0] {
				continue
			}
			// 13 windows of 32 with stride 11 over 160 tokens.
			long := testIDs(160, c.cfg.VocabSize)
			o := ScoreOptions{Ctx: 32, Stride: 11, KeepNLL: true, Batch: 1}
			ref, err := Score(context.Background(), res, long, o)
			if err != nil {
				t.Fatal(err)
			}
			ob := o
			ob.Base = res
			refKL, err := Score(context.Background(), res, long, ob)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []int{0, 1, 2, 5, 13, 40} {
				o.Batch, ob.Batch = b, b
				r, err := Score(context.Background(), st, long, o)
				if err != nil {
					t.Fatal(err)
				}
				sameResult(t, fmt.Sprintf("%s batch %d", c.name, b), r, ref)
				ob.Base = st
				r, err = Score(context.Background(), res, long, ob)
				if err != nil {
					t.Fatal(err)
				}
				sameResult(t, fmt.Sprintf("%s batch %d, streaming base", c.name, b), r, refKL)
				rr, err := Score(context.Background(), res, long, o)
				if err != nil {
					t.Fatal(err)
				}
				sameResult(t, fmt.Sprintf("%s batch %d, resident", c.name, b), rr, ref)
			}
		}
	}
}

// TestStreamLoadGenerated loads generated checkpoints (F32 tied and
// untied, BF16 in 3 shards, gpt2 F16) resident and streaming: logits are
// bit-identical, the loader model can be closed before the streaming
// model runs, an untied streaming model reads embedding rows on demand,
// and Close makes further passes fail cleanly.
func TestStreamLoadGenerated(t *testing.T) {
	untied := gen.Llama(tensor.F32, 1)
	untied.Tied = false
	tied := gen.Llama(tensor.F32, 1)
	tied.Tied = true
	for _, s := range []gen.Spec{untied, tied, gen.Llama(tensor.BF16, 3), gen.GPT2(tensor.F16, 1)} {
		name := fmt.Sprintf("%s %s tied=%v shards=%d", s.Arch, s.DType, s.Tied, s.Shards)
		dir := filepath.Join(t.TempDir(), s.Arch)
		if err := gen.WriteCheckpoint(dir, s); err != nil {
			t.Fatal(err)
		}
		lm, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Load(lm, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.Streaming() {
			t.Fatalf("%s: a tiny model streams under Stream auto", name)
		}
		st, err := Load(lm, Options{Threads: 2, Stream: "on"})
		if err != nil {
			t.Fatal(err)
		}
		lm.Close() // the streaming model reads through its own handle
		onDemand := st.stream.embed != ""
		if onDemand != (s.Arch == "llama" && !s.Tied) || (onDemand && st.embed != nil) {
			t.Fatalf("%s: embedding rows on demand %v, resident copy %v", name, onDemand, st.embed != nil)
		}
		ids := testIDs(s.Ctx, s.Vocab)
		want := forwardAll(t, res, ids)
		sameBits(t, name+" streaming", forwardAll(t, st, ids), want)
		sameBits(t, name+" streaming again", forwardAll(t, st, ids), want)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		err = st.Forward(ids, make([]float32, len(ids)*s.Vocab))
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("%s: Forward after Close: %v, want an error saying the file is closed", name, err)
		}
		t.Logf("%s: streaming logits bit-identical; after Close: %v", name, err)
	}
}

// TestStreamStories260k checks the real model: streaming logits are
// bit-identical to resident ones, perplexity with 15 windows of 128 in
// batches of 4 (which do not divide 15) is identical and matches the
// reference number, and a streaming model against a streaming base has
// KL 0.
func TestStreamStories260k(t *testing.T) {
	res := loadShared(t, storiesPath, Options{Threads: 2})
	st := loadShared(t, storiesPath, Options{Threads: 2, Stream: "on"})
	defer st.Close()
	ids := readTokens(t, storiesTokens)
	sameBits(t, "stories260k streaming", forwardAll(t, st, ids[:512]), forwardAll(t, res, ids[:512]))
	o := ScoreOptions{Ctx: 128, Stride: 128, TextBytes: sampleBytes, KeepNLL: true}
	want, err := Score(context.Background(), res, ids, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Batch = 4
	got, err := Score(context.Background(), st, ids, o)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "stories260k 128/128 batch 4", got, want)
	if e := relErr(got.PPL, 6.043675); e > 1e-4 {
		t.Fatalf("streaming ppl %.6f, reference 6.043675", got.PPL)
	}
	o.Base = st
	self, err := Score(context.Background(), st, ids, o)
	if err != nil {
		t.Fatal(err)
	}
	if self.KL.Mean != 0 || self.KL.Max != 0 || self.KL.Top1 != 1 {
		t.Fatalf("streaming model against itself: %+v", self.KL)
	}
	t.Logf("stories260k streaming: ppl %.6f (reference 6.043675), %d windows", got.PPL, got.Windows)
}

// TestStreamSparse runs 90%-pruned models (block projections, and for the
// gpt2 case the tied embedding / LM head too) streaming and resident with
// sparse execution auto and on: logits are bit-identical, and a streaming
// model runs the same projections in CSR as a resident one.
func TestStreamSparse(t *testing.T) {
	for ci, c := range streamCases() {
		seed := uint64(700 + ci)
		t.Logf("%s: weights seed %d", c.name, seed)
		w := randomWeights(c.cfg, seed)
		if c.edit != nil {
			c.edit(w)
		}
		pruneProjections(w, 0.9)
		if c.name == "gpt2" {
			pruneProjections(map[string][]float32{"h.0.wte.weight": w["transformer.wte.weight"]}, 0.9)
		}
		ids := testIDs(100, c.cfg.VocabSize)
		for _, mode := range []string{"auto", "on"} {
			res, err := New(c.cfg, w, Options{Threads: 2, Sparse: mode})
			if err != nil {
				t.Fatal(err)
			}
			st, err := New(c.cfg, w, Options{Threads: 2, Sparse: mode, Stream: "on"})
			if err != nil {
				t.Fatal(err)
			}
			sp, total := res.SparseProjections()
			ssp, stotal := st.SparseProjections()
			if sp != ssp || total != stotal || res.SparseHead() != st.SparseHead() {
				t.Fatalf("%s sparse=%s: %d of %d in CSR streaming, %d of %d resident; head %v vs %v", c.name, mode, ssp, stotal, sp, total, st.SparseHead(), res.SparseHead())
			}
			if mode == "on" || blas.SparseAsm() {
				if sp != total {
					t.Fatalf("%s sparse=%s: %d of %d projections in CSR", c.name, mode, sp, total)
				}
			}
			if c.name == "gpt2" && st.SparseHead() && st.stream.embed == "" {
				t.Fatalf("%s: CSR head but embedding rows not read on demand", c.name)
			}
			want := forwardAll(t, res, ids)
			sameBits(t, c.name+" sparse "+mode+" streaming", forwardAll(t, st, ids), want)
			sameBits(t, c.name+" sparse "+mode+" streaming, second pass", forwardAll(t, st, ids), want)
		}
	}
}

// cancelAfter is a context whose Err reports cancellation from its n-th
// call on.
type cancelAfter struct {
	context.Context
	n, calls atomic.Int32
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) >= c.n.Load() {
		return context.Canceled
	}
	return nil
}

// TestStreamCancel cancels streaming passes between layers, before the
// first layer and between windows: each returns context.Canceled and
// gives back the buffer sets of its reader goroutine.
func TestStreamCancel(t *testing.T) {
	c := streamCases()[0]
	const seed = 900
	t.Logf("weights seed %d", seed)
	m, err := New(c.cfg, randomWeights(c.cfg, seed), Options{Threads: 2, Stream: "on"})
	if err != nil {
		t.Fatal(err)
	}
	ids := testIDs(100, c.cfg.VocabSize)
	logits := make([]float32, len(ids)*c.cfg.VocabSize)
	for n := int32(1); n <= int32(c.cfg.NumLayers)+1; n++ {
		ctx := &cancelAfter{Context: context.Background()}
		ctx.n.Store(n)
		if err := m.ForwardContext(ctx, ids, logits); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at check %d: got %v, want context.Canceled", n, err)
		}
		if got := len(m.stream.bufs); got != 2 {
			t.Fatalf("cancelled at check %d: %d buffer sets returned, want 2", n, got)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Score(ctx, m, testIDs(150, c.cfg.VocabSize), ScoreOptions{Ctx: 16, Stride: 16, Batch: 3,
		Progress: func(done, total int) {
			if done == 4 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Score cancelled after 4 windows: got %v", err)
	}
	if err := m.ForwardContext(context.Background(), ids, logits); err != nil {
		t.Fatalf("after cancellations: %v", err)
	}
}

// TestPackAndCSRLayouts checks the packing and CSR conversion of streamed
// weights against package blas on both source layouts ([out, in] and
// gpt2's transposed [in, out]), including -0, empty rows and full rows.
func TestPackAndCSRLayouts(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	t.Logf("PCG seed 41, 42")
	for _, kn := range Kernels() {
		kern, err := findKernel(kn)
		if err != nil {
			t.Fatal(err)
		}
		m := &Model{kern: kern}
		for _, sz := range [][2]int{{1, 1}, {37, 13}, {64, 70}, {100, 33}} {
			rows, k := sz[0], sz[1]
			w := make([]float32, rows*k)
			for i := range w {
				switch rng.IntN(4) {
				case 0:
					w[i] = 0
				case 1:
					w[i] = float32(math.Copysign(0, -1))
				default:
					w[i] = float32(rng.NormFloat64())
				}
			}
			if rows > 2 {
				for j := 0; j < k; j++ { // row 1 of the [rows, k] operand empty in both layouts
					w[1*k+j] = 0
				}
			}
			for _, lay := range []struct{ si, sj int }{{k, 1}, {1, rows}} {
				name := fmt.Sprintf("%s %dx%d si=%d", kn, rows, k, lay.si)
				want := kern.PackB(w, rows, k, lay.si, lay.sj, 1)
				got := blas.Packed{Data: slices.Repeat([]float32{7}, len(want.Data)), Rows: rows, K: k, R: kern.NR()}
				m.pack(&got, w, lay.si, lay.sj, 3)
				sameBits(t, name+" packed", got.Data, want.Data)
				// The reference: rows in order, columns in order.
				wc := blas.CSR{Rows: rows, Cols: k, RowPtr: make([]int64, rows+1)}
				for i := 0; i < rows; i++ {
					for j := 0; j < k; j++ {
						if v := w[i*lay.si+j*lay.sj]; v != 0 {
							wc.Col, wc.Val = append(wc.Col, int32(j)), append(wc.Val, v)
						}
					}
					wc.RowPtr[i+1] = int64(len(wc.Val))
				}
				var gc blas.CSR
				for _, nnz := range []int{-1, wc.NNZ()} {
					gc.SetStrided(w, rows, k, lay.si, lay.sj, nnz)
					if gc.Rows != wc.Rows || gc.Cols != wc.Cols || !slices.Equal(gc.RowPtr, wc.RowPtr) || !slices.Equal(gc.Col, wc.Col) || !slices.Equal(gc.Val, wc.Val) {
						t.Fatalf("%s: CSR differs from the reference", name)
					}
				}
			}
		}
	}
}

// TestStreamAuto checks the Options.Stream rule and its errors.
func TestStreamAuto(t *testing.T) {
	cfg := streamCases()[0].cfg
	if _, err := New(cfg, randomWeights(cfg, 1), Options{Stream: "sometimes"}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "sometimes") {
		t.Fatalf("Stream \"sometimes\": %v, want ErrInput naming it", err)
	}
	m, err := New(cfg, randomWeights(cfg, 1), Options{})
	if err != nil || m.Streaming() {
		t.Fatalf("New with Stream auto: streaming %v, %v; want resident", m != nil && m.Streaming(), err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close of a resident model: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := gen.WriteCheckpoint(dir, gen.GPT2(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	lm, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	total, largest := weightBytes(lm)
	if total <= largest || largest <= 0 {
		t.Fatalf("weightBytes = %d, %d", total, largest)
	}
	if m, err := Load(lm, Options{}); err != nil || m.Streaming() {
		t.Fatalf("Load of a %d-byte model with Stream auto: streaming %v, %v", total, m != nil && m.Streaming(), err)
	}
	if _, err := Load(lm, Options{Stream: "never"}); !errors.Is(err, ErrInput) {
		t.Fatalf("Load with Stream \"never\": %v", err)
	}
	// GPT-2 small: 498 MB of weights, the largest 154 MB, streams.
	const wte = 4 * 50257 * 768
	for _, c := range []struct {
		total, largest int64
		want           bool
	}{{4 * 124_439_808, wte, true}, {2*wte + StreamSlack, wte, false}, {2*wte + StreamSlack + 1, wte, true}, {1 << 20, 1 << 17, false}} {
		if got := autoStreams(c.total, c.largest); got != c.want {
			t.Errorf("autoStreams(%d, %d) = %v, want %v", c.total, c.largest, got, c.want)
		}
	}
}
