package run

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

var (
	// ErrUnsupported reports a model using operators, operator set versions,
	// attributes or dtypes this executor does not implement. [Load] returns
	// an [*UnsupportedError] listing every unsupported operator at once.
	ErrUnsupported = errors.New("unsupported by the ONNX executor")
	// ErrInvalid reports a model that cannot run: a node reading an
	// undefined value, shapes that do not fit an operator, an index out of
	// range, a tensor over the element limit.
	ErrInvalid = errors.New("invalid ONNX graph")
	// ErrInput reports bad arguments: a missing or mistyped graph input,
	// token ids outside the vocabulary, an output buffer too small.
	ErrInput = errors.New("invalid input")
)

// Operator set versions of the default domain that Load accepts.
const (
	MinOpset = 7
	MaxOpset = 23
)

// DefaultMaxElements bounds the element count of any tensor the executor
// allocates unless Options.MaxElements says otherwise: 2^31 elements.
const DefaultMaxElements = 1 << 31

// Options configures [Load].
type Options struct {
	// Threads is the number of goroutines matrix products use; ≤ 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
	// MaxElements bounds the element count of every tensor computed
	// (shapes read from the model or derived from inputs); 0 means
	// DefaultMaxElements.
	MaxElements int64
	// Lazy leaves initializers of LazyMinBytes or more undecoded at load:
	// each run decodes one when a node first reads it and drops it after
	// its last reader (and the model file's pages with it, see
	// onnx.Model.Release). Memory is then about the largest few weights
	// rather than all of them, at the cost of decoding every weight on
	// every run and of the load-time preparation (constant folding and
	// pre-transposed MatMul weights) of nodes that read them: for a run
	// or two, as a check. The model must stay usable while the session is.
	Lazy bool
	// NoFusion keeps every node as it is: no fused kernels (for comparing
	// fused and unfused results).
	NoFusion bool
	// Sparse chooses how constant 2-D MatMul and Gemm weights are kept:
	// "" or "auto" keeps one whose fraction of exact zeros is at least
	// SparseThreshold as a blas.SparseB, multiplied by the sparse kernel,
	// when that pays (see the package doc, "Sparse weights"); "off" packs
	// every weight dense; "on" keeps every such weight sparse (for tests).
	Sparse string
	// Debug, when set, receives a message for each pattern Load saw but
	// did not fuse, and why (the same messages as Plan().Skipped).
	Debug func(msg string)
}

// LazyMinBytes is the size from which Options.Lazy leaves an initializer
// undecoded.
const LazyMinBytes = 4096

// Op names an operator: its domain ("" for the default ONNX domain) and
// type, and how many nodes use it.
type Op struct {
	Domain, Type string
	Nodes        int
}

func (o Op) String() string {
	if o.Domain == "" {
		return o.Type
	}
	return o.Domain + "." + o.Type
}

// UnsupportedError lists every operator of a model that the executor does
// not implement. It wraps [ErrUnsupported].
type UnsupportedError struct {
	Model string // the model's file
	Ops   []Op   // sorted by domain, then type
}

func (e *UnsupportedError) Error() string {
	parts := make([]string, len(e.Ops))
	for i, o := range e.Ops {
		n := "nodes"
		if o.Nodes == 1 {
			n = "node"
		}
		parts[i] = fmt.Sprintf("%s (%d %s)", o, o.Nodes, n)
	}
	return fmt.Sprintf("%s: %d unsupported operators: %s", e.Model, len(e.Ops), strings.Join(parts, ", "))
}

func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// node is one compiled graph node.
type node struct {
	pb    *onnxpb.NodeProto
	index int // position in the graph
	ver   int64
	in    []int // slots; -1 for an omitted input
	out   []int // slots; -1 for an omitted output
	impl  impl
	// bp is a constant B operand of MatMul or Gemm, packed once for the
	// GEMM kernel as N rows of K (the only copy kept: the initializer is
	// dropped when nothing else reads it).
	bp *blas.Packed
	// sb is the same operand kept sparse instead (Options.Sparse): one of
	// bp and sb is set for a prepared weight.
	sb   *blas.SparseB
	bN   int
	bK   int
	free []int // slots whose last reader this node is
	// dies[j] is set when input j's value dies at this node (its slot is
	// in free): an element-wise operator may write its output over it.
	dies []bool
	// fused, on a node of several fused ones, holds its kernel's
	// constants and the nodes it replaced.
	fused *fused
	label string
	// tensors holds the node's TENSOR attributes, decoded at load time.
	tensors map[string]*Tensor
}

