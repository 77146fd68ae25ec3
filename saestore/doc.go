// Package saestore puts a sparse autoencoder into a checkpoint: it trains
// one (package sae) on the rows of a 2-D tensor — by default the token
// embedding — and stores the tensor as sparse codes Z, a dictionary D and
// a bias b in the tensor's dtype, so that E ≈ Z·D + b (the layout of
// docs/FORMAT.md, "Sparse-autoencoder tensors", written by package
// formats/sparse). It is the library behind "lmsparse sae" and the sae
// stage of "lmsparse compress". It never prints and writes no files: it
// returns the entries, metadata and lmsparse.json for a checkpoint writer
// (package checkpoint).
//
// # Plan and execute
//
// [Plan] finds the tensor ([Target]) and checks it and the [Options]
// before any work: the tensor must exist, be a non-empty 2-D matrix of
// F32, F64, F16 or BF16, and the options must be valid for its shape.
// [Job.Execute] then trains and encodes ([Compress]); the [Result] gives
// the entries to write ([Result.Entries]: every tensor of the model as
// stored, the compressed one replaced by its parts), the metadata
// ([Result.Metadata], with the "lmsparse.sae" marker) and lmsparse.json
// ([Result.Manifest], whose SAE section is [Result].Report).
//
// # Defaults
//
// The zero [Options] works: a zero Latents, K, Epochs, Batch, LR or
// Threads takes its default for the tensor's shape [rows, d] — 3·d
// latents, k = max(1, d/16) (TopK; an L1 SAE has no k), batch 64, step
// size 0.003, enough epochs for about 8000 Adam steps
// (ceil(8000·min(batch, rows)/rows)) and runtime.NumCPU() threads. So a
// zero value means "the default", never zero; a caller that wants to
// refuse an explicit zero must do so itself. [Options.WithDefaults]
// resolves them, and [Job].Options and [Compressed].Options hold the
// resolved values.
//
// # Baseline and evaluation
//
// [Result.CompareSVD] adds the baseline of equal bytes: the PCA around the
// mean row of the largest rank whose factors fit in the SAE's bytes
// ([FitSVD]). The package does not run the model: a caller that scores
// the rebuilt tensors ([Compressed].Rebuilt, [SVDBaseline].Rebuilt) on
// held-out text records the numbers with [Result.SetFidelity] and sets
// Report.Eval.
//
// # Progress
//
// Training reports each epoch through [Options].Progress: stage "sae",
// unit "epochs", total the epochs, detail "loss x, L0 y, z dead" (the
// epoch's mean reconstruction loss in units of the data's variance, mean
// codes per row, dead latents).
//
// # Errors
//
// A tensor that is not in the model is a [*NotFoundError] (with the
// nearest names). Bad options or data — a shape that is not 2-D, a NaN, k
// not below the latents — return errors wrapping sae.ErrInvalid, and a
// dtype the autoencoder cannot store one wrapping tensor.ErrDType; all
// name the file and the tensor.
package saestore
