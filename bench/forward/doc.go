// Command forward times lmsparse's forward pass on a checkpoint: tokens per
// second over windows of -ctx tokens at -threads threads, the Go side of
// bench/eval_vs_torch.sh. It also prints a checksum of the first window's
// logits so the PyTorch run can be checked to compute the same function.
// -model may also name a recognised llama/gpt2 .onnx export, run as
// lmsparse eval runs it (package onnx/native): logits only, comparable
// with bench/ort_eval.js, whose checksum it prints the same way. With
// -onnx general any .onnx model runs on the general executor (package
// onnx/run, as eval runs a graph it does not recognise), the line naming
// its node and fusion counts and how many weights it keeps sparse; -sparse
// sets its Options.Sparse (auto, on, off).
//
//	go run ./bench/forward -model DIR -ctx 512 -threads 2 -iters 5
package main
