package eval_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"path/filepath"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
)

// Score stories260k and its ONNX export against the original on held-out
// text, tokenizing the text once. The assets are those of ../shared.
func Example() {
	shared := sharedtest.Root()
	s260 := filepath.Join(shared, "models/stories260k")
	export := filepath.Join(shared, "models/stories260k-onnx/model.onnx")

	text, err := eval.ReadText(filepath.Join(shared, "text/tinystories/tinystories_sample.txt"))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := eval.LoadTokenizer(s260, "")
	if err != nil {
		log.Fatal(err)
	}
	base, err := eval.Open(s260, model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer base.(io.Closer).Close()
	h, err := eval.NewHarness(base, tok, text, eval.Options{BaseLabel: "stories260k"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d tokens, windows of %d\n", len(h.Tokens()), h.Ctx())
	for _, c := range []struct{ label, path string }{{"safetensors", s260}, {"onnx", export}} {
		m, err := eval.Open(c.path, model.Options{})
		if err != nil {
			log.Fatal(err)
		}
		r, err := h.Score(context.Background(), m, c.label)
		m.(io.Closer).Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-11s ppl %.4f  KL mean %.4f  top-1 %.2f%%\n", r.Model, r.PPL, r.KL.Mean, 100*r.KL.Top1)
	}
	// Output:
	// 1879 tokens, windows of 512
	// safetensors ppl 6.1242  KL mean 0.0000  top-1 100.00%
	// onnx        ppl 6.1242  KL mean 0.0000  top-1 100.00%
}
