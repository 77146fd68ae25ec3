package main

import (
	"context"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/loader"
	"github.com/lmsparse/lmsparse/report"
)

// applySAEStage replaces the SAE target's entry by its sparse codes,
// dictionary and bias. (Wired to package sae by the SAE work.)
func applySAEStage(ctx context.Context, m *loader.Model, spec *recipeSAE, entries []safetensors.Entry, meta map[string]string, threads int, log *stageLog) ([]safetensors.Entry, *report.SAE, map[string]string, error) {
	return nil, nil, nil, usageErrorf("compress: the sae stage is not wired yet")
}

func patchSAEManifest(man *manifest, s *report.SAE) {}
