package run

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// referenceIDs reads the reference token ids of tinystories_sample.txt.
func referenceIDs(t testing.TB) []int {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, "reference/tokens/stories260k.tinystories_sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		var obj struct {
			IDs []int `json:"ids"`
		}
		if err2 := json.Unmarshal(b, &obj); err2 != nil {
			t.Fatalf("token file: %v / %v", err, err2)
		}
		ids = obj.IDs
	}
	return ids
}

func loadStories(t testing.TB) *Session {
	t.Helper()
	m, err := onnx.Open(sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// score implements the sliding-window protocol of model.Score over Logits.
func score(t *testing.T, s *Session, ids []int, ctx, stride int) (ppl float64, scored int) {
	t.Helper()
	V := s.VocabSize()
	logits := make([]float32, ctx*V)
	var nll float64
	prevEnd := 0
	for begin := 0; ; begin += stride {
		end := min(begin+ctx, len(ids))
		if err := s.Logits(ids[begin:end], logits); err != nil {
			t.Fatal(err)
		}
		for j := max(prevEnd, begin+1); j < end; j++ {
			row := logits[(j-1-begin)*V : (j-begin)*V]
			mx := float64(row[0])
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			nll += mx + math.Log(sum) - float64(row[ids[j]])
			scored++
		}
		prevEnd = end
		if end == len(ids) {
			break
		}
	}
	return math.Exp(nll / float64(scored)), scored
}

func TestStoriesReference(t *testing.T) {
	s := loadStories(t)
	if s.VocabSize() != 512 || s.MaxPositions() != 512 {
		t.Fatalf("vocab %d, max positions %d; want 512, 512", s.VocabSize(), s.MaxPositions())
	}
	ids := referenceIDs(t)
	if len(ids) != 1879 || ids[0] != 1 {
		t.Fatalf("%d ids starting %v", len(ids), ids[:1])
	}
	out := make([]float32, 512)
	if err := s.Logits(ids[:1], out); err != nil {
		t.Fatal(err)
	}
	want := []float64{-6.222914, 8.404342, -6.223739, -6.222544}
	for i, w := range want {
		if math.Abs(float64(out[i])-w) > 1e-4 {
			t.Errorf("logit %d = %.6f, want %.6f", i, out[i], w)
		}
	}
	// LogitsFrom returns the tail rows of the same computation.
	tail := make([]float32, 2*512)
	all := make([]float32, 5*512)
	if err := s.LogitsFrom(ids[:5], 3, tail); err != nil {
		t.Fatal(err)
	}
	if err := s.Logits(ids[:5], all); err != nil {
		t.Fatal(err)
	}
	for i := range tail {
		if tail[i] != all[3*512+i] {
			t.Fatalf("LogitsFrom row %d differs", i/512)
		}
	}
	ppl, scored := score(t, s, ids, 512, 512)
	t.Logf("ctx 512 stride 512: perplexity %.8f over %d tokens; first logits %.6f", ppl, scored, out[:4])
	if scored != 1875 || math.Abs(ppl/6.124239-1) > 1e-4 {
		t.Errorf("perplexity %.6f over %d tokens, want 6.124239 over 1875", ppl, scored)
	}
	// The other reference windowings.
	for _, ref := range []struct {
		ctx, stride, scored int
		ppl                 float64
	}{{128, 128, 1864, 6.043675}, {256, 128, 1878, 6.295008}} {
		ppl, scored := score(t, s, ids, ref.ctx, ref.stride)
		t.Logf("ctx %d stride %d: perplexity %.8f over %d tokens", ref.ctx, ref.stride, ppl, scored)
		if scored != ref.scored || math.Abs(ppl/ref.ppl-1) > 1e-4 {
			t.Errorf("ctx %d stride %d: perplexity %.6f over %d tokens, want %.6f over %d", ref.ctx, ref.stride, ppl, scored, ref.ppl, ref.scored)
		}
	}
}

// TestStoredFormsRun prunes the stories model's block projections (a
// seeded random half of each), writes it dense, sparse and with external
// data, and checks that all three give bit-identical logits, different
// from the original's.
func TestStoredFormsRun(t *testing.T) {
	m, err := onnx.Open(sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rep := map[string][]byte{}
	var names []string
	for _, tg := range m.PruneTargets() {
		if len(tg.OtherUses) > 0 {
			continue
		}
		b, err := m.InitializerBytes(tg.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range rng.Perm(len(b) / 4)[:len(b)/8] {
			binary.LittleEndian.PutUint32(b[4*i:], 0)
		}
		rep[tg.Name] = b
		names = append(names, tg.Name)
	}
	dir := t.TempDir()
	ids := referenceIDs(t)[:96]
	var first []float32
	for _, form := range []struct {
		name string
		o    onnx.WriteOptions
	}{
		{"dense", onnx.WriteOptions{Replace: rep}},
		{"sparse", onnx.WriteOptions{Replace: rep, Sparse: names}},
		{"external", onnx.WriteOptions{Replace: rep, Sparse: names[:5], ExternalData: true}},
	} {
		path := filepath.Join(dir, form.name+".onnx")
		if err := m.Write(path, form.o); err != nil {
			t.Fatal(err)
		}
		pm, err := onnx.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Load(pm, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, len(ids)*512)
		if err := s.Logits(ids, out); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = out
			continue
		}
		for i := range out {
			if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
				t.Fatalf("%s: logit %d = %v, dense model gives %v", form.name, i, out[i], first[i])
			}
		}
	}
	orig := make([]float32, len(ids)*512)
	if err := loadStories(t).Logits(ids, orig); err != nil {
		t.Fatal(err)
	}
	if orig[1000] == first[1000] {
		t.Error("pruning did not change the logits")
	}
}

// TestLazySameLogits: a lazy session (weights decoded per run) computes
// the same logits as a normal one.
func TestLazySameLogits(t *testing.T) {
	m, err := onnx.Open(sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := Load(m, Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := referenceIDs(t)[:64]
	a, b := make([]float32, len(ids)*512), make([]float32, len(ids)*512)
	if err := loadStories(t).Logits(ids, a); err != nil {
		t.Fatal(err)
	}
	for range 2 { // weights dropped after the first run are decoded again
		if err := lazy.Logits(ids, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-6*max(1, math.Abs(float64(a[i]))) {
				t.Fatalf("logit %d: lazy %v, normal %v", i, b[i], a[i])
			}
		}
	}
}

// TestStoriesFusedMatchesUnfused: on the real export, the fused plan (its
// RMSNorms, SiLUs, attentions, and QKV groups: q/k/v and gate/up
// projections) computes the unfused logits: to the bit
// but for the attentions' products by V, which sum over the columns the
// causal mask leaves and so block their sums differently past the GEMM's
// block depth (192 on AVX-512) — last-bit differences, which five layers
// grow to about 1e-5.
func TestStoriesFusedMatchesUnfused(t *testing.T) {
	m, err := onnx.Open(sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Load(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	us, err := Load(m, Options{Threads: 2, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	p := fs.Plan()
	t.Logf("fused plan: %d nodes (unfused %d); RMSNorm %d, SiLU %d, ScaleSoftmax %d, Attention %d, QKV %d", p.Nodes, us.Plan().Nodes,
		p.Count(FuseRMSNorm), p.Count(FuseSiLU), p.Count(FuseSoftmax), p.Count(FuseAttention), p.Count(FuseQKV))
	if p.Count(FuseRMSNorm) != 11 || p.Count(FuseSiLU) != 5 || p.Count(FuseSoftmax) != 5 || p.Count(FuseAttention) != 5 ||
		p.Count(FuseQKV) != 10 || len(p.Skipped) != 0 {
		t.Errorf("fusions %+v, skipped %q; want 11 RMSNorm, 5 SiLU, 5 ScaleSoftmax within 5 Attention, 10 QKV (q/k/v and gate/up per layer), nothing skipped",
			p.Fusions, p.Skipped)
	}
	ids := referenceIDs(t)[:200]
	a, b := make([]float32, len(ids)*512), make([]float32, len(ids)*512)
	if err := fs.Logits(ids, a); err != nil {
		t.Fatal(err)
	}
	if err := us.Logits(ids, b); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-b[i]))/max(1, math.Abs(float64(b[i]))))
	}
	t.Logf("fused vs unfused, %d tokens: worst difference %.3g", len(ids), worst)
	if worst > 1e-4 {
		t.Errorf("fused and unfused logits differ by %.3g", worst)
	}
}

// TestLogitsBatch runs three windows of stories260k-onnx and of the
// torch GPT-2 export as one batch, with different first rows: each
// window's logits must be the bits LogitsFrom gives it alone. Windows of
// two lengths are refused.
func TestLogitsBatch(t *testing.T) {
	for _, path := range []string{sharedtest.Path(t, "models/stories260k-onnx/model.onnx"), "../../testdata/onnx-gpt2/model.onnx"} {
		m, err := onnx.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Load(m, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if mb := s.MaxBatch(); mb != 0 {
			t.Fatalf("%s: MaxBatch %d, want 0 (a symbolic batch dimension)", path, mb)
		}
		ids := referenceIDs(t)
		for i := range ids {
			ids[i] %= s.VocabSize()
		}
		n := 64
		if mp := s.MaxPositions(); mp > 0 {
			n = min(n, mp)
		}
		wins := [][]int{ids[:n], ids[n : 2*n], ids[5*n : 6*n]}
		froms := []int{0, 10, n - 1}
		v := s.VocabSize()
		outs := make([][]float32, len(wins))
		for i := range outs {
			outs[i] = make([]float32, (n-froms[i])*v)
		}
		if err := s.LogitsBatch(wins, froms, outs); err != nil {
			t.Fatal(err)
		}
		for i, w := range wins {
			want := make([]float32, (n-froms[i])*v)
			if err := s.LogitsFrom(w, froms[i], want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outs[i], want) {
				t.Errorf("%s: window %d: batched logits differ from the window's alone", path, i)
			}
		}
		if err := s.LogitsBatch([][]int{ids[:n], ids[:n-1]}, []int{0, 0}, outs[:2]); !errors.Is(err, ErrInput) {
			t.Errorf("%s: windows of two lengths: %v, want ErrInput", path, err)
		}
	}
}
