package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/onnx/native"
)

func main() {
	dir := flag.String("model", "", "checkpoint directory, or a recognised llama/gpt2 .onnx export")
	ctx := flag.Int("ctx", 512, "window length")
	threads := flag.Int("threads", 1, "threads")
	iters := flag.Int("iters", 5, "timed windows")
	kernel := flag.String("kernel", "", "GEMM kernel (default: fastest)")
	flag.Parse()
	var m *model.Model
	if file, ok := checkpoint.ONNXPath(*dir); ok {
		// A recognised ONNX export, as lmsparse eval runs it (onnx/native).
		om, err := onnx.Open(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if m, err = native.Load(om, model.Options{Threads: *threads, Kernel: *kernel}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	} else {
		lm, err := checkpoint.Open(*dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		m, err = model.Load(lm, model.Options{Threads: *threads, Kernel: *kernel})
		lm.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ids := make([]int, *ctx)
	for i := range ids {
		ids[i] = (i*7919 + 13) % m.VocabSize() // the same ids as bench/torch_forward.py
	}
	logits := make([]float32, *ctx*m.VocabSize())
	if err := m.Forward(ids, logits); err != nil { // warm-up, also the checksum
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Abs(float64(v))
	}
	start := time.Now()
	for i := 0; i < *iters; i++ {
		if err := m.Forward(ids, logits); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("lmsparse threads=%d ctx=%d kernel=%s: %.1f tokens/s (%.3f s/window), mean|logit| %.6f\n",
		*threads, *ctx, m.Kernel(), float64(*iters**ctx)/secs, secs/float64(*iters), sum/float64(len(logits)))
}
