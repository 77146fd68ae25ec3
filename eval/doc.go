// Package eval measures what compression cost a language model: it scores
// a model on held-out text — perplexity, bits per byte and, against the
// original (base) model, KL divergence and top-1 agreement — and returns
// the report "lmsparse eval" prints. It wraps package model's scoring
// protocol with everything around it: opening safetensors and ONNX models,
// reading the text, finding the tokenizer, tokenizing once for many
// candidates, and the report.
//
// # Models
//
// [Open] opens a safetensors checkpoint (a directory or a .safetensors
// file with its config.json) through package model — tensors stored as
// CSR, bitmask or sparse-autoencoder parts are expanded as they are read,
// and large checkpoints stream their block weights (model.Options.Stream)
// — or an ONNX model (a .onnx file, or a directory holding exactly one
// .onnx file and no safetensors checkpoint, see checkpoint.ONNXPath): a
// recognised llama or GPT-2 export as a model.Model built from its
// initializers (package onnx/native; the report's kernel reads "onnx
// native, …"), any other graph — or every graph with model.Options.ONNX
// "general" — through the pure-Go executor of package onnx/run, which is a
// model.BatchLM: Score hands it up to 8 windows at a time when their
// logits fit model.BatchMemory twice, once it has checked on the first two
// windows that a batch gives each window its own logits bit for bit.
// Either way the result is a model.LM that implements io.Closer.
//
// # Text and tokenizer
//
// [ReadText] reads a file as bytes, unmodified, at most [MaxTextBytes];
// [NewText] wraps bytes already in memory. Invalid UTF-8 is counted
// (Text.InvalidUTF8) and tokenized as U+FFFD, one per maximal invalid
// sequence; bits per byte still counts every byte of the text.
// [LoadTokenizer] loads the tokenizer.json beside a model, or another one.
//
// # Scoring
//
// A [Harness] holds one text, tokenized once (special tokens as the
// tokenizer says), and an optional base model; [Harness.Score] scores one
// candidate model and returns a [Report]. Build one Harness and score many
// candidates against the same base. [Compare] is the one-shot form: open a
// model and its base, score, close.
//
// The protocol is package model's (Hugging Face's "perplexity of
// fixed-length models"): windows of Options.Ctx tokens every
// Options.Stride tokens, each token scored once. Options.Ctx 0 takes the
// positions of the base model, or without a base of the scored model, at
// most [DefaultCtx] (512); Options.Stride 0 takes the context.
// Options.MaxTokens cuts the tokens, and the report then has no bits per
// byte.
//
// # Sharded runs
//
// One run's windows can be scored on many machines: [Harness.ScoreShard]
// (or [CompareShard]) scores shard I of N — the contiguous windows
// [⌊I·W/N⌋, ⌊(I+1)·W/N⌋) of the W windows, model.Shard — and returns a
// [Partial]; [WritePartial] and [ReadPartial] store it as JSON (schema
// [PartialSchema], read strictly and bounded by [MaxPartialBytes]);
// [Merge] (or [MergeFiles]) combines the N partials into the [Report] that
// [Harness.Score] returns for the whole run. The merged report equals the
// one-machine report in every field but the timings (seconds,
// tokens_per_second): perplexity, mean NLL, bits per byte, KL mean, max
// and percentiles, top-1 agreement and the base perplexity bit for bit,
// because both paths compute them with model.Totals from the same
// per-window sums added in window order (each window's positions summed in
// position order), and the percentiles from every scored position's KL,
// which each partial carries as a float64 (JSON numbers round-trip
// float64 exactly): about 21 bytes per scored token with a base model, plus
// about 40 bytes per window (100 with a base) and 0.7 KB. A partial's [RunID] — model and base
// labels, text path, size and SHA-256, tokenizer kind, SHA-256 of the
// token ids (4 bytes little-endian each), MaxTokens, ctx, stride, windows,
// N, the lmsparse build (manifest.Tool), and with [CompareShard] every file
// the model and the base are read from with its size and SHA-256 — must be
// the same in every part; Merge refuses parts of different runs, a missing
// shard or a shard given twice with an error wrapping [ErrInput] that
// names the field or the shard.
// Merged seconds are the sum of the shards' scoring times. The numbers do
// not depend on the threads, but they do on the matrix kernel (AVX-512,
// AVX2 and pure Go differ in the last bits): the merged report's kernel
// lists every kernel the shards used, and only shards of one kernel give
// the one run's bits.
//
// # Errors
//
// Inputs eval refuses — an empty text, fewer than 2 tokens, a window
// longer than a model's positions or a stride longer than the window,
// models of different vocabularies, a token id outside the model's
// vocabulary, a missing tokenizer.json — return errors wrapping
// [ErrInput]; [WindowError], [VocabError] and [TokenError] carry the
// numbers so that a program can phrase them in its own terms (its flags).
// Errors of the packages below (checkpoint, model, onnx, tokenizer) pass
// through unchanged and name their file.
//
// # Progress
//
// Options.Progress receives each Score's windows as stage "eval" in unit
// "windows"; the package never prints.
package eval
