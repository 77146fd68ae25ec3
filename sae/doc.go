// Package sae compresses a matrix — in lmsparse, the token embedding E
// [vocab, d] of a language model — with a sparse autoencoder: each row x
// becomes a few nonzero codes z over a learned dictionary D [m, d], so that
// E ≈ Z·D + b with Z [vocab, m] sparse. It works on in-memory float32
// matrices and imports only tensor/blas; package formats/sparse stores the
// result and package saestore applies it to a tensor of a checkpoint (as
// "lmsparse sae" does).
//
// # Model
//
// The default is a TopK SAE (Gao et al., "Scaling and evaluating sparse
// autoencoders", 2024):
//
//	z = TopK(ReLU(W_enc·(x − b_pre) + b_enc)),   x̂ = W_decᵀ·z + b_pre
//
// with W_enc and W_dec both stored [m, d] (W_dec's rows are the dictionary
// atoms) and at most k nonzero codes per row; TopK keeps the k largest
// pre-activations, ties to the lower latent index. With [Options].L1 = λ it
// is an L1 SAE instead: z = ReLU(W_enc·(x − b_pre) + b_enc) and the loss
// gains λ·Σ_j z_j. Both keep the decoder rows at unit norm, so neither the
// L1 penalty nor the codes can be shrunk by growing the dictionary.
//
// # Defaults
//
// The zero [Options] is valid: a zero Latents, K, Epochs, Batch or LR
// takes its default for the matrix's shape, [rows, d]: 3·d latents,
// k = max(1, d/16) (TopK only), batch [DefaultBatch], step size
// [DefaultLR], and enough epochs for about [DefaultSteps] Adam steps
// ([Options.WithDefaults]).
//
// # Training
//
// The rows are first divided by s = √(mean_i ‖x_i − mean‖²), so the
// reconstruction loss is directly a fraction of variance and the step
// sizes do not depend on the data's units; the stored codes and bias are
// multiplied back by s. Initialisation: decoder rows are random unit
// vectors from the seeded generator, W_enc = W_dec (W_decᵀ in the usual
// [d, m] convention), b_enc = 0 and b_pre the mean row.
//
// Each epoch shuffles the rows (seeded) and takes one Adam step (β1 0.9,
// β2 0.999, ε 1e-8, bias-corrected) per batch on
//
//	L = (1/n)·Σ_i ‖x_i − x̂_i‖² + λ·(1/n)·Σ_i Σ_j z_ij + α·(1/n)·Σ_i ‖e_i − ê_i‖²
//
// The last term is the auxiliary-k loss that revives dead latents (TopK
// only): a latent is dead when it was in no row's codes over the last
// [Options].DeadRows training rows (default one epoch); ê_i reconstructs
// the residual e_i = x_i − x̂_i (held constant) from the ReLU of the AuxK
// largest pre-activations among the dead latents (default max(k, d/2)),
// with weight α = 1/32. Before each step the component of each decoder
// row's gradient along the row is removed; after it the rows are
// renormalised to unit length.
//
// The backward pass is written by hand (step.go); a test checks it against
// central finite differences of an independent float64 implementation of
// L, for both variants and with the auxiliary term active.
//
// # Codes
//
// After training every row is encoded once more. By default the code
// values are then refit by least squares on the encoder's support — for
// TopK the k largest pre-activations, so each row gets exactly k nonzero
// codes — by solving (D_S·D_Sᵀ + 10⁻⁶·I)·z = D_S·(x − b) with Cholesky in
// float64; the L1 SAE's support is its positive codes ("thresholded" to
// the nonzeros, refit when there are at most d of them).
// [Options].NoRefit keeps the encoder's values (TopK(ReLU): at most k
// nonzeros). [Stats] reports the FVU both ways.
//
// # Threads and determinism
//
// [Options].Threads goroutines share each step. The encoder's matrix
// product (the bulk of the work: rows·m·d multiply-adds per epoch) runs on
// tensor/blas, whose results do not depend on the thread count; per-row
// work (selection, reconstruction, the row's gradient terms) is done by one
// goroutine per row; each latent's gradient is summed by one goroutine
// over its rows in ascending order; the bias gradient and the losses are
// summed in row order. So a run is bit-identical for a given seed and any
// thread count on one machine (the GEMM kernel, chosen by CPU, rounds
// differently on another).
package sae
