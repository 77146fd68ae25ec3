package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func readSAEManifest(t *testing.T, dir string) *manifest.Manifest {
	t.Helper()
	return readJSONFile[manifest.Manifest](t, filepath.Join(dir, manifest.File))
}

// openFloat returns a tensor of a checkpoint as float32, its sparse tensors
// left as stored.
func openFloat(t *testing.T, dir, name string) ([]float32, checkpoint.Tensor) {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info, ok := m.Tensor(name)
	if !ok {
		t.Fatalf("%s: no tensor %q", dir, name)
	}
	v, err := m.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, info
}

// independentRebuild reads the SAE parts of name in dir and computes
// Z·D + b directly from the stored bytes: float64 sums rounded to float32.
func independentRebuild(t *testing.T, dir, name string, rows, d int) []float32 {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Metadata()[sparse.SAEMetadataKey] != sparse.SAEVersion {
		t.Fatalf("%s: metadata %v lacks the sae marker", dir, m.Metadata())
	}
	raw := func(suffix string) ([]byte, checkpoint.Tensor) {
		info, ok := m.Tensor(name + suffix)
		if !ok {
			t.Fatalf("%s: no part %s%s", dir, name, suffix)
		}
		b, err := m.Bytes(name + suffix)
		if err != nil {
			t.Fatal(err)
		}
		return b, info
	}
	vals, _ := m.Float32(name + ".sae_codes.values")
	dict, _ := m.Float32(name + ".sae_dictionary")
	bias, _ := m.Float32(name + ".sae_bias")
	colB, colInfo := raw(".sae_codes.col_indices")
	crowB, crowInfo := raw(".sae_codes.crow_indices")
	shapeB, _ := raw(".sae_codes.shape")
	lat := int(binary.LittleEndian.Uint64(shapeB[8:]))
	if r := int(binary.LittleEndian.Uint64(shapeB)); r != rows || len(dict) != lat*d || len(bias) != d {
		t.Fatalf("codes [%d %d], dictionary of %d, bias of %d for [%d %d]", r, lat, len(dict), len(bias), rows, d)
	}
	if colInfo.DType != tensor.U16 || crowInfo.DType != tensor.I32 {
		t.Fatalf("index dtypes %s, %s", colInfo.DType, crowInfo.DType)
	}
	out := make([]float32, rows*d)
	for r := 0; r < rows; r++ {
		lo, hi := binary.LittleEndian.Uint32(crowB[4*r:]), binary.LittleEndian.Uint32(crowB[4*r+4:])
		for c := 0; c < d; c++ {
			var s float64
			for p := lo; p < hi; p++ {
				j := int(binary.LittleEndian.Uint16(colB[2*p:]))
				s += float64(vals[p]) * float64(dict[j*d+c])
			}
			out[r*d+c] = float32(s + float64(bias[c]))
		}
	}
	return out
}

