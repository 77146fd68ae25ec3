package saestore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/saestore"
)

// Replace stories260k's token embedding by a TopK sparse autoencoder of
// 192 latents and 4 codes per row (a few epochs: a real run uses the
// default, about 8000 steps), and see what it saves. The bytes do not
// depend on the training: every row stores exactly 4 codes.
func Example() {
	m, err := checkpoint.Open("../../shared/models/stories260k")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	job, err := saestore.Plan(ctx, m, saestore.Options{Latents: 192, K: 4, Epochs: 5, Seed: 1, Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	res, err := job.Execute(ctx)
	if err != nil {
		log.Fatal(err)
	}
	r := res.Report
	fmt.Printf("%s %v: %s, %d epochs\n", r.Tensor, r.Shape, res.Compressed.Method(), r.Epochs)
	fmt.Printf("tensor bytes: %d -> %d (%.2fx smaller)\n", r.TensorSize.Before, r.TensorSize.After, r.TensorSize.Ratio)
	fmt.Printf("model bytes:  %d -> %d\n", r.ModelSize.Before, r.ModelSize.After)
	fmt.Printf("codes per row: %.0f; tied LM head: %v\n", *r.Rows[0].L0, r.TiedHead)
	// Output:
	// model.embed_tokens.weight [512 64]: sae-topk(latents=192,k=4), 5 epochs
	// tensor bytes: 131072 -> 63764 (2.06x smaller)
	// model bytes:  1040128 -> 972820
	// codes per row: 4; tied LM head: true
}
