package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
)

// TestONNXEvalReference: the ONNX export of stories260k, recognised and run
// on the native forward pass (onnx/native), reproduces the reference numbers.
func TestONNXEvalReference(t *testing.T) {
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	tok := sharedtest.Path(t, "models/stories260k/tokenizer.json")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	for _, row := range []struct {
		ctx, stride string
		scored      int
		ppl         float64
	}{{"512", "512", 1875, 6.124239}, {"128", "128", 1864, 6.043675}} {
		r := evalJSON(t, onnxModel, "--tokenizer", tok, "--text", sample, "--ctx", row.ctx, "--stride", row.stride)
		if r.Scored != row.scored || relErr(r.PPL, row.ppl) > 1e-4 || !strings.HasPrefix(r.Kernel, "onnx native") {
			t.Errorf("ctx %s: scored %d ppl %.6f (%s); want %d, %.6f", row.ctx, r.Scored, r.PPL, r.Kernel, row.scored, row.ppl)
		}
	}
}

// TestONNXPruneMatchesSafetensors: pruning the ONNX model and the
// safetensors model with the same flags gives the same fidelity.
func TestONNXPruneMatchesSafetensors(t *testing.T) {
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	s260 := sharedtest.Path(t, "models/stories260k")
	tok := sharedtest.Path(t, "models/stories260k/tokenizer.json")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	po, ps, pss := filepath.Join(base, "onnx"), filepath.Join(base, "st"), filepath.Join(base, "onnx-sparse")
	var man manifest.Manifest
	json.Unmarshal([]byte(mustRun(t, "prune", onnxModel, "-o", po, "--sparsity", "0.5", "--json")), &man)
	if man.Totals.PrunedTensors != 35 || man.Totals.TargetSparsity != 0.5 {
		t.Errorf("ONNX prune: %d targets at %g sparsity, want the 35 projections at 0.5", man.Totals.PrunedTensors, man.Totals.TargetSparsity)
	}
	mustRun(t, "prune", s260, "-o", ps, "--sparsity", "0.5")
	ro := evalJSON(t, filepath.Join(po, "model.onnx"), "--tokenizer", tok, "--text", sample, "--base", onnxModel)
	rs := evalJSON(t, ps, "--text", sample, "--base", s260)
	for name, v := range map[string][2]float64{"ppl": {ro.PPL, rs.PPL}, "kl": {ro.KL.Mean, rs.KL.Mean}, "top1": {ro.KL.Top1, rs.KL.Top1},
		"kl p99": {ro.KL.P99, rs.KL.P99}} {
		if math.Abs(v[0]-v[1]) > 1e-5*math.Max(1, math.Abs(v[1])) {
			t.Errorf("%s: ONNX %.8g, safetensors %.8g", name, v[0], v[1])
		}
	}
	// Stored as sparse_initializers, then decompressed: the dense bytes.
	mustRun(t, "prune", onnxModel, "-o", pss, "--sparsity", "0.5", "--format", "sparse")
	dense := filepath.Join(base, "dense")
	mustRun(t, "decompress", pss, "-o", dense)
	a, _ := os.ReadFile(filepath.Join(po, "model.onnx"))
	b, _ := os.ReadFile(filepath.Join(dense, "model.onnx"))
	c, _ := os.ReadFile(onnxModel)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("sparse → decompress differs from the dense prune (%v) or the prune changed nothing (%v)", !bytes.Equal(a, b), bytes.Equal(a, c))
	}
}

// TestONNXRoundTripPast: past.onnx (contrib operators, KV cache) is listed
// by inspect and comes back byte-identical when nothing is pruned.
func TestONNXRoundTripPast(t *testing.T) {
	past := sharedtest.Path(t, "fixtures/onnx-tiny-random-gpt2/past.onnx")
	var rep checkpoint.InspectReport
	json.Unmarshal([]byte(mustRun(t, "inspect", "--json", past)), &rep)
	if rep.Format != "onnx" || rep.Totals.Tensors != 27 || rep.Tensors[0].Name == "" {
		t.Errorf("inspect past.onnx: format %s, %d tensors", rep.Format, rep.Totals.Tensors)
	}
	// It needs ONNX Runtime's contrib operators: eval refuses it, listing
	// every one, with exit 2.
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	code, _, stderr := run(t, "eval", past, "--text", sample)
	for _, op := range []string{"com.microsoft.Attention", "com.microsoft.EmbedLayerNormalization", "com.microsoft.FastGelu", "com.microsoft.SkipLayerNormalization"} {
		if code != exitBadArgs || !strings.Contains(stderr, op) {
			t.Errorf("eval past.onnx: exit %d, stderr %q; want exit 2 listing %s", code, stderr, op)
		}
	}
	base := t.TempDir()
	orig, _ := os.ReadFile(past)
	for _, args := range [][]string{
		{"decompress", past, "-o", filepath.Join(base, "d")},
		{"prune", past, "-o", filepath.Join(base, "p"), "--sparsity", "0"},
	} {
		mustRun(t, args...)
		got, _ := os.ReadFile(filepath.Join(args[3], "past.onnx"))
		if !bytes.Equal(got, orig) {
			t.Errorf("%s with nothing to prune is not byte-identical (%d vs %d bytes)", args[0], len(got), len(orig))
		}
	}
}

// TestONNXSparseGrowthWarning: ONNX COO at 50% makes every target larger
// (int64 indices), and the size report says so; auto keeps dense and
// warns of nothing; with --external-data the indices leave the .onnx.
func TestONNXSparseGrowthWarning(t *testing.T) {
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	base := t.TempDir()
	out := mustRun(t, "prune", onnxModel, "-o", filepath.Join(base, "sparse"), "--sparsity", "0.5", "--format", "sparse", "--external-data")
	if !strings.Contains(out, "warning: 35 pruned tensors (35 sparse) are larger in their layout than dense") {
		t.Errorf("no growth warning in:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(base, "sparse", "model.onnx")); err != nil {
		t.Error(err)
	} else if st.Size() > 200_000 {
		t.Errorf("model.onnx with external data is %d bytes (indices left inline?)", st.Size())
	}
	out = mustRun(t, "prune", onnxModel, "-o", filepath.Join(base, "auto"), "--sparsity", "0.5", "--format", "auto")
	if strings.Contains(out, "warning:") {
		t.Errorf("auto warned:\n%s", out)
	}
}
