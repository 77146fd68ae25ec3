package run

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// TestUnsupportedPast loads the GPT-2 export with ONNX Runtime contrib
// operators: Load must name every one of them before running anything.
func TestUnsupportedPast(t *testing.T) {
	m, err := onnx.Open(sharedtest.Path(t, "fixtures/onnx-tiny-random-gpt2/past.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(m, Options{})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error %v, want an *UnsupportedError wrapping ErrUnsupported", err)
	}
	want := []Op{
		{"com.microsoft", "Attention", 5},
		{"com.microsoft", "EmbedLayerNormalization", 1},
		{"com.microsoft", "FastGelu", 5},
		{"com.microsoft", "SkipLayerNormalization", 10},
	}
	if len(ue.Ops) != len(want) {
		t.Fatalf("ops %v, want %v", ue.Ops, want)
	}
	for i, w := range want {
		if ue.Ops[i] != w {
			t.Errorf("op %d = %+v, want %+v", i, ue.Ops[i], w)
		}
		if !strings.Contains(err.Error(), w.String()) {
			t.Errorf("message %q does not name %s", err, w)
		}
	}
	t.Log(err)
}

// TestUnsupportedListsAll mixes unknown default-domain operators, a
// contrib operator and one inside a subgraph: all are listed.
func TestUnsupportedListsAll(t *testing.T) {
	sub := &onnxpb.GraphProto{Name: proto.String("then"), Node: []*onnxpb.NodeProto{
		{OpType: proto.String("NonZero"), Input: []string{"x0"}, Output: []string{"nz"}},
	}}
	mp := opModel("Einsum", 13, []*onnxpb.AttributeProto{aStr("equation", "i->i")}, []*Tensor{f32(sh(1), 1)}, nil, 1)
	g := mp.Graph
	g.Node = append(g.Node,
		&onnxpb.NodeProto{OpType: proto.String("FusedMatMul"), Domain: proto.String("com.microsoft"), Input: []string{"x0", "x0"}, Output: []string{"f"}},
		&onnxpb.NodeProto{OpType: proto.String("FusedMatMul"), Domain: proto.String("com.microsoft"), Input: []string{"x0", "x0"}, Output: []string{"f2"}},
		&onnxpb.NodeProto{OpType: proto.String("If"), Input: []string{"c"}, Output: []string{"z"},
			Attribute: []*onnxpb.AttributeProto{{Name: proto.String("then_branch"), Type: proto.Int32(5), G: sub}}},
		&onnxpb.NodeProto{OpType: proto.String("Add"), Input: []string{"x0", "x0"}, Output: []string{"ok"}},
	)
	mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.microsoft"), Version: proto.Int64(1)})
	_, err := loadProto(t, mp, Options{})
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want *UnsupportedError", err)
	}
	want := "4 unsupported operators: Einsum (1 node), If (1 node), NonZero (1 node), com.microsoft.FusedMatMul (2 nodes)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestOpsetRange(t *testing.T) {
	for _, ver := range []int64{6, 24} {
		_, err := loadProto(t, opModel("Add", ver, nil, []*Tensor{f32(sh(1), 1), f32(sh(1), 1)}, nil, 1), Options{})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("opset %d: error %v, want ErrUnsupported", ver, err)
		}
	}
}

// TestMatMulKernel checks the blocked kernel against a float64 reference
// on odd sizes and thread counts.
func TestMatMulKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, sz := range [][3]int{{1, 1, 1}, {37, 29, 53}, {4, 4, 4}, {5, 70, 3}, {130, 9, 64}, {3, 5, 0}, {64, 300, 17}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := make([]float32, m*k)
		b := make([]float32, n*k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		for _, threads := range []int{1, 3} {
			c := make([]float32, m*n)
			for i := range c {
				c[i] = 99 // must be overwritten
			}
			matMulT(c, a, b, m, n, k, threads)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for p := 0; p < k; p++ {
						s += float64(a[i*k+p]) * float64(b[j*k+p])
					}
					if d := math.Abs(float64(c[i*n+j]) - s); d > 1e-4*math.Max(1, math.Abs(s)) {
						t.Fatalf("%dx%dx%d threads %d: C[%d,%d] = %v, want %v", m, n, k, threads, i, j, c[i*n+j], s)
					}
				}
			}
		}
	}
}

