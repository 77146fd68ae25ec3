package main

import (
	"context"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/saestore"
)

// applySAEStage trains the recipe's sparse autoencoder on its tensor (the
// token embedding by default) and replaces that tensor's entry by the
// autoencoder's codes, dictionary and bias, as "lmsparse sae" does. What
// the recipe leaves out (zero) takes saestore's defaults.
func applySAEStage(ctx context.Context, m *checkpoint.Model, spec *recipeSAE, entries []safetensors.Entry, meta map[string]string, threads int, log *stageLog) ([]safetensors.Entry, *report.SAE, map[string]string, error) {
	info, err := saestore.Target(m, spec.Tensor)
	if err != nil {
		return nil, nil, nil, saeTargetError(err, "--sae-tensor")
	}
	c, err := saestore.Compress(ctx, m, info, saestore.Options{Latents: spec.Latents, K: spec.K, L1: spec.L1,
		Epochs: spec.Epochs, Batch: spec.Batch, LR: spec.LR, Seed: spec.Seed, Threads: threads})
	if err != nil {
		return nil, nil, nil, err
	}
	entries = saestore.ReplaceEntry(entries, info.Name, c.Entries())
	saestore.MarkMetadata(meta)
	opt := c.Options
	rep := &report.SAE{Tensor: info.Name, Latents: opt.Latents, K: opt.K, L1: opt.L1, Epochs: opt.Epochs,
		BytesBefore: info.Size, BytesAfter: c.Bytes, FVU: c.Stats.FVU, Cosine: c.Stats.Cosine, L0: c.Stats.L0, Dead: c.Stats.Dead}
	log.done("sae", "%s %v: %d latents, %s; %s → %s bytes, FVU %.4f, %d dead latents", info.Name, info.Shape, opt.Latents,
		c.Method(), commas(info.Size), commas(c.Bytes), c.Stats.FVU, c.Stats.Dead)
	return entries, rep, meta, nil
}

// patchSAEManifest marks the SAE tensor in the size report: its encoding
// and the bytes of its parts.
func patchSAEManifest(man *manifest.Manifest, s *report.SAE) {
	saestore.PatchManifest(man, s.Tensor, s.BytesAfter)
}