// TestSAEStories260k compresses the real model's embedding (few epochs),
// compares with the SVD baseline, and checks the round trip through
// decompress and eval on the compressed checkpoint.
func TestSAEStories260k(t *testing.T) {
	src := sharedtest.Path(t, "models/stories260k")
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	out := filepath.Join(base, "sae")
	const seed = "5"
	t.Logf("seed %s", seed)
	stdout := mustRun(t, "sae", src, "-o", out, "--latents", "192", "--k", "4", "--epochs", "150", "--seed", seed,
		"--threads", "2", "--compare", "svd", "--text", text)
	t.Logf("\n%s", stdout)
	man := readSAEManifest(t, out)
	r := man.SAE
	const name = "model.embed_tokens.weight"
	if r.Tensor != name || !r.TiedHead || r.Variant != "topk" || r.Latents != 192 || r.K != 4 || len(r.Rows) != 2 {
		t.Fatalf("report %+v", r)
	}
	if r.TensorSize.Before != 131072 || r.TensorSize.After > 131072/2 || r.ModelSize.Before-r.ModelSize.After != r.TensorSize.Before-r.TensorSize.After {
		t.Errorf("bytes: tensor %+v, model %+v", r.TensorSize, r.ModelSize)
	}
	s, v := r.Rows[0], r.Rows[1]
	if s.Method != "sae" || *s.L0 != 4 || s.FVU > 0.1 || s.Cosine < 0.95 || s.PPL == nil {
		t.Errorf("sae row %+v", s)
	}
	if v.Method != "svd" || v.Bytes > s.Bytes || v.Rank < 1 || v.PPL == nil || v.Bytes+int64((512+64)*4) <= s.Bytes {
		t.Errorf("svd row %+v (sae bytes %d): not the largest rank within the SAE's bytes", v, s.Bytes)
	}
	if !(s.FVU < v.FVU) || !(*s.KLMean < *v.KLMean) {
		t.Errorf("the SAE (FVU %g, KL %g) does not beat the SVD of equal bytes (FVU %g, KL %g)", s.FVU, *s.KLMean, v.FVU, *v.KLMean)
	}

	// The stored parts, rebuilt independently, match the report's FVU, and
	// decompress writes exactly that tensor; every other tensor is copied.
	orig, _ := openFloat(t, src, name)
	rebuilt := independentRebuild(t, out, name, 512, 64)
	dense := filepath.Join(base, "dense")
	mustRun(t, "decompress", out, "-o", dense)
	got, info := openFloat(t, dense, name)
	if info.DType != tensor.F32 || !info.Shape.Equal(tensor.Shape{512, 64}) {
		t.Fatalf("decompressed %s %v", info.DType, info.Shape)
	}
	var worst, se, tv float64
	mean := make([]float64, 64)
	for i, x := range orig {
		mean[i%64] += float64(x) / 512
	}
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i])-float64(rebuilt[i]))/(1e-6+math.Abs(float64(rebuilt[i]))))
		dx := float64(orig[i]) - float64(got[i])
		se += dx * dx
		dm := float64(orig[i]) - mean[i%64]
		tv += dm * dm
	}
	t.Logf("decompressed vs independent Z·D+b: worst relative difference %.3g", worst)
	if worst > 1e-6 {
		t.Errorf("decompressed embedding differs from Z·D+b by %g relative", worst)
	}
	if fvu := se / tv; math.Abs(fvu-s.FVU) > 1e-6 {
		t.Errorf("FVU of the decompressed embedding %g, report %g", fvu, s.FVU)
	}
	for _, n := range []string{"model.layers.3.mlp.up_proj.weight", "model.norm.weight"} {
		a, _ := openFloat(t, src, n)
		b, _ := openFloat(t, dense, n)
		if !bytes.Equal(tensor.F32Bytes(a), tensor.F32Bytes(b)) {
			t.Errorf("%s changed", n)
		}
	}

	// eval on the compressed checkpoint and on the decompressed one gives
	// the numbers the sae report printed.
	for _, dir := range []string{out, dense} {
		e := evalJSON(t, dir, "--base", src, "--text", text, "--threads", "1")
		if relErr(e.PPL, *s.PPL) > 1e-12 || relErr(e.KL.Mean, *s.KLMean) > 1e-12 || e.KL.Top1 != *s.Top1 {
			t.Errorf("eval %s: ppl %g KL %g top-1 %g; sae reported %g, %g, %g", dir, e.PPL, e.KL.Mean, e.KL.Top1, *s.PPL, *s.KLMean, *s.Top1)
		}
	}
	if !strings.Contains(stdout, "svd rank") || !strings.Contains(stdout, "tied") {
		t.Errorf("report lacks the svd row or the tied note:\n%s", stdout)
	}
}

// TestSAEDeterministic: the same seed and threads give byte-identical
// files; another thread count gives the same tensors.
func TestSAEDeterministic(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	seed := "11"
	t.Logf("seed %s", seed)
	runOnce := func(out, threads string, extra ...string) {
		mustRun(t, append([]string{"sae", in, "-o", out, "--latents", "24", "--k", "3", "--epochs", "40", "--batch", "8", "--seed", seed, "--threads", threads}, extra...)...)
	}
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	runOnce(a, "2")
	runOnce(b, "2")
	runOnce(c, "1")
	fa, fb := dirFilesExcept(t, a), dirFilesExcept(t, b)
	ma, _ := os.ReadFile(filepath.Join(a, manifest.File))
	mb, _ := os.ReadFile(filepath.Join(b, manifest.File))
	if !bytes.Equal(ma, mb) {
		t.Errorf("lmsparse.json differs between two identical runs")
	}
	for n, x := range fa {
		if !bytes.Equal(x, fb[n]) {
			t.Errorf("%s differs between two identical runs", n)
		}
	}
	sameFiles(t, a, c) // 1 and 2 threads: same checkpoint
	// Another seed gives other codes.
	d := filepath.Join(base, "d")
	mustRun(t, "sae", in, "-o", d, "--latents", "24", "--k", "3", "--epochs", "40", "--batch", "8", "--seed", "12", "--threads", "2")
	x, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	y, _ := os.ReadFile(filepath.Join(d, "model.safetensors"))
	if bytes.Equal(x, y) {
		t.Errorf("seeds %s and 12 give the same checkpoint", seed)
	}
}

