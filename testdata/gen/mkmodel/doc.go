// Command mkmodel writes Hugging Face checkpoints for demos, tests and
// benchmarks:
//
//	go run ./testdata/gen/mkmodel -demo-train -o DIR [-seed 1] [-steps N] [-threads N] > build.json
//	go run ./testdata/gen/mkmodel -heldout -o testdata/demo/heldout.txt
//	go run ./testdata/gen/mkmodel -o /tmp/tiny-llama [-arch llama|gpt2|gpt2-small] [-dtype F32|F16|BF16] [-shards N]
//	go run ./testdata/gen/mkmodel -demo -o /tmp/lmsparse-random-demo
//	go run ./testdata/gen/mkmodel -synthetic 1GB -tensor 64MB -o /tmp/big.safetensors
//
// -demo-train rebuilds the trained demo model committed under
// testdata/demo/model (package demo: corpus, tokenizer and training, all
// written here; testdata/demo/README.md gives its time and hashes). The
// others write random weights (package gen): perplexities measured on
// such a model mean nothing.
package main
