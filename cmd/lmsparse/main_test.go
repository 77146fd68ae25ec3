package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// run invokes the CLI in-process.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectStories260k(t *testing.T) {
	dir := sharedtest.Path(t, "models/stories260k")
	code, out, errOut := run(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"llama (LlamaForCausalLM)", "layers       5", "hidden size  64",
		"heads        8 (4 KV heads", "vocab        512", "tied         yes", "total (47 tensors)", "260,032"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "inspect", dir, "--json")
	if code != 0 {
		t.Fatal(code)
	}
	var rep checkpoint.InspectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	a := rep.Architecture
	if rep.Schema != "lmsparse.inspect/v1" || a == nil || a.ModelType != "llama" || a.Layers != 5 || a.HiddenSize != 64 ||
		a.Heads != 8 || a.KVHeads != 4 || a.VocabSize != 512 || !a.TiedEmbeddings || a.Context != 512 {
		t.Errorf("json architecture = %+v", a)
	}
	if rep.Totals.Tensors != 47 || len(rep.Tensors) != 47 || rep.Totals.Parameters != 260032 || rep.Totals.Bytes != 1040128 {
		t.Errorf("json totals = %+v", rep.Totals)
	}
	if rep.Tensors[0].Name != "model.embed_tokens.weight" || rep.Tensors[0].Parameters != 32768 {
		t.Errorf("first tensor = %+v", rep.Tensors[0])
	}
}

func TestInspectSharedFixtures(t *testing.T) {
	code, out, errOut := run(t, "inspect", "--json", sharedtest.Path(t, "fixtures/tiny-gpt2-bf16"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep checkpoint.InspectReport
	json.Unmarshal([]byte(out), &rep)
	if rep.Architecture.ModelType != "gpt2" || rep.Totals.Tensors != 28 {
		t.Errorf("tiny-gpt2-bf16: %+v %+v", rep.Architecture, rep.Totals)
	}
	for _, tt := range rep.Tensors {
		if tt.DType != "BF16" {
			t.Errorf("%s is %s", tt.Name, tt.DType)
		}
	}
	if code, _, errOut := run(t, "inspect", sharedtest.Path(t, "fixtures/hf-tiny-gpt2")); code != 0 {
		t.Errorf("hf-tiny-gpt2: exit %d: %s", code, errOut)
	}
}

// TestInspectCounts checks zeros, NaN and Inf counting on a file with known
// values, and the --json fields for a passthrough dtype.
func TestInspectCounts(t *testing.T) {
	vals := []float32{0, 1, float32(math.Copysign(0, -1)), 2, nan(), inf(), 3, 0}
	b := make([]byte, 4*len(vals))
	tensor.EncodeF32(b, vals, tensor.F32)
	f := gen.RawFile{Metadata: map[string]string{}, Data: append(b, 9, 9)}
	f.Tensors = []gen.RawTensor{{Name: "w", DType: "F32", Shape: []int64{2, 4}, Begin: 0, End: 32},
		{Name: "x", DType: "F4X", Shape: []int64{2}, Begin: 32, End: 34}}
	p := filepath.Join(t.TempDir(), "one.safetensors")
	os.WriteFile(p, f.Encode(), 0o644)
	code, out, errOut := run(t, "inspect", "--json", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep checkpoint.InspectReport
	json.Unmarshal([]byte(out), &rep)
	w, x := rep.Tensors[0], rep.Tensors[1]
	if *w.Zeros != 3 || *w.NaN != 1 || *w.Inf != 1 || *w.ZeroFrac != 3.0/8 {
		t.Errorf("w: zeros %d nan %d inf %d frac %g", *w.Zeros, *w.NaN, *w.Inf, *w.ZeroFrac)
	}
	if x.Zeros != nil || rep.Totals.Unscanned != 1 || rep.Architecture != nil {
		t.Errorf("passthrough: %+v, totals %+v", x, rep.Totals)
	}
	_, out, _ = run(t, "inspect", p)
	if !strings.Contains(out, "37.50%") || !strings.Contains(out, "not scanned") {
		t.Errorf("table:\n%s", out)
	}
}

// TestBadInputs is the acceptance table: every bad input exits 2 with one
// line on stderr naming the file and the problem, and writes nothing.
func TestBadInputs(t *testing.T) {
	good := gen.Pack(gen.Weights(gen.Llama(tensor.F32, 1)), map[string]string{"format": "pt"}).Encode()
	type bad struct {
		name  string
		setup func(dir string) // dir holds a good tiny llama
		want  []string         // phrases of the error line
	}
	var cases []bad
	for _, c := range gen.Corruptions() {
		c := c
		cases = append(cases, bad{"safetensors: " + c.Name, func(dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), c.Apply(good), 0o644)
		}, []string{"model.safetensors", c.Want}})
	}
	cases = append(cases,
		bad{"missing config.json", func(d string) { os.Remove(filepath.Join(d, "config.json")) }, []string{"missing config.json"}},
		bad{"unsupported model_type", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), []byte(`{"model_type":"t5"}`), 0o644)
		}, []string{"config.json", `model_type "t5"`, "supported"}},
		bad{"index names a file outside the directory", func(d string) {
			os.Remove(filepath.Join(d, "model.safetensors"))
			os.WriteFile(filepath.Join(d, checkpoint.IndexFile), []byte(`{"weight_map":{"a":"../x.safetensors"}}`), 0o644)
		}, []string{checkpoint.IndexFile, "outside the checkpoint directory"}},
		bad{"index names an absolute path", func(d string) {
			os.Remove(filepath.Join(d, "model.safetensors"))
			os.WriteFile(filepath.Join(d, checkpoint.IndexFile), []byte(`{"weight_map":{"a":"/tmp/x.safetensors"}}`), 0o644)
		}, []string{"outside the checkpoint directory"}},
		bad{"missing shard", func(d string) {
			os.Remove(filepath.Join(d, "model.safetensors"))
			os.WriteFile(filepath.Join(d, checkpoint.IndexFile), []byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors"}}`), 0o644)
		}, []string{"model-00001-of-00002.safetensors", "missing shard"}},
		bad{"missing model", func(d string) { os.RemoveAll(d) }, []string{"no such file"}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "model")
			if err := gen.WriteCheckpoint(dir, gen.Llama(tensor.F32, 1)); err != nil {
				t.Fatal(err)
			}
			tc.setup(dir)
			out := filepath.Join(base, "out")
			for _, args := range [][]string{{"inspect", dir}, {"inspect", "--json", dir}, {"copy", dir, "-o", out}} {
				code, stdout, stderr := run(t, args...)
				if code != exitBadArgs {
					t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
				}
				if stdout != "" {
					t.Errorf("%v: printed %q on stdout", args, stdout)
				}
				if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "lmsparse: ") {
					t.Errorf("%v: stderr is not one 'lmsparse: ' line: %q", args, stderr)
				}
				for _, w := range append([]string{dir}, tc.want...) {
					if !strings.Contains(stderr, w) {
						t.Errorf("%v: error %q does not contain %q", args, stderr, w)
					}
				}
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("copy of a bad input created %s", out)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{nil, 2, "", "no command given"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"--frob"}, 2, "", "unknown flag --frob"},
		{[]string{"inspect"}, 2, "", "exactly one MODEL"},
		{[]string{"inspect", "a", "b"}, 2, "", "exactly one MODEL"},
		{[]string{"inspect", "--nope", "x"}, 2, "", "unknown flag: --nope"},
		{[]string{"copy", "x"}, 2, "", "-o/--output is required"},
		{[]string{"copy", "x", "-o", "y", "--max-shard-size", "lots"}, 2, "", "invalid size"},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"help", "inspect"}, 0, "Examples:", ""},
		{[]string{"help", "nope"}, 2, "", "unknown command"},
		{[]string{"inspect", "--help"}, 0, "lmsparse inspect MODEL", ""},
		{[]string{"copy", "-h"}, 0, "--max-shard-size", ""},
		{[]string{"--version"}, 0, "lmsparse ", ""},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.out, tt.err)
		}
		if tt.code != 0 && strings.Count(errOut, "lmsparse: ") != 1 {
			t.Errorf("%v: want one error line, got %q", tt.args, errOut)
		}
	}
}

