package eval_test

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
	"github.com/lmsparse/lmsparse/tokenizer"
)

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// firstChars returns the text of the first n characters (code points) of
// the file at path.
func firstChars(t *testing.T, path string, n int) *eval.Text {
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
	return eval.NewText(path, b[:i])
}

func readText(t *testing.T, path string) *eval.Text {
	t.Helper()
	text, err := eval.ReadText(path)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func loadTokenizer(t *testing.T, modelPath, override string) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := eval.LoadTokenizer(modelPath, override)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func open(t *testing.T, path string) model.LM {
	t.Helper()
	m, err := eval.Open(path, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.(io.Closer).Close() })
	return m
}

// TestCompareReferenceTable reproduces the reference table of
// ../shared/README.md through Compare: tokens, scored tokens, perplexity,
// mean NLL and bits per byte.
func TestCompareReferenceTable(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	gpt2 := sharedtest.Path(t, "fixtures/tiny-gpt2-bf16")
	sample := readText(t, sharedtest.Path(t, "text/tinystories/tinystories_sample.txt"))
	wiki := firstChars(t, sharedtest.Path(t, "text/wikitext-2/wiki.test.raw"), 100_000)
	rows := []struct {
		model         string
		text          *eval.Text
		ctx, stride   int
		tokens, sc    int
		ppl, nll, bpb float64
	}{
		{s260, sample, 0, 0, 1879, 1875, 6.124239, 1.812254, 1.292445}, // the defaults: 512/512
		{s260, sample, 128, 128, 1879, 1864, 6.043675, 1.799012, 1.275474},
		{s260, sample, 256, 128, 1879, 1878, 6.295008, 1.839757, 0},
		{s260, wiki, 512, 512, 63359, 63235, 146.6273, 4.987894, 4.539819},
		{gpt2, sample, 128, 0, 922, 914, 198863.99, 12.200376, 4.241418},
		{gpt2, sample, 128, 64, 922, 921, 199431.13, 12.203224, 0},
	}
	for _, row := range rows {
		tok := loadTokenizer(t, row.model, "")
		r, err := eval.Compare(context.Background(), row.model, "", row.text, tok, eval.Options{Ctx: row.ctx, Stride: row.stride}, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(row.model) + " " + filepath.Base(row.text.Path)
		if r.Tokens != row.tokens || r.Scored != row.sc {
			t.Errorf("%s ctx %d: %d tokens, %d scored; want %d, %d", name, r.Ctx, r.Tokens, r.Scored, row.tokens, row.sc)
		}
		if e := relErr(r.PPL, row.ppl); e > 1e-4 {
			t.Errorf("%s ctx %d: ppl %.6f, want %.6f (relative error %.2g)", name, r.Ctx, r.PPL, row.ppl, e)
		}
		if e := math.Abs(r.MeanNLL - row.nll); e > 1e-5 {
			t.Errorf("%s ctx %d: mean NLL %.6f, want %.6f", name, r.Ctx, r.MeanNLL, row.nll)
		}
		if row.bpb != 0 && (r.BitsPerByte == nil || relErr(*r.BitsPerByte, row.bpb) > 1e-4) {
			t.Errorf("%s ctx %d: bits/byte %v, want %.6f", name, r.Ctx, r.BitsPerByte, row.bpb)
		}
		if r.Schema != eval.Schema || r.Model != row.model || r.Base != "" || r.KL != nil || r.TextBytes != int64(len(row.text.Data)) {
			t.Errorf("%s: report %+v", name, r)
		}
		if row.ctx == 0 && (r.Ctx != 512 || r.Stride != 512 || r.Windows != 4) {
			t.Errorf("%s: default windows %d of ctx %d, stride %d; want 4 of 512, 512", name, r.Windows, r.Ctx, r.Stride)
		}
	}
}

// TestCompareONNX: the ONNX export of stories260k, run on the native
// forward pass (recognised) and by the general ONNX executor, reproduces
// the reference perplexity, and against the safetensors model its logits
// agree.
func TestCompareONNX(t *testing.T) {
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := readText(t, sharedtest.Path(t, "text/tinystories/tinystories_sample.txt"))
	tok := loadTokenizer(t, onnxModel, filepath.Join(s260, "tokenizer.json"))
	for _, path := range []struct{ onnx, kernel string }{{"", "onnx native"}, {"general", "onnx executor"}} {
		for _, row := range []struct {
			ctx    int
			scored int
			ppl    float64
		}{{0, 1875, 6.124239}, {128, 1864, 6.043675}} {
			r, err := eval.Compare(context.Background(), onnxModel, s260, sample, tok, eval.Options{Ctx: row.ctx}, model.Options{ONNX: path.onnx})
			if err != nil {
				t.Fatal(err)
			}
			if r.Scored != row.scored || relErr(r.PPL, row.ppl) > 1e-4 || !strings.HasPrefix(r.Kernel, path.kernel) {
				t.Errorf("%s: ctx %d: scored %d ppl %.6f (%s); want %d, %.6f", path.kernel, row.ctx, r.Scored, r.PPL, r.Kernel, row.scored, row.ppl)
			}
			if r.KL == nil || r.Base != s260 || r.KL.Mean > 1e-6 || r.KL.Top1 < 0.999 || math.Abs(r.KL.LogPPLRatio) > 1e-5 {
				t.Errorf("%s: ctx %d: ONNX against safetensors: base %q, %+v", path.kernel, row.ctx, r.Base, r.KL)
			}
		}
	}
	// A directory holding the one .onnx file is the same model.
	if file, ok := checkpoint.ONNXPath(filepath.Dir(onnxModel)); !ok || file != onnxModel {
		t.Errorf("ONNXPath(%s) = %q, %v", filepath.Dir(onnxModel), file, ok)
	}
}

// TestHarnessReuse scores several candidates against one base through one
// Harness: the base against itself agrees exactly, a damaged copy does
// not, and scoring again gives the same numbers as Compare.
func TestHarnessReuse(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	samplePath := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	sample := readText(t, samplePath)
	tok := loadTokenizer(t, s260, "")
	base := open(t, s260)
	var events []progress.Event
	h, err := eval.NewHarness(base, tok, sample, eval.Options{Ctx: 256, Stride: 128, BaseLabel: "original", KeepNLL: true,
		Progress: func(e progress.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if h.Ctx() != 256 || h.Stride() != 128 || len(h.Tokens()) != 1879 || h.Base() != base {
		t.Errorf("harness: ctx %d stride %d, %d tokens", h.Ctx(), h.Stride(), len(h.Tokens()))
	}
	self, err := h.Score(context.Background(), base, "self")
	if err != nil {
		t.Fatal(err)
	}
	if k := self.KL; k == nil || k.Mean != 0 || k.Max != 0 || k.Top1 != 1 || k.LogPPLRatio != 0 || self.Base != "original" || self.Model != "self" {
		t.Errorf("self: base %q model %q KL %+v", self.Base, self.Model, self.KL)
	}
	if len(self.NLL) != self.Scored || len(self.Pos) != self.Scored || !slices.Equal(self.FirstNLL, self.NLL[:8]) {
		t.Errorf("KeepNLL: %d NLLs, %d positions, %d scored", len(self.NLL), len(self.Pos), self.Scored)
	}
	// Progress: stage "eval" in windows, counting up to the total, then final.
	if len(events) != self.Windows+2 {
		t.Fatalf("%d progress events for %d windows", len(events), self.Windows)
	}
	for i, e := range events {
		if e.Stage != "eval" || e.Unit != "windows" || e.Total != int64(self.Windows) || e.Done != int64(min(i, self.Windows)) || e.Final != (i == len(events)-1) {
			t.Errorf("event %d: %+v", i, e)
		}
	}

	// A candidate: the original with the first MLP's up projection zeroed.
	ck, err := checkpoint.Open(s260)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	weights := map[string][]float32{}
	for _, n := range ck.Names() {
		if weights[n], err = ck.Float32(n); err != nil {
			t.Fatal(err)
		}
	}
	clear(weights["model.layers.0.mlp.up_proj.weight"])
	damaged, err := model.New(ck.Config, weights, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Score(context.Background(), damaged, "damaged")
	if err != nil {
		t.Fatal(err)
	}
	if r.KL == nil || r.KL.Mean <= 0 || r.KL.Top1 >= 1 || r.KL.BasePPL != self.PPL || r.PPL == self.PPL {
		t.Errorf("damaged: ppl %v (base %v) KL %+v", r.PPL, self.PPL, r.KL)
	}
	t.Logf("damaged: ppl %.4f KL mean %.4f top-1 %.4f", r.PPL, r.KL.Mean, r.KL.Top1)

	again, err := h.Score(context.Background(), base, "self")
	if err != nil {
		t.Fatal(err)
	}
	c, err := eval.Compare(context.Background(), s260, s260, sample, tok, eval.Options{Ctx: 256, Stride: 128}, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*eval.Report{again, c} {
		if got.PPL != self.PPL || got.Scored != self.Scored || *got.KL != *self.KL || !slices.Equal(got.FirstNLL, self.FirstNLL) {
			t.Errorf("rescored: %+v, first %+v", got, self)
		}
	}
	if c.Base != s260 || c.NLL != nil {
		t.Errorf("Compare: base label %q, NLL kept without KeepNLL", c.Base)
	}
}

// demo writes the generated demo model (random weights, byte tokenizer,
// 128 positions) and returns its directory.
func demo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := gen.WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMaxTokens: a cut text has no bits per byte, and scores only the
// tokens it keeps; without a base, each model's own positions set the
// default window.
func TestMaxTokens(t *testing.T) {
	dir := demo(t)
	text := readText(t, filepath.Join("..", "testdata", "demo.txt"))
	tok := loadTokenizer(t, dir, "")
	m := open(t, dir)
	h, err := eval.NewHarness(nil, tok, text, eval.Options{MaxTokens: 300})
	if err != nil {
		t.Fatal(err)
	}
	if h.Ctx() != 0 || len(h.Tokens()) != 300 {
		t.Errorf("harness without base: ctx %d, %d tokens", h.Ctx(), len(h.Tokens()))
	}
	r, err := h.Score(context.Background(), m, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if r.BitsPerByte != nil || r.Tokens != 300 || r.Ctx != 128 || r.Stride != 128 || r.Windows != 3 || r.Scored != 297 || r.KL != nil || r.Base != "" {
		t.Errorf("cut: %+v", r)
	}
	full, err := eval.Compare(context.Background(), dir, "", text, tok, eval.Options{}, model.Options{Stream: "on"})
	if err != nil {
		t.Fatal(err)
	}
	if full.BitsPerByte == nil || full.Tokens != len(text.Data) || !full.Streamed || full.Threads < 1 {
		t.Errorf("whole text: %+v", full)
	}
}

func TestInputErrors(t *testing.T) {
	dir := demo(t)
	tmp := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := eval.ReadText(write("empty.txt", "")); !errors.Is(err, eval.ErrInput) {
		t.Errorf("empty text: %v", err)
	}
	if _, err := eval.ReadText(filepath.Join(tmp, "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing text: %v", err)
	}
	notok := filepath.Join(tmp, "notok")
	if err := gen.WriteCheckpoint(notok, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := eval.LoadTokenizer(notok, ""); !errors.Is(err, eval.ErrNoTokenizer) || !errors.Is(err, eval.ErrInput) {
		t.Errorf("no tokenizer: %v", err)
	}
	if _, err := eval.LoadTokenizer(filepath.Join(notok, "model.safetensors"), filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Errorf("tokenizer override: %v", err)
	}
	if _, ok := checkpoint.ONNXPath(notok); ok {
		t.Errorf("ONNXPath: a checkpoint directory is not an ONNX model")
	}
	if _, err := eval.Open(filepath.Join(tmp, "nothing"), model.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing path: %v", err)
	}

	tok := loadTokenizer(t, dir, "")
	m := open(t, dir)       // vocabulary 256, 128 positions
	small := open(t, notok) // vocabulary 32, 64 positions
	text := eval.NewText("t.txt", []byte("Once upon a time \xff there was a cat.\n"))
	if text.InvalidUTF8 != 1 {
		t.Errorf("invalid UTF-8: %d bytes counted, want 1", text.InvalidUTF8)
	}
	var we *eval.WindowError
	if _, err := eval.NewHarness(m, tok, eval.NewText("one.txt", []byte("O")), eval.Options{}); !errors.Is(err, eval.ErrInput) {
		t.Errorf("one token: %v", err)
	}
	if _, err := eval.NewHarness(m, tok, text, eval.Options{Ctx: 1}); !errors.Is(err, eval.ErrInput) {
		t.Errorf("ctx 1: %v", err)
	}
	if _, err := eval.NewHarness(m, tok, text, eval.Options{Ctx: 256}); !errors.As(err, &we) || we.Positions != 128 || we.Ctx != 256 || !errors.Is(err, eval.ErrInput) {
		t.Errorf("ctx 256 against 128 positions: %v", err)
	}
	if _, err := eval.NewHarness(nil, tok, text, eval.Options{Ctx: 8, Stride: 9}); !errors.As(err, &we) || we.Positions != 0 || we.Stride != 9 {
		t.Errorf("stride 9 > ctx 8: %v", err)
	}
	if _, err := eval.NewHarness(m, tok, text, eval.Options{Stride: 200}); !errors.As(err, &we) || we.Ctx != 128 || we.Stride != 200 {
		t.Errorf("stride 200 > default ctx: %v", err)
	}
	// Against the base: the vocabulary must agree.
	h, err := eval.NewHarness(m, tok, text, eval.Options{BaseLabel: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var ve *eval.VocabError
	if _, err := h.Score(context.Background(), small, "small"); !errors.As(err, &ve) || ve.Vocab != 32 || ve.BaseVocab != 256 || ve.Base != "demo" || ve.Model != "small" {
		t.Errorf("vocabulary 32 against 256: %v", err)
	}
	// Without a base: the model's positions bound the window, and the
	// tokens must fit its vocabulary.
	h, err = eval.NewHarness(nil, tok, text, eval.Options{Ctx: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Score(context.Background(), small, "small"); !errors.As(err, &we) || we.Positions != 64 || we.Model != "small" {
		t.Errorf("ctx 100 on a 64-position model: %v", err)
	}
	h, err = eval.NewHarness(nil, tok, text, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var te *eval.TokenError
	if _, err := h.Score(context.Background(), small, "small"); !errors.As(err, &te) || te.Vocab != 32 || te.ID < 32 || !errors.Is(err, eval.ErrInput) {
		t.Errorf("byte tokens on a 32-token model: %v", err)
	}
	// A cancelled context stops scoring.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Score(ctx, m, "demo"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
