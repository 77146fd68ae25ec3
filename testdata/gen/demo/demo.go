package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
	"github.com/lmsparse/lmsparse/testdata/gen/bpe"
	"github.com/lmsparse/lmsparse/testdata/gen/corpus"
	"github.com/lmsparse/lmsparse/tokenizer"
	"github.com/lmsparse/lmsparse/train"
)

// EOT is the tokenizer's one special token. Training windows that begin
// at a story start begin with it, so sampling from it (as lmsparse's
// calibration "self" does) starts a story.
const EOT = "<|endoftext|>"

// The corpus seeds and the held-out size.
const (
	TrainSeed    = 1
	HeldoutSeed  = 2
	HeldoutBytes = 50_000
)

// Options configure a build. [Default] gives the committed model's.
type Options struct {
	TrainBytes int    // size of the train split
	Vocab      int    // tokenizer vocabulary
	Seed       uint64 // initial weights and the order of the windows
	// The llama's shape; Ctx is both its positions and the training window.
	Hidden, Layers, Heads, KVHeads, Inter, Ctx int
	// Training: Steps optimizer steps of Batch windows, AdamW at LR with
	// Warmup steps of linear warm-up, then cosine down to MinLR.
	Steps, Batch      int
	LR, MinLR         float64
	Warmup            int
	WeightDecay, Clip float64
	Threads           int
	DType             tensor.DType     // of the written weights
	Progress          progress.Func    `json:"-"`
	OnStep            func(train.Step) `json:"-"`
}

// Default returns the options the committed demo model was built with.
func Default() Options {
	return Options{TrainBytes: 6_000_000, Vocab: 512, Seed: 1,
		Hidden: 128, Layers: 5, Heads: 4, KVHeads: 2, Inter: 384, Ctx: 256,
		Steps: 800, Batch: 16, LR: 3e-3, MinLR: 3e-4, Warmup: 50, Clip: 1,
		DType: tensor.BF16}
}

// Result describes a build.
type Result struct {
	Options       Options      `json:"options"`
	Params        int64        `json:"parameters"`
	TrainTokens   int          `json:"train_tokens"`
	BytesPerToken float64      `json:"train_bytes_per_token"`
	Windows       int          `json:"windows"`
	Epochs        float64      `json:"epochs"`
	Seconds       float64      `json:"train_seconds"`
	TokensPerS    float64      `json:"tokens_per_second"`
	Loss          []train.Step `json:"loss"` // every 10th step and the last
	Files         []File       `json:"files"`
}

// File is a written file and its SHA-256.
type File struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Text returns corpus.Generate(seed, n).
func Text(seed uint64, n int) []byte {
	var b bytes.Buffer
	if err := corpus.Generate(&b, seed, n); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	return b.Bytes()
}

func (o Options) spec() gen.Spec {
	return gen.Spec{Arch: "llama", DType: tensor.F32, Shards: 1, Seed: o.Seed, Layers: o.Layers, Hidden: o.Hidden,
		Heads: o.Heads, KVHeads: o.KVHeads, Inter: o.Inter, Vocab: o.Vocab, Ctx: o.Ctx}
}

