package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// hfScored transcribes the loop of Hugging Face's "perplexity of
// fixed-length models" guide: it returns, per window, the absolute
// positions whose label is not -100 after the model's one-token shift.
func hfScored(n, maxLength, stride int) [][]int {
	var out [][]int
	prevEnd := 0
	for begin := 0; begin < n; begin += stride {
		end := min(begin+maxLength, n)
		trgLen := end - prevEnd
		// input_ids = ids[begin:end]; target_ids[:, :-trg_len] = -100;
		// the shift drops the label of the window's first token.
		var pos []int
		for j := begin; j < end; j++ {
			if j-begin >= (end-begin)-trgLen && j > begin {
				pos = append(pos, j)
			}
		}
		out = append(out, pos)
		prevEnd = end
		if end == n {
			break
		}
	}
	return out
}

func TestWindowsMatchHF(t *testing.T) {
	for n := 2; n < 40; n++ {
		for ctx := 2; ctx < 12; ctx++ {
			for stride := 1; stride <= ctx; stride++ {
				want := hfScored(n, ctx, stride)
				ws := windows(n, ctx, stride)
				if len(ws) != len(want) {
					t.Fatalf("n=%d ctx=%d stride=%d: %d windows, want %d", n, ctx, stride, len(ws), len(want))
				}
				seen := make([]int, n)
				for i, w := range ws {
					var got []int
					for j := w.lo; j < w.end; j++ {
						got = append(got, j)
						seen[j]++
					}
					if len(got) != len(want[i]) || (len(got) > 0 && (got[0] != want[i][0] || got[len(got)-1] != want[i][len(got)-1])) {
						t.Fatalf("n=%d ctx=%d stride=%d window %d: scored %v, want %v", n, ctx, stride, i, got, want[i])
					}
				}
				for j, c := range seen {
					if c > 1 {
						t.Fatalf("n=%d ctx=%d stride=%d: position %d scored %d times", n, ctx, stride, j, c)
					}
				}
			}
		}
	}
	// The README's worked counts.
	for _, c := range []struct{ n, ctx, stride, scored int }{{1879, 512, 512, 1875}, {1879, 128, 128, 1864}, {1879, 256, 128, 1878}, {922, 128, 128, 914}, {922, 128, 64, 921}} {
		s := 0
		for _, w := range windows(c.n, c.ctx, c.stride) {
			s += w.end - w.lo
		}
		if s != c.scored {
			t.Errorf("n=%d ctx=%d stride=%d: %d scored, want %d", c.n, c.ctx, c.stride, s, c.scored)
		}
	}
}

