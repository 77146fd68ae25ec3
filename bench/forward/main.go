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
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
)

func main() {
	dir := flag.String("model", "", "checkpoint directory, or a recognised llama/gpt2 .onnx export")
	ctx := flag.Int("ctx", 512, "window length")
	threads := flag.Int("threads", 1, "threads")
	iters := flag.Int("iters", 5, "timed windows")
	kernel := flag.String("kernel", "", "GEMM kernel (default: fastest)")
	onnxMode := flag.String("onnx", "auto", "an .onnx model: auto (recognised exports on package model) or general (the executor of onnx/run)")
	sparse := flag.String("sparse", "", "with -onnx general: Options.Sparse of onnx/run (auto, on, off)")
	flag.Parse()
	var (
		forward func(ids []int, logits []float32) error
		vocab   int
		name    string
	)
	if file, ok := checkpoint.ONNXPath(*dir); ok {
		om, err := onnx.Open(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if *onnxMode == "general" {
			// Any ONNX graph, as lmsparse eval runs one it does not recognise.
			s, err := onnxrun.Load(om, onnxrun.Options{Threads: *threads, Sparse: *sparse})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			p := s.Plan()
			forward, vocab = s.Logits, s.VocabSize()
			name = fmt.Sprintf("onnx executor, %d nodes, %d fusions, %d sparse and %d dense weights", p.Nodes, len(p.Fusions), p.SparseWeights, p.DenseWeights)
		} else {
			// A recognised ONNX export, as lmsparse eval runs it (onnx/native).
			m, err := native.Load(om, model.Options{Threads: *threads, Kernel: *kernel})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			forward, vocab, name = m.Forward, m.VocabSize(), m.Kernel()
		}
	} else {
		lm, err := checkpoint.Open(*dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		m, err := model.Load(lm, model.Options{Threads: *threads, Kernel: *kernel})
		lm.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		forward, vocab, name = m.Forward, m.VocabSize(), m.Kernel()
	}
	ids := make([]int, *ctx)
	for i := range ids {
		ids[i] = (i*7919 + 13) % vocab // the same ids as bench/torch_forward.py
	}
	logits := make([]float32, *ctx*vocab)
	if err := forward(ids, logits); err != nil { // warm-up, also the checksum
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Abs(float64(v))
	}
	start := time.Now()
	for i := 0; i < *iters; i++ {
		if err := forward(ids, logits); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("lmsparse threads=%d ctx=%d kernel=%s: %.1f tokens/s (%.3f s/window), mean|logit| %.6f\n",
		*threads, *ctx, name, float64(*iters**ctx)/secs, secs/float64(*iters), sum/float64(len(logits)))
}
