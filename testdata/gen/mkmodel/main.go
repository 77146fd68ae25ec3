package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func main() {
	out := flag.String("o", "", "output directory (or file with -synthetic)")
	arch := flag.String("arch", "llama", "llama, gpt2, or gpt2-small (124M parameters, for benchmarks)")
	dtype := flag.String("dtype", "F32", "F32, F16 or BF16")
	shards := flag.Int("shards", 1, "number of safetensors shards")
	seed := flag.Uint64("seed", 1, "random seed")
	hidden := flag.Int("hidden", 0, "override the hidden size (with -layers: synthetic sizes for memory benchmarks)")
	layers := flag.Int("layers", 0, "override the number of layers")
	demo := flag.Bool("demo", false, "write the demo model: a tiny random llama with a 256-token byte tokenizer (evaluable on any text)")
	synthetic := flag.Int64("synthetic", 0, "write one synthetic F32 safetensors file of about this many bytes instead")
	tensorBytes := flag.Int64("tensor", 64<<20, "with -synthetic: bytes per tensor")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mkmodel: -o is required")
		os.Exit(2)
	}
	var err error
	if *demo {
		err = gen.WriteDemo(*out)
	} else if *synthetic > 0 {
		err = gen.WriteSynthetic(*out, *synthetic, *tensorBytes)
	} else {
		var s gen.Spec
		switch *arch {
		case "llama":
			s = gen.Llama(tensor.DType(*dtype), *shards)
		case "gpt2":
			s = gen.GPT2(tensor.DType(*dtype), *shards)
		case "gpt2-small":
			s = gen.GPT2Small(tensor.DType(*dtype))
			s.Shards = *shards
		default:
			fmt.Fprintf(os.Stderr, "mkmodel: unknown -arch %q\n", *arch)
			os.Exit(2)
		}
		s.Seed = *seed
		if *hidden > 0 {
			s.Hidden, s.Inter = *hidden, 4**hidden
		}
		if *layers > 0 {
			s.Layers = *layers
		}
		err = gen.WriteCheckpoint(*out, s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}