// Session runs one model. It is safe for concurrent use: each call has its
// own values and constants are only read.
type Session struct {
	name     string
	exec     exec
	slots    int
	consts   []*Tensor // per slot; nil for computed values
	nodes    []*node   // nodes left to run per call (constants folded)
	inputs   []graphIO // graph inputs to feed
	outputs  []graphIO
	vocab    int
	maxPos   int
	idsInput int // index in inputs of the token ids, -1 if none
	// lazy, with Options.Lazy, names per slot the initializer a run
	// decodes when a node reads it ("" for the others); model reads it.
	lazy  []string
	model *onnx.Model
	// states are the run states (values, arena) of finished runs, reused
	// by the next ones: one per concurrent run at most.
	mu     sync.Mutex
	states []*runState
	// fusions and skipped are what Plan reports.
	fusions []Fusion
	skipped []string
	dropped int // nodes no output depends on, dropped at load
	// weights counts the constant weights prepared at load: [0] packed
	// dense, [1] kept sparse.
	weights [2]int
}

// runState is what one run needs beyond the session: the values of the
// graph and the arena their buffers come from.
type runState struct {
	e    exec
	ar   arena
	vals []*Tensor
	in   []*Tensor
	c    call
}

type graphIO struct {
	name  string
	slot  int
	dtype tensor.DType
	dims  []int64 // -1 for a symbolic or absent dimension; nil if unknown rank
}

// exec carries the per-session settings kernels need.
type exec struct {
	threads  int
	maxElems int64
	arena    *arena // the run's, nil while constants are folded
}