func TestExitCodeTable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code int
	}{
		{errors.New("disk full"), 1},
		{fmt.Errorf("wrap: %w", compress.ErrGateFailed), 3},
		{fmt.Errorf("wrap: %w", compress.ErrInvalid), 2},
		{fmt.Errorf("wrap: %w", sparsify.ErrInvalid), 2},
		{usageErrorf("x"), 2},
		{fmt.Errorf("f: %w", checkpoint.ErrUnsupported), 2},
		{fmt.Errorf("f: %w", fs.ErrNotExist), 2},
		{context.Canceled, 1},
	} {
		if got := exitCode(tt.err); got != tt.code {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestCopyReshards(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	spec := gen.GPT2(tensor.BF16, 1)
	gen.WriteCheckpoint(in, spec)
	sharded, back := filepath.Join(base, "sharded"), filepath.Join(base, "back")
	if code, _, e := run(t, "copy", in, "-o", sharded, "--max-shard-size", "4kB"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := run(t, "copy", sharded, "-o", back); code != 0 {
		t.Fatal(e)
	}
	a, _ := os.ReadFile(filepath.Join(in, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(back, "model.safetensors"))
	m1, _ := checkpoint.Open(in)
	m2, _ := checkpoint.Open(back)
	defer m1.Close()
	defer m2.Close()
	for _, n := range m1.Names() {
		x, _ := m1.Bytes(n)
		y, _ := m2.Bytes(n)
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs after re-sharding", n)
		}
	}
	if len(a) != len(b) {
		t.Logf("generator layout %d bytes, lmsparse layout %d bytes", len(a), len(b))
	}
	ms, _ := checkpoint.Open(sharded)
	if len(ms.Files) < 3 {
		t.Errorf("4kB shards gave %d files", len(ms.Files))
	}
	ms.Close()
	if code, _, e := run(t, "copy", in, "-o", in, "--force"); code != 2 || !strings.Contains(e, "input directory") {
		t.Errorf("copy into the input: exit %d %q", code, e)
	}
	if code, _, e := run(t, "copy", in, "-o", back); code != 2 || !strings.Contains(e, "--force") {
		t.Errorf("copy into non-empty: exit %d %q", code, e)
	}
	if code, _, e := run(t, "copy", in, "-o", back, "--force"); code != 0 {
		t.Errorf("copy --force: exit %d %q", code, e)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"5GB": 5e9, "500MB": 5e8, "2GiB": 2 << 30, "1048576": 1 << 20, "1.5kb": 1500, "10 MiB": 10 << 20} {
		if got, err := checkpoint.ParseSize(in); err != nil || got != want {
			t.Errorf("checkpoint.ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1GB", "GB", "1XB", "1e30TB", "NaN"} {
		if _, err := checkpoint.ParseSize(in); err == nil {
			t.Errorf("checkpoint.ParseSize(%q) accepted", in)
		}
	}
}

func nan() float32 { z := float32(0); return z / z }
func inf() float32 { z := float32(0); return 1 / z }
