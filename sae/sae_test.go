package sae

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// planted returns rows = Z·D + b + noise with k nonzeros per row of Z over
// atoms unit-norm random directions: a matrix an SAE should fit well.
func planted(seed uint64, rows, d, atoms, k int, noise float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	dict := make([]float32, atoms*d)
	for i := range dict {
		dict[i] = float32(rng.NormFloat64())
	}
	normalizeRows(dict, atoms, d)
	x := make([]float32, rows*d)
	for i := 0; i < rows; i++ {
		for _, j := range rng.Perm(atoms)[:k] {
			z := float32(0.5 + rng.Float64())
			axpy(x[i*d:(i+1)*d], z, dict[j*d:(j+1)*d])
		}
		for c := 0; c < d; c++ {
			x[i*d+c] += float32(0.3 + noise*rng.NormFloat64())
		}
	}
	return x
}

func TestTopK(t *testing.T) {
	seed := uint64(12)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for it := 0; it < 500; it++ {
		n := 1 + rng.IntN(60)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.IntN(7)) // many ties
		}
		var cand []int32
		all := make([]int32, n)
		for i := range all {
			all[i] = int32(i)
		}
		pool := all
		if it%2 == 1 {
			for i := 0; i < n; i++ {
				if rng.IntN(2) == 0 {
					cand = append(cand, int32(i))
				}
			}
			pool = cand
			if cand == nil {
				cand = []int32{}
			}
		}
		k := 1 + rng.IntN(n)
		want := slices.Clone(pool)
		sort.SliceStable(want, func(a, b int) bool { return v[want[a]] > v[want[b]] })
		want = want[:min(k, len(want))]
		slices.Sort(want)
		got := topK(v, cand, k, make([]int32, k))
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("topK(%v, cand %v, %d) = %v, want %v", v, cand, k, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Options{Latents: 8, K: 2, Epochs: 1, Batch: 4, LR: 1e-3}
	x := planted(1, 10, 4, 6, 2, 0.01)
	if _, err := Train(context.Background(), x, 10, 4, good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	cases := map[string]func(o *Options){
		"k = latents":         func(o *Options) { o.K = 8 },
		"k > latents":         func(o *Options) { o.K = 9 },
		"k < 0":               func(o *Options) { o.K = -1 },
		"latents < 0":         func(o *Options) { o.Latents = -3 },
		"default k = latents": func(o *Options) { o.Latents, o.K = 1, 0 },
		"k and l1":            func(o *Options) { o.L1 = 0.1 },
		"l1 < 0":              func(o *Options) { o.K, o.L1 = 0, -1 },
		"l1 NaN":              func(o *Options) { o.K, o.L1 = 0, math.NaN() },
		"epochs < 0":          func(o *Options) { o.Epochs = -1 },
		"batch < 0":           func(o *Options) { o.Batch = -1 },
		"lr < 0":              func(o *Options) { o.LR = -1e-3 },
		"lr NaN":              func(o *Options) { o.LR = math.NaN() },
		"negative auxk":       func(o *Options) { o.AuxK = -1 },
	}
	for name, edit := range cases {
		o := good
		edit(&o)
		if _, err := Train(context.Background(), x, 10, 4, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	bad := slices.Clone(x)
	bad[13] = float32(math.NaN())
	if _, err := Train(context.Background(), bad, 10, 4, good); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN: got %v, want ErrInvalid", err)
	} else {
		t.Logf("NaN: %v", err)
	}
	bad[13] = float32(math.Inf(-1))
	if _, err := Train(context.Background(), bad, 10, 4, good); !errors.Is(err, ErrInvalid) {
		t.Errorf("Inf: got %v, want ErrInvalid", err)
	}
	if _, err := Train(context.Background(), x[:39], 10, 4, good); !errors.Is(err, ErrInvalid) {
		t.Errorf("short matrix: got %v, want ErrInvalid", err)
	}
	if _, err := Train(context.Background(), nil, 0, 4, good); !errors.Is(err, ErrInvalid) {
		t.Errorf("no rows: got %v, want ErrInvalid", err)
	}
}

// TestDefaults: zero fields take the defaults of the shape; the zero
// Options train.
func TestDefaults(t *testing.T) {
	got := Options{}.WithDefaults(512, 64)
	if got.Latents != 192 || got.K != 4 || got.Epochs != 1000 || got.Batch != DefaultBatch || got.LR != DefaultLR || got.Threads != 0 || got.AuxK != 0 {
		t.Errorf("defaults for [512, 64]: %+v", got)
	}
	// Few rows: the batch is capped at the rows, so one step per epoch.
	if got := (Options{L1: 0.1}).WithDefaults(10, 4); got.K != 0 || got.Latents != 12 || got.Epochs != DefaultSteps {
		t.Errorf("defaults for an L1 SAE on [10, 4]: %+v", got)
	}
	// Set fields are kept, and the epochs follow the batch.
	if got := (Options{Latents: 7, K: 2, Batch: 8, LR: 0.5}).WithDefaults(100, 4); got.Latents != 7 || got.K != 2 || got.Epochs != 640 || got.LR != 0.5 {
		t.Errorf("set fields: %+v", got)
	}
	x := planted(2, 10, 4, 6, 2, 0.01)
	zero := Options{}
	if err := zero.Validate(10, 4); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	zero.Epochs = 2 // the default is 8000
	r, err := Train(context.Background(), x, 10, 4, zero)
	if err != nil {
		t.Fatalf("zero options: %v", err)
	}
	if r.Latents != 12 || r.Stats.L0 != 1 {
		t.Errorf("zero options: %d latents, L0 %g; want 12 and 1", r.Latents, r.Stats.L0)
	}
}

func sameResult(a, b *Result) bool {
	bits := func(x, y []float32) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	}
	return bits(a.Dictionary, b.Dictionary) && bits(a.Bias, b.Bias) && bits(a.Codes.Val, b.Codes.Val) &&
		slices.Equal(a.Codes.Col, b.Codes.Col) && slices.Equal(a.Codes.RowPtr, b.Codes.RowPtr) &&
		bits(a.EncoderWeight, b.EncoderWeight) && bits(a.EncoderBias, b.EncoderBias)
}

// TestDeterminism: the same seed gives bit-identical results, whatever the
// thread count; another seed gives another result.
func TestDeterminism(t *testing.T) {
	seed := uint64(42)
	t.Logf("seed %d", seed)
	rows, d := 300, 12
	x := planted(seed, rows, d, 20, 3, 0.05)
	for _, variant := range []Options{
		{Latents: 24, K: 3, Epochs: 15, Batch: 32, LR: 3e-3, Seed: seed, DeadRows: 64},
		{Latents: 24, L1: 0.02, Epochs: 15, Batch: 32, LR: 3e-3, Seed: seed},
	} {
		var first *Result
		for _, threads := range []int{1, 2, 3, 1} {
			o := variant
			o.Threads = threads
			r, err := Train(context.Background(), x, rows, d, o)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = r
				t.Logf("k %d l1 %g: %+v", o.K, o.L1, r.Stats)
				continue
			}
			if !sameResult(first, r) {
				t.Fatalf("k %d l1 %g: %d threads differ from 1 thread", o.K, o.L1, threads)
			}
		}
		o := variant
		o.Seed++
		r, err := Train(context.Background(), x, rows, d, o)
		if err != nil {
			t.Fatal(err)
		}
		if sameResult(first, r) {
			t.Fatalf("k %d l1 %g: seeds %d and %d give the same result", o.K, o.L1, seed, seed+1)
		}
	}
}

