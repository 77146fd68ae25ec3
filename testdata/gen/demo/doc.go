// Package demo builds lmsparse's demo model from nothing but code in this
// repository: stories from the grammar of package corpus, a byte-level
// BPE tokenizer trained on them by package bpe, and a small llama trained
// from scratch on them by package train. The result is committed under
// testdata/demo/model; `go run ./testdata/gen/mkmodel -demo-train -o DIR`
// rebuilds it (see testdata/demo/README.md for the time it takes and the
// hashes it gives).
//
// # Splits
//
// The train split is corpus.Generate with seed [TrainSeed] (Options.TrainBytes,
// 6 MB by default), generated when the model is built and never
// committed. The held-out split, testdata/demo/heldout.txt, is
// corpus.Generate with seed [HeldoutSeed] and [HeldoutBytes]. The two are
// drawn from the same grammar with different seeds, so a short story can
// occur in both by chance; nothing else links them.
//
// # Baselines
//
// [FitNGram] fits the unigram and the bigram model a perplexity is
// compared against: counts over the train split's tokens, the bigram
// interpolated with the unigram by absolute discounting (d = 0.75) and the
// unigram add-one smoothed, so every token of the vocabulary has a
// probability.
package demo
