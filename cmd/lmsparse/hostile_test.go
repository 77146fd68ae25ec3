package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// Hostile inputs (issue 18): every input path follows one rule (links
// resolved inside the model directory, regular files only, bounded reads),
// nothing crashes, hangs or reads without bound, and bad input exits 2
// with one line. Each case is a small input generated here.

// hostile is one hostile input and the command lines run on it.
type hostile struct {
	name string
	args []string // the command line
	code int      // the documented exit code
	want string   // in the error line (code != 0) or stdout (code 0)
	// crash marks an input of the crash class, which the 1 GiB test runs
	// under every verb.
	crash bool
}

// demoDir writes the demo model (tiny llama, byte tokenizer) into a new
// directory under root and lets edit change it.
func demoDir(t testing.TB, root, name string, edit func(dir string)) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := gen.WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	return dir
}

func mustT(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// editConfig rewrites dir/config.json through edit.
func editConfig(t testing.TB, dir string, edit func(map[string]any)) {
	t.Helper()
	editJSON(t, filepath.Join(dir, "config.json"), edit)
}

// editJSON rewrites the JSON object in the file p through edit.
func editJSON(t testing.TB, p string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(p)
	mustT(t, err)
	var c map[string]any
	mustT(t, json.Unmarshal(b, &c))
	edit(c)
	b, err = json.Marshal(c)
	mustT(t, err)
	mustT(t, os.WriteFile(p, b, 0o644))
}

// editWeights rewrites dir/model.safetensors through edit.
func editWeights(t testing.TB, dir string, edit func(*gen.RawFile)) {
	t.Helper()
	p := filepath.Join(dir, "model.safetensors")
	b, err := os.ReadFile(p)
	mustT(t, err)
	f, err := gen.DecodeRaw(b)
	mustT(t, err)
	edit(&f)
	mustT(t, os.WriteFile(p, f.Encode(), 0o644))
}

// addEmpty adds a zero-element F32 tensor of the given shape.
func addEmpty(name string, shape ...int64) func(*gen.RawFile) {
	return func(f *gen.RawFile) {
		n := int64(len(f.Data))
		f.Tensors = append(f.Tensors, gen.RawTensor{Name: name, DType: "F32", Shape: shape, Begin: n, End: n})
	}
}

func mkfifo(t testing.TB, path string) {
	t.Helper()
	os.Remove(path)
	mustT(t, syscall.Mkfifo(path, 0o644))
}

// hostileInputs generates the inputs under root and returns the cases.
func hostileInputs(t testing.TB, root string) []hostile {
	t.Helper()
	text := filepath.Join(root, "text.txt")
	mustT(t, os.WriteFile(text, []byte(strings.Repeat("The cat sat on the mat. ", 40)), 0o644))
	out := func(name string) string { return filepath.Join(root, "out-"+name) }
	var hs []hostile
	add := func(h hostile) { hs = append(hs, h) }

	// Security and data.
	secret := filepath.Join(root, "secret")
	mustT(t, os.WriteFile(secret, []byte("secret\n"), 0o600))
	m := demoDir(t, root, "license-out", func(d string) { mustT(t, os.Symlink(secret, filepath.Join(d, "LICENSE"))) })
	add(hostile{name: "side file linked out of the model", args: []string{"prune", m, "-o", out("l"), "--sparsity", "0.5"}, code: 2, want: "outside the model directory"})
	m = demoDir(t, root, "devzero", func(d string) { mustT(t, os.Symlink("/dev/zero", filepath.Join(d, "tokenizer.model"))) })
	add(hostile{name: "side file linked to /dev/zero", args: []string{"copy", m, "-o", out("z")}, code: 2, want: "outside the model directory", crash: true})
	m = demoDir(t, root, "license-dir", func(d string) { mustT(t, os.Mkdir(filepath.Join(d, "LICENSE"), 0o755)) })
	add(hostile{name: "LICENSE a directory", args: []string{"prune", m, "-o", out("ld"), "--sparsity", "0.5"}, code: 2, want: "a directory, not a regular file"})
	m = demoDir(t, root, "config-dir", func(d string) {
		mustT(t, os.Remove(filepath.Join(d, "config.json")))
		mustT(t, os.Mkdir(filepath.Join(d, "config.json"), 0o755))
	})
	add(hostile{name: "config.json a directory", args: []string{"inspect", m}, code: 2, want: "not a regular file"})
	m = demoDir(t, root, "config-loop", func(d string) {
		mustT(t, os.Remove(filepath.Join(d, "config.json")))
		mustT(t, os.Symlink("config.json", filepath.Join(d, "config.json")))
	})
	add(hostile{name: "config.json a symlink loop", args: []string{"inspect", m}, code: 2, want: "symbolic link loop"})
	m = demoDir(t, root, "config-fifo", func(d string) { mkfifo(t, filepath.Join(d, "config.json")) })
	add(hostile{name: "config.json a FIFO", args: []string{"inspect", m}, code: 2, want: "a FIFO, not a regular file", crash: true})
	m = demoDir(t, root, "weights-fifo", func(d string) { mkfifo(t, filepath.Join(d, "model.safetensors")) })
	add(hostile{name: "model.safetensors a FIFO", args: []string{"inspect", m}, code: 2, want: "a FIFO"})
	m = demoDir(t, root, "tokenizer-fifo", func(d string) { mkfifo(t, filepath.Join(d, "tokenizer.json")) })
	add(hostile{name: "tokenizer.json a FIFO", args: []string{"eval", m, "--text", text}, code: 2, want: "a FIFO"})
	m = demoDir(t, root, "side-fifo", func(d string) { mkfifo(t, filepath.Join(d, "generation_config.json")) })
	add(hostile{name: "side file a FIFO", args: []string{"prune", m, "-o", out("sf"), "--sparsity", "0.5"}, code: 2, want: "a FIFO"})
	demo := demoDir(t, root, "demo", nil)
	fifo := filepath.Join(root, "text.fifo")
	mkfifo(t, fifo)
	add(hostile{name: "--text a FIFO", args: []string{"eval", demo, "--text", fifo}, code: 2, want: "a FIFO"})
	add(hostile{name: "--text a directory", args: []string{"eval", demo, "--text", root}, code: 2, want: "a directory"})
	add(hostile{name: "--recipe a FIFO", args: []string{"compress", demo, "-o", out("r"), "--recipe", fifo}, code: 2, want: "a FIFO"})
	add(hostile{name: "--calib a FIFO", args: []string{"prune", demo, "-o", out("c"), "--sparsity", "0.5", "--method", "wanda", "--calib", fifo}, code: 2, want: "not a regular file"})
	add(hostile{name: "--tokenizer a FIFO", args: []string{"eval", demo, "--text", text, "--tokenizer", fifo}, code: 2, want: "a FIFO"})
	onnxFifo := filepath.Join(root, "fifo.onnx")
	mkfifo(t, onnxFifo)
	add(hostile{name: "model.onnx a FIFO", args: []string{"inspect", onnxFifo}, code: 2, want: "a FIFO"})

	// Sharded checkpoints whose shards lead out of the directory.
	outside := filepath.Join(root, "elsewhere")
	mustT(t, os.MkdirAll(outside, 0o755))
	sharded := func(name string, edit func(dir, shard string)) string {
		d := filepath.Join(root, name)
		mustT(t, gen.WriteCheckpoint(d, gen.Llama(tensor.F32, 2)))
		edit(d, "model-00001-of-00002.safetensors")
		return d
	}
	m = sharded("shard-out", func(d, shard string) {
		mustT(t, os.Rename(filepath.Join(d, shard), filepath.Join(outside, shard)))
		mustT(t, os.Symlink(filepath.Join(outside, shard), filepath.Join(d, shard)))
	})
	add(hostile{name: "shard linked out of the model", args: []string{"inspect", m}, code: 2, want: "outside the model directory"})
	m = sharded("shard-subdir", func(d, shard string) {
		sub := filepath.Join(root, "elsewhere-sub")
		mustT(t, os.MkdirAll(sub, 0o755))
		mustT(t, os.Rename(filepath.Join(d, shard), filepath.Join(sub, shard)))
		mustT(t, os.Symlink(sub, filepath.Join(d, "sub")))
		p := filepath.Join(d, "model.safetensors.index.json")
		b, err := os.ReadFile(p)
		mustT(t, err)
		mustT(t, os.WriteFile(p, bytes.ReplaceAll(b, []byte(`"`+shard+`"`), []byte(`"sub/`+shard+`"`)), 0o644))
	})
	add(hostile{name: "shard under a linked subdirectory", args: []string{"inspect", m}, code: 2, want: "outside the model directory"})

	// Crashes, hangs and memory.
	for _, c := range []struct {
		name  string
		shape []int64
	}{{"2^62x0", []int64{1 << 62, 0}}, {"0x2^62", []int64{0, 1 << 62}}, {"i64maxx0", []int64{math.MaxInt64, 0}}, {"1e9x0", []int64{1e9, 0}}} {
		m := demoDir(t, root, "empty-"+c.name, func(d string) { editWeights(t, d, addEmpty("model.layers.0.mlp.huge_proj.weight", c.shape...)) })
		for _, flags := range [][]string{{"--scope", "row"}, {"--structured", "rows"}, {"--structured", "cols"}, {"--pattern", "2:4"}, {"--scope", "global"}, {"--format", "auto"}} {
			args := append([]string{"prune", m, "-o", out("e" + c.name + strings.Join(flags, "")), "--force"}, flags...)
			if flags[0] != "--pattern" && flags[0] != "--structured" {
				args = append(args, "--sparsity", "0.5")
			} else if flags[0] == "--structured" {
				args = append(args, "--sparsity", "0.25")
			}
			add(hostile{name: "zero-element tensor " + c.name + " " + strings.Join(flags, " "), args: args, code: 0, want: "huge_proj", crash: flags[0] == "--scope" && flags[1] == "row"})
		}
	}
	m = demoDir(t, root, "bomb", func(d string) {
		editJSON(t, filepath.Join(d, "tokenizer.json"), func(c map[string]any) {
			var steps []any
			for range 12 {
				steps = append(steps, map[string]any{"type": "Replace", "pattern": map[string]any{"String": "a"}, "content": "aaaaaaaa"})
			}
			c["normalizer"] = map[string]any{"type": "Sequence", "normalizers": steps}
		})
	})
	add(hostile{name: "tokenizer.json normalizer bomb", args: []string{"eval", m, "--text", text}, code: 2, want: "more than 64 times longer", crash: true})
	longWord := filepath.Join(root, "longword.txt")
	mustT(t, os.WriteFile(longWord, bytes.Repeat([]byte("x"), 9<<20), 0o644))
	add(hostile{name: "--text with a 9 MiB word", args: []string{"eval", demo, "--text", longWord}, code: 2, want: "pre-tokenized word", crash: true})
	huge := filepath.Join(root, "huge.txt")
	f, err := os.Create(huge)
	mustT(t, err)
	mustT(t, f.Truncate(2<<30)) // sparse: 2 GB of NUL bytes
	f.Close()
	add(hostile{name: "2 GB --text with --max-tokens 100", args: []string{"eval", demo, "--text", huge, "--max-tokens", "100", "--ctx", "64"}, code: 0, want: "perplexity", crash: true})
	add(hostile{name: "2 GB --text whole", args: []string{"eval", demo, "--text", huge}, code: 2, want: "use --max-tokens", crash: true})
	m = demoDir(t, root, "many-tensors", func(d string) {
		editWeights(t, d, func(f *gen.RawFile) {
			for i := range 1<<16 + 1 {
				addEmpty(fmt.Sprintf("t.%d", i), 0)(f)
			}
		})
	})
	add(hostile{name: "header with 65,537 tensors", args: []string{"inspect", m, "--json"}, code: 2, want: "more than 65536 tensors", crash: true})

	// Wrong codes and silent wrong answers.
	cfg := func(name string, edit func(map[string]any)) string {
		return demoDir(t, root, name, func(d string) { editConfig(t, d, edit) })
	}
	rawCfg := func(name string, edit func([]byte) []byte) string {
		return demoDir(t, root, name, func(d string) {
			p := filepath.Join(d, "config.json")
			b, err := os.ReadFile(p)
			mustT(t, err)
			mustT(t, os.WriteFile(p, edit(b), 0o644))
		})
	}
	add(hostile{name: "config.json trailing garbage", args: []string{"inspect", rawCfg("cfg-garbage", func(b []byte) []byte { return append(b, "garbage"...) })}, code: 2, want: "after the JSON object"})
	add(hostile{name: "config.json two objects", args: []string{"inspect", rawCfg("cfg-two", func(b []byte) []byte { return append(b, b...) })}, code: 2, want: "after the JSON object"})
	add(hostile{name: "config.json invalid UTF-8", args: []string{"inspect", rawCfg("cfg-utf8", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"llama"`), []byte("\"llama\", \"x\": \"\xff\""), 1)
	})}, code: 2, want: "not valid UTF-8"})
	add(hostile{name: "rope_scaling linear", args: []string{"eval", cfg("rope-linear", func(c map[string]any) { c["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0} }), "--text", text}, code: 2, want: `rope_scaling of type "linear"`})
	add(hostile{name: "rope_scaling llama3", args: []string{"eval", cfg("rope-llama3", func(c map[string]any) {
		c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 64}
	}), "--text", text}, code: 2, want: `rope_scaling of type "llama3"`})
	add(hostile{name: "rope_scaling default is none", args: []string{"eval", cfg("rope-default", func(c map[string]any) { c["rope_scaling"] = map[string]any{"rope_type": "default"} }), "--text", text}, code: 0, want: "perplexity"})
	add(hostile{name: "attention_bias without biases", args: []string{"eval", cfg("attn-bias", func(c map[string]any) { c["attention_bias"] = true }), "--text", text}, code: 2, want: "attention_bias"})
	sw := cfg("sliding", func(c map[string]any) { c["model_type"], c["sliding_window"] = "mistral", 32 })
	add(hostile{name: "sliding_window shorter than --ctx", args: []string{"eval", sw, "--text", text, "--ctx", "64"}, code: 2, want: "32"})
	add(hostile{name: "sliding_window bounds the default window", args: []string{"eval", sw, "--text", text}, code: 0, want: "of ctx 32"})
	add(hostile{name: "num_hidden_layers below the blocks present", args: []string{"inspect", cfg("layers", func(c map[string]any) { c["num_hidden_layers"] = 1 })}, code: 2, want: "num_hidden_layers is 1"})
	m = demoDir(t, root, "decoder", func(d string) {
		editJSON(t, filepath.Join(d, "tokenizer.json"), func(c map[string]any) { c["decoder"] = map[string]any{"type": "NoSuchDecoder"} })
	})
	add(hostile{name: "unknown tokenizer decoder", args: []string{"eval", m, "--text", text}, code: 2, want: "NoSuchDecoder"})
	m = demoDir(t, root, "nan", func(d string) {
		editWeights(t, d, func(f *gen.RawFile) {
			for _, tt := range f.Tensors {
				if tt.Name == "model.norm.weight" {
					binary.LittleEndian.PutUint32(f.Data[tt.Begin+4:], math.Float32bits(float32(math.NaN())))
				}
			}
		})
	})
	add(hostile{name: "NaN weights in eval", args: []string{"eval", m, "--text", text}, code: 2, want: `tensor "model.norm.weight" holds 1 NaN`})
	m = demoDir(t, root, "names", func(d string) { editWeights(t, d, addEmpty("model.evil\n\x1b[31mred\x1b[0m.weight", 0)) })
	add(hostile{name: "tensor name with a newline and ANSI escapes", args: []string{"inspect", m}, code: 0, want: `"model.evil\n\x1b[31mred\x1b[0m.weight"`})
	return hs
}

// TestHostileInputs runs every hostile case in-process: the documented
// exit code, one error line naming the problem, within a time bound (no
// hang on FIFOs), and nothing written for a refused output.
func TestHostileInputs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipping: FIFOs and /dev/zero")
	}
	root := t.TempDir()
	for _, h := range hostileInputs(t, root) {
		t.Run(h.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Main(context.Background(), h.args, &stdout, &stderr) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("%v: still running after 60 s (a hang)", h.args)
			}
			checkHostile(t, h, code, stdout.String(), stderr.String())
		})
	}
}

// checkHostile checks one run of h: its exit code, the error line, the
// output not written on failure.
func checkHostile(t *testing.T, h hostile, code int, stdout, stderr string) {
	t.Helper()
	if code != h.code {
		t.Fatalf("%v: exit %d, want %d\nstderr: %s", h.args, code, h.code, stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "runtime error"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("%v: stderr has %q:\n%s", h.args, bad, stderr)
		}
	}
	if code != 0 {
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "lmsparse: ") || !strings.Contains(last, h.want) {
			t.Fatalf("%v: error line %q, want one naming %q", h.args, last, h.want)
		}
		for i, a := range h.args {
			if a == "-o" {
				if _, err := os.Stat(h.args[i+1]); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%v failed but wrote %s (%v)", h.args, h.args[i+1], err)
				}
			}
		}
		return
	}
	if !strings.Contains(stdout, h.want) {
		t.Fatalf("%v: stdout lacks %q:\n%s", h.args, h.want, stdout)
	}
}

// panicWriter panics on every write: a stand-in for any bug.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("write to a broken writer") }

// TestPanicIsOneLine: a panic anywhere under Main (here in writing the
// help text; in a ParallelFor worker it is carried to Main's goroutine) is
// one line saying it is a bug, naming the command, exit 1 — not Go's exit 2
// with a stack dump.
func TestPanicIsOneLine(t *testing.T) {
	var stderr bytes.Buffer
	code := Main(context.Background(), []string{"help", "prune"}, panicWriter{}, &stderr)
	line := stderr.String()
	if code != exitFailure || strings.Count(line, "\n") != 1 ||
		!strings.HasPrefix(line, `lmsparse: internal error (a bug in lmsparse; please report it) running "help prune": write to a broken writer`) {
		t.Errorf("exit %d, stderr %q", code, line)
	}
}

// TestInterruptedSaysSo: a run stopped by SIGINT/SIGTERM (its context
// canceled) says "interrupted", exit 1, and leaves no output.
func TestInterruptedSaysSo(t *testing.T) {
	root := t.TempDir()
	m := demoDir(t, root, "m", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	out := filepath.Join(root, "out")
	code := Main(ctx, []string{"prune", m, "-o", out, "--sparsity", "0.5"}, &stdout, &stderr)
	if want := "lmsparse: interrupted by a signal; nothing written to " + out + " (an existing " + out + " is left as it was)"; code != exitFailure || strings.TrimSpace(stderr.String()) != want {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("interrupted run left %s: %v", out, err)
	}
}

// TestSideFileMode: side files are copied with at most their source's
// permissions (a 0600 tokenizer.model stays 0600), and a link inside the
// model directory is followed.
func TestSideFileMode(t *testing.T) {
	root := t.TempDir()
	m := demoDir(t, root, "m", func(d string) {
		mustT(t, os.WriteFile(filepath.Join(d, "tokenizer.model"), []byte("private"), 0o600))
		mustT(t, os.WriteFile(filepath.Join(d, "LICENSE.real"), []byte("MIT"), 0o644))
		mustT(t, os.Symlink("LICENSE.real", filepath.Join(d, "LICENSE")))
	})
	out := filepath.Join(root, "out")
	if code, _, stderr := run(t, "prune", m, "-o", out, "--sparsity", "0.5"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for name, want := range map[string]os.FileMode{"tokenizer.model": 0o600, "LICENSE": 0o644, "config.json": 0o644} {
		st, err := os.Lstat(filepath.Join(out, name))
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want a regular file of mode %v", name, st.Mode(), err, want)
		}
	}
}

// TestStaleStagingRemovedAndSaid: a staging directory left beside OUT by a
// killed run (its pid gone) is removed by the next run, which says so.
func TestStaleStagingRemovedAndSaid(t *testing.T) {
	root := t.TempDir()
	m := demoDir(t, root, "m", nil)
	stale := filepath.Join(root, ".out.tmp-999999999-1")
	mustT(t, os.MkdirAll(filepath.Join(stale, "junk"), 0o755))
	code, _, stderr := run(t, "prune", m, "-o", filepath.Join(root, "out"), "--sparsity", "0.5")
	if code != 0 || !strings.Contains(stderr, "lmsparse: note: removed "+stale+", left by an interrupted run (pid 999999999)") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale staging directory still there: %v", err)
	}
}

// TestLateFailureKeepsOutput: compress --force over an existing output
// that fails late — a NaN found in the last block's weights — exits 2
// naming the tensor and leaves the output exactly as it was.
func TestLateFailureKeepsOutput(t *testing.T) {
	root := t.TempDir()
	good := demoDir(t, root, "good", nil)
	bad := demoDir(t, root, "bad", func(d string) {
		editWeights(t, d, func(f *gen.RawFile) {
			for _, tt := range f.Tensors {
				if tt.Name == "model.layers.1.mlp.down_proj.weight" {
					binary.LittleEndian.PutUint32(f.Data[tt.End-4:], math.Float32bits(float32(math.NaN())))
				}
			}
		})
	})
	out := filepath.Join(root, "out")
	if code, _, stderr := run(t, "compress", good, "-o", out, "--sparsity", "0.3"); code != 0 {
		t.Fatalf("first compress: exit %d: %s", code, stderr)
	}
	before := forceHashTree(t, out)
	code, _, stderr := run(t, "compress", bad, "-o", out, "--force", "--sparsity", "0.5")
	if code != 2 || !strings.Contains(stderr, "model.layers.1.mlp.down_proj.weight") {
		t.Errorf("compress with a NaN weight: exit %d, stderr %q", code, stderr)
	}
	if after := forceHashTree(t, out); !forceSameMap(before, after) {
		t.Errorf("a failed compress --force changed the output: %s", forceDescribe(after, before, before))
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left beside the output: %s", e.Name())
		}
	}
}

// TestCompressScratchPerOutput: compress's temporary outputs (the sweep's
// points) are named after OUT, so two runs writing different outputs in
// one directory run together; what a killed run left of them is removed
// by the next compress on OUT, with or without a sweep, which says so.
func TestCompressScratchPerOutput(t *testing.T) {
	root := t.TempDir()
	m := demoDir(t, root, "m", nil)
	text := filepath.Join(root, "text.txt")
	mustT(t, os.WriteFile(text, []byte(strings.Repeat("The cat sat on the mat. ", 40)), 0o644))
	codes := make(chan string, 2)
	for _, name := range []string{"a", "b"} {
		go func() {
			var so, se bytes.Buffer
			code := Main(context.Background(), []string{"compress", m, "-o", filepath.Join(root, name), "--sparsity", "0.5", "--text", text, "--sweep", "0.1,0.2,0.3,0.4,0.5,0.6"}, &so, &se)
			codes <- fmt.Sprintf("%d %s", code, se.String())
		}()
	}
	for range 2 {
		if c := <-codes; !strings.HasPrefix(c, "0 ") {
			t.Errorf("concurrent compress into another output: exit %s", c)
		}
	}
	stale := filepath.Join(root, "..c.lmsparse-sweep.tmp-999999999-1")
	mustT(t, os.MkdirAll(filepath.Join(stale, "junk"), 0o755))
	lock := filepath.Join(root, "..c.lmsparse-sweep.lmsparse-lock")
	mustT(t, os.WriteFile(lock, []byte("999999999\n"), 0o644))
	code, _, stderr := run(t, "compress", m, "-o", filepath.Join(root, "c"), "--sparsity", "0.5")
	if code != 0 || !strings.Contains(stderr, "lmsparse: note: removed "+stale) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, p := range []string{stale, lock} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
}
