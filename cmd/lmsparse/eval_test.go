package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func evalJSON(t *testing.T, args ...string) eval.Report {
	t.Helper()
	out := mustRun(t, append(append([]string{"eval"}, args...), "--json")...)
	var r eval.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// firstChars writes the first n characters (code points) of a file.
func firstChars(t *testing.T, path string, n int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for c := 0; c < n && i < len(b); c++ {
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	p := filepath.Join(t.TempDir(), "prefix.txt")
	os.WriteFile(p, b[:i], 0o644)
	return p
}

// TestEvalReferenceTable reproduces every row of the reference table in
// ../shared/README.md through the CLI: tokenizer, forward pass and protocol.
func TestEvalReferenceTable(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	gpt2 := sharedtest.Path(t, "fixtures/tiny-gpt2-bf16")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	wiki := firstChars(t, sharedtest.Path(t, "text/wikitext-2/wiki.test.raw"), 100_000)
	rows := []struct {
		model, text   string
		ctx, stride   string
		tokens, sc    int
		ppl, nll, bpb float64
	}{
		{s260, sample, "512", "512", 1879, 1875, 6.124239, 1.812254, 1.292445},
		{s260, sample, "128", "128", 1879, 1864, 6.043675, 1.799012, 1.275474},
		{s260, sample, "256", "128", 1879, 1878, 6.295008, 1.839757, 0},
		{s260, wiki, "512", "512", 63359, 63235, 146.6273, 4.987894, 4.539819},
		{gpt2, sample, "128", "128", 922, 914, 198863.99, 12.200376, 4.241418},
		{gpt2, sample, "128", "64", 922, 921, 199431.13, 12.203224, 0},
	}
	for _, row := range rows {
		r := evalJSON(t, row.model, "--text", row.text, "--ctx", row.ctx, "--stride", row.stride)
		name := filepath.Base(row.model) + " " + filepath.Base(row.text) + " " + row.ctx + "/" + row.stride
		if r.Tokens != row.tokens || r.Scored != row.sc {
			t.Errorf("%s: %d tokens, %d scored; want %d, %d", name, r.Tokens, r.Scored, row.tokens, row.sc)
		}
		if e := relErr(r.PPL, row.ppl); e > 1e-4 {
			t.Errorf("%s: ppl %.6f, want %.6f (relative error %.2g)", name, r.PPL, row.ppl, e)
		}
		if e := math.Abs(r.MeanNLL - row.nll); e > 1e-5 {
			t.Errorf("%s: mean NLL %.6f, want %.6f", name, r.MeanNLL, row.nll)
		}
		if row.bpb != 0 && (r.BitsPerByte == nil || relErr(*r.BitsPerByte, row.bpb) > 1e-4) {
			t.Errorf("%s: bits/byte %v, want %.6f", name, r.BitsPerByte, row.bpb)
		}
		t.Logf("%s: tokens %d scored %d ppl %.6f (reference %.6f) mean NLL %.6f", name, r.Tokens, r.Scored, r.PPL, row.ppl, r.MeanNLL)
	}
	// First 8 per-token NLLs.
	for _, tt := range []struct {
		model string
		nll   []float64
	}{
		{s260, []float64{0.243743, 0.017513, 0.012110, 0.000724, 3.549842, 0.150518, 0.001825, 0.758662}},
		{gpt2, []float64{13.680653, 11.007623, 12.287743, 13.220316, 12.073214, 11.079397, 10.364917, 11.236128}},
	} {
		r := evalJSON(t, tt.model, "--text", sample, "--ctx", "128")
		for i, want := range tt.nll {
			if math.Abs(r.FirstNLL[i]-want) > 1e-4 {
				t.Errorf("%s: NLL[%d] = %.6f, want %.6f", filepath.Base(tt.model), i+1, r.FirstNLL[i], want)
			}
		}
	}
}

// TestEvalAgainstItselfAndPruned: KL of a model with itself is 0 and top-1
// agreement 1; pruning more raises KL.
func TestEvalAgainstItselfAndPruned(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	self := evalJSON(t, s260, "--base", s260, "--text", sample)
	if self.KL == nil || self.KL.Mean > 1e-9 || self.KL.Max > 1e-9 || self.KL.Top1 != 1 || self.KL.LogPPLRatio != 0 {
		t.Errorf("self: %+v", self.KL)
	}
	prev := 0.0
	base := t.TempDir()
	for _, s := range []string{"0.3", "0.5", "0.7"} {
		out := filepath.Join(base, s)
		mustRun(t, "prune", s260, "-o", out, "--sparsity", s)
		r := evalJSON(t, out, "--base", s260, "--text", sample)
		t.Logf("sparsity %s: ppl %.4f KL mean %.4f p99 %.4f top-1 %.4f", s, r.PPL, r.KL.Mean, r.KL.P99, r.KL.Top1)
		if r.KL.Mean <= prev {
			t.Errorf("sparsity %s: KL %.6f does not exceed %.6f", s, r.KL.Mean, prev)
		}
		prev = r.KL.Mean
	}
}

func TestEvalBadInput(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	gpt2 := sharedtest.Path(t, "fixtures/tiny-gpt2-bf16")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	empty := write("empty.txt", "")
	one := write("one.txt", "Once")
	// A checkpoint without a tokenizer, and one with an unsupported one.
	notok := filepath.Join(dir, "notok")
	gen.WriteCheckpoint(notok, gen.Llama(tensor.F32, 1))
	unigram := filepath.Join(dir, "unigram")
	gen.WriteCheckpoint(unigram, gen.Llama(tensor.F32, 1))
	os.WriteFile(filepath.Join(unigram, "tokenizer.json"), []byte(`{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0]]}}`), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{s260, "--text", empty}, "is empty"},
		{[]string{gpt2, "--text", one}, "gives 1 token(s)"},
		{[]string{s260, "--text", sample, "--ctx", "1024"}, "larger than the 512 positions"},
		{[]string{s260, "--text", sample, "--ctx", "1"}, "at least 2 tokens"},
		{[]string{s260, "--text", sample, "--stride", "0"}, "--stride 0"},
		{[]string{s260, "--text", sample, "--stride", "-3"}, "--stride -3"},
		{[]string{s260, "--text", sample, "--ctx", "128", "--stride", "200"}, "larger than --ctx 128"},
		{[]string{notok, "--text", sample}, "no tokenizer.json"},
		{[]string{unigram, "--text", sample}, "Unigram"},
		{[]string{s260, "--text", sample, "--base", gpt2}, "vocabulary of 50257 tokens"},
		{[]string{s260, "--text", filepath.Join(dir, "missing.txt")}, "missing.txt"},
		{[]string{s260}, "--text FILE is required"},
		{[]string{s260, "--text", sample, "--max-tokens", "-1"}, "--max-tokens -1"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(t, append([]string{"eval"}, tt.args...)...)
		if code != exitBadArgs || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("eval %v: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestEvalInvalidUTF8: invalid bytes are tokenized as U+FFFD, the same on
// every run; bits per byte counts the file's bytes.
func TestEvalInvalidUTF8(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(bad, []byte("Once upon a time \xff\xfe there was a cat.\n"), 0o644)
	os.WriteFile(good, []byte("Once upon a time \uFFFD\uFFFD there was a cat.\n"), 0o644)
	code, out1, stderr := run(t, "eval", s260, "--text", bad, "--json")
	if code != 0 || !strings.Contains(stderr, "2 bytes of invalid UTF-8") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	_, out2, _ := run(t, "eval", s260, "--text", bad, "--json")
	var r1, r2, rg eval.Report
	json.Unmarshal([]byte(out1), &r1)
	json.Unmarshal([]byte(out2), &r2)
	json.Unmarshal([]byte(mustRun(t, "eval", s260, "--text", good, "--json")), &rg)
	if r1.PPL != r2.PPL || r1.InvalidUTF8 != 2 {
		t.Errorf("two runs differ or count wrong: %v %v %d", r1.PPL, r2.PPL, r1.InvalidUTF8)
	}
	if r1.Tokens != rg.Tokens || r1.PPL != rg.PPL {
		t.Errorf("invalid bytes are not tokenized as U+FFFD: %d tokens ppl %v vs %d tokens ppl %v", r1.Tokens, r1.PPL, rg.Tokens, rg.PPL)
	}
	if st, _ := os.Stat(bad); r1.TextBytes != st.Size() || *r1.BitsPerByte == *rg.BitsPerByte {
		t.Errorf("bits per byte should count the file's %d bytes: %d", st.Size(), r1.TextBytes)
	}
}

// TestEvalStream: --stream on (block weights read from the checkpoint per
// batch of windows) gives exactly the numbers of --stream off, for the real
// model, against a base, and for pruned checkpoints stored as CSR and
// bitmask (tensors rebuilt from sparse parts); auto keeps a small model in
// memory.
func TestEvalStream(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	same := func(name string, got, want eval.Report) {
		t.Helper()
		if got.PPL != want.PPL || got.MeanNLL != want.MeanNLL || got.Scored != want.Scored || got.Windows != want.Windows ||
			!slices.Equal(got.FirstNLL, want.FirstNLL) || (got.KL == nil) != (want.KL == nil) || (got.KL != nil && *got.KL != *want.KL) {
			t.Errorf("%s: streamed %+v\nresident %+v", name, got, want)
		}
	}
	off := evalJSON(t, s260, "--text", sample, "--ctx", "128", "--stream", "off")
	on := evalJSON(t, s260, "--text", sample, "--ctx", "128", "--stream", "on")
	auto := evalJSON(t, s260, "--text", sample, "--ctx", "128")
	if off.Streamed || !on.Streamed || auto.Streamed {
		t.Errorf("streamed: off %v, on %v, auto %v; want false, true, false", off.Streamed, on.Streamed, auto.Streamed)
	}
	same("stories260k ctx 128", on, off)
	same("stories260k ctx 128 auto", auto, off)
	same("stories260k against itself", evalJSON(t, s260, "--base", s260, "--text", sample, "--stream", "on"),
		evalJSON(t, s260, "--base", s260, "--text", sample, "--stream", "off"))
	dir := t.TempDir()
	for _, format := range []string{"csr", "bitmask"} {
		out := filepath.Join(dir, format)
		mustRun(t, "prune", s260, "-o", out, "--sparsity", "0.9", "--format", format)
		args := []string{out, "--base", s260, "--text", sample, "--ctx", "256", "--stride", "128"}
		r := evalJSON(t, append(args, "--stream", "on")...)
		same("pruned 90% "+format, r, evalJSON(t, append(args, "--stream", "off")...))
		t.Logf("pruned 90%% %s, streamed: ppl %.4f KL mean %.4f top-1 %.4f", format, r.PPL, r.KL.Mean, r.KL.Top1)
	}
	code, _, stderr := run(t, "eval", s260, "--text", sample, "--stream", "maybe")
	if code != exitBadArgs || !strings.Contains(stderr, "--stream") {
		t.Errorf("--stream maybe: exit %d, stderr %q", code, stderr)
	}
}
