package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
	"github.com/lmsparse/lmsparse/testdata/gen/demo"
	"github.com/lmsparse/lmsparse/train"
)

func main() {
	out := flag.String("o", "", "output directory (or file with -synthetic)")
	arch := flag.String("arch", "llama", "llama, gpt2, or gpt2-small (124M parameters, for benchmarks)")
	dtype := flag.String("dtype", "F32", "F32, F16 or BF16")
	shards := flag.Int("shards", 1, "number of safetensors shards")
	seed := flag.Uint64("seed", 1, "random seed")
	hidden := flag.Int("hidden", 0, "override the hidden size (with -layers: synthetic sizes for memory benchmarks)")
	layers := flag.Int("layers", 0, "override the number of layers")
	random := flag.Bool("demo", false, "write a tiny random llama with a 256-token byte tokenizer (evaluable on any text)")
	demoTrain := flag.Bool("demo-train", false, "build the trained demo model of testdata/demo/model (minutes): its build record goes to stdout")
	heldout := flag.Bool("heldout", false, "write the demo's held-out split (testdata/demo/heldout.txt) to -o")
	steps := flag.Int("steps", 0, "with -demo-train: optimizer steps (0: the committed model's)")
	threads := flag.Int("threads", 0, "with -demo-train: threads (0: all CPUs)")
	synthetic := flag.Int64("synthetic", 0, "write one synthetic F32 safetensors file of about this many bytes instead")
	tensorBytes := flag.Int64("tensor", 64<<20, "with -synthetic: bytes per tensor")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mkmodel: -o is required")
		os.Exit(2)
	}
	var err error
	if *heldout {
		err = os.WriteFile(*out, demo.Text(demo.HeldoutSeed, demo.HeldoutBytes), 0o644)
	} else if *demoTrain {
		err = buildDemo(*out, *seed, *steps, *threads)
	} else if *random {
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

// buildDemo builds the trained demo model into dir, logging the loss to
// stderr and printing the build record (JSON) to stdout.
func buildDemo(dir string, seed uint64, steps, threads int) error {
	o := demo.Default()
	o.Seed, o.Threads = seed, threads
	if steps > 0 {
		o.Steps = steps
	}
	o.OnStep = func(s train.Step) {
		if s.Step%25 == 0 || s.Step == o.Steps-1 {
			fmt.Fprintf(os.Stderr, "step %4d/%d  loss %.4f  lr %.2e  %.0f tokens/s\n", s.Step+1, o.Steps, s.Total, s.LR, s.TokensSec)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := demo.Build(ctx, dir, o)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}
