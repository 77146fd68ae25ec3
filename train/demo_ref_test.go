package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// TestDemoModelMatchesReference: the committed demo model
// (testdata/demo/model) scored by lmsparse's eval path (tokenizer,
// float32 forward pass) on the first 2,048 tokens of its held-out split
// agrees with this package's float64 reference forward pass: every
// token's NLL to 1e-4, and the mean.
func TestDemoModelMatchesReference(t *testing.T) {
	dir := filepath.Join("..", "testdata", "demo", "model")
	heldout := filepath.Join("..", "testdata", "demo", "heldout.txt")
	const maxTokens = 2048
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := eval.ReadText(heldout)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Compare(context.Background(), dir, "", text, tok, eval.Options{MaxTokens: maxTokens, KeepNLL: true}, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := refLoad(t, dir)
	ids := tok.EncodeOptions(string(text.Data), false)[:maxTokens]
	var worst, sum float64
	k := 0
	for begin := 0; begin < len(ids); begin += rep.Ctx {
		win := ids[begin:min(begin+rep.Ctx, len(ids))]
		lg := n.logits(win)
		for p := 0; p+1 < len(win); p++ {
			nll := -refLogSoftmax(lg[p])[win[p+1]]
			if k >= len(rep.NLL) || rep.Pos[k] != begin+p+1 {
				t.Fatalf("eval scored positions %v…, the reference expects %d next", rep.Pos[:min(k+1, len(rep.Pos))], begin+p+1)
			}
			worst = max(worst, math.Abs(nll-rep.NLL[k]))
			sum += nll
			k++
		}
	}
	if k != len(rep.NLL) {
		t.Fatalf("eval scored %d tokens, the reference %d", len(rep.NLL), k)
	}
	mean := sum / float64(k)
	t.Logf("%d tokens, ctx %d: mean NLL eval %.7f, float64 reference %.7f; worst per-token |ΔNLL| %.3g", k, rep.Ctx, rep.MeanNLL, mean, worst)
	if worst > 1e-4 || math.Abs(mean-rep.MeanNLL) > 1e-5 {
		t.Errorf("eval and the float64 reference differ: worst per-token %.3g, mean %.3g", worst, math.Abs(mean-rep.MeanNLL))
	}
}
