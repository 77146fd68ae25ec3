package main

import (
	"context"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
)

// applySAEStage trains the recipe's sparse autoencoder on its tensor (the
// token embedding by default) and replaces that tensor's entry by the
// autoencoder's codes, dictionary and bias, as "lmsparse sae" does.
func applySAEStage(ctx context.Context, m *checkpoint.Model, spec *recipeSAE, entries []safetensors.Entry, meta map[string]string, threads int, log *stageLog) ([]safetensors.Entry, *report.SAE, map[string]string, error) {
	info, err := saeTarget(m, spec.Tensor)
	if err != nil {
		return nil, nil, nil, err
	}
	// The defaults of "lmsparse sae" fill what the recipe leaves out.
	o := saeOptions{Latents: spec.Latents, K: spec.K, L1: spec.L1, Epochs: spec.Epochs, Batch: spec.Batch, LR: spec.LR,
		Seed: spec.Seed, Threads: threads, latentsSet: spec.Latents > 0, kSet: spec.K > 0, epochsSet: spec.Epochs > 0}
	if o.Batch == 0 {
		o.Batch = saeDefaultBatch
	}
	if o.LR == 0 {
		o.LR = saeDefaultLR
	}
	rows, d := int(info.Shape[0]), int(info.Shape[1])
	opt := o.trainOptions(rows, d)
	c, err := compressSAE(ctx, m, info, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	entries = replaceEntry(entries, info.Name, c.entries())
	meta[sparse.SAEMetadataKey] = sparse.SAEVersion
	rep := &report.SAE{Tensor: info.Name, Latents: opt.Latents, K: opt.K, L1: opt.L1, Epochs: opt.Epochs,
		BytesBefore: info.Size, BytesAfter: c.Bytes, FVU: c.Stats.FVU, Cosine: c.Stats.Cosine, L0: c.Stats.L0, Dead: c.Stats.Dead}
	log.done("sae", "%s %v: %d latents, %s; %s → %s bytes, FVU %.4f, %d dead latents", info.Name, info.Shape, opt.Latents,
		saeMethod(opt), commas(info.Size), commas(c.Bytes), c.Stats.FVU, c.Stats.Dead)
	return entries, rep, meta, nil
}

// patchSAEManifest marks the SAE tensor in the size report: its encoding
// and the bytes of its parts.
func patchSAEManifest(man *manifest.Manifest, s *report.SAE) {
	for i := range man.Tensors {
		t := &man.Tensors[i]
		if t.Name != s.Tensor {
			continue
		}
		man.Totals.BytesAfter += s.BytesAfter - t.BytesAfter
		t.Encoding, t.BytesAfter = string(sparse.SAE), s.BytesAfter
	}
	if man.Totals.BytesAfter > 0 {
		man.Totals.Ratio = float64(man.Totals.BytesBefore) / float64(man.Totals.BytesAfter)
	}
}