// TestTopologicalSort runs a graph whose nodes are stored out of order.
func TestTopologicalSort(t *testing.T) {
	mp := opModel("Mul", 13, nil, []*Tensor{f32(sh(2), 1, 2), f32(sh(2), 3, 4)}, nil, 0)
	g := mp.Graph
	g.Node = []*onnxpb.NodeProto{
		{OpType: proto.String("Neg"), Input: []string{"p"}, Output: []string{"y0"}},
		{OpType: proto.String("Mul"), Input: []string{"x0", "x1"}, Output: []string{"p"}},
	}
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String("y0")}}
	s, err := loadProto(t, mp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(map[string]*Tensor{"x0": f32(sh(2), 1, 2), "x1": f32(sh(2), 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensor(res["y0"], f32(sh(2), -3, -8), 0); err != nil {
		t.Error(err)
	}
	// A cycle or an undefined input is an error.
	g.Node[1].Input[0] = "y0"
	if _, err := loadProto(t, mp, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("cycle: error %v, want ErrInvalid", err)
	}
}

// TestDeadNodes loads a graph with a dead branch (a product and its Exp
// no output reads) and a Split only one of whose outputs is read: the
// branch is dropped, the Split kept, and the results are the same.
func TestDeadNodes(t *testing.T) {
	mp := opModel("Mul", 13, nil, []*Tensor{f32(sh(4), 1, 2, 3, 4), f32(sh(4), 3, 4, 5, 6)}, nil, 0)
	g := mp.Graph
	g.Node = []*onnxpb.NodeProto{
		{OpType: proto.String("Mul"), Input: []string{"x0", "x1"}, Output: []string{"dead"}},
		{OpType: proto.String("Exp"), Input: []string{"dead"}, Output: []string{"dead2"}},
		{OpType: proto.String("Split"), Input: []string{"x0"}, Output: []string{"lo", "hi"}, Attribute: []*onnxpb.AttributeProto{aInt("axis", 0)}},
		{OpType: proto.String("Neg"), Input: []string{"hi"}, Output: []string{"y0"}},
		{OpType: proto.String("Add"), Input: []string{"x0", "x1"}, Output: []string{"y1"}},
	}
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String("y0")}, {Name: proto.String("y1")}}
	s, err := loadProto(t, mp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Plan(); p.Nodes != 3 || p.Dropped != 2 {
		t.Errorf("plan: %d nodes, %d dropped; want 3 and 2", p.Nodes, p.Dropped)
	}
	res, err := s.Run(map[string]*Tensor{"x0": f32(sh(4), 1, 2, 3, 4), "x1": f32(sh(4), 3, 4, 5, 6)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensor(res["y0"], f32(sh(2), -3, -4), 0); err != nil {
		t.Error(err)
	}
	if err := sameTensor(res["y1"], f32(sh(4), 4, 6, 8, 10), 0); err != nil {
		t.Error(err)
	}
}

func TestRunInputErrors(t *testing.T) {
	s, err := loadProto(t, opModel("Add", 13, nil, []*Tensor{f32(sh(1), 1), f32(sh(1), 1)}, nil, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, feeds := range map[string]map[string]*Tensor{
		"missing":      {"x0": f32(sh(1), 1)},
		"wrong kind":   {"x0": f32(sh(1), 1), "x1": i64(sh(1), 1)},
		"unknown name": {"x0": f32(sh(1), 1), "x1": f32(sh(1), 1), "x2": f32(sh(1), 1)},
		"bad length":   {"x0": f32(sh(2), 1), "x1": f32(sh(1), 1)},
	} {
		if _, err := s.Run(feeds); !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", name, err)
		}
	}
}

func TestLogitsErrorsAndConcurrency(t *testing.T) {
	s := loadStories(t)
	out := make([]float32, 3*512)
	if err := s.Logits([]int{1, 512}, out); !errors.Is(err, ErrInput) {
		t.Errorf("id 512: error %v, want ErrInput", err)
	}
	if err := s.Logits([]int{1, 2, 3}, out[:100]); !errors.Is(err, ErrInput) {
		t.Errorf("small buffer: error %v, want ErrInput", err)
	}
	if err := s.Logits(make([]int, 513), make([]float32, 513*512)); !errors.Is(err, ErrInput) {
		t.Errorf("513 tokens: error %v, want ErrInput", err)
	}
	ids := referenceIDs(t)[:64]
	var wg sync.WaitGroup
	res := make([][]float32, 3)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = make([]float32, len(ids)*512)
			if err := s.Logits(ids, res[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := 1; i < len(res); i++ {
		for j := range res[0] {
			if res[i][j] != res[0][j] {
				t.Fatalf("run %d differs at %d", i, j)
			}
		}
	}
}
