package run

import (
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

// Kinds of fusion [Load] applies (see [Plan]).
const (
	FuseMatMulAdd = "MatMul+Add"   // MatMul by a constant weight, then Add of a constant bias
	FuseRMSNorm   = "RMSNorm"      // x / sqrt(mean(x²) + ε) [· γ]
	FuseLayerNorm = "LayerNorm"    // (x − mean) / sqrt(mean((x − mean)²) + ε) [· γ] [+ β]
	FuseGelu      = "Gelu"         // 0.5 · x · (1 + erf(x / √2))
	FuseGeluTanh  = "GeluTanh"     // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
	FuseSiLU      = "SiLU"         // x · sigmoid(x)
	FuseSoftmax   = "ScaleSoftmax" // Softmax(x / c [+ mask]) over the last axis
	FuseAttention = "Attention"    // MatMul(ScaleSoftmax(MatMul(Q, Kᵀ)), V)
	FuseQKV       = "QKV"          // MatMuls (or MatMul+Adds) of one input by constant weights of one depth K
)

// Fusion is one group of nodes [Load] replaced by a fused kernel.
type Fusion struct {
	Kind  string // one of the Fuse* constants
	Node  string // the last node replaced: index, operator and name
	Nodes int    // nodes replaced
}

// Plan describes what Load made of the graph.
type Plan struct {
	Nodes   int      // nodes each run executes (after folding, dead-node elimination and fusion)
	Dropped int      // nodes dropped at load as no graph output depends on them
	Fusions []Fusion // by stage (see the package doc), in graph order within a stage; a QKV group's MatMul+Adds are listed too
	Skipped []string // patterns seen but not fused, and why (as logged)
	// DenseWeights and SparseWeights count the constant 2-D MatMul and
	// Gemm weights prepared at load: packed for the dense GEMM, or kept
	// as a blas.SparseB for the sparse kernel (Options.Sparse).
	DenseWeights, SparseWeights int
}

// Count returns the number of fusions of kind.
func (p Plan) Count(kind string) int {
	n := 0
	for _, f := range p.Fusions {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// Plan returns the session's execution plan: the fusions applied.
func (s *Session) Plan() Plan {
	return Plan{Nodes: len(s.nodes), Dropped: s.dropped, Fusions: slices.Clone(s.fusions), Skipped: slices.Clone(s.skipped),
		DenseWeights: s.weights[0], SparseWeights: s.weights[1]}
}

// fused is what a fused node computes, with the nodes it replaced: they
// run instead, one by one, when a run's operands are not what the fused
// kernel handles (another dtype than float32, shapes the checks at load
// could not see), so results never depend on whether a fusion applied.
// The fused node's first input is the operand the kernel reads (Q for an
// attention); its other inputs are every outside operand of the replaced
// nodes, for that fallback; the kernel's constants are held below.
type fused struct {
	kind   string
	sub    []*node
	k      []float32 // the pattern's scalar constants, in the order its kernel uses them
	gamma  []float32 // RMSNorm/LayerNorm scale (nil: none), MatMul+Add bias
	beta   []float32 // LayerNorm shift (nil: none)
	form   int       // pattern variant (operand order of the final product, division or reciprocal, …)
	mask   int       // ScaleSoftmax, Attention: index in the fused node's inputs of the mask, -1 without
	rankLo int       // minimum rank of the operand (the bias's or scale's rank)
	// Attention: indices in the fused node's inputs of Kᵀ and V, and the
	// scale-softmax node it contains.
	kt, v int
	soft  *fused
}

// fuser matches patterns over the folded node list.
type fuser struct {
	s       *Session
	consts  []*Tensor
	nodes   []*node
	prod    map[int]int   // slot → index in nodes of its producer
	readers map[int][]int // slot → indices of the nodes reading it (once per node)
	output  map[int]bool  // graph outputs
	dead    []bool
	fusedAt map[int]*node // index of a pattern's last node → the fused node
	log     func(string)
}

// fuse replaces the patterns of the Fuse* kinds in s.nodes by fused nodes.
func (s *Session) fuse(consts []*Tensor, log func(string)) {
	f := newFuser(s, consts, log)
	for k, n := range s.nodes {
		if f.dead[k] {
			continue
		}
		switch n.pb.GetOpType() {
		case "MatMul":
			f.matMulAdd(k)
		case "Pow":
			f.norm(k)
		case "Erf":
			f.gelu(k)
		case "Tanh":
			f.geluTanh(k)
		case "Sigmoid":
			f.silu(k)
		case "Softmax":
			f.scaleSoftmax(k)
		}
	}
	s.nodes = f.result()
	// Second stage: attentions around the fused softmaxes, and products
	// sharing an input (after MatMul+Add, so that a biased projection
	// joins its group as one member).
	f = newFuser(s, consts, log)
	for k, n := range s.nodes {
		if n.fused != nil && n.fused.kind == FuseSoftmax {
			f.attention(k)
		}
	}
	f.sharedInput()
	s.nodes = f.result()
}

func newFuser(s *Session, consts []*Tensor, log func(string)) *fuser {
	f := &fuser{s: s, consts: consts, nodes: s.nodes, prod: map[int]int{}, readers: map[int][]int{},
		output: map[int]bool{}, dead: make([]bool, len(s.nodes)), fusedAt: map[int]*node{}, log: log}
	for k, n := range s.nodes {
		for _, i := range n.out {
			if i >= 0 {
				f.prod[i] = k
			}
		}
		for j, i := range n.in {
			if i >= 0 && !slices.Contains(n.in[:j], i) {
				f.readers[i] = append(f.readers[i], k)
			}
		}
	}
	for _, o := range s.outputs {
		f.output[o.slot] = true
	}
	return f
}

func (f *fuser) result() []*node {
	var out []*node
	for k, n := range f.nodes {
		if fn, ok := f.fusedAt[k]; ok {
			out = append(out, fn)
			continue
		}
		if !f.dead[k] {
			out = append(out, n)
		}
	}
	return out
}

func (f *fuser) skip(k int, kind, why string, args ...any) {
	msg := fmt.Sprintf("%s: %s not fused at %s: %s", f.s.name, kind, f.nodes[k].label, fmt.Sprintf(why, args...))
	f.s.skipped = append(f.s.skipped, msg)
	if f.log != nil {
		f.log(msg)
	}
}

func (f *fuser) op(k int) string { return f.nodes[k].pb.GetOpType() }

// producer returns the node computing slot i, unless there is none or it
// is already part of another fusion.
func (f *fuser) producer(i int) (int, bool) {
	k, ok := f.prod[i]
	if !ok || f.dead[k] {
		return -1, false
	}
	return k, true
}

// sole returns the node reading slot i when it is the only reader, i is
// not a graph output and that node is not taken by another fusion; -1
// otherwise.
func (f *fuser) sole(i int) int {
	r := f.readers[i]
	if len(r) != 1 || f.output[i] || f.dead[r[0]] {
		return -1
	}
	return r[0]
}

// soleOp is sole, requiring the reader to be op with one output.
func (f *fuser) soleOp(i int, op string) int {
	k := f.sole(i)
	if k < 0 || f.op(k) != op || len(f.nodes[k].out) != 1 {
		return -1
	}
	return k
}

// other returns the operand of binary node k that is not slot i (−1 if
// the node does not read i as one of exactly two operands).
func (f *fuser) other(k, i int) int {
	in := f.nodes[k].in
	switch {
	case len(in) != 2:
		return -1
	case in[0] == i:
		return in[1]
	case in[1] == i:
		return in[0]
	}
	return -1
}

// scalar returns the value of a constant float scalar (one element).
func (f *fuser) scalar(i int) (float32, bool) {
	if i < 0 || i >= len(f.consts) {
		return 0, false
	}
	t := f.consts[i]
	if t == nil || t.DType != tensor.F32 || len(t.F32) != 1 {
		return 0, false
	}
	return t.F32[0], true
}

// isConst reports whether slot i is a constant float32 tensor.
func (f *fuser) isConst(i int) bool {
	return i >= 0 && i < len(f.consts) && f.consts[i] != nil && f.consts[i].DType == tensor.F32
}

// rowVector returns the elements of a constant float32 tensor shaped [D]
// or [1, …, 1, D] and its rank.
func (f *fuser) rowVector(i int) ([]float32, int, bool) {
	if !f.isConst(i) {
		return nil, 0, false
	}
	t := f.consts[i]
	if len(t.Shape) == 0 {
		return nil, 0, false
	}
	for _, d := range t.Shape[:len(t.Shape)-1] {
		if d != 1 {
			return nil, 0, false
		}
	}
	return t.F32, len(t.Shape), true
}

// lastAxisReduce reports whether node k is a ReduceMean over the last
// axis only (given as −1) keeping the dimension.
func (f *fuser) lastAxisReduce(k int) (bool, string) {
	n := f.nodes[k]
	if attrIntOf(n, "keepdims", 1) != 1 {
		return false, "keepdims is 0"
	}
	var axes []int64
	if n.ver < 18 {
		for _, a := range n.pb.GetAttribute() {
			if a.GetName() == "axes" {
				axes = a.GetInts()
			}
		}
	} else if len(n.in) > 1 && n.in[1] >= 0 {
		t := f.consts[n.in[1]]
		if t == nil || t.kind() != kindInt {
			return false, "axes are not constant"
		}
		axes = t.I64
	}
	if len(axes) != 1 || axes[0] != -1 {
		return false, fmt.Sprintf("axes %v (want [-1])", axes)
	}
	return true, ""
}

// commit replaces nodes ks (ascending, the last one producing the result)
// by a fused node reading x first, then every other outside operand of
// the nodes (constants included, so that the fallback finds them), except
// those in skipIn.
func (f *fuser) commit(kind string, ks []int, x int, fz *fused, skipIn ...int) *node {
	slices.Sort(ks)
	last := f.nodes[ks[len(ks)-1]]
	internal := map[int]bool{}
	for _, k := range ks {
		for _, i := range f.nodes[k].out {
			if i >= 0 {
				internal[i] = true
			}
		}
	}
	in := []int{x}
	for _, k := range ks {
		for _, i := range f.nodes[k].in {
			if i >= 0 && !internal[i] && !slices.Contains(in, i) && !slices.Contains(skipIn, i) {
				in = append(in, i)
			}
		}
	}
	for _, k := range ks {
		fz.sub = append(fz.sub, f.nodes[k])
		f.dead[k] = true
	}
	fz.kind = kind
	pb := &onnxpb.NodeProto{OpType: proto.String(kind), Domain: proto.String("lmsparse"), Name: proto.String(last.pb.GetName()),
		Input: last.pb.GetInput(), Output: last.pb.GetOutput()}
	n := &node{pb: pb, index: last.index, ver: last.ver, in: in, out: slices.Clone(last.out), fused: fz,
		impl: impl{fn: fusedKernels[kind]}}
	n.label = fmt.Sprintf("node %d (fused %s %q, %d nodes)", last.index, kind, last.pb.GetName(), len(ks))
	f.fusedAt[ks[len(ks)-1]] = n
	f.s.fusions = append(f.s.fusions, Fusion{Kind: kind, Node: last.label, Nodes: len(ks)})
	return n
}

// fusedKernels maps each kind to its kernel (set in init: the kernels
// refer to fallback, which runs nodes).
var fusedKernels map[string]func(*call) ([]*Tensor, error)

func init() {
	fusedKernels = map[string]func(*call) ([]*Tensor, error){
		FuseMatMulAdd: kMatMulAdd,
		FuseRMSNorm:   kNorm,
		FuseLayerNorm: kNorm,
		FuseGelu:      kGelu,
		FuseGeluTanh:  kGeluTanh,
		FuseSiLU:      kSiLU,
		FuseSoftmax:   kScaleSoftmax,
		FuseAttention: kAttention,
		FuseQKV:       kQKV,
	}
}

// matMulAdd: MatMul(x, W) with W a constant packed at load, read only by
// an Add of a constant bias shaped [N] or [1, …, 1, N].
func (f *fuser) matMulAdd(k int) {
	mm := f.nodes[k]
	if !mm.constB() {
		return
	}
	a := f.sole(mm.out[0])
	if a < 0 || f.op(a) != "Add" {
		return
	}
	b := f.other(a, mm.out[0])
	if !f.isConst(b) {
		return // a residual: not a bias
	}
	bias, rank, ok := f.rowVector(b)
	if !ok || len(bias) != mm.bN {
		f.skip(a, FuseMatMulAdd, "bias of shape %v does not broadcast as a row of %d", f.consts[b].Shape, mm.bN)
		return
	}
	f.commit(FuseMatMulAdd, []int{k, a}, mm.in[0], &fused{gamma: bias, rankLo: rank}, mm.in[1])
}

// norm: from Pow(base, 2): ReduceMean(last axis) → Add ε → Sqrt → then
// Div(base, ·), or Div(1, ·) / Reciprocal followed by Mul(base, ·);
// optionally Mul by a constant γ row and (LayerNorm) Add of a constant β
// row. base is x (RMSNorm) or Sub(x, ReduceMean(x)) (LayerNorm).
func (f *fuser) norm(k int) {
	pw := f.nodes[k]
	if len(pw.in) != 2 {
		return
	}
	if e, ok := f.scalar(pw.in[1]); !ok || e != 2 {
		return
	}
	base := pw.in[0]
	rm := f.soleOp(pw.out[0], "ReduceMean")
	if rm < 0 {
		return
	}
	kind := FuseRMSNorm
	ks := []int{k, rm}
	x := base
	// LayerNorm: base = Sub(x, mean) with mean = ReduceMean(x), base read
	// by this Pow and the division.
	var sub, mean int = -1, -1
	if p, ok := f.producer(base); ok && f.op(p) == "Sub" && len(f.nodes[p].in) == 2 {
		if m, ok := f.producer(f.nodes[p].in[1]); ok && f.op(m) == "ReduceMean" && f.nodes[m].in[0] == f.nodes[p].in[0] {
			sub, mean = p, m
			kind = FuseLayerNorm
			x = f.nodes[p].in[0]
		}
	}
	if ok, why := f.lastAxisReduce(rm); !ok {
		f.skip(rm, kind, "the mean of squares: %s", why)
		return
	}
	if kind == FuseLayerNorm {
		if ok, why := f.lastAxisReduce(mean); !ok {
			f.skip(mean, kind, "the mean: %s", why)
			return
		}
		if r := f.readers[f.nodes[mean].out[0]]; len(r) != 1 || f.output[f.nodes[mean].out[0]] {
			f.skip(mean, kind, "the mean has other readers")
			return
		}
		ks = append(ks, sub, mean)
	}
	ad := f.soleOp(f.nodes[rm].out[0], "Add")
	if ad < 0 {
		f.skip(rm, kind, "the mean of squares is not read by one Add")
		return
	}
	eps, ok := f.scalar(f.other(ad, f.nodes[rm].out[0]))
	if !ok {
		f.skip(ad, kind, "ε is not a constant scalar")
		return
	}
	sq := f.soleOp(f.nodes[ad].out[0], "Sqrt")
	if sq < 0 {
		f.skip(ad, kind, "ε is not added under one Sqrt")
		return
	}
	ks = append(ks, ad, sq)
	d := f.sole(f.nodes[sq].out[0])
	if d < 0 {
		f.skip(sq, kind, "the root has other readers")
		return
	}
	form := 0 // Div(base, root)
	y := -1
	switch op := f.op(d); {
	case op == "Div" && len(f.nodes[d].in) == 2 && f.nodes[d].in[0] == base && f.nodes[d].in[1] == f.nodes[sq].out[0]:
		y = d
		ks = append(ks, d)
	case op == "Div" || op == "Reciprocal":
		if op == "Div" {
			one, ok := f.scalar(f.nodes[d].in[0])
			if !ok || one != 1 || f.nodes[d].in[1] != f.nodes[sq].out[0] {
				f.skip(d, kind, "the root divides neither the input nor 1")
				return
			}
		}
		form = 1 // base · (1 / root)
		m := f.soleOp(f.nodes[d].out[0], "Mul")
		if m < 0 || f.other(m, f.nodes[d].out[0]) != base {
			f.skip(d, kind, "the reciprocal root does not multiply the input")
			return
		}
		y = m
		ks = append(ks, d, m)
	default:
		f.skip(d, kind, "the root is read by %s", op)
		return
	}
	// LayerNorm's x − mean is an intermediate: read by the Pow and the
	// division (or product) only. (RMSNorm's x may have other readers.)
	if r := f.readers[base]; kind == FuseLayerNorm && (len(r) != 2 || f.output[base]) {
		f.skip(k, kind, "x − mean is read outside the pattern (%d readers, graph output %v)", len(r), f.output[base])
		return
	}
	fz := &fused{k: []float32{eps}, form: form}
	// Optional γ, then β (LayerNorm).
	if g := f.soleOp(f.nodes[y].out[0], "Mul"); g >= 0 {
		if v, rank, ok := f.rowVector(f.other(g, f.nodes[y].out[0])); ok {
			fz.gamma, fz.rankLo = v, rank
			y = g
			ks = append(ks, g)
			if kind == FuseLayerNorm {
				if b := f.soleOp(f.nodes[g].out[0], "Add"); b >= 0 {
					if v, rank, ok := f.rowVector(f.other(b, f.nodes[g].out[0])); ok && len(v) == len(fz.gamma) {
						fz.beta = v
						fz.rankLo = max(fz.rankLo, rank)
						ks = append(ks, b)
					}
				}
			}
		}
	}
	f.commit(kind, ks, x, fz)
}

// isConstValue reports whether slot i is the constant scalar want, as
// float32.
func (f *fuser) isConstValue(i int, want float64) bool {
	v, ok := f.scalar(i)
	return ok && v == float32(want)
}

// geluTail matches, after a node producing slot p = (1 + inner) read by
// Add(p0, 1): Mul(x, ·) then Mul(·, 0.5) (form 0), or Mul(Mul(x, 0.5), ·)
// (form 1). It returns the node indices and the form.
func (f *fuser) geluTail(kind string, start, p0, x int) ([]int, int, bool) {
	if f.sole(p0) < 0 {
		f.skip(start, kind, "its result has other readers or is a graph output")
		return nil, 0, false
	}
	ad := f.soleOp(p0, "Add")
	if ad < 0 || !f.isConstValue(f.other(ad, p0), 1) {
		f.skip(start, kind, "not followed by Add 1")
		return nil, 0, false
	}
	u := f.nodes[ad].out[0]
	m := f.soleOp(u, "Mul")
	if m < 0 {
		f.skip(ad, kind, "1 + … is not read by one Mul")
		return nil, 0, false
	}
	o := f.other(m, u)
	if o == x {
		h := f.soleOp(f.nodes[m].out[0], "Mul")
		if h < 0 || !f.isConstValue(f.other(h, f.nodes[m].out[0]), 0.5) {
			f.skip(m, kind, "x · (1 + …) is not halved")
			return nil, 0, false
		}
		return []int{ad, m, h}, 0, true
	}
	if p, ok := f.producer(o); ok && f.op(p) == "Mul" && f.sole(o) == m && f.other(p, x) >= 0 && f.isConstValue(f.other(p, x), 0.5) {
		return []int{ad, p, m}, 1, true
	}
	f.skip(m, kind, "1 + … multiplies neither x nor x · 0.5")
	return nil, 0, false
}

// gelu: Erf(x / √2) (or x · (1/√2)), then the tail of geluTail.
func (f *fuser) gelu(k int) {
	t := f.nodes[k].in[0]
	p, ok := f.producer(t)
	if !ok || f.sole(t) != k || len(f.nodes[p].in) != 2 {
		return
	}
	x := f.nodes[p].in[0]
	c := f.nodes[p].in[1]
	div := 1
	switch {
	case f.op(p) == "Div" && f.isConstValue(c, math.Sqrt2):
	case f.op(p) == "Mul" && f.isConstValue(c, 1/math.Sqrt2):
		div = 0
	case f.op(p) == "Mul" && f.isConstValue(x, 1/math.Sqrt2):
		x, c, div = c, x, 0
	default:
		f.skip(k, FuseGelu, "the input of Erf is not x/√2")
		return
	}
	tail, form, ok := f.geluTail(FuseGelu, k, f.nodes[k].out[0], x)
	if !ok {
		return
	}
	cv, _ := f.scalar(c)
	f.commit(FuseGelu, append([]int{p, k}, tail...), x, &fused{k: []float32{cv}, form: form*2 + div})
}

// geluTanh: Tanh(c1 · (x + c2 · Pow(x, 3))), then the tail of geluTail.
func (f *fuser) geluTanh(k int) {
	s := f.nodes[k].in[0]
	ms, ok := f.producer(s)
	if !ok || f.sole(s) != k || f.op(ms) != "Mul" || len(f.nodes[ms].in) != 2 {
		return
	}
	var r, c1 int = -1, -1
	for _, i := range f.nodes[ms].in {
		if f.isConstValue(i, math.Sqrt(2/math.Pi)) {
			c1 = i
		} else {
			r = i
		}
	}
	ar, ok := f.producer(r)
	if c1 < 0 || !ok || f.sole(r) != ms || f.op(ar) != "Add" || len(f.nodes[ar].in) != 2 {
		f.skip(k, FuseGeluTanh, "the input of Tanh is not √(2/π) · (…)")
		return
	}
	// x + c2 · x³: find the operand that is Mul(Pow(x, 3), c2).
	for _, q := range f.nodes[ar].in {
		mq, ok := f.producer(q)
		if !ok || f.sole(q) != ar || f.op(mq) != "Mul" || len(f.nodes[mq].in) != 2 {
			continue
		}
		x := f.other(ar, q)
		for _, p3 := range f.nodes[mq].in {
			pw, ok := f.producer(p3)
			c2 := f.other(mq, p3)
			if !ok || f.sole(p3) != mq || f.op(pw) != "Pow" || f.nodes[pw].in[0] != x ||
				!f.isConstValue(f.nodes[pw].in[1], 3) || !f.isConstValue(c2, 0.044715) {
				continue
			}
			tail, form, ok := f.geluTail(FuseGeluTanh, k, f.nodes[k].out[0], x)
			if !ok {
				return
			}
			v1, _ := f.scalar(c1)
			v2, _ := f.scalar(c2)
			f.commit(FuseGeluTanh, append([]int{pw, mq, ar, ms, k}, tail...), x, &fused{k: []float32{v1, v2}, form: form})
			return
		}
	}
	f.skip(k, FuseGeluTanh, "no x + 0.044715 · x³ under Tanh")
}

// silu: Mul(x, Sigmoid(x)).
func (f *fuser) silu(k int) {
	x := f.nodes[k].in[0]
	m := f.soleOp(f.nodes[k].out[0], "Mul")
	if m < 0 {
		return
	}
	if f.other(m, f.nodes[k].out[0]) != x {
		f.skip(m, FuseSiLU, "the sigmoid does not multiply its own input")
		return
	}
	f.commit(FuseSiLU, []int{k, m}, x, &fused{})
}

// scaleSoftmax: Softmax over the last axis of Div(x, c) or Mul(x, c)
// with c a constant scalar, optionally with a constant or computed mask
// added after the scaling: the scores of an attention.
func (f *fuser) scaleSoftmax(k int) {
	sm := f.nodes[k]
	if attrIntOf(sm, "axis", -1) != -1 || sm.ver < 13 {
		if sm.ver >= 13 {
			f.skip(k, FuseSoftmax, "axis %d (want -1)", attrIntOf(sm, "axis", -1))
		}
		return
	}
	in := sm.in[0]
	ks := []int{k}
	mask := -1
	if a, ok := f.producer(in); ok && f.op(a) == "Add" && f.sole(in) == k && len(f.nodes[a].in) == 2 {
		// Add(scaled, mask): the scaled operand is a Div/Mul by a constant.
		for _, s := range f.nodes[a].in {
			if p, ok := f.producer(s); ok && f.sole(s) == a && (f.op(p) == "Div" || f.op(p) == "Mul") && len(f.nodes[p].in) == 2 {
				if _, ok := f.scalar(f.nodes[p].in[1]); ok {
					mask = f.other(a, s)
					in = s
					ks = append(ks, a)
					break
				}
			}
		}
		if mask < 0 {
			return
		}
	}
	p, ok := f.producer(in)
	if !ok || f.sole(in) != ks[len(ks)-1] || (f.op(p) != "Div" && f.op(p) != "Mul") || len(f.nodes[p].in) != 2 {
		return
	}
	c, ok := f.scalar(f.nodes[p].in[1])
	if !ok {
		return
	}
	form := 0 // Div
	if f.op(p) == "Mul" {
		form = 1
	}
	ks = append(ks, p)
	fz := &fused{k: []float32{c}, form: form, mask: -1}
	x := f.nodes[p].in[0]
	n := f.commit(FuseSoftmax, ks, x, fz)
	if mask >= 0 {
		fz.mask = slices.Index(n.in, mask)
	}
}

// attention: a fused ScaleSoftmax (node k) whose scores are MatMul(Q, Kᵀ)
// of two computed operands, read by nothing else, and whose probabilities
// are read only by MatMul(·, V), as its left operand.
func (f *fuser) attention(k int) {
	ss := f.nodes[k]
	x := ss.in[0]
	p, ok := f.producer(x)
	if !ok || f.op(p) != "MatMul" || f.nodes[p].constB() || f.sole(x) != k {
		return
	}
	mm := f.sole(ss.out[0])
	if mm < 0 || f.op(mm) != "MatMul" || f.nodes[mm].constB() || len(f.nodes[mm].in) != 2 ||
		f.nodes[mm].in[0] != ss.out[0] || f.nodes[mm].in[1] == ss.out[0] {
		f.skip(k, FuseAttention, "the probabilities are not read by one MatMul, as its left operand only")
		return
	}
	q, kt, v := f.nodes[p].in[0], f.nodes[p].in[1], f.nodes[mm].in[1]
	fz := &fused{soft: ss.fused, mask: -1}
	n := f.commit(FuseAttention, []int{p, k, mm}, q, fz)
	fz.kt, fz.v = slices.Index(n.in, kt), slices.Index(n.in, v)
	if ss.fused.mask >= 0 {
		fz.mask = slices.Index(n.in, ss.in[ss.fused.mask])
	}
}

// product returns, for a node that is a MatMul by a constant packed
// weight or a fused MatMul+Add, the MatMul node; nil otherwise.
func product(n *node) *node {
	switch {
	case n.fused == nil && n.pb.GetOpType() == "MatMul" && n.constB():
		return n
	case n.fused != nil && n.fused.kind == FuseMatMulAdd:
		return n.fused.sub[0]
	}
	return nil
}

// sharedInput groups the products (MatMul by a constant packed weight, or
// fused MatMul+Add) that read the same input x as their left operand —
// the Q, K and V projections of an attention, the gate and up projections
// of a gated MLP — into one fused node computing all of them with x packed
// once and one parallel loop over every output's tiles. Each product
// keeps its own output value; the fused node takes the place of the first
// (every member reads only x and constants, so all can run there). The
// weights must have one depth K (they do in any graph that runs: K is x's
// last dimension); MatMuls of x by a computed or non-2-D weight stay
// outside the group.
func (f *fuser) sharedInput() {
	groups := map[int][]int{} // x → candidate nodes, in graph order
	var xs []int              // in order of first reader
	others := map[int][]int{} // x → MatMuls reading x that are not candidates
	for k, n := range f.nodes {
		if f.dead[k] || len(n.in) == 0 || n.in[0] < 0 {
			continue
		}
		x := n.in[0]
		if product(n) != nil {
			if groups[x] == nil {
				xs = append(xs, x)
			}
			groups[x] = append(groups[x], k)
		} else if n.fused == nil && n.pb.GetOpType() == "MatMul" && len(n.in) == 2 && n.in[1] != x {
			others[x] = append(others[x], k)
		}
	}
	for _, x := range xs {
		ks := groups[x]
		if len(ks) < 2 {
			for _, o := range others[x] {
				f.skip(o, FuseQKV, "its weight is not a constant 2-D float tensor (the product of %s by a packed weight stays alone)", f.nodes[ks[0]].label)
			}
			continue
		}
		for _, o := range others[x] {
			f.skip(o, FuseQKV, "its weight is not a constant 2-D float tensor: not grouped with the products of its input")
		}
		depth := product(f.nodes[ks[0]]).bK
		if j := slices.IndexFunc(ks, func(k int) bool { return product(f.nodes[k]).bK != depth }); j >= 0 {
			f.skip(ks[j], FuseQKV, "weights of depths K %d and %d read the same input", depth, product(f.nodes[ks[j]]).bK)
			continue
		}
		f.commitGroup(ks, x)
	}
}

// commitGroup replaces the product nodes ks (ascending) reading x by one
// fused node at the place of the first, with one output per member.
func (f *fuser) commitGroup(ks []int, x int) {
	fz := &fused{kind: FuseQKV}
	in := []int{x}
	var outs []int
	var outNames, inNames []string
	nodes := 0
	for _, k := range ks {
		n := f.nodes[k]
		fz.sub = append(fz.sub, n)
		f.dead[k] = true
		if n.fused != nil {
			fz.rankLo = max(fz.rankLo, n.fused.rankLo)
			nodes += len(n.fused.sub)
			for _, i := range n.in[1:] { // the bias, for the fallback
				if i >= 0 && !slices.Contains(in, i) {
					in = append(in, i)
				}
			}
		} else {
			nodes++
		}
		outs = append(outs, n.out[0])
		outNames = append(outNames, n.pb.GetOutput()[0])
		inNames = append(inNames, n.pb.GetInput()...)
	}
	first, last := f.nodes[ks[0]], f.nodes[ks[len(ks)-1]]
	pb := &onnxpb.NodeProto{OpType: proto.String(FuseQKV), Domain: proto.String("lmsparse"), Name: proto.String(first.pb.GetName()),
		Input: inNames, Output: outNames}
	n := &node{pb: pb, index: first.index, ver: first.ver, in: in, out: outs, fused: fz, impl: impl{fn: kQKV}}
	n.label = fmt.Sprintf("node %d (fused %s %q, %d products of %d nodes)", first.index, FuseQKV, first.pb.GetName(), len(ks), nodes)
	f.fusedAt[ks[0]] = n
	f.s.fusions = append(f.s.fusions, Fusion{Kind: FuseQKV, Node: last.label, Nodes: nodes})
}
