package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// refSyntheticCase is a small random model configuration covering what the
// shared models do not: q/k/v, o and MLP biases, an untied head, head_dim
// ≠ hidden/heads, one key/value head, exact gelu, names without prefix.
type refSyntheticCase struct {
	name   string
	cfg    checkpoint.Config
	biases bool // the optional llama-family biases are present
	prefix bool // names carry "model." / "transformer."
}

func refSynthetic() []refSyntheticCase {
	return []refSyntheticCase{
		{"qwen2-biases-untied", checkpoint.Config{
			ModelType: "qwen2", HiddenSize: 12, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 6,
			IntermediateSize: 20, VocabSize: 40, MaxPositions: 32, NormEps: 1e-6, RopeTheta: 500,
			TieWordEmbeddings: false, Activation: "silu"}, true, true},
		{"llama-mqa-tied-noprefix", checkpoint.Config{
			ModelType: "llama", HiddenSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4,
			IntermediateSize: 12, VocabSize: 40, MaxPositions: 32, NormEps: 1e-5, RopeTheta: 10000,
			TieWordEmbeddings: true, Activation: "silu"}, false, false},
		{"gpt2-gelu-untied-noprefix", checkpoint.Config{
			ModelType: "gpt2", HiddenSize: 12, NumLayers: 2, NumHeads: 3, NumKVHeads: 3, HeadDim: 4,
			IntermediateSize: 20, VocabSize: 40, MaxPositions: 32, NormEps: 1e-5,
			TieWordEmbeddings: false, Activation: "gelu"}, false, false},
	}
}

// refRandomNet builds a net of configuration cfg with random weights
// (float32-representable, seeded): norm weights near 1, biases and
// matrices N(0, 0.1²) and N(0, 0.4²).
func refRandomNet(t testing.TB, cfg checkpoint.Config, biases, prefix bool, seed uint64) *refNet {
	t.Helper()
	pre := ""
	if prefix {
		pre = "model."
		if cfg.ModelType == "gpt2" {
			pre = "transformer."
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	params := map[string][]float64{}
	spec := refSpec(&cfg, pre, func(string) bool { return biases })
	names := make([]string, 0, len(spec))
	for name := range spec {
		names = append(names, name)
	}
	slices.Sort(names) // a fixed order of draws
	for _, name := range names {
		shape := spec[name]
		v := make([]float64, refElems(shape))
		for i := range v {
			var x float64
			switch {
			case len(shape) == 1 && strings.HasSuffix(name, ".weight"): // norms
				x = 1 + 0.1*rng.NormFloat64()
			case len(shape) == 1: // biases
				x = 0.1 * rng.NormFloat64()
			default:
				x = 0.4 * rng.NormFloat64()
			}
			v[i] = float64(float32(x))
		}
		params[name] = v
	}
	n, err := refNew(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	if n.pre != pre {
		t.Fatalf("prefix %q, want %q", n.pre, pre)
	}
	return n
}

// refPickCoords returns the 4 coordinates of g of largest magnitude (ties
// to the lower index) and 4 other random ones (all of them when g has at
// most 8).
func refPickCoords(g []float64, rng *rand.Rand) []int {
	if len(g) <= 8 {
		idx := make([]int, len(g))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	var out []int
	for len(out) < 4 {
		best := -1
		for i, v := range g {
			if !slices.Contains(out, i) && (best < 0 || math.Abs(v) > math.Abs(g[best])) {
				best = i
			}
		}
		out = append(out, best)
	}
	for len(out) < 8 {
		i := rng.IntN(len(g))
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// TestRefFiniteDifference checks the reference's analytic gradients
// against central finite differences of its loss, for every parameter
// tensor of stories260k, tiny-gpt2-bf16 and the synthetic models, with
// pure CE (alpha 0) and with alpha 0.5 against a teacher (the net with
// every weight scaled by 0.9).
func TestRefFiniteDifference(t *testing.T) {
	const seed = 20250607
	t.Logf("coordinate RNG: math/rand/v2 PCG seed (%d, 1)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	type fdCase struct {
		name string
		n    *refNet
		wins [][]int
	}
	sids := refReadTokens(t, refStoriesTokens)
	gids := refReadTokens(t, refGPT2Tokens)
	cases := []fdCase{
		{"stories260k", refLoad(t, sharedtest.Path(t, refStoriesDir)), [][]int{sids[:8], sids[8:16]}},
		{"tiny-gpt2-bf16", refLoad(t, sharedtest.Path(t, refTinyGPT2Dir)), [][]int{gids[:5]}},
	}
	for i, s := range refSynthetic() {
		n := refRandomNet(t, s.cfg, s.biases, s.prefix, uint64(100+i))
		cases = append(cases, fdCase{s.name, n, [][]int{{3, 17, 5, 33, 0, 21, 8}, {39, 12, 3, 3, 30, 1, 17}}})
	}
	for _, c := range cases {
		for _, alpha := range []float64{0, 0.5} {
			start := time.Now()
			n := c.n
			var teacher [][][]float64
			if alpha != 0 {
				tn := n.clone()
				for _, w := range tn.params {
					for i := range w {
						w[i] *= 0.9
					}
				}
				for _, w := range c.wins {
					teacher = append(teacher, tn.logits(w))
				}
			}
			loss, grads := n.lossGrad(c.wins, teacher, alpha)
			tds := refTeachers(c.wins, teacher, alpha, n.cfg.VocabSize)
			if l2 := n.loss(c.wins, teacher, alpha); l2 != loss {
				t.Errorf("%s alpha %g: loss %v, lossGrad's %v", c.name, alpha, l2, loss)
			}
			worst, worstName := 0.0, ""
			for _, name := range n.names() {
				g := grads[name]
				w := n.params[name]
				var num, den, fdMax float64
				for _, i := range refPickCoords(g, rng) {
					orig := w[i]
					h := 1e-5 * max(1, math.Abs(orig))
					w[i] = orig + h
					lp := n.lossTeachers(c.wins, tds, alpha)
					w[i] = orig - h
					lm := n.lossTeachers(c.wins, tds, alpha)
					w[i] = orig
					fd := (lp - lm) / ((orig + h) - (orig - h))
					num += (fd - g[i]) * (fd - g[i])
					den += g[i] * g[i]
					fdMax = max(fdMax, math.Abs(fd))
				}
				if den == 0 {
					if fdMax > 1e-9 {
						t.Errorf("%s alpha %g: %s: analytic gradient 0 on the sampled coordinates, finite differences up to %g", c.name, alpha, name, fdMax)
					}
					continue
				}
				rel := math.Sqrt(num / den)
				if rel > worst {
					worst, worstName = rel, name
				}
				if rel > 1e-4 {
					t.Errorf("%s alpha %g: %s: ‖fd − analytic‖/‖analytic‖ = %.3g (‖analytic‖ %.3g)", c.name, alpha, name, rel, math.Sqrt(den))
				}
			}
			t.Logf("%s alpha %g: loss %.9f, %d tensors, worst relative error %.3g (%s), %v",
				c.name, alpha, loss, len(n.params), worst, worstName, time.Since(start).Round(time.Millisecond))
		}
	}
}
