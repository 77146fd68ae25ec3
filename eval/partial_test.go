package eval_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
)

// Score the demo model on its held-out text in 3 shards, as 3 machines
// would, write and read back the partial files, and merge them: the report
// is the one-machine report (timings apart).
func ExampleMerge() {
	demo := filepath.Join("..", "testdata", "demo")
	text, err := eval.ReadText(filepath.Join(demo, "heldout.txt"))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := eval.LoadTokenizer(filepath.Join(demo, "model"), "")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "parts")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var files []string
	for i := range 3 {
		p, err := eval.CompareShard(context.Background(), filepath.Join(demo, "model"), "", text, tok, eval.Options{}, model.Options{}, model.Shard{I: i, N: 3})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p)
		files = append(files, filepath.Join(dir, fmt.Sprintf("part-%d.json", i)))
		if err := eval.WritePartial(files[i], p); err != nil {
			log.Fatal(err)
		}
	}
	merged, err := eval.MergeFiles(files)
	if err != nil {
		log.Fatal(err)
	}
	one, err := eval.Compare(context.Background(), filepath.Join(demo, "model"), "", text, tok, eval.Options{}, model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("perplexity %.5f, bit for bit the one run's: %v\n", merged.PPL, merged.PPL == one.PPL && *merged.BitsPerByte == *one.BitsPerByte)
	// Output:
	// shard 0/3: windows [0, 26) of 80, 6,630 tokens scored
	// shard 1/3: windows [26, 53) of 80, 6,885 tokens scored
	// shard 2/3: windows [53, 80) of 80, 6,875 tokens scored
	// perplexity 1.29358, bit for bit the one run's: true
}

// TestMergeONNX: shards of an ONNX model (the pure-Go executor) against
// the safetensors original merge to the one run, every field but timings.
func TestMergeONNX(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	export := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	text := readText(t, sharedtest.Path(t, "text/tinystories/tinystories_sample.txt"))
	h, err := eval.NewHarness(open(t, s260), loadTokenizer(t, s260, ""), text, eval.Options{Ctx: 128, Stride: 96, BaseLabel: "base"})
	if err != nil {
		t.Fatal(err)
	}
	m := open(t, export)
	one, err := h.Score(context.Background(), m, "onnx")
	if err != nil {
		t.Fatal(err)
	}
	var parts []*eval.Partial
	for i := 4; i >= 0; i-- {
		p, err := h.ScoreShard(context.Background(), m, "onnx", model.Shard{I: i, N: 5})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	got, err := eval.Merge(parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	got.Seconds, got.TokensPerS, one.Seconds, one.TokensPerS = 0, 0, 0, 0
	one.NLL, one.Pos = nil, nil
	if !reflect.DeepEqual(got, one) {
		t.Fatalf("merged %+v %+v\none run %+v %+v", got, got.KL, one, one.KL)
	}
	if _, err := eval.Merge(parts[:4], nil); !errors.Is(err, eval.ErrInput) {
		t.Fatalf("4 of 5 shards: %v, want ErrInput", err)
	}
	if _, err := eval.Merge(nil, nil); !errors.Is(err, eval.ErrInput) {
		t.Fatalf("no parts: %v, want ErrInput", err)
	}
	if _, err := h.ScoreShard(context.Background(), m, "onnx", model.Shard{I: 5, N: 5}); !errors.Is(err, eval.ErrInput) {
		t.Fatalf("shard 5/5: %v, want ErrInput", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"lmsparse.eval-partial/v1","shard":0,"nonsense":1}`), 0o644)
	if _, err := eval.ReadPartial(bad); !errors.Is(err, eval.ErrInput) {
		t.Fatalf("unknown field: %v, want ErrInput", err)
	} else {
		t.Log(err)
	}
}
