package compress_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/compress"
)

// Run a recipe given as YAML on the real stories260k model (in the
// repository's sibling ../shared directory) and print the headline and the
// gates' verdicts. A failing gate is not an error of the run: Run returns
// the complete report and an error wrapping ErrGateFailed.
func Example() {
	recipe, err := compress.ParseRecipe("example.yaml", []byte(`
version: 1
prune:
  sparsity: 0.2
store:
  format: auto
eval:
  text: ../../shared/text/tinystories/tinystories_sample.txt
gates:
  max_ppl_ratio: 1.2
  min_top1: 0.9
`))
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "compress-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	ctx := context.Background()
	plan, err := compress.NewPlan(ctx, "../../shared/models/stories260k", filepath.Join(tmp, "out"), recipe, compress.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer plan.Close()
	rep, err := plan.Run(ctx)
	if err != nil && !errors.Is(err, compress.ErrGateFailed) {
		log.Fatal(err)
	}
	fmt.Println(rep.Headline())
	for _, g := range rep.Gates {
		fmt.Printf("%s: %.4f %s %g: passed %v\n", g.Name, g.Value, g.Op, g.Threshold, g.Passed)
	}
	// Output:
	// ❌ lmsparse: ../../shared/models/stories260k is 1.14× smaller (1.04 MB → 911.89 kB); perplexity 6.12424 → 6.7004 (×1.094), KL 0.1013, top-1 84.7% — gates failed: min_top1
	// max_ppl_ratio: 1.0941 <= 1.2: passed true
	// min_top1: 0.8469 >= 0.9: passed false
}