// TestPlanted trains on an exactly sparse matrix and checks the fit, the
// codes' layout and the statistics against an independent computation.
func TestPlanted(t *testing.T) {
	seed := uint64(7)
	t.Logf("seed %d", seed)
	rows, d, k := 400, 16, 3
	x := planted(seed, rows, d, 24, k, 0.01)
	var hist []Epoch
	r, err := Train(context.Background(), x, rows, d, Options{Latents: 48, K: k, Epochs: 150, Batch: 32, LR: 3e-3, Seed: seed, Threads: 2,
		Progress: func(e Epoch) { hist = append(hist, e) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v; first epoch %+v, last %+v", r.Stats, hist[0], hist[len(hist)-1])
	if len(hist) != 150 || !slices.Equal(hist, r.History) {
		t.Fatalf("progress saw %d epochs", len(hist))
	}
	if r.Stats.FVU > 0.1 || r.Stats.Cosine < 0.95 {
		t.Errorf("FVU %g, cosine %g: the SAE did not learn the planted structure", r.Stats.FVU, r.Stats.Cosine)
	}
	if r.Stats.FVU > r.Stats.EncoderFVU*(1+1e-6) {
		t.Errorf("the least-squares refit made the fit worse: %g > %g", r.Stats.FVU, r.Stats.EncoderFVU)
	}
	// Exactly k codes per row, columns ascending.
	c := r.Codes
	if c.Rows != rows || c.Cols != 48 || len(c.RowPtr) != rows+1 || c.NNZ() != rows*k || r.Stats.L0 != float64(k) {
		t.Fatalf("codes %d×%d with %d entries, L0 %g", c.Rows, c.Cols, c.NNZ(), r.Stats.L0)
	}
	used := map[int32]bool{}
	for i := 0; i < rows; i++ {
		if c.RowPtr[i+1]-c.RowPtr[i] != int64(k) {
			t.Fatalf("row %d has %d codes", i, c.RowPtr[i+1]-c.RowPtr[i])
		}
		for p := c.RowPtr[i]; p < c.RowPtr[i+1]; p++ {
			if p > c.RowPtr[i] && c.Col[p] <= c.Col[p-1] || c.Val[p] == 0 {
				t.Fatalf("row %d: columns %v values %v", i, c.Col[c.RowPtr[i]:c.RowPtr[i+1]], c.Val[c.RowPtr[i]:c.RowPtr[i+1]])
			}
			used[c.Col[p]] = true
		}
	}
	if r.Stats.Dead != 48-len(used) {
		t.Errorf("dead %d, but %d of 48 latents are used", r.Stats.Dead, len(used))
	}
	for j := 0; j < 48; j++ {
		var nn float64
		for _, v := range r.Dictionary[j*d : (j+1)*d] {
			nn += float64(v) * float64(v)
		}
		if math.Abs(nn-1) > 1e-5 {
			t.Fatalf("dictionary row %d has squared norm %g", j, nn)
		}
	}
	// The statistics, recomputed from the definition.
	var se, tv, cs float64
	mean := make([]float64, d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			mean[j] += float64(x[i*d+j]) / float64(rows)
		}
	}
	for i := 0; i < rows; i++ {
		xh := make([]float64, d)
		for j := range xh {
			xh[j] = float64(r.Bias[j])
		}
		for p := c.RowPtr[i]; p < c.RowPtr[i+1]; p++ {
			for j := range xh {
				xh[j] += float64(c.Val[p]) * float64(r.Dictionary[int(c.Col[p])*d+j])
			}
		}
		var xx, yy, xy float64
		for j := 0; j < d; j++ {
			a := float64(x[i*d+j])
			se += (a - xh[j]) * (a - xh[j])
			tv += (a - mean[j]) * (a - mean[j])
			xx, yy, xy = xx+a*a, yy+xh[j]*xh[j], xy+a*xh[j]
		}
		cs += xy / math.Sqrt(xx*yy)
	}
	if fvu := se / tv; math.Abs(fvu-r.Stats.FVU) > 1e-4*fvu+1e-7 {
		t.Errorf("FVU %g, recomputed %g", r.Stats.FVU, fvu)
	}
	if cos := cs / float64(rows); math.Abs(cos-r.Stats.Cosine) > 1e-6 {
		t.Errorf("cosine %g, recomputed %g", r.Stats.Cosine, cos)
	}

	// Without the refit the codes are the encoder's: at most k per row,
	// all positive, and the FVU is the encoder's.
	r2, err := Train(context.Background(), x, rows, d, Options{Latents: 48, K: k, Epochs: 150, Batch: 32, LR: 3e-3, Seed: seed, Threads: 2, NoRefit: true})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r2.Stats.FVU-r2.Stats.EncoderFVU) > 1e-4*r2.Stats.FVU || r2.Stats.L0 > float64(k) {
		t.Errorf("NoRefit: %+v", r2.Stats)
	}
	for _, v := range r2.Codes.Val {
		if !(v > 0) {
			t.Fatalf("NoRefit: code %g is not positive", v)
		}
	}
}

// TestL1 trains the L1 variant: a larger λ gives sparser codes.
func TestL1(t *testing.T) {
	seed := uint64(8)
	t.Logf("seed %d", seed)
	rows, d := 300, 12
	x := planted(seed, rows, d, 20, 3, 0.02)
	var prev float64 = math.Inf(1)
	for _, l1 := range []float64{0.003, 0.03, 0.3} {
		r, err := Train(context.Background(), x, rows, d, Options{Latents: 32, L1: l1, Epochs: 60, Batch: 32, LR: 3e-3, Seed: seed, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("λ %g: %+v", l1, r.Stats)
		if r.Stats.L0 >= prev {
			t.Errorf("λ %g: L0 %g did not drop below %g", l1, r.Stats.L0, prev)
		}
		prev = r.Stats.L0
		if r.Codes.NNZ() != int(r.Codes.RowPtr[rows]) {
			t.Fatalf("λ %g: %d values, row pointers end at %d", l1, r.Codes.NNZ(), r.Codes.RowPtr[rows])
		}
	}
}

func TestReconstructAndMetrics(t *testing.T) {
	z := &Codes{Rows: 2, Cols: 3, RowPtr: []int64{0, 2, 2}, Col: []int32{0, 2}, Val: []float32{2, -1}}
	dict := []float32{1, 0, 0, 1, 0.5, 0.5}
	bias := []float32{0.25, -0.25}
	got := Reconstruct(z, dict, bias, 2, 2)
	want := []float32{2*1 - 0.5 + 0.25, -0.5 - 0.25, 0.25, -0.25}
	if !slices.Equal(got, want) {
		t.Fatalf("Reconstruct = %v, want %v", got, want)
	}
	x := []float32{1, 0, 0, 1, 1, 1}
	fvu, cos := Metrics(x, x, 3, 2)
	if fvu != 0 || math.Abs(cos-1) > 1e-12 {
		t.Fatalf("identical: fvu %g cos %g", fvu, cos)
	}
	// x̂ = the mean row everywhere: FVU 1.
	m := []float32{2.0 / 3, 2.0 / 3}
	fvu, _ = Metrics(x, slices.Concat(m, m, m), 3, 2)
	if math.Abs(fvu-1) > 1e-6 {
		t.Fatalf("mean reconstruction: fvu %g, want 1", fvu)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := planted(1, 10, 4, 6, 2, 0.01)
	if _, err := Train(ctx, x, 10, 4, Options{Latents: 8, K: 2, Epochs: 5, Batch: 4, LR: 1e-3}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
