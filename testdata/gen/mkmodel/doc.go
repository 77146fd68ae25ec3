// Command mkmodel writes a tiny random-weight Hugging Face checkpoint (the
// generator of package gen), for demos and benchmarks:
//
//	go run ./testdata/gen/mkmodel -o /tmp/tiny-llama [-arch llama|gpt2|gpt2-small] [-dtype F32|F16|BF16] [-shards N]
//	go run ./testdata/gen/mkmodel -demo -o /tmp/lmsparse-demo
//	go run ./testdata/gen/mkmodel -synthetic 1GB -tensor 64MB -o /tmp/big.safetensors
//
// The weights are random: perplexities measured on such a model mean nothing.
package main
