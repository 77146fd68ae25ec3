package sparsify_test

// Tests of what the peers' readers require of a checkpoint, written from
// their documented layouts: compressed-tensors' module-named parts and the
// quantization_config its update_config writes; sparse-24-bitmask's 2:4
// groups along the stored last dimension.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// run prunes in into out with opts.
func run(t *testing.T, in, out string, opts sparsify.Options) error {
	t.Helper()
	job, err := sparsify.Plan(t.Context(), in, opts)
	if err != nil {
		return err
	}
	defer job.Close()
	o, err := checkpoint.Create(out, checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Execute(t.Context(), o); err != nil {
		o.Abort()
		t.Fatal(err)
	}
	if err := o.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	return nil
}

// tensors reads every tensor of dir/model.safetensors.
func tensors(t *testing.T, dir string) (map[string]safetensors.TensorInfo, map[string][]byte) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	infos, data := map[string]safetensors.TensorInfo{}, map[string][]byte{}
	for _, ti := range f.Tensors() {
		b, err := f.Bytes(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		infos[ti.Name], data[ti.Name] = ti, bytes.Clone(b)
	}
	return infos, data
}

func nm24() prune.Method { return prune.Method{N: 2, M: 4} }

// TestCompressedTensorsLayout: parts named by module (compressed-tensors
// 0.9.0+ strips ".weight"), the quantization_config as update_config
// writes it (keys, types, targets and ignore filled, no top-level
// "format"), and decompress rebuilding the dense output exactly.
func TestCompressedTensorsLayout(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	if err := gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		format    sparsify.Format
		method    prune.Method
		ctFormat  string
		structure string
		parts     []string
	}{
		{sparsify.Bitmask, prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, "sparse-bitmask", "unstructured", []string{"bitmask", "compressed", "row_offsets", "shape"}},
		{sparsify.Bitmask24, nm24(), "sparse-24-bitmask", "2:4", []string{"bitmask", "compressed", "shape"}},
	} {
		out, dense := filepath.Join(base, string(c.format)), filepath.Join(base, string(c.format)+"-dense")
		if err := run(t, in, out, sparsify.Options{Method: c.method, Format: c.format}); err != nil {
			t.Fatal(err)
		}
		if err := run(t, in, dense, sparsify.Options{Method: c.method}); err != nil {
			t.Fatal(err)
		}
		infos, _ := tensors(t, out)
		denseInfos, _ := tensors(t, dense)
		var modules []string
		for name, ti := range denseInfos {
			if mod, ok := strings.CutSuffix(name, ".weight"); ok && len(ti.Shape) == 2 && strings.Contains(name, ".layers.") {
				modules = append(modules, mod)
			}
		}
		slices.Sort(modules)
		for _, mod := range modules {
			var got []string
			for name := range infos {
				if rest, ok := strings.CutPrefix(name, mod+"."); ok {
					got = append(got, rest)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, c.parts) {
				t.Errorf("%s: module %s has parts %v, want %v", c.format, mod, got, c.parts)
			}
			ti := denseInfos[mod+".weight"]
			rows, cols := ti.Shape[0], ti.Shape[1]
			sh := infos[mod+".shape"]
			bm := infos[mod+".bitmask"]
			cp := infos[mod+".compressed"]
			wantShape := tensor.Shape{2}
			if c.format == sparsify.Bitmask24 {
				wantShape = tensor.Shape{2, 1}
				if !cp.Shape.Equal(tensor.Shape{rows, cols / 2}) {
					t.Errorf("%s.compressed %v, want [%d %d]", mod, cp.Shape, rows, cols/2)
				}
			} else if ro := infos[mod+".row_offsets"]; ro.DType != tensor.I64 || !ro.Shape.Equal(tensor.Shape{rows}) {
				t.Errorf("%s.row_offsets %s %v", mod, ro.DType, ro.Shape)
			}
			if sh.DType != tensor.I64 || !sh.Shape.Equal(wantShape) || bm.DType != tensor.U8 || !bm.Shape.Equal(tensor.Shape{rows, (cols + 7) / 8}) || cp.DType != ti.DType {
				t.Errorf("%s: shape %s %v, bitmask %s %v, compressed %s", mod, sh.DType, sh.Shape, bm.DType, bm.Shape, cp.DType)
			}
		}
		for name := range infos {
			if strings.Contains(name, ".weight.") {
				t.Errorf("%s: part %q named by tensor, not module", c.format, name)
			}
		}

		// config.json: the block of compressed-tensors' update_config.
		raw, err := os.ReadFile(filepath.Join(out, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Q map[string]json.RawMessage `json:"quantization_config"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		if keys := sortedKeys(cfg.Q); !slices.Equal(keys, []string{"quant_method", "sparsity_config", "version"}) {
			t.Errorf("%s: quantization_config keys %v (a top-level format makes compressed-tensors parse it as a quantization config)", c.format, keys)
		}
		var sc map[string]any
		if err := json.Unmarshal(cfg.Q["sparsity_config"], &sc); err != nil {
			t.Fatal(err)
		}
		if keys := sortedKeys(sc); !slices.Equal(keys, []string{"format", "global_sparsity", "ignore", "registry_requires_subclass", "sparsity_structure", "targets"}) {
			t.Errorf("%s: sparsity_config keys %v", c.format, keys)
		}
		var qm, ver string
		json.Unmarshal(cfg.Q["quant_method"], &qm)
		json.Unmarshal(cfg.Q["version"], &ver)
		gs, _ := sc["global_sparsity"].(float64)
		if qm != "compressed-tensors" || ver == "" || sc["format"] != c.ctFormat || sc["sparsity_structure"] != c.structure ||
			sc["registry_requires_subclass"] != false || math.Abs(gs-0.5) > 1e-6 {
			t.Errorf("%s: quant_method %q version %q sparsity_config %v", c.format, qm, ver, sc)
		}
		targets, _ := json.Marshal(sc["targets"])
		ignore, _ := json.Marshal(sc["ignore"])
		if string(targets) != `["Linear"]` || string(ignore) != `["lm_head"]` {
			t.Errorf("%s: targets %s ignore %s, want [\"Linear\"] [\"lm_head\"]", c.format, targets, ignore)
		}

		// decompress: the files of the dense prune.
		back := filepath.Join(base, string(c.format)+"-back")
		o, err := checkpoint.Create(back, checkpoint.OutputOptions{InputDir: out})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sparsify.Decompress(t.Context(), out, o, 0); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"model.safetensors", "config.json"} {
			a, _ := os.ReadFile(filepath.Join(back, f))
			b, _ := os.ReadFile(filepath.Join(dense, f))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s: decompressed %s differs from the dense prune", c.format, f)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestBitmask24Refusals: GPT-2's Conv1D weights ([in, out], lmsparse's
// 2:4 along the stored rows) and methods other than 2:4 are refused.
func TestBitmask24Refusals(t *testing.T) {
	base := t.TempDir()
	gpt2, llama := filepath.Join(base, "gpt2"), filepath.Join(base, "llama")
	if err := gen.WriteCheckpoint(gpt2, gen.GPT2(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	if err := gen.WriteCheckpoint(llama, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	err := run(t, gpt2, filepath.Join(base, "o1"), sparsify.Options{Method: nm24(), Format: sparsify.Bitmask24})
	if err == nil || !strings.Contains(err.Error(), "Conv1D") || !strings.Contains(err.Error(), "c_attn") && !strings.Contains(err.Error(), "c_fc") && !strings.Contains(err.Error(), "c_proj") {
		t.Errorf("GPT-2 Conv1D: err = %v", err)
	}
	err = run(t, llama, filepath.Join(base, "o2"), sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, Format: sparsify.Bitmask24})
	if err == nil || !strings.Contains(err.Error(), "2:4") {
		t.Errorf("50%% unstructured: err = %v", err)
	}
}

// TestOldBitmaskNaming: a checkpoint as lmsparse wrote it before (parts
// NAME.weight.compressed…, quantization_config with a top-level "format")
// still decompresses to the dense tensors.
func TestOldBitmaskNaming(t *testing.T) {
	base := t.TempDir()
	in, dense := filepath.Join(base, "in"), filepath.Join(base, "dense")
	if err := gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	method := prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}
	if err := run(t, in, dense, sparsify.Options{Method: method}); err != nil {
		t.Fatal(err)
	}
	infos, data := tensors(t, dense)
	var ts []gen.Tensor
	for _, name := range sortedKeys(infos) {
		ti, b := infos[name], data[name]
		if !strings.Contains(name, ".layers.") || len(ti.Shape) != 2 {
			ts = append(ts, gen.Tensor{Name: name, DType: ti.DType, Shape: ti.Shape, Data: b})
			continue
		}
		rows, cols := int(ti.Shape[0]), int(ti.Shape[1])
		var comp, offs []byte
		mask := make([]byte, rows*((cols+7)/8))
		var n int
		for r := 0; r < rows; r++ {
			offs = binary.LittleEndian.AppendUint64(offs, uint64(n))
			for c := 0; c < cols; c++ {
				if v := b[4*(r*cols+c) : 4*(r*cols+c+1)]; binary.LittleEndian.Uint32(v) != 0 {
					comp = append(comp, v...)
					mask[r*((cols+7)/8)+c/8] |= 1 << (c % 8)
					n++
				}
			}
		}
		shape := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(rows)), uint64(cols))
		ts = append(ts,
			gen.Tensor{Name: name + ".compressed", DType: tensor.F32, Shape: []int64{int64(n)}, Data: comp},
			gen.Tensor{Name: name + ".bitmask", DType: tensor.U8, Shape: []int64{int64(rows), int64((cols + 7) / 8)}, Data: mask},
			gen.Tensor{Name: name + ".row_offsets", DType: tensor.I64, Shape: []int64{int64(rows)}, Data: offs},
			gen.Tensor{Name: name + ".shape", DType: tensor.I64, Shape: []int64{2}, Data: shape})
	}
	old := filepath.Join(base, "old")
	os.MkdirAll(old, 0o755)
	if err := os.WriteFile(filepath.Join(old, "model.safetensors"), gen.Pack(ts, map[string]string{"format": "pt"}).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(in, "config.json"))
	cfg, err := checkpoint.AddQuantizationConfig(cfg, map[string]any{"format": "sparse-bitmask", "quant_method": "compressed-tensors",
		"sparsity_config": map[string]any{"format": "sparse-bitmask", "global_sparsity": 0.5, "sparsity_structure": "unstructured"}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "config.json"), cfg, 0o644)
	m, err := checkpoint.Open(old)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exp, err := m.ExpandSparse()
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) == 0 {
		t.Fatal("no bitmask tensors found under the old naming")
	}
	for _, st := range exp {
		got, err := m.Bytes(st.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[st.Name]) {
			t.Errorf("%s: decoded differs from the dense prune", st.Name)
		}
	}
}

// targetsOf plans a 50% magnitude prune of path and returns its targets
// by name.
func targetsOf(t *testing.T, path string) map[string]sparsify.Target {
	t.Helper()
	job, err := sparsify.Plan(t.Context(), path, sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	out := map[string]sparsify.Target{}
	for _, tg := range job.Targets() {
		out[tg.Name] = tg
	}
	return out
}

// TestONNXTargetsMatchCheckpoint: the default targets of an ONNX model
// whose initializers keep their Hugging Face names are those of the
// checkpoint: on GPT-2 (fused Attention reading c_attn, an untied head
// copy "onnx::MatMul_N") the four Conv1D weights of every block, [in, out],
// and no head; on stories260k the same names and [out, in] shapes as the
// safetensors model.
func TestONNXTargetsMatchCheckpoint(t *testing.T) {
	gpt2 := targetsOf(t, sharedtest.Path(t, "fixtures/onnx-tiny-random-gpt2/past.onnx"))
	if len(gpt2) != 20 {
		t.Errorf("GPT-2 ONNX: %d targets, want 5 blocks × 4", len(gpt2))
	}
	for i := 0; i < 5; i++ {
		for _, w := range []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"} {
			name := fmt.Sprintf("transformer.h.%d.%s.weight", i, w)
			tg, ok := gpt2[name]
			if !ok || !tg.Transposed || int64(tg.Rows) != tg.Shape[1] || int64(tg.Cols) != tg.Shape[0] {
				t.Errorf("GPT-2 ONNX: %s: %+v (want a target stored [in, out])", name, tg)
			}
		}
	}
	for name := range gpt2 {
		if strings.HasPrefix(name, "onnx::") {
			t.Errorf("GPT-2 ONNX: the untied head copy %s is a target; the checkpoint's head is not", name)
		}
	}
	onnxT := targetsOf(t, sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	stT := targetsOf(t, sharedtest.Path(t, "models/stories260k"))
	if len(onnxT) != len(stT) {
		t.Errorf("stories260k: %d ONNX targets, %d safetensors", len(onnxT), len(stT))
	}
	for name, s := range stT {
		o, ok := onnxT[name]
		if !ok || o.Rows != s.Rows || o.Cols != s.Cols {
			t.Errorf("stories260k %s: ONNX %+v, safetensors %+v", name, o, s)
		}
	}
}

// TestNegativeZeroCompressedTensors: a kept -0.0 weight is in the dense
// output, not stored by the compressed-tensors layouts (their compressors
// keep value != 0) and comes back +0.0 from decompress; CSR keeps it.
func TestNegativeZeroCompressedTensors(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	spec := gen.Llama(tensor.F32, 1)
	ws := gen.Weights(spec)
	const victim = "model.layers.0.mlp.up_proj.weight"
	var negs int
	for i := range ws {
		if ws[i].Name == victim {
			for j := 0; j+4 <= len(ws[i].Data); j += 4 * 7 {
				copy(ws[i].Data[j:], []byte{0, 0, 0, 0x80})
				negs++
			}
		}
	}
	os.MkdirAll(in, 0o755)
	cfg, _ := json.Marshal(gen.Config(spec))
	if err := os.WriteFile(filepath.Join(in, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "model.safetensors"), gen.Pack(ws, map[string]string{"format": "pt"}).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Structured rows keep whole rows by norm, so -0.0 in kept rows stays.
	method := prune.Method{Sparsity: 0.25, Structured: prune.StructRows}
	outs := map[sparsify.Format]string{}
	for _, f := range []sparsify.Format{sparsify.Dense, sparsify.Bitmask, sparsify.CSR} {
		outs[f] = filepath.Join(base, string(f))
		if err := run(t, in, outs[f], sparsify.Options{Method: method, Format: f}); err != nil {
			t.Fatal(err)
		}
	}
	_, dense := tensors(t, outs[sparsify.Dense])
	d := dense[victim]
	var keptNeg, nonzero int
	for j := 0; j < len(d); j += 4 {
		switch binary.LittleEndian.Uint32(d[j:]) {
		case 0x80000000:
			keptNeg++
		case 0:
		default:
			nonzero++
		}
	}
	if keptNeg == 0 {
		t.Fatalf("no kept -0.0 of %d to test with", negs)
	}
	infos, _ := tensors(t, outs[sparsify.Bitmask])
	if got := infos["model.layers.0.mlp.up_proj.compressed"].Shape; !got.Equal(tensor.Shape{int64(nonzero)}) {
		t.Errorf("bitmask compressed %v, want [%d] (the %d kept -0.0 not stored)", got, nonzero, keptNeg)
	}
	csrInfos, _ := tensors(t, outs[sparsify.CSR])
	if got := csrInfos[victim+".values"].Shape; !got.Equal(tensor.Shape{int64(nonzero + keptNeg)}) {
		t.Errorf("csr values %v, want [%d] (-0.0 stored)", got, nonzero+keptNeg)
	}
	m, err := checkpoint.Open(outs[sparsify.Bitmask])
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ExpandSparse(); err != nil {
		t.Fatal(err)
	}
	got, err := m.Bytes(victim)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(d)
	for j := 0; j < len(want); j += 4 {
		if binary.LittleEndian.Uint32(want[j:]) == 0x80000000 {
			copy(want[j:], []byte{0, 0, 0, 0})
		}
	}
	if !bytes.Equal(got, want) {
		t.Error("bitmask decodes to something other than dense with -0.0 made +0.0")
	}
}
