package compress_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// TestCalibratedRecipe runs sparsegpt from a recipe with a sweep: the
// calibration is recorded, the sweep points are pruned with the same
// method and data (at 0.5 the sweep point equals the run), and the
// recipe's calib keys without a calibrated method are refused.
func TestCalibratedRecipe(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	r, err := compress.ParseRecipe("calib.yaml", []byte(`version: 1
prune:
  method: sparsegpt
  sparsity: 0.5
  calib: {source: self, samples: 8, len: 64, seed: 3}
eval:
  text: `+text+`
sweep: [0.3, 0.5]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan, err := compress.NewPlan(ctx, s260, filepath.Join(t.TempDir(), "out"), r, compress.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	rep, err := plan.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Calibration
	if c == nil || c.Method != "sparsegpt" || c.Source != "self" || c.Samples != 8 || c.Len != 64 || c.Seed != 3 || c.Damp != 0.01 {
		t.Fatalf("calibration %+v", c)
	}
	if len(rep.Sweep) != 2 || rep.Sweep[1].PPL != rep.Fid.PPL || rep.Sweep[0].PPL >= rep.Fid.PPL {
		t.Errorf("sweep %+v, run ppl %g", rep.Sweep, rep.Fid.PPL)
	}
	if rep.Fid.PPL > 40 { // magnitude at 0.5: 66.48
		t.Errorf("sparsegpt at 0.5: perplexity %g", rep.Fid.PPL)
	}
	for _, bad := range []string{
		"version: 1\nprune:\n  sparsity: 0.5\n  calib: {samples: 8}\n",
		"version: 1\nprune:\n  method: wanda\n  sparsity: 0.5\n  structured: rows\n",
		"version: 1\nprune:\n  method: obs\n  sparsity: 0.5\n",
	} {
		r, err := compress.ParseRecipe("bad.yaml", []byte(bad))
		if err == nil {
			err = r.Normalize()
		}
		if err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
