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
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func readManifest(t *testing.T, dir string) *manifest.Manifest {
	t.Helper()
	return readJSONFile[manifest.Manifest](t, filepath.Join(dir, manifest.File))
}

// readJSONFile decodes a JSON file into a new T.
func readJSONFile[T any](t *testing.T, path string) *T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// sameFiles compares every file of two directories except lmsparse.json.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	fa, fb := dirFilesExcept(t, a), dirFilesExcept(t, b)
	if len(fa) != len(fb) {
		t.Errorf("%s has %d files, %s has %d", a, len(fa), b, len(fb))
	}
	for name, x := range fa {
		if !bytes.Equal(x, fb[name]) {
			t.Errorf("%s differs between %s and %s", name, a, b)
		}
	}
}

func dirFilesExcept(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.Name() == manifest.File {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = b
	}
	return out
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	return out
}

// TestPruneStories260k is the acceptance run: S = 0.5, tensor scope.
func TestPruneStories260k(t *testing.T) {
	src := sharedtest.Path(t, "models/stories260k")
	base := t.TempDir()
	outs := map[string]string{}
	for _, f := range []string{"dense", "csr", "bitmask", "auto"} {
		outs[f] = filepath.Join(base, f)
		mustRun(t, "prune", src, "-o", outs[f], "--sparsity", "0.5", "--format", f)
	}
	in, err := checkpoint.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// inspect of the dense output: every target has exactly k zeros;
	// untouched tensors are byte-identical.
	var rep checkpoint.InspectReport
	json.Unmarshal([]byte(mustRun(t, "inspect", "--json", outs["dense"])), &rep)
	out, _ := checkpoint.Open(outs["dense"])
	defer out.Close()
	targets := 0
	for _, row := range rep.Tensors {
		if strings.Contains(row.Name, ".layers.") && len(row.Shape) == 2 {
			targets++
			if k := prune.RoundHalfEven(0.5, row.Parameters); *row.Zeros != k {
				t.Errorf("%s: %d zeros, want exactly %d", row.Name, *row.Zeros, k)
			}
			continue
		}
		a, _ := in.Bytes(row.Name)
		b, _ := out.Bytes(row.Name)
		if !bytes.Equal(a, b) {
			t.Errorf("untouched %s is not byte-identical", row.Name)
		}
	}
	if targets != 35 {
		t.Errorf("%d targets, want 35 (7 projections × 5 layers)", targets)
	}
	// Kept values are bit-identical.
	for _, n := range in.Names() {
		a, _ := in.Bytes(n)
		b, _ := out.Bytes(n)
		for i := 0; i+4 <= len(a); i += 4 {
			if x := binary.LittleEndian.Uint32(b[i:]); x != 0 && x != binary.LittleEndian.Uint32(a[i:]) {
				t.Fatalf("%s: kept value %d changed", n, i/4)
			}
		}
	}
	// Every format decompresses to the dense output.
	for _, f := range []string{"csr", "bitmask", "auto"} {
		d := filepath.Join(base, f+"-decompressed")
		mustRun(t, "decompress", outs[f], "-o", d)
		sameFiles(t, outs["dense"], d)
	}
	// Reported bytes after = tensor bytes actually written.
	for f, dir := range outs {
		man := readManifest(t, dir)
		m, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var written int64
		for _, n := range m.Names() {
			info, _ := m.Tensor(n)
			written += info.Size
		}
		m.Close()
		if man.Totals.BytesAfter != written {
			t.Errorf("%s: report says %d bytes after, files hold %d", f, man.Totals.BytesAfter, written)
		}
		if man.Totals.BytesBefore != 1040128 || man.Totals.Parameters != 260032 {
			t.Errorf("%s: totals %+v", f, man.Totals)
		}
		if len(man.Inputs) == 0 || len(man.Inputs[0].SHA256) != 64 {
			t.Errorf("%s: inputs %+v", f, man.Inputs)
		}
	}
	// auto picks bitmask for F32 at 50% and CSR at 98% (int32 indices:
	// CSR is smaller than bitmask above about 97%).
	for _, row := range readManifest(t, outs["auto"]).Tensors {
		if row.Pruned && row.Encoding != "bitmask" {
			t.Errorf("auto at 50%%: %s stored as %s", row.Name, row.Encoding)
		}
	}
	p95 := filepath.Join(base, "auto98")
	mustRun(t, "prune", src, "-o", p95, "--sparsity", "0.98", "--format", "auto")
	for _, row := range readManifest(t, p95).Tensors {
		if row.Pruned && row.Encoding != "csr" {
			t.Errorf("auto at 98%%: %s stored as %s", row.Name, row.Encoding)
		}
	}
}

