package saestore

import (
	"fmt"
	"runtime"

	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/sae"
)

// Options configures [Plan] and [Compress]. The zero value works: a zero
// Latents, K, Epochs, Batch, LR or Threads means its default for the
// tensor's shape [rows, d] (see [Options.WithDefaults]); negative values
// are invalid.
type Options struct {
	// Tensor names the 2-D tensor to compress; "" means the token
	// embedding (the first of arch.EmbeddingNames the model has).
	Tensor string
	// Latents is the dictionary size m; 0 means 3·d.
	Latents int
	// K is the number of nonzero codes per row of a TopK SAE; 0 means
	// max(1, d/16). It must be 0 when L1 is set.
	K int
	// L1, when positive, trains an L1 SAE with this penalty λ instead of a
	// TopK SAE.
	L1 float64
	// Epochs is the number of passes over the rows; 0 means enough for
	// about 8000 Adam steps: ceil(8000·min(Batch, rows)/rows).
	Epochs int
	// Batch is the number of rows per Adam step; 0 means 64.
	Batch int
	// LR is Adam's step size; 0 means 0.003.
	LR float64
	// Seed seeds the initialisation and the shuffling (0 is a seed like
	// any other).
	Seed uint64
	// Threads is the number of goroutines; 0 means runtime.NumCPU().
	// Results do not depend on it.
	Threads int
	// NoRefit stores the encoder's code values instead of least-squares
	// ones.
	NoRefit bool
	// Progress, when set, receives the training's epochs: stage "sae",
	// unit "epochs", detail "loss x, L0 y, z dead".
	Progress progress.Func
}

// WithDefaults returns o with its zero fields set to their defaults for a
// [rows, d] tensor (those of [sae.Options.WithDefaults], and Threads
// runtime.NumCPU()). Fields already set, valid or not, are kept; Tensor
// and Progress are kept as given.
func (o Options) WithDefaults(rows, d int) Options {
	t := o.train().WithDefaults(rows, d)
	o.Latents, o.K, o.Epochs, o.Batch, o.LR = t.Latents, t.K, t.Epochs, t.Batch, t.LR
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	return o
}

// validate checks o for a [rows, d] tensor; errors wrap sae.ErrInvalid.
func (o Options) validate(rows, d int) error {
	if o.Threads < 0 {
		return fmt.Errorf("%w: threads %d: must not be negative", sae.ErrInvalid, o.Threads)
	}
	t := o.train()
	return t.Validate(rows, d)
}

// train returns the options of package sae (without Progress).
func (o Options) train() sae.Options {
	return sae.Options{Latents: o.Latents, K: o.K, L1: o.L1, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR,
		Seed: o.Seed, Threads: o.Threads, NoRefit: o.NoRefit}
}

// Variant returns "l1" for an L1 SAE, else "topk".
func (o Options) Variant() string {
	if o.L1 > 0 {
		return "l1"
	}
	return "topk"
}

// Method describes the autoencoder as lmsparse.json's "method" does:
// "sae-topk(latents=M,k=K)" or "sae-l1(latents=M,l1=λ)". Call it on
// options with their defaults applied.
func (o Options) Method() string {
	if o.L1 > 0 {
		return fmt.Sprintf("sae-l1(latents=%d,l1=%g)", o.Latents, o.L1)
	}
	return fmt.Sprintf("sae-topk(latents=%d,k=%d)", o.Latents, o.K)
}

// Flags returns the training settings as lmsparse.json's "flags" records
// them: latents, k or l1, epochs, batch, lr, seed, threads, refit, and
// tensor when one was named. Call it on options with their defaults
// applied.
func (o Options) Flags() map[string]any {
	f := map[string]any{"latents": o.Latents, "epochs": o.Epochs, "batch": o.Batch, "lr": o.LR,
		"seed": o.Seed, "threads": o.Threads, "refit": !o.NoRefit}
	if o.L1 > 0 {
		f["l1"] = o.L1
	} else {
		f["k"] = o.K
	}
	if o.Tensor != "" {
		f["tensor"] = o.Tensor
	}
	return f
}