// Load prepares model m for execution: it checks that every operator is
// implemented (listing all that are not, in an [*UnsupportedError]),
// decodes the initializers, orders the nodes topologically, evaluates every
// node whose inputs are all constant, and pre-transposes constant MatMul
// and Gemm weights.
func Load(m *onnx.Model, o Options) (*Session, error) {
	name := m.Path()
	if name == "" {
		name = "ONNX model"
	}
	g := m.Graph()
	s := &Session{name: name, idsInput: -1}
	s.exec.threads = o.Threads
	if s.exec.threads <= 0 {
		s.exec.threads = runtime.GOMAXPROCS(0)
	}
	s.exec.maxElems = o.MaxElements
	if s.exec.maxElems <= 0 {
		s.exec.maxElems = DefaultMaxElements
	}
	ver := m.Opset("")
	if err := checkOps(m, name, ver); err != nil {
		return nil, err
	}

	slot := map[string]int{}
	newSlot := func(n string) int {
		if i, ok := slot[n]; ok {
			return i
		}
		slot[n] = len(slot)
		return slot[n]
	}
	var consts []*Tensor
	unusable := map[string]tensor.DType{}
	setConst := func(i int, t *Tensor) {
		for len(consts) <= i {
			consts = append(consts, nil)
		}
		consts[i] = t
	}
	for _, in := range m.Initializers() {
		if kindOf(in.DType) == kindNone {
			// An error only if a node reads it (see below).
			newSlot(in.Name)
			unusable[in.Name] = in.DType
			continue
		}
		if o.Lazy && in.Bytes >= LazyMinBytes {
			i := newSlot(in.Name)
			for len(s.lazy) <= i {
				s.lazy = append(s.lazy, "")
			}
			s.lazy[i] = in.Name
			s.model = m
			continue
		}
		data, err := m.InitializerBytes(in.Name)
		if err != nil {
			return nil, err
		}
		t, err := fromBytes(in.DType, in.Shape, data)
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %q: %w", name, in.Name, err)
		}
		m.Release(in.Name) // decoded: the file's pages may go
		setConst(newSlot(in.Name), t)
	}
	for _, vi := range g.GetInput() {
		if _, isInit := slot[vi.GetName()]; isInit {
			continue // IR < 4: an initializer listed as an input
		}
		io, err := ioOf(vi)
		if err != nil {
			return nil, fmt.Errorf("%s: graph input %q: %w", name, vi.GetName(), err)
		}
		io.slot = newSlot(vi.GetName())
		s.inputs = append(s.inputs, io)
	}
	order, err := topoOrder(g, slot, name)
	if err != nil {
		return nil, err
	}
	var nodes []*node
	for _, idx := range order {
		pb := g.GetNode()[idx]
		n := &node{pb: pb, index: idx, ver: ver, impl: implFor(pb.GetOpType())}
		n.label = fmt.Sprintf("node %d (%s %q)", idx, pb.GetOpType(), pb.GetName())
		for _, x := range pb.GetInput() {
			if x == "" {
				n.in = append(n.in, -1)
				continue
			}
			i, ok := slot[x]
			if !ok {
				return nil, fmt.Errorf("%w: %s: %s reads %q, which nothing defines", ErrInvalid, name, n.label, x)
			}
			if dt, bad := unusable[x]; bad {
				return nil, fmt.Errorf("%w: %s: %s reads initializer %q of dtype %s", ErrUnsupported, name, n.label, x, dt)
			}
			n.in = append(n.in, i)
		}
		for _, x := range pb.GetOutput() {
			if x == "" {
				n.out = append(n.out, -1)
				continue
			}
			n.out = append(n.out, newSlot(x))
		}
		nodes = append(nodes, n)
	}
	for _, vi := range g.GetOutput() {
		i, ok := slot[vi.GetName()]
		if !ok {
			return nil, fmt.Errorf("%w: %s: graph output %q is not computed", ErrInvalid, name, vi.GetName())
		}
		io, err := ioOf(vi)
		if err != nil {
			io = graphIO{name: vi.GetName()}
		}
		io.slot = i
		s.outputs = append(s.outputs, io)
	}
	s.slots = len(slot)
	for len(consts) < s.slots {
		consts = append(consts, nil)
	}
	for len(s.lazy) < s.slots {
		s.lazy = append(s.lazy, "")
	}
	// Fold nodes whose inputs are all constant.
	isConst := func(i int) bool { return i < 0 || consts[i] != nil }
	for _, n := range nodes {
		if !allOf(n.in, isConst) {
			s.nodes = append(s.nodes, n)
			continue
		}
		in := make([]*Tensor, len(n.in))
		for k, i := range n.in {
			if i >= 0 {
				in[k] = consts[i]
			}
		}
		out, err := s.exec.runNode(n, in, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, n.label, err)
		}
		for k, i := range n.out {
			if i >= 0 {
				consts[i] = out[k]
			}
		}
	}
	// Drop the nodes whose results reach no graph output (dead code: an
	// export's unused branches, shape arithmetic left by folding).
	s.nodes, s.dropped = liveNodes(s.nodes, s.outputs)
	// Pack constant 2-D weights of MatMul and Gemm (a weight only its
	// product reads is dropped at once: the packed copy is the only one);
	// decode tensor attributes.
	readers := make([]int, len(consts))
	for _, n := range s.nodes {
		for _, i := range n.in {
			if i >= 0 {
				readers[i]++
			}
		}
	}
	for _, o := range s.outputs {
		readers[o.slot]++
	}
	sp, err := newSparsePolicy(o.Sparse, s.exec.threads)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, n := range s.nodes {
		s.prepareWeight(n, consts, sp)
		if n.constB() && readers[n.in[1]] == 1 {
			consts[n.in[1]] = nil
		}
		for _, a := range n.pb.GetAttribute() {
			if a.GetT() == nil {
				continue
			}
			dt, shape, data, err := m.TensorData(a.GetT())
			if err != nil {
				return nil, fmt.Errorf("%s: %s: attribute %q: %w", name, n.label, a.GetName(), err)
			}
			t, err := fromBytes(dt, shape, data)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: attribute %q: %w", name, n.label, a.GetName(), err)
			}
			if n.tensors == nil {
				n.tensors = map[string]*Tensor{}
			}
			n.tensors[a.GetName()] = t
		}
	}
	if !o.NoFusion {
		s.fuse(consts, o.Debug)
	}
	// Keep only the constants still read, and plan when values die.
	last := make([]int, s.slots)
	for i := range last {
		last[i] = -1
	}
	keep := make([]bool, s.slots)
	for k, n := range s.nodes {
		for j, i := range n.in {
			if i < 0 || (j == 1 && n.constB()) {
				continue
			}
			last[i] = k
			keep[i] = true
		}
	}
	for _, o := range s.outputs {
		keep[o.slot] = true
		last[o.slot] = len(s.nodes)
	}
	for i := range consts {
		if !keep[i] {
			consts[i] = nil
		}
	}
	for i, k := range last {
		if k >= 0 && k < len(s.nodes) && consts[i] == nil {
			s.nodes[k].free = append(s.nodes[k].free, i)
		}
	}
	for _, n := range s.nodes {
		n.dies = make([]bool, len(n.in))
		for j, i := range n.in {
			n.dies[j] = i >= 0 && slices.Contains(n.free, i)
		}
	}
	// Outputs nothing reads (optional outputs computed anyway) die at once.
	for _, n := range s.nodes {
		for _, i := range n.out {
			if i >= 0 && last[i] < 0 {
				n.free = append(n.free, i)
			}
		}
	}
	s.consts = consts
	s.findIO(m)
	return s, nil
}