func TestPruneDeterministic(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.BF16, 2))
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	mustRun(t, "prune", in, "-o", a, "--sparsity", "0.6", "--format", "csr", "--scope", "global", "--max-shard-size", "8kB")
	mustRun(t, "prune", in, "-o", b, "--sparsity", "0.6", "--format", "csr", "--scope", "global", "--max-shard-size", "8kB")
	fa, fb := dirFilesExcept(t, a), dirFilesExcept(t, b)
	ma, _ := os.ReadFile(filepath.Join(a, manifest.File))
	mb, _ := os.ReadFile(filepath.Join(b, manifest.File))
	if !bytes.Equal(ma, mb) {
		t.Error("lmsparse.json differs between two identical runs")
	}
	for n, x := range fa {
		if !bytes.Equal(x, fb[n]) {
			t.Errorf("%s differs between two identical runs", n)
		}
	}
	if _, ok := fa[checkpoint.IndexFile]; !ok {
		t.Error("8kB shards: no index written")
	}
	// Global scope: the total pruned is round(S·N) over all targets, and
	// the tensors end with different sparsities.
	man := readManifest(t, a)
	var n, nz int64
	sp := map[float64]bool{}
	for _, row := range man.Tensors {
		if row.Pruned {
			n += row.Parameters
			nz += *row.Nonzeros
			sp[row.Sparsity] = true
		}
	}
	if pruned := n - nz; pruned != prune.RoundHalfEven(0.6, n) {
		t.Errorf("global: %d pruned of %d, want %d", pruned, n, prune.RoundHalfEven(0.6, n))
	}
	if len(sp) < 2 {
		t.Errorf("global scope gave every tensor the same sparsity %v", sp)
	}
}

// TestPruneGPT2Conv1D checks that N:M follows GPT-2's logical rows: Conv1D
// weights are stored [in, out], so a group of M input columns of output row
// o is M consecutive stored rows of stored column o.
func TestPruneGPT2Conv1D(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.GPT2(tensor.F32, 1))
	out := filepath.Join(base, "out")
	mustRun(t, "prune", in, "-o", out, "--pattern", "2:4")
	m, _ := checkpoint.Open(out)
	defer m.Close()
	checked := 0
	for _, n := range m.Names() {
		if !strings.HasSuffix(n, "c_fc.weight") && !strings.HasSuffix(n, "c_attn.weight") {
			continue
		}
		info, _ := m.Tensor(n)
		vals, _ := m.Float32(n)
		in, out := int(info.Shape[0]), int(info.Shape[1])
		for o := 0; o < out; o++ {
			for g := 0; g < in; g += 4 {
				nz := 0
				for i := g; i < g+4; i++ {
					if vals[i*out+o] != 0 {
						nz++
					}
				}
				if nz != 2 {
					t.Fatalf("%s: output %d, inputs %d..%d keep %d weights, want 2", n, o, g, g+3, nz)
				}
			}
		}
		checked++
	}
	if checked != 4 {
		t.Errorf("checked %d Conv1D tensors, want 4", checked)
	}
}

// TestPruneBadInput: each bad input exits 2 and writes nothing.
func TestPruneBadInput(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	nan := filepath.Join(base, "nan")
	gen.WriteCheckpoint(nan, gen.Llama(tensor.F32, 1))
	// Put a NaN into one projection of the second checkpoint.
	raw, _ := os.ReadFile(filepath.Join(nan, "model.safetensors"))
	f, _ := gen.DecodeRaw(raw)
	for _, tt := range f.Tensors {
		if tt.Name == "model.layers.1.mlp.up_proj.weight" {
			binary.LittleEndian.PutUint32(f.Data[tt.Begin+12:], math.Float32bits(float32(math.NaN())))
		}
	}
	os.WriteFile(filepath.Join(nan, "model.safetensors"), f.Encode(), 0o644)
	out := filepath.Join(base, "out")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"prune", in, "-o", out, "--sparsity", "1"}, "outside [0, 1)"},
		{[]string{"prune", in, "-o", out, "--sparsity", "-0.1"}, "outside [0, 1)"},
		{[]string{"prune", in, "-o", out, "--sparsity", "1.5"}, "outside [0, 1)"},
		{[]string{"prune", in, "-o", out}, "--sparsity (or --pattern) is required"},
		{[]string{"prune", in, "-o", out, "--pattern", "5:4"}, "N must be between 0 and M"},
		{[]string{"prune", in, "-o", out, "--pattern", "1:0"}, "M must be at least 1"},
		{[]string{"prune", in, "-o", out, "--pattern", "2-4"}, "want N:M"},
		{[]string{"prune", in, "-o", out, "--pattern", "2:4", "--sparsity", "0.5"}, "not both"},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--scope", "layer"}, `scope "layer"`},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--format", "coo"}, `--format "coo"`},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--include", "model.layer.*.mlp.*"}, "nearest names: model.layers"},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--exclude", "decoder.*"}, "matches no tensor"},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--include", "[x"}, "bad glob"},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--exclude", "*"}, "no tensor"},
		{[]string{"prune", nan, "-o", out, "--sparsity", "0.5"}, `"model.layers.1.mlp.up_proj.weight": NaN weight at flat index 3`},
		{[]string{"prune", nan, "-o", out, "--sparsity", "0.5", "--scope", "global"}, "NaN weight"},
		{[]string{"prune", in, "-o", in, "--sparsity", "0.5", "--force"}, "input directory"},
		{[]string{"prune", in, "-o", filepath.Join(in, "pruned"), "--sparsity", "0.5"}, "inside it"},
		{[]string{"prune", in, "-o", out, "--sparsity", "0.5", "--structured", "rows", "--include", "model.norm.weight"}, "needs 2-D"},
		{[]string{"prune", in, "-o", out, "--pattern", "2:4", "--scope", "row"}, "--scope applies"},
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
	after := dirFilesExcept(t, in)
	if len(after) != len(before) {
		t.Errorf("input directory changed: %d files, was %d", len(after), len(before))
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("%s holds %d entries after the bad runs, want 2 (in, nan)", base, len(ents))
	}
}