// Build generates the train split, trains the tokenizer, trains the model
// from its initial weights (gen.Weights of the shape, seeded by Seed) and
// writes the checkpoint to dir (created; it must not exist): config.json,
// model.safetensors, tokenizer.json, tokenizer_config.json.
func Build(ctx context.Context, dir string, o Options) (*Result, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("%s exists", dir)
	}
	text := Text(TrainSeed, o.TrainBytes)
	bm, err := Tokenizer(text, o.Vocab, o.Ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".demo-build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	init := filepath.Join(tmp, "init")
	out := filepath.Join(tmp, "model")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	if err := bm.WriteTokenizer(out); err != nil {
		return nil, err
	}
	// Tokenize with lmsparse's own tokenizer, as eval will.
	tok, err := tokenizer.Load(filepath.Join(out, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	eot, ok := tok.TokenID(EOT)
	if !ok {
		return nil, fmt.Errorf("the tokenizer has no %s", EOT)
	}
	var ids, starts []int
	for _, story := range bytes.SplitAfter(text, []byte("\n\n")) {
		if len(story) > 0 {
			starts = append(starts, len(ids))
			ids = append(ids, tok.EncodeOptions(string(story), false)...)
		}
	}
	s := o.spec()
	if err := gen.WriteCheckpoint(init, s); err != nil {
		return nil, err
	}
	m, err := checkpoint.Open(init)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	net, err := train.NewNet(m.Config, train.CheckpointSource(m))
	if err != nil {
		return nil, err
	}
	wins := StoryWindows(ids, starts, o.Ctx, eot)
	res := &Result{Options: o, TrainTokens: len(ids), BytesPerToken: float64(len(text)) / float64(len(ids)), Windows: len(wins)}
	res.Epochs = float64(o.Steps*o.Batch) / float64(len(wins))
	for _, p := range net.Params() {
		res.Params += int64(p.Size())
	}
	start := time.Now()
	tr, err := train.Train(ctx, net, wins, train.Options{
		Steps: o.Steps, Batch: o.Batch, Shuffle: true, Seed: o.Seed, Threads: o.Threads,
		Optim: train.Optim{Name: train.AdamW, LR: o.LR, MinLR: o.MinLR, Warmup: o.Warmup, Schedule: train.Cosine,
			WeightDecay: o.WeightDecay, ClipNorm: o.Clip, Beta2: 0.95},
		Progress: o.Progress, OnStep: o.OnStep,
	})
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.TokensPerS = tr.TokensSec
	for i, st := range tr.Steps {
		if i%10 == 0 || i == len(tr.Steps)-1 {
			res.Loss = append(res.Loss, st)
		}
	}
	if err := writeModel(out, s, net, o.DType); err != nil {
		return nil, err
	}
	if err := os.Rename(out, dir); err != nil {
		return nil, err
	}
	if res.Files, err = Hashes(dir); err != nil {
		return nil, err
	}
	return res, nil
}

// Tokenizer trains the demo's tokenizer on text: byte-level BPE of
// vocab−1 tokens, then EOT; ctx is its model_max_length.
func Tokenizer(text []byte, vocab, ctx int) (*bpe.Model, error) {
	bm, err := bpe.Train(text, vocab-1)
	if err != nil {
		return nil, err
	}
	bm.EOT, bm.MaxLength = EOT, ctx
	return bm, nil
}

// StoryWindows cuts the token stream ids, whose stories begin at the
// offsets starts (ascending, the first 0), into training windows of ctx
// tokens that cover every token. A window that begins at a story start
// is eot followed by ctx−1 tokens of the stream; the next window begins
// at the last story start inside it (that story is then seen whole), or,
// when no story starts inside it, where it ends — mid-story, and then
// the window is ctx tokens of the stream with no eot. A tail shorter
// than a window is dropped.
func StoryWindows(ids, starts []int, ctx, eot int) [][]int {
	var wins [][]int
	si := 0 // starts[si] is the first story start ≥ b
	for b := 0; ; {
		for si < len(starts) && starts[si] < b {
			si++
		}
		atStart := si < len(starts) && starts[si] == b
		n := ctx
		if atStart {
			n = ctx - 1
		}
		if b+n > len(ids) {
			return wins
		}
		w := make([]int, 0, ctx)
		if atStart {
			w = append(w, eot)
		}
		wins = append(wins, append(w, ids[b:b+n]...))
		next := b + n
		for k := si + 1; k < len(starts) && starts[k] < b+n; k++ {
			next = starts[k]
		}
		b = next
	}
}

// writeModel writes config.json and model.safetensors (the net's tensors
// in dt, in name order).
func writeModel(dir string, s gen.Spec, net *train.Net, dt tensor.DType) error {
	s.DType = dt
	cfg := gen.Config(s)
	delete(cfg, "bos_token_id") // the tokenizer has no special tokens
	delete(cfg, "eos_token_id")
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var ts []gen.Tensor
	for _, p := range net.Params() {
		shape := make([]int64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = int64(d)
		}
		data := make([]byte, len(p.W)*dt.Size())
		if err := tensor.EncodeF32(data, p.W, dt); err != nil {
			return fmt.Errorf("tensor %q: %w", p.Name, err)
		}
		ts = append(ts, gen.Tensor{Name: p.Name, DType: dt, Shape: shape, Data: data})
	}
	slices.SortFunc(ts, func(a, b gen.Tensor) int { return strings.Compare(a.Name, b.Name) })
	f := gen.Pack(ts, map[string]string{"format": "pt"})
	return os.WriteFile(filepath.Join(dir, "model.safetensors"), f.Encode(), 0o644)
}

// Hashes returns the name, size and SHA-256 of every file in dir, sorted
// by name.
func Hashes(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fs []File
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		fs = append(fs, File{e.Name(), int64(len(b)), hex.EncodeToString(sum[:])})
	}
	return fs, nil
}