// liveNodes returns the nodes (in order) some output of which a graph
// output depends on, and how many others there were. No supported
// operator has side effects or subgraphs, so the rest change nothing.
func liveNodes(nodes []*node, outputs []graphIO) ([]*node, int) {
	needed := map[int]bool{}
	for _, o := range outputs {
		needed[o.slot] = true
	}
	live := make([]bool, len(nodes))
	for k := len(nodes) - 1; k >= 0; k-- {
		n := nodes[k]
		if !slices.ContainsFunc(n.out, func(i int) bool { return i >= 0 && needed[i] }) {
			continue
		}
		live[k] = true
		for _, i := range n.in {
			if i >= 0 {
				needed[i] = true
			}
		}
	}
	var out []*node
	for k, n := range nodes {
		if live[k] {
			out = append(out, n)
		}
	}
	return out, len(nodes) - len(out)
}

func allOf(v []int, f func(int) bool) bool {
	for _, x := range v {
		if !f(x) {
			return false
		}
	}
	return true
}

// checkOps lists every operator of the model (subgraphs included) that is
// not implemented, and checks the default domain's operator set version.
func checkOps(m *onnx.Model, name string, ver int64) error {
	counts := map[[2]string]int{}
	var walk func(g *onnxpb.GraphProto, depth int)
	walk = func(g *onnxpb.GraphProto, depth int) {
		if g == nil || depth > 64 {
			return
		}
		for _, n := range g.GetNode() {
			d := n.GetDomain()
			if d == "ai.onnx" {
				d = ""
			}
			if d != "" || implFor(n.GetOpType()).fn == nil {
				counts[[2]string{d, n.GetOpType()}]++
			}
			for _, a := range n.GetAttribute() {
				walk(a.GetG(), depth+1)
				for _, sg := range a.GetGraphs() {
					walk(sg, depth+1)
				}
			}
		}
	}
	walk(m.Graph(), 0)
	if len(counts) > 0 {
		e := &UnsupportedError{Model: name}
		for k, c := range counts {
			e.Ops = append(e.Ops, Op{Domain: k[0], Type: k[1], Nodes: c})
		}
		slices.SortFunc(e.Ops, func(a, b Op) int {
			if c := strings.Compare(a.Domain, b.Domain); c != 0 {
				return c
			}
			return strings.Compare(a.Type, b.Type)
		})
		return e
	}
	if ver < MinOpset || ver > MaxOpset {
		return fmt.Errorf("%w: %s: default-domain operator set version %d (supported: %d to %d)", ErrUnsupported, name, ver, MinOpset, MaxOpset)
	}
	return nil
}

// topoOrder returns the nodes' indices in an order where every input is
// computed before it is read: the file order when it is already
// topological (as ONNX requires), else a stable topological sort.
func topoOrder(g *onnxpb.GraphProto, known map[string]int, name string) ([]int, error) {
	nodes := g.GetNode()
	defined := map[string]bool{}
	for k := range known {
		defined[k] = true
	}
	sorted := true
	for _, n := range nodes {
		for _, x := range n.GetInput() {
			if x != "" && !defined[x] {
				sorted = false
			}
		}
		for _, x := range n.GetOutput() {
			defined[x] = true
		}
	}
	order := make([]int, 0, len(nodes))
	if sorted {
		for i := range nodes {
			order = append(order, i)
		}
		return order, nil
	}
	defined = map[string]bool{}
	for k := range known {
		defined[k] = true
	}
	done := make([]bool, len(nodes))
	for progress := true; progress; {
		progress = false
		for i, n := range nodes {
			if done[i] {
				continue
			}
			ready := true
			for _, x := range n.GetInput() {
				if x != "" && !defined[x] {
					ready = false
					break
				}
			}
			if !ready {
				continue
			}
			done[i], progress = true, true
			order = append(order, i)
			for _, x := range n.GetOutput() {
				defined[x] = true
			}
		}
	}
	for i, n := range nodes {
		if !done[i] {
			for _, x := range n.GetInput() {
				if x != "" && !defined[x] {
					return nil, fmt.Errorf("%w: %s: node %d (%s %q) reads %q, which no graph input, initializer or node defines (or the graph has a cycle)", ErrInvalid, name, i, n.GetOpType(), n.GetName(), x)
				}
			}
		}
	}
	return order, nil
}