// TestDecompressCorrupt: a CSR tensor whose column index is out of range
// is rejected with exit 2, naming the tensor, and nothing is written.
func TestDecompressCorrupt(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	csr := filepath.Join(base, "csr")
	mustRun(t, "prune", in, "-o", csr, "--sparsity", "0.5", "--format", "csr")
	p := filepath.Join(csr, "model.safetensors")
	raw, _ := os.ReadFile(p)
	f, _ := gen.DecodeRaw(raw)
	for _, tt := range f.Tensors {
		if tt.Name == "model.layers.0.mlp.down_proj.weight.col_indices" {
			binary.LittleEndian.PutUint16(f.Data[tt.Begin:], 9999)
		}
	}
	os.WriteFile(p, f.Encode(), 0o644)
	out := filepath.Join(base, "out")
	code, _, stderr := run(t, "decompress", csr, "-o", out)
	if code != exitBadArgs || !strings.Contains(stderr, "model.layers.0.mlp.down_proj.weight") || !strings.Contains(stderr, "column index 9999") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Error("decompress of a corrupt tensor created the output")
	}
	// A model that already has a quantization_config cannot take the
	// bitmask format (lmsparse will not overwrite it); auto avoids bitmask.
	cfg := filepath.Join(in, "config.json")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`"model_type"`), []byte(`"quantization_config": {"quant_method": "fp8"}, "model_type"`), 1), 0o644)
	code, _, stderr = run(t, "prune", in, "-o", out, "--sparsity", "0.5", "--format", "bitmask")
	if code != exitBadArgs || !strings.Contains(stderr, "already has a quantization_config") {
		t.Errorf("bitmask over an existing quantization_config: exit %d, %q", code, stderr)
	}
	mustRun(t, "prune", in, "-o", out, "--sparsity", "0.5", "--format", "auto")
	for _, row := range readManifest(t, out).Tensors {
		if row.Encoding == "bitmask" {
			t.Errorf("auto chose bitmask for %s despite the existing quantization_config", row.Name)
		}
	}
}

// TestPruneCalibratedBadInput: the calibrated methods' bad inputs exit 2
// with one line naming the problem, and write nothing.
func TestPruneCalibratedBadInput(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	base := t.TempDir()
	empty := filepath.Join(base, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	short := filepath.Join(base, "short.txt")
	os.WriteFile(short, []byte("Once upon a time."), 0o644)
	noTok := filepath.Join(base, "notok")
	gen.WriteCheckpoint(noTok, gen.Llama(tensor.F32, 1))
	os.Remove(filepath.Join(noTok, "tokenizer.json"))
	out := filepath.Join(base, "out")
	sgpt := func(model string, extra ...string) []string {
		return append([]string{"prune", model, "-o", out, "--sparsity", "0.5", "--method", "sparsegpt"}, extra...)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{sgpt(s260, "--calib", filepath.Join(base, "missing.txt")), "missing.txt: no such file"},
		{sgpt(s260, "--calib", empty), "is empty"},
		{sgpt(s260, "--calib", short), "fewer than one window of 128"},
		{sgpt(s260, "--calib-len", "1024"), "exceed the model's 512 positions"},
		{sgpt(s260, "--calib-samples", "0"), "--calib-samples 0: must be at least 1"},
		{sgpt(s260, "--damp", "0"), "--damp 0: must be positive"},
		{sgpt(s260, "--damp", "-1"), "--damp -1: must be positive"},
		{sgpt(onnxModel), "ONNX models are pruned by magnitude"},
		{sgpt(noTok, "--calib-len", "16"), "needs the model's tokenizer.json"},
		{sgpt(s260, "--scope", "global"), "global scope does not apply"},
		{[]string{"prune", s260, "-o", out, "--sparsity", "0.5", "--method", "obs"}, `method "obs"`},
		{[]string{"prune", s260, "-o", out, "--sparsity", "0.5", "--damp", "0.1"}, "--damp applies to --method wanda or sparsegpt"},
	} {
		code, stdout, stderr := run(t, tt.args...)
		if code != exitBadArgs || !strings.Contains(stderr, tt.want) || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args[2:], code, stderr, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v: created %s", tt.args[2:], out)
		}
	}
	if ents, _ := os.ReadDir(base); len(ents) != 3 {
		t.Errorf("%s holds %d entries after the bad runs, want 3", base, len(ents))
	}
}
