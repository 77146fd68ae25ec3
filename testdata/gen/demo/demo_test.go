package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// The committed demo: the model, its build record and the held-out split.
var (
	modelDir    = filepath.Join("..", "..", "demo", "model")
	buildRecord = filepath.Join("..", "..", "demo", "build.json")
	heldoutFile = filepath.Join("..", "..", "demo", "heldout.txt")
)

func readBuild(t *testing.T) *Result {
	t.Helper()
	b, err := os.ReadFile(buildRecord)
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", buildRecord, err)
	}
	return &r
}

// TestHeldoutSplit: the committed held-out text is the generator's.
func TestHeldoutSplit(t *testing.T) {
	b, err := os.ReadFile(heldoutFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Text(HeldoutSeed, HeldoutBytes)) {
		t.Fatalf("%s is not corpus.Generate(seed %d, %d bytes): rebuild it: go run ./testdata/gen/mkmodel -heldout -o testdata/demo/heldout.txt", heldoutFile, HeldoutSeed, HeldoutBytes)
	}
}

// TestCommittedHashes: every file of the committed model is recorded in
// build.json with its size and SHA-256, and nothing else is there.
func TestCommittedHashes(t *testing.T) {
	r := readBuild(t)
	got, err := Hashes(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, r.Files) {
		t.Fatalf("%s holds\n%+v\nbut %s records\n%+v", modelDir, got, buildRecord, r.Files)
	}
	var total int64
	for _, f := range got {
		total += f.Bytes
	}
	if total > 8<<20 {
		t.Errorf("the demo model is %d bytes, over the 8 MiB budget", total)
	}
	want := []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

// TestTokenizerRebuilds: the committed tokenizer.json is what the BPE
// trainer makes from the train split (the first step of Build).
func TestTokenizerRebuilds(t *testing.T) {
	r := readBuild(t)
	bm, err := Tokenizer(Text(TrainSeed, r.Options.TrainBytes), r.Options.Vocab, r.Options.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := bm.WriteTokenizer(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, err := os.ReadFile(filepath.Join(modelDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the one the trainer makes from the train split", name)
		}
	}
}

// TestDemoQuality is the demo model's acceptance: on the held-out split,
// its perplexity (lmsparse eval) is at most 1/20 of the vocabulary and
// at most half the bigram model's fitted on the train split.
func TestDemoQuality(t *testing.T) {
	r := readBuild(t)
	tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := eval.ReadText(heldoutFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Compare(context.Background(), modelDir, "", text, tok, eval.Options{}, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	train := tok.EncodeOptions(string(Text(TrainSeed, r.Options.TrainBytes)), false)
	ng := FitNGram(train, r.Options.Vocab)
	uni, bi := ng.Perplexity(tok.EncodeOptions(string(text.Data), false))
	t.Logf("held-out: %d tokens; perplexity: model %.4f (ctx %d, %.4f bits/byte), bigram %.4f, unigram %.4f, vocabulary %d",
		rep.Tokens, rep.PPL, rep.Ctx, *rep.BitsPerByte, bi, uni, r.Options.Vocab)
	if limit := float64(r.Options.Vocab) / 20; rep.PPL > limit {
		t.Errorf("perplexity %.4f is above vocabulary/20 = %.4g", rep.PPL, limit)
	}
	if rep.PPL > bi/2 {
		t.Errorf("perplexity %.4f is above half the bigram's %.4f", rep.PPL, bi)
	}
}

// TestStoryWindows: windows of ctx tokens cover every token of the
// stream (but a short tail), begin with eot exactly when they begin at a
// story start, and each story start is the beginning of some window or
// inside one.
func TestStoryWindows(t *testing.T) {
	const eot = -1
	r := rand.New(rand.NewPCG(7, 0))
	for trial := range 200 {
		var ids, starts []int
		for len(ids) < 400 {
			starts = append(starts, len(ids))
			for range 1 + r.IntN(40) {
				ids = append(ids, len(ids))
			}
		}
		ctx := 2 + r.IntN(30)
		wins := StoryWindows(ids, starts, ctx, eot)
		seen := make([]bool, len(ids))
		last := 0
		for i, w := range wins {
			if len(w) != ctx {
				t.Fatalf("trial %d: window %d has %d tokens, want %d", trial, i, len(w), ctx)
			}
			body := w
			if w[0] == eot {
				body = w[1:]
				if !slices.Contains(starts, body[0]) {
					t.Fatalf("trial %d: window %d begins with eot at %d, not a story start", trial, i, body[0])
				}
			} else if slices.Contains(starts, body[0]) {
				t.Fatalf("trial %d: window %d begins at story start %d without eot", trial, i, body[0])
			}
			for j, id := range body {
				if id == eot || j > 0 && id != body[j-1]+1 {
					t.Fatalf("trial %d: window %d is not a run of the stream: %v", trial, i, w)
				}
				seen[id] = true
			}
			last = max(last, body[len(body)-1])
		}
		for p := range last + 1 {
			if !seen[p] {
				t.Fatalf("trial %d (ctx %d): token %d is in no window", trial, ctx, p)
			}
		}
		if len(ids)-last-1 >= ctx {
			t.Fatalf("trial %d: %d tokens left after the last window (ctx %d)", trial, len(ids)-last-1, ctx)
		}
	}
}

// TestBuildDeterministic: a small build twice with the same seed and
// threads gives the same bytes, with another thread count too (the
// passes' results do not depend on it), and another seed different ones.
func TestBuildDeterministic(t *testing.T) {
	o := Options{TrainBytes: 200_000, Vocab: 300, Seed: 5, Hidden: 32, Layers: 2, Heads: 4, KVHeads: 2, Inter: 64, Ctx: 64,
		Steps: 4, Batch: 4, LR: 3e-3, MinLR: 3e-4, Warmup: 2, Clip: 1, DType: Default().DType, Threads: 2}
	build := func(o Options) []File {
		dir := filepath.Join(t.TempDir(), "m")
		r, err := Build(context.Background(), dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d, %d threads: loss %.5f → %.5f, model.safetensors %s", o.Seed, o.Threads, r.Loss[0].Total, r.Loss[len(r.Loss)-1].Total, r.Files[1].SHA256)
		return r.Files
	}
	a, b := build(o), build(o)
	if !slices.Equal(a, b) {
		t.Fatalf("two builds with seed %d differ:\n%+v\n%+v", o.Seed, a, b)
	}
	o1 := o
	o1.Threads = 1
	if c := build(o1); !slices.Equal(a, c) {
		t.Errorf("1 and 2 threads differ:\n%+v\n%+v", a, c)
	}
	o.Seed++
	if c := build(o); c[1] == a[1] {
		t.Errorf("seeds %d and %d give the same weights", o.Seed-1, o.Seed)
	}
}