func tinyModel(t *testing.T, vocab, maxPos int) *Model {
	t.Helper()
	cfg := &checkpoint.Config{ModelType: "llama", HiddenSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4,
		IntermediateSize: 12, VocabSize: vocab, MaxPositions: maxPos, NormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: true, Activation: "silu"}
	m, err := New(cfg, randomWeights(cfg, 9), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestScoreBadInput(t *testing.T) {
	m := tinyModel(t, 20, 32)
	other := tinyModel(t, 21, 32)
	short := tinyModel(t, 20, 8)
	ids := testIDs(50, 20)
	ok := ScoreOptions{Ctx: 16, Stride: 8}
	for _, c := range []struct {
		name string
		m    *Model
		ids  []int
		o    ScoreOptions
	}{
		{"nil model", nil, ids, ok},
		{"no tokens", m, nil, ok},
		{"one token", m, ids[:1], ok},
		{"context 0", m, ids, ScoreOptions{Ctx: 0, Stride: 1}},
		{"context 1", m, ids, ScoreOptions{Ctx: 1, Stride: 1}},
		{"context past positions", m, ids, ScoreOptions{Ctx: 33, Stride: 8}},
		{"stride 0", m, ids, ScoreOptions{Ctx: 16, Stride: 0}},
		{"negative stride", m, ids, ScoreOptions{Ctx: 16, Stride: -4}},
		{"stride past context", m, ids, ScoreOptions{Ctx: 16, Stride: 17}},
		{"negative id", m, append([]int{1, 2}, -1), ok},
		{"id past vocab", m, append([]int{1, 2}, 20), ok},
		{"negative text bytes", m, ids, ScoreOptions{Ctx: 16, Stride: 8, TextBytes: -1}},
		{"base vocab", m, ids, ScoreOptions{Ctx: 16, Stride: 8, Base: other}},
		{"base positions", m, ids, ScoreOptions{Ctx: 16, Stride: 8, Base: short}},
	} {
		r, err := Score(context.Background(), c.m, c.ids, c.o)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: got %v, %v; want an error wrapping ErrInput", c.name, r, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

func TestScoreProgressAndCancel(t *testing.T) {
	m := tinyModel(t, 20, 32)
	ids := testIDs(50, 20)
	var calls [][2]int
	r, err := Score(context.Background(), m, ids, ScoreOptions{Ctx: 16, Stride: 8, KeepNLL: true,
		Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	// Windows begin at 0, 8, ..., 32 (end 48), 40 (end 50): 6.
	if r.Windows != 6 || len(calls) != 6 || calls[5] != [2]int{6, 6} || r.Scored != 49 || len(r.NLL) != 49 || r.Tokens != 50 {
		t.Fatalf("windows %d, progress %v, scored %d, %d NLLs", r.Windows, calls, r.Scored, len(r.NLL))
	}
	var sum float64
	for _, v := range r.NLL {
		sum += v
	}
	if math.Abs(sum-r.NLLSum) > 1e-9 || math.Abs(r.PPL-math.Exp(r.NLLSum/49)) > 1e-9 || r.BitsPerByte != 0 {
		t.Fatalf("inconsistent result %+v", r)
	}
	// Scoring a window's tokens one window at a time matches Forward.
	logits := make([]float32, 16*20)
	if err := m.Forward(ids[:16], logits); err != nil {
		t.Fatal(err)
	}
	row := logits[4*20 : 5*20]
	lse, _, _ := logSumExp(row, nil)
	if want := lse - float64(row[ids[5]]); math.Abs(r.NLL[4]-want) > 1e-12 {
		t.Fatalf("NLL at position 5 = %g, from Forward %g", r.NLL[4], want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Score(ctx, m, ids, ScoreOptions{Ctx: 16, Stride: 8}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {90, 4.6}, {99, 4.96}, {100, 5}} {
		if got := percentile(v, c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("percentile(%v, %g) = %g, want %g", v, c.p, got, c.want)
		}
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("one value: %g", got)
	}
}

// TestScoreShards checks that shards cover every window once and that the
// totals of their concatenated sums are bit for bit those of one run.
func TestScoreShards(t *testing.T) {
	m := tinyModel(t, 20, 32)
	cfg := m.cfg
	base2, err := New(&cfg, randomWeights(&cfg, 10), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := testIDs(101, 20)
	o := ScoreOptions{Ctx: 16, Stride: 8, TextBytes: 300, Base: base2}
	one, err := Score(context.Background(), m, ids, o)
	if err != nil {
		t.Fatal(err)
	}
	if one.Windows != 12 || len(one.Sums) != 12 || len(one.KLs) != one.Scored {
		t.Fatalf("one run: %d windows, %d sums, %d KLs, %d scored", one.Windows, len(one.Sums), len(one.KLs), one.Scored)
	}
	for _, n := range []int{1, 2, 3, 5, 7, 12, 13, 20} {
		var sums []WindowSums
		var kls []float64
		next := 0
		for i := range n {
			o.Shard = Shard{i, n}
			r, err := Score(context.Background(), m, ids, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.FirstWindow != next || r.Windows != one.Windows {
				t.Fatalf("n=%d shard %d: first window %d, want %d", n, i, r.FirstWindow, next)
			}
			next += len(r.Sums)
			sums = append(sums, r.Sums...)
			kls = append(kls, r.KLs...)
		}
		if next != one.Windows {
			t.Fatalf("n=%d: shards hold %d windows, want %d", n, next, one.Windows)
		}
		got := Totals(sums, kls, 300, true)
		if got.Scored != one.Scored || got.NLLSum != one.NLLSum || got.PPL != one.PPL || got.BitsPerByte != one.BitsPerByte || *got.KL != *one.KL {
			t.Fatalf("n=%d: merged %+v %+v, one run %+v %+v", n, got, got.KL, one, one.KL)
		}
	}
	for n := 1; n < 40; n++ {
		for ctx := 2; ctx < 12; ctx++ {
			for stride := 1; stride <= ctx; stride++ {
				if got, want := WindowCount(n, ctx, stride), len(windows(n, ctx, stride)); got != want {
					t.Fatalf("WindowCount(%d, %d, %d) = %d, want %d", n, ctx, stride, got, want)
				}
			}
		}
	}
	for _, s := range []Shard{{-1, 2}, {2, 2}, {0, -1}, {1, 0}} {
		o.Shard = s
		if _, err := Score(context.Background(), m, ids, o); !errors.Is(err, ErrInput) {
			t.Errorf("shard %v: got %v, want ErrInput", s, err)
		}
	}
}

// TestLogSumExpKL checks the vectorised log-sum-exp, argmax and KL against
// plain float64 loops with math.Exp.
func TestLogSumExpKL(t *testing.T) {
	seed := uint64(191)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, V := range []int{2, 20, 512, 50257} {
		p, q := make([]float32, V), make([]float32, V)
		for i := range p {
			p[i] = float32(rng.NormFloat64() * 4)
			q[i] = p[i] + float32(rng.NormFloat64()*0.5)
		}
		p[V/2], p[V-1] = 30, 30 // a tie: the first one is the argmax
		ref := func(x []float32) (float64, []float64) {
			mx := float64(slices.Max(x))
			var s float64
			pr := make([]float64, len(x))
			for i, v := range x {
				pr[i] = math.Exp(float64(v) - mx)
				s += pr[i]
			}
			for i := range pr {
				pr[i] /= s
			}
			return mx + math.Log(s), pr
		}
		plse, ppr := ref(p)
		qlse, _ := ref(q)
		var wantKL float64
		for i := range p {
			wantKL += ppr[i] * ((float64(p[i]) - plse) - (float64(q[i]) - qlse))
		}
		e := make([]float64, V)
		lse, arg, sum := logSumExp(p, e)
		if math.Abs(lse-plse) > 1e-13*math.Abs(plse) || arg != V/2 {
			t.Fatalf("V %d: logSumExp = %v, arg %d; want %v, arg %d", V, lse, arg, plse, V/2)
		}
		if lse2, arg2, _ := logSumExp(p, nil); lse2 != lse || arg2 != arg {
			t.Fatalf("V %d: logSumExp without e = %v, %d; with e %v, %d", V, lse2, arg2, lse, arg)
		}
		qlse2, _, _ := logSumExp(q, nil)
		kl := klRow(e, sum, p, q, lse, qlse2)
		if math.Abs(kl-wantKL) > 1e-12+1e-10*wantKL {
			t.Fatalf("V %d: klRow = %v, want %v", V, kl, wantKL)
		}
		t.Logf("V %d: lse %v (ref %v), KL %v (ref %v)", V, lse, plse, kl, wantKL)
	}
}
