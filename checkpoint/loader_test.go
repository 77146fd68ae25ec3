package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func TestOpenStories260k(t *testing.T) {
	m, err := Open(sharedtest.Path(t, "models/stories260k"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config
	if c.ModelType != "llama" || c.NumLayers != 5 || c.HiddenSize != 64 || c.NumHeads != 8 ||
		c.NumKVHeads != 4 || c.VocabSize != 512 || !c.TieWordEmbeddings || c.MaxPositions != 512 ||
		c.IntermediateSize != 172 || c.HeadDim != 8 || c.RopeTheta != 10000 || c.NormEps != 1e-5 {
		t.Errorf("config = %+v", c)
	}
	if n := len(m.Names()); n != 47 {
		t.Errorf("%d tensors, want 47", n)
	}
	var params int64
	for _, n := range m.Names() {
		info, _ := m.Tensor(n)
		e, _ := info.Shape.Elems()
		params += e
	}
	if params != 260032 {
		t.Errorf("%d parameters, want 260032", params)
	}
	if m.Names()[0] != "model.embed_tokens.weight" || m.Names()[46] != "model.norm.weight" {
		t.Errorf("order: first %s, last %s", m.Names()[0], m.Names()[46])
	}
	emb, err := m.Float32("model.embed_tokens.weight")
	if err != nil || len(emb) != 512*64 {
		t.Fatalf("embedding: %d values, %v", len(emb), err)
	}
}

func TestOpenSharedFixtures(t *testing.T) {
	m, err := Open(sharedtest.Path(t, "fixtures/tiny-gpt2-bf16"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.ModelType != "gpt2" || m.Config.HiddenSize != 32 || m.Config.NumLayers != 2 ||
		m.Config.VocabSize != 50257 || m.Config.IntermediateSize != 128 || m.Config.MaxPositions != 128 {
		t.Errorf("tiny-gpt2-bf16 config = %+v", m.Config)
	}
	for _, n := range m.Names() {
		if info, _ := m.Tensor(n); info.DType != tensor.BF16 {
			t.Errorf("%s is %s, want BF16", n, info.DType)
		}
	}
	m.Close()
	m, err = Open(sharedtest.Path(t, "fixtures/hf-tiny-gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Names()) != 16 || m.Config.IntermediateSize != 8 || !m.Config.TieWordEmbeddings {
		t.Errorf("hf-tiny-gpt2: %d tensors, config %+v", len(m.Names()), m.Config)
	}
}

// TestOpenGenerated opens every generated layout and checks each tensor's
// bytes against the generator.
func TestOpenGenerated(t *testing.T) {
	for _, spec := range specs() {
		dir := filepath.Join(t.TempDir(), "ckpt")
		if err := gen.WriteCheckpoint(dir, spec); err != nil {
			t.Fatal(err)
		}
		m, err := Open(dir)
		if err != nil {
			t.Fatalf("%s %s shards=%d: %v", spec.Arch, spec.DType, spec.Shards, err)
		}
		checkWeights(t, m, gen.Weights(spec))
		if want := max(spec.Shards, 1); len(m.Files) != want {
			t.Errorf("%d files, want %d", len(m.Files), want)
		}
		m.Close()
	}
}

func specs() []gen.Spec {
	var out []gen.Spec
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		for _, shards := range []int{1, 3} {
			out = append(out, gen.Llama(dt, shards), gen.GPT2(dt, shards))
		}
	}
	return out
}

func checkWeights(t *testing.T, m *Model, ws []gen.Tensor) {
	t.Helper()
	if len(m.Names()) != len(ws) {
		t.Fatalf("%d tensors, want %d", len(m.Names()), len(ws))
	}
	for _, w := range ws {
		b, err := m.Bytes(w.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, w.Data) {
			t.Errorf("%s: bytes differ", w.Name)
		}
		info, _ := m.Tensor(w.Name)
		if info.DType != w.DType || !info.Shape.Equal(w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", w.Name, info.DType, info.Shape, w.DType, w.Shape)
		}
	}
}

// dirFiles reads every file of a directory.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestWriteRoundTrip: read → write → read is bit-identical for every dtype,
// single and sharded, re-sharding one file into several and back; writing
// twice gives byte-identical directories.
func TestWriteRoundTrip(t *testing.T) {
	for _, spec := range specs() {
		base := t.TempDir()
		in := filepath.Join(base, "in")
		if err := gen.WriteCheckpoint(in, spec); err != nil {
			t.Fatal(err)
		}
		ws := gen.Weights(spec)
		m, err := Open(in)
		if err != nil {
			t.Fatal(err)
		}
		es, err := m.Entries()
		if err != nil {
			t.Fatal(err)
		}
		// Shard size chosen to force several shards.
		var total int64
		for _, e := range es {
			total += e.Size
		}
		steps := []struct {
			name  string
			shard int64
			files int // 0: more than one
		}{{"same", 0, 1}, {"many", total / 4, 0}, {"again", total / 4, 0}}
		var prev map[string][]byte
		for i, st := range steps {
			out := filepath.Join(base, st.name)
			if err := WriteDir(out, in, es, WriteOptions{MaxShardSize: st.shard}); err != nil {
				t.Fatal(err)
			}
			m2, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			checkWeights(t, m2, ws)
			if st.files == 1 && len(m2.Files) != 1 || st.files == 0 && len(m2.Files) < 2 {
				t.Errorf("%s: %d files", st.name, len(m2.Files))
			}
			for _, f := range m2.Files {
				if fi, _ := os.Stat(f); st.shard > 0 && fi.Size() > st.shard+4096 && len(m2.Files) > 1 {
					// a shard holds at most shard bytes of tensors unless one tensor is larger
					sf, _ := safetensors.Open(f)
					if len(sf.Tensors()) > 1 {
						t.Errorf("%s: shard %s is %d bytes with several tensors (limit %d)", st.name, f, fi.Size(), st.shard)
					}
					sf.Close()
				}
			}
			got := dirFiles(t, out)
			if _, ok := got["config.json"]; !ok {
				t.Errorf("%s: config.json not copied", st.name)
			}
			if _, ok := got["tokenizer_config.json"]; !ok {
				t.Errorf("%s: tokenizer_config.json not copied", st.name)
			}
			if i == 2 {
				if len(got) != len(prev) {
					t.Errorf("second write has %d files, first %d", len(got), len(prev))
				}
				for k, v := range prev {
					if !bytes.Equal(got[k], v) {
						t.Errorf("writing twice: %s differs", k)
					}
				}
			}
			prev = got
			// re-shard back into one file from the sharded copy
			if st.name == "many" {
				es2, _ := m2.Entries()
				back := filepath.Join(base, "back")
				if err := WriteDir(back, out, es2, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				m3, err := Open(back)
				if err != nil {
					t.Fatal(err)
				}
				checkWeights(t, m3, ws)
				if len(m3.Files) != 1 {
					t.Errorf("re-sharding back gave %d files", len(m3.Files))
				}
				m3.Close()
			}
			m2.Close()
		}
		m.Close()
	}
}

func TestWriteForceRemovesStaleShards(t *testing.T) {
	base := t.TempDir()
	in, out := filepath.Join(base, "in"), filepath.Join(base, "out")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	if err := gen.WriteCheckpoint(out, gen.GPT2(tensor.F16, 3)); err != nil {
		t.Fatal(err)
	}
	m, _ := Open(in)
	defer m.Close()
	es, _ := m.Entries()
	err := WriteDir(out, in, es, WriteOptions{})
	if !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("non-empty output: err = %v", err)
	}
	if err := WriteDir(out, in, es, WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range dirFiles(t, out) {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "config.json generation_config.json model.safetensors tokenizer_config.json" {
		t.Errorf("files after --force: %v", names)
	}
	m2, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	checkWeights(t, m2, gen.Weights(gen.Llama(tensor.F32, 1)))
	m2.Close()
}

func TestCheckOutput(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	if err := os.Symlink(in, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		out   string
		force bool
		want  string
	}{
		{in, true, "input directory"},
		{in + "/.", true, "input directory"},
		{file, false, "not a directory"},
		{in, false, "input directory"},
		{filepath.Join(in, "sub"), false, "inside it"},
		{filepath.Join(in, "sub", "deeper"), true, "inside it"},
		{filepath.Join(base, "link"), true, "input directory"},
		{filepath.Join(base, "link", "x"), true, "inside it"},
		{empty, false, ""},
		{filepath.Join(base, "new"), false, ""},
	} {
		err := CheckOutput(tt.out, in, tt.force)
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckOutput(%s, force=%v) = %v, want %q", tt.out, tt.force, err, tt.want)
		}
	}
}

// TestBadCheckpoints covers directory-level bad inputs; each must fail
// with ErrFormat or ErrUnsupported and name the file.
func TestBadCheckpoints(t *testing.T) {
	tests := []struct {
		name  string
		spec  gen.Spec
		edit  func(dir string)
		want  string
		isErr error
	}{
		{"missing config.json", gen.Llama(tensor.F32, 1), func(d string) { os.Remove(filepath.Join(d, "config.json")) }, "missing config.json", ErrFormat},
		{"unsupported model_type", gen.Llama(tensor.F32, 1), func(d string) {
			editJSON(d, "config.json", func(m map[string]any) { m["model_type"] = "bert" })
		}, `model_type "bert"`, ErrUnsupported},
		{"config wrong type", gen.Llama(tensor.F32, 1), func(d string) {
			editJSON(d, "config.json", func(m map[string]any) { m["hidden_size"] = "sixteen" })
		}, "hidden_size", ErrFormat},
		{"config bad heads", gen.Llama(tensor.F32, 1), func(d string) {
			editJSON(d, "config.json", func(m map[string]any) { m["num_key_value_heads"] = 3 })
		}, "key/value heads", ErrFormat},
		{"config negative", gen.GPT2(tensor.F32, 1), func(d string) {
			editJSON(d, "config.json", func(m map[string]any) { m["n_layer"] = -2 })
		}, "n_layer", ErrFormat},
		{"config not JSON", gen.Llama(tensor.F32, 1), func(d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o644) }, "invalid JSON", ErrFormat},
		{"no weights", gen.Llama(tensor.F32, 1), func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) }, "no model.safetensors", ErrFormat},
		{"index names a parent file", gen.Llama(tensor.F32, 3), func(d string) { retarget(d, "../model-00001-of-00003.safetensors") }, "outside the checkpoint directory", ErrFormat},
		{"index names an absolute path", gen.Llama(tensor.F32, 3), func(d string) { retarget(d, "/etc/passwd") }, "outside the checkpoint directory", ErrFormat},
		{"missing shard", gen.Llama(tensor.F32, 3), func(d string) { os.Remove(filepath.Join(d, "model-00002-of-00003.safetensors")) }, "missing shard", ErrFormat},
		{"tensor in the wrong shard", gen.Llama(tensor.F32, 3), func(d string) {
			editJSON(d, IndexFile, func(m map[string]any) {
				wm := m["weight_map"].(map[string]any)
				wm["model.embed_tokens.weight"] = "model-00003-of-00003.safetensors"
			})
		}, "says", ErrFormat},
		{"index lists an absent tensor", gen.Llama(tensor.F32, 3), func(d string) {
			editJSON(d, IndexFile, func(m map[string]any) {
				m["weight_map"].(map[string]any)["ghost.weight"] = "model-00001-of-00003.safetensors"
			})
		}, "ghost.weight", ErrFormat},
		{"corrupt shard", gen.Llama(tensor.F32, 3), func(d string) {
			p := filepath.Join(d, "model-00002-of-00003.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-3], 0o644)
		}, "model-00002-of-00003.safetensors", safetensors.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ckpt")
			if err := gen.WriteCheckpoint(dir, tt.spec); err != nil {
				t.Fatal(err)
			}
			tt.edit(dir)
			m, err := Open(dir)
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.isErr) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q: want %v containing %q and naming %s", err, tt.isErr, tt.want, dir)
			}
		})
	}
}