// ioOf describes a graph input or output from its ValueInfoProto.
func ioOf(vi *onnxpb.ValueInfoProto) (graphIO, error) {
	io := graphIO{name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return io, fmt.Errorf("%w: not a tensor", ErrUnsupported)
	}
	io.dtype = onnx.DType(tt.GetElemType())
	if tt.GetShape() != nil {
		io.dims = []int64{}
		for _, d := range tt.GetShape().GetDim() {
			if d.GetDimParam() == "" && d.Value != nil {
				io.dims = append(io.dims, d.GetDimValue())
			} else {
				io.dims = append(io.dims, -1)
			}
		}
	}
	return io, nil
}

// fromBytes decodes little-endian data of dtype dt into a Tensor.
func fromBytes(dt tensor.DType, shape tensor.Shape, data []byte) (*Tensor, error) {
	sh := make([]int, len(shape))
	for i, d := range shape {
		if d > math.MaxInt32*int64(1<<16) {
			return nil, fmt.Errorf("%w: dimension %d", ErrInvalid, d)
		}
		sh[i] = int(d)
	}
	n, err := elems(sh, math.MaxInt)
	if err != nil {
		return nil, err
	}
	t := &Tensor{DType: dt, Shape: sh}
	switch kindOf(dt) {
	case kindFloat:
		t.F32 = make([]float32, n)
		if err := tensor.DecodeF32(t.F32, data, dt); err != nil {
			return nil, err
		}
	case kindInt:
		size := dt.Size()
		if len(data) != n*size {
			return nil, fmt.Errorf("%w: %d bytes for %d %s elements", ErrInvalid, len(data), n, dt)
		}
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = decodeInt(dt, data[i*size:])
		}
	case kindBool:
		if len(data) != n {
			return nil, fmt.Errorf("%w: %d bytes for %d BOOL elements", ErrInvalid, len(data), n)
		}
		t.Bool = make([]bool, n)
		for i, b := range data {
			t.Bool[i] = b != 0
		}
	default:
		return nil, fmt.Errorf("%w: dtype %s", ErrUnsupported, dt)
	}
	return t, nil
}

func decodeInt(dt tensor.DType, b []byte) int64 {
	switch dt {
	case tensor.I64, tensor.U64:
		return int64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
	case tensor.I32:
		return int64(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	case tensor.U32:
		return int64(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	case tensor.I16:
		return int64(int16(uint16(b[0]) | uint16(b[1])<<8))
	case tensor.U16:
		return int64(uint16(b[0]) | uint16(b[1])<<8)
	case tensor.I8:
		return int64(int8(b[0]))
	}
	return int64(b[0]) // U8
}

// runNode executes one node on its inputs; m resolves Constant tensors.
func (e *exec) runNode(n *node, in []*Tensor, m *onnx.Model) ([]*Tensor, error) {
	return runCall(&call{e: e, n: n, in: in, m: m})
}

// runCall executes the node of c.
func runCall(c *call) ([]*Tensor, error) {
	n := c.n
	out, err := n.impl.fn(c)
	if err != nil {
		return nil, err
	}
	if len(out) < countOutputs(n) {
		return nil, fmt.Errorf("%w: %d outputs computed, %d wanted", ErrUnsupported, len(out), countOutputs(n))
	}
	if !n.impl.moves {
		for _, t := range out {
			if t != nil {
				roundFloat(t)
			}
		}
	}
	return out, nil
}

func countOutputs(n *node) int {
	c := 0
	for i, o := range n.out {
		if o >= 0 {
			c = i + 1
		}
	}
	return c
}

// Run computes the graph outputs from inputs, by graph input name. Every
// graph input that is not an initializer must be given, with the kind of
// dtype (float, integer, bool) and the fixed dimensions it declares.
//
// Intermediate values live in buffers of the run's arena, reused from
// node to node once a value's last reader has run and from run to run;
// the returned outputs are the caller's.
func (s *Session) Run(inputs map[string]*Tensor) (map[string]*Tensor, error) {
	st, err := s.execute(inputs)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*Tensor, len(s.outputs))
	for _, o := range s.outputs {
		t := st.vals[o.slot]
		st.ar.detach(t)
		res[o.name] = t
	}
	s.putState(st)
	return res, nil
}

// getState returns a run state for one run.
func (s *Session) getState() *runState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.states); n > 0 {
		st := s.states[n-1]
		s.states = s.states[:n-1]
		return st
	}
	st := &runState{e: s.exec, vals: make([]*Tensor, s.slots), in: make([]*Tensor, 0, 8)}
	st.e.arena = &st.ar
	return st
}

