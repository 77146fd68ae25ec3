package train

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
)

const (
	storiesDir    = "models/stories260k"
	tinyGPT2Dir   = "fixtures/tiny-gpt2-bf16"
	storiesToks   = "reference/tokens/stories260k.tinystories_sample.json"
	gpt2Toks      = "reference/tokens/gpt2.tinystories_sample.json"
	tinyStories   = "text/tinystories/tinystories_sample.txt"
	storiesPPL512 = 6.124239
)

// openNet loads a shared checkpoint as a Net and as a model.Model.
func openNet(t testing.TB, rel string) (*Net, *checkpoint.Model) {
	t.Helper()
	m, err := checkpoint.Open(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	n, err := NewNet(m.Config, CheckpointSource(m))
	if err != nil {
		t.Fatal(err)
	}
	return n, m
}

func sharedTokens(t testing.TB, rel string) []int {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLossMatchesScore: the training forward pass's CE on windows equals
// the mean NLL package model's Score computes on the same windows.
func TestLossMatchesScore(t *testing.T) {
	for _, c := range []struct {
		dir, toks string
		T         int
	}{{storiesDir, storiesToks, 128}, {tinyGPT2Dir, gpt2Toks, 64}} {
		n, ck := openNet(t, c.dir)
		ids := sharedTokens(t, c.toks)
		wins := Windows(ids, c.T)[:3]
		var flat []int
		for _, w := range wins {
			flat = append(flat, w...)
		}
		lm, err := model.Load(ck, model.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		r, err := model.Score(context.Background(), lm, flat, model.ScoreOptions{Ctx: c.T, Stride: c.T})
		if err != nil {
			t.Fatal(err)
		}
		n.ZeroGrad()
		l, err := n.LossGrad(context.Background(), wins, nil, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := r.MeanNLL
		t.Logf("%s: training CE %.7f, Score mean NLL %.7f", c.dir, l.CE, want)
		if math.Abs(l.CE-want) > 2e-5*want {
			t.Errorf("%s: CE %.7f, want %.7f", c.dir, l.CE, want)
		}
	}
}

// TestGradientDirectional checks the float32 gradient against central
// differences of the float32 loss along random directions (a coarse check;
// the float64 reference test is the precise one).
func TestGradientDirectional(t *testing.T) {
	for _, c := range []struct{ dir, toks string }{{storiesDir, storiesToks}, {tinyGPT2Dir, gpt2Toks}} {
		t.Run(c.dir, func(t *testing.T) { gradientDirectional(t, c.dir, c.toks) })
	}
}

func gradientDirectional(t *testing.T, dir, toks string) {
	n, _ := openNet(t, dir)
	ids := sharedTokens(t, toks)
	wins := Windows(ids, 32)[:2]
	seed := uint64(7)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	n.ZeroGrad()
	if _, err := n.LossGrad(ctx, wins, nil, 0, 2); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for _, p := range n.Params() {
		grads[p.Name] = append([]float32(nil), p.G...)
	}
	for _, p := range n.Params() {
		d := make([]float32, len(p.W))
		var gd float64
		for i := range d {
			d[i] = float32(rng.NormFloat64())
			gd += float64(d[i]) * float64(grads[p.Name][i])
		}
		orig := append([]float32(nil), p.W...)
		eps := float32(5e-2) / float32(math.Sqrt(float64(len(d))))
		loss := func(sign float32) float64 {
			for i := range p.W {
				p.W[i] = orig[i] + sign*eps*d[i]
			}
			n.ZeroGrad()
			l, err := n.LossGrad(ctx, wins, nil, 0, 2)
			if err != nil {
				t.Fatal(err)
			}
			return l.Total
		}
		fd := (loss(1) - loss(-1)) / (2 * float64(eps))
		copy(p.W, orig)
		if math.Abs(fd-gd) > 0.03*math.Abs(gd)+3e-4 {
			t.Errorf("%s: directional derivative %.6g, finite difference %.6g", p.Name, gd, fd)
		}
	}
}