// TestSAEVariants: the L1 SAE, a BF16 GPT-2 (tied wte), JSON output and
// the round trip through decompress.
func TestSAEVariants(t *testing.T) {
	base := t.TempDir()
	gpt := filepath.Join(base, "gpt2")
	gen.WriteCheckpoint(gpt, gen.GPT2(tensor.BF16, 1))
	llama := filepath.Join(base, "llama")
	gen.WriteCheckpoint(llama, gen.Llama(tensor.F32, 1))
	const seed = "3"
	t.Logf("seed %s", seed)

	out := filepath.Join(base, "gpt2-sae")
	js := mustRun(t, "sae", gpt, "-o", out, "--latents", "32", "--k", "2", "--epochs", "20", "--seed", seed, "--compare", "svd", "--json")
	var man manifest.Manifest
	if err := json.Unmarshal([]byte(js), &man); err != nil {
		t.Fatalf("--json: %v\n%s", err, js)
	}
	file, _ := os.ReadFile(filepath.Join(out, manifest.File))
	if js != string(file) {
		t.Errorf("--json output differs from lmsparse.json")
	}
	r := man.SAE
	if r.Tensor != "transformer.wte.weight" || r.DType != "BF16" || !r.TiedHead || len(r.Rows) != 2 {
		t.Fatalf("report %+v", r)
	}
	// BF16 parts: 40 rows · 2 codes.
	m, err := checkpoint.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := m.Tensor("transformer.wte.weight.sae_codes.values")
	dict, _ := m.Tensor("transformer.wte.weight.sae_dictionary")
	m.Close()
	if info.DType != tensor.BF16 || !info.Shape.Equal(tensor.Shape{80}) || dict.DType != tensor.BF16 || !dict.Shape.Equal(tensor.Shape{32, 16}) {
		t.Fatalf("parts: values %s %v, dictionary %s %v", info.DType, info.Shape, dict.DType, dict.Shape)
	}
	var encoding string
	for _, mt := range man.Tensors {
		if mt.Name == "transformer.wte.weight" {
			encoding = mt.Encoding
			if mt.BytesAfter != r.TensorSize.After || mt.Stored != 80 {
				t.Errorf("manifest row %+v", mt)
			}
		}
	}
	if encoding != "sae" {
		t.Errorf("manifest encoding %q", encoding)
	}
	dense := filepath.Join(base, "gpt2-dense")
	mustRun(t, "decompress", out, "-o", dense)
	got, gi := openFloat(t, dense, "transformer.wte.weight")
	if gi.DType != tensor.BF16 || !gi.Shape.Equal(tensor.Shape{40, 16}) {
		t.Fatalf("decompressed %s %v", gi.DType, gi.Shape)
	}
	want := independentRebuild(t, out, "transformer.wte.weight", 40, 16)
	for i := range got {
		w := float64(tensor.BF16ToF32(tensor.F32ToBF16(want[i])))
		if math.Abs(float64(got[i])-w) > 0x1p-7*math.Abs(w) {
			t.Fatalf("element %d: decompressed %g, Z·D+b %g", i, got[i], want[i])
		}
	}

	// The L1 variant: codes where the encoder is positive.
	l1 := filepath.Join(base, "llama-l1")
	stdout := mustRun(t, "sae", llama, "-o", l1, "--latents", "24", "--l1", "0.05", "--epochs", "30", "--seed", seed)
	lm := readSAEManifest(t, l1).SAE
	if lm.Variant != "l1" || lm.L1 != 0.05 || lm.K != 0 || *lm.Rows[0].L0 <= 0 || *lm.Rows[0].L0 > 24 {
		t.Errorf("L1 report %+v, row %+v", lm, lm.Rows[0])
	}
	if !strings.Contains(stdout, "L1, 24 latents") {
		t.Errorf("L1 report:\n%s", stdout)
	}
	mustRun(t, "decompress", l1, "-o", filepath.Join(base, "llama-l1-dense"))
}