// putState ends a run: every buffer goes back to the arena's free lists
// (the caller has detached what it keeps) and the state is kept for the
// next run.
func (s *Session) putState(st *runState) {
	st.ar.endRun()
	clear(st.vals)
	clear(st.in[:cap(st.in)])
	st.c = call{}
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
}

// execute checks the inputs and runs every node, returning the run state
// with the values of the graph outputs in vals.
func (s *Session) execute(inputs map[string]*Tensor) (*runState, error) {
	for _, io := range s.inputs {
		t, ok := inputs[io.name]
		if !ok || t == nil {
			return nil, fmt.Errorf("%w: %s: graph input %q is not given", ErrInput, s.name, io.name)
		}
		if err := io.accepts(t); err != nil {
			return nil, fmt.Errorf("%s: graph input %q: %w", s.name, io.name, err)
		}
	}
	for k := range inputs {
		if !slices.ContainsFunc(s.inputs, func(io graphIO) bool { return io.name == k }) {
			return nil, fmt.Errorf("%w: %s: %q is not a graph input", ErrInput, s.name, k)
		}
	}
	st := s.getState()
	vals, ar := st.vals, &st.ar
	copy(vals, s.consts)
	for _, io := range s.inputs {
		vals[io.slot] = inputs[io.name]
	}
	for _, n := range s.nodes {
		in := st.in[:0]
		for _, i := range n.in {
			if i >= 0 && vals[i] == nil && s.lazy[i] != "" {
				t, err := s.decodeLazy(s.lazy[i])
				if err != nil {
					s.putState(st)
					return nil, fmt.Errorf("%s: %s: %w", s.name, n.label, err)
				}
				vals[i] = t
			}
			if i < 0 {
				in = append(in, nil)
			} else {
				in = append(in, vals[i])
			}
		}
		st.in = in
		st.c = call{e: &st.e, n: n, in: in}
		out, err := runCall(&st.c)
		if err != nil {
			s.putState(st)
			return nil, fmt.Errorf("%s: %s: %w", s.name, n.label, err)
		}
		for k, i := range n.out {
			if i >= 0 && k < len(out) {
				vals[i] = out[k]
				if out[k] != nil {
					ar.retain(out[k])
				}
			}
		}
		for _, i := range n.free {
			if vals[i] != nil {
				ar.release(vals[i])
			}
			vals[i] = nil
		}
		ar.sweep()
	}
	return st, nil
}

// decodeLazy decodes a lazy initializer (Options.Lazy) for one run.
func (s *Session) decodeLazy(name string) (*Tensor, error) {
	in, _ := s.model.Initializer(name)
	data, err := s.model.InitializerBytes(name)
	if err != nil {
		return nil, err
	}
	s.model.Release(name)
	t, err := fromBytes(in.DType, in.Shape, data)
	if err != nil {
		return nil, fmt.Errorf("initializer %q: %w", name, err)
	}
	return t, nil
}

func (io graphIO) accepts(t *Tensor) error {
	if kindOf(io.dtype) != kindNone && t.kind() != kindOf(io.dtype) {
		return fmt.Errorf("%w: dtype %s, the model declares %s", ErrInput, t.DType, io.dtype)
	}
	if _, err := newChecked(&Tensor{DType: t.DType, Shape: t.Shape, F32: t.F32, I64: t.I64, Bool: t.Bool}); err != nil {
		return err
	}
	if io.dims != nil {
		if len(io.dims) != len(t.Shape) {
			return fmt.Errorf("%w: shape %v, the model declares rank %d", ErrInput, t.Shape, len(io.dims))
		}
		for i, d := range io.dims {
			if d >= 0 && int64(t.Shape[i]) != d {
				return fmt.Errorf("%w: shape %v, the model declares dimension %d = %d", ErrInput, t.Shape, i, d)
			}
		}
	}
	return nil
}

// Inputs returns the names of the graph inputs Run needs, in graph order.
func (s *Session) Inputs() []string {
	out := make([]string, len(s.inputs))
	for i, io := range s.inputs {
		out[i] = io.name
	}
	return out
}

// Outputs returns the names of the graph outputs, in graph order.
func (s *Session) Outputs() []string {
	out := make([]string, len(s.outputs))
	for i, io := range s.outputs {
		out[i] = io.name
	}
	return out
}