func editJSON(dir, name string, edit func(map[string]any)) {
	p := filepath.Join(dir, name)
	b, _ := os.ReadFile(p)
	var m map[string]any
	json.Unmarshal(b, &m)
	edit(m)
	b, _ = json.Marshal(m)
	os.WriteFile(p, b, 0o644)
}

// retarget points the index's first tensor at file.
func retarget(dir, file string) {
	editJSON(dir, IndexFile, func(m map[string]any) {
		m["weight_map"].(map[string]any)["model.embed_tokens.weight"] = file
	})
}

func TestNaturalOrder(t *testing.T) {
	names := []string{"layers.10.w", "layers.2.w", "layers.1.w", "a", "layers.02.w", "layers.2.b", "b1", "b"}
	SortNames(names)
	want := "a b b1 layers.1.w layers.2.b layers.02.w layers.2.w layers.10.w"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestWriteFailureLeavesNothing: an error in the middle of writing (here a
// tensor source that fails) leaves neither the output directory nor any
// temporary file behind.
func TestWriteFailureLeavesNothing(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1))
	m, _ := Open(in)
	defer m.Close()
	es, _ := m.Entries()
	boom := errors.New("source failed")
	es[len(es)/2].Write = func(io.Writer) error { return boom }
	for _, out := range []string{filepath.Join(base, "out"), filepath.Join(base, "empty")} {
		if strings.HasSuffix(out, "empty") {
			os.Mkdir(out, 0o755)
		}
		if err := WriteDir(out, in, es, WriteOptions{MaxShardSize: 4096}); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the source's error", err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("%s: files left after a failed write: %v", out, ents)
		}
	}
	ents, _ := os.ReadDir(base)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "empty in" {
		t.Errorf("directory holds %v after failed writes, want [empty in]", names)
	}
}