// TestSAEBadInput: bad flags and bad tensors exit 2 and write nothing.
func TestSAEBadInput(t *testing.T) {
	t.Logf("seed 0 (the default of --seed)")
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	nan := filepath.Join(base, "nan")
	gen.WriteCheckpoint(nan, gen.Llama(tensor.F32, 1))
	raw, _ := os.ReadFile(filepath.Join(nan, "model.safetensors"))
	f, _ := gen.DecodeRaw(raw)
	for _, tt := range f.Tensors {
		if tt.Name == "model.embed_tokens.weight" {
			// Element [1, 3] of the 32×16 embedding.
			binary.LittleEndian.PutUint32(f.Data[tt.Begin+4*(16+3):], math.Float32bits(float32(math.NaN())))
		}
	}
	os.WriteFile(filepath.Join(nan, "model.safetensors"), f.Encode(), 0o644)
	out := filepath.Join(base, "out")
	sae := func(args ...string) []string { return append([]string{"sae", in, "-o", out, "--epochs", "1"}, args...) }
	tests := []struct {
		args []string
		want string
	}{
		{sae("--latents", "8", "--k", "8"), "k 8: must be less than the 8 latents"},
		{sae("--latents", "8", "--k", "9"), "must be less than the 8 latents"},
		{sae("--k", "0"), "k 0: must be at least 1"},
		{sae("--k", "-2"), "k -2: must be at least 1"},
		{sae("--latents", "0"), "latents 0: must be at least 1"},
		{sae("--latents", "-5", "--k", "1"), "latents -5"},
		{sae("--tensor", "model.norm.weight"), `tensor "model.norm.weight" has shape [16]`},
		{sae("--tensor", "model.embed.weight"), `has no tensor "model.embed.weight"; nearest names:`},
		{[]string{"sae", nan, "-o", out}, `"model.embed_tokens.weight": invalid sparse-autoencoder input: element [1, 3] is NaN`},
		{sae("--k", "2", "--l1", "0.1"), "not both"},
		{sae("--l1", "-1"), "--l1 -1: must be positive"},
		{sae("--compare", "pca"), `--compare "pca"`},
		{sae("--batch", "0"), "batch 0"},
		{sae("--lr", "0"), "lr 0"},
		{sae("--threads", "0"), "--threads 0"},
		{[]string{"sae", in, "-o", out, "--epochs", "0"}, "epochs 0"},
		{sae("--text", filepath.Join(base, "missing.txt")), "missing.txt"},
		{[]string{"sae", in}, "-o/--output is required"},
		{[]string{"sae", in, "-o", in, "--force"}, "input directory"},
	}
	before := dirFilesExcept(t, in)
	for _, tt := range tests {
		code, stdout, stderr := run(t, tt.args...)
		if code != exitBadArgs || !strings.Contains(stderr, tt.want) || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args[2:], code, stderr, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v: created %s", tt.args[2:], out)
		}
	}
	if after := dirFilesExcept(t, in); len(after) != len(before) {
		t.Errorf("input directory changed")
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("%s holds %d entries after the bad runs, want 2 (in, nan)", base, len(ents))
	}
	// The defaults are valid on the generated model (d = 16: 48 latents, k 1).
	code, stdout, stderr := run(t, "sae", in, "-o", out, "--epochs", "2")
	if code != 0 || !strings.Contains(stdout, "48 latents, k 1") {
		t.Errorf("defaults: exit %d, %s%s", code, stdout, stderr)
	}
	if m := readSAEManifest(t, out); m.SAE.Epochs != 2 || strconv.Itoa(m.SAE.Latents) != "48" {
		t.Errorf("defaults: %+v", m.SAE)
	}
}

// TestSAECorrupt: a corrupt SAE part makes decompress exit 2 naming the
// tensor, and write nothing.
func TestSAECorrupt(t *testing.T) {
	t.Logf("seed 0 (the default of --seed)")
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	s := filepath.Join(base, "sae")
	mustRun(t, "sae", in, "-o", s, "--latents", "24", "--k", "3", "--epochs", "2")
	p := filepath.Join(s, "model.safetensors")
	raw, _ := os.ReadFile(p)
	f, _ := gen.DecodeRaw(raw)
	for _, tt := range f.Tensors {
		if tt.Name == "model.embed_tokens.weight.sae_codes.col_indices" {
			binary.LittleEndian.PutUint16(f.Data[tt.Begin:], 999)
		}
	}
	os.WriteFile(p, f.Encode(), 0o644)
	out := filepath.Join(base, "out")
	code, _, stderr := run(t, "decompress", s, "-o", out)
	if code != exitBadArgs || !strings.Contains(stderr, `"model.embed_tokens.weight" (sae)`) || !strings.Contains(stderr, "column index 999") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("decompress of a corrupt checkpoint created %s", out)
	}
}
