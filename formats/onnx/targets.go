package onnx

import (
	"slices"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

// Target is an initializer holding the weight matrix of a matrix product:
// a pruning target.
type Target struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape // as stored
	// Transposed reports the stored layout: true for [out, in] (a PyTorch
	// Linear weight: Gemm with transB=1, or MatMul reading the weight
	// through a Transpose), false for [in, out] (MatMul's B read directly,
	// Gemm with transB=0, GPT-2's Conv1D).
	Transposed bool
	// Out and In are the output and input sizes of the product: the rows
	// and columns of the [out, in] view.
	Out, In int64
	// Op is the operator ("MatMul" or "Gemm") of the first product that
	// reads the weight; Uses counts the products reading it.
	Op   string
	Uses int
	// OtherUses lists, sorted and without repeats, the operators that read
	// the initializer other than as a product's weight ("Gather" for an
	// embedding tied to the LM head, "MatMul(A)" when it is also a first
	// operand). Callers usually leave such tensors alone.
	OtherUses []string
}

// PruneTargets lists the initializers of the main graph that are weight
// matrices of matrix products, in initializer order. The detection:
//
//   - a node of the default domain "MatMul" or "Gemm" whose input B (the
//     second input) is, possibly through a chain of at most 8 "Identity",
//     "Cast" and 2-D "Transpose" nodes (perm absent or [1, 0]), a dense or
//     sparse initializer;
//   - that initializer is 2-D of a floating-point dtype (F32, F16, BF16,
//     F64, FP8).
//
// The layout follows from the path: MatMul reads B as [in, out], Gemm as
// [in, out] with transB=0 and [out, in] with transB=1, and every Transpose
// on the way swaps the two. An initializer reached with both layouts is
// not a target. Graph inputs that share an initializer's name (IR < 4
// models list initializers as inputs too) do not change the result.
func (m *Model) PruneTargets() []Target {
	g := m.pb.GetGraph()
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = n
			}
		}
	}
	type acc struct {
		t        Target
		conflict bool
	}
	found := map[string]*acc{}
	weightPath := map[*onnxpb.NodeProto]bool{} // nodes on a weight path
	for _, n := range g.GetNode() {
		if !defaultDomain(n.GetDomain()) || len(n.GetInput()) < 2 {
			continue
		}
		op := n.GetOpType()
		if op != "MatMul" && op != "Gemm" {
			continue
		}
		transposed := op == "Gemm" && attrInt(n, "transB", 0) != 0
		name := n.GetInput()[1]
		var path []*onnxpb.NodeProto
		ok := false
		for depth := 0; depth <= 8; depth++ {
			if _, isInit := m.index[name]; isInit {
				ok = true
				break
			}
			p := producer[name]
			if p == nil || !defaultDomain(p.GetDomain()) || len(p.GetInput()) == 0 {
				break
			}
			switch p.GetOpType() {
			case "Identity", "Cast":
			case "Transpose":
				if perm, has := attrInts(p, "perm"); has && !slices.Equal(perm, []int64{1, 0}) {
					p = nil
				} else {
					transposed = !transposed
				}
			default:
				p = nil
			}
			if p == nil {
				break
			}
			path = append(path, p)
			name = p.GetInput()[0]
		}
		if !ok {
			continue
		}
		in := m.inits[m.index[name]]
		if len(in.Shape) != 2 || !in.DType.IsFloat() {
			continue
		}
		// A Transpose on the path must have been 2-D: the initializer is.
		a := found[name]
		if a == nil {
			a = &acc{t: Target{Name: name, DType: in.DType, Shape: in.Shape.Clone(), Transposed: transposed, Op: op}}
			if transposed {
				a.t.Out, a.t.In = in.Shape[0], in.Shape[1]
			} else {
				a.t.In, a.t.Out = in.Shape[0], in.Shape[1]
			}
			found[name] = a
		} else if a.t.Transposed != transposed {
			a.conflict = true
		}
		a.t.Uses++
		weightPath[n] = true
		for _, p := range path {
			weightPath[p] = true
		}
	}
	// Other readers of each target.
	for _, n := range g.GetNode() {
		for i, x := range n.GetInput() {
			a := found[x]
			if a == nil {
				continue
			}
			if weightPath[n] && (i == 1 || n.GetOpType() != "MatMul" && n.GetOpType() != "Gemm") {
				continue
			}
			use := n.GetOpType()
			if n.GetOpType() == "MatMul" || n.GetOpType() == "Gemm" {
				use += "(A)"
			}
			a.t.OtherUses = append(a.t.OtherUses, use)
		}
		for _, at := range n.GetAttribute() {
			subs := append([]*onnxpb.GraphProto{}, at.GetGraphs()...)
			if at.G != nil {
				subs = append(subs, at.G)
			}
			for _, sg := range subs {
				for x := range graphReads(sg) {
					if a := found[x]; a != nil {
						a.t.OtherUses = append(a.t.OtherUses, n.GetOpType())
					}
				}
			}
		}
	}
	var out []Target
	for _, in := range m.inits {
		a := found[in.Name]
		if a == nil || a.conflict {
			continue
		}
		slices.Sort(a.t.OtherUses)
		a.t.OtherUses = slices.Compact(a.t.OtherUses)
		out = append(out, a.t)
	}
	return out
}

// graphReads returns the names read by the nodes of g and its subgraphs.
func graphReads(g *onnxpb.GraphProto) map[string]bool {
	r := map[string]bool{}
	var walk func(g *onnxpb.GraphProto, depth int)
	walk = func(g *onnxpb.GraphProto, depth int) {
		if depth > 64 {
			return
		}
		for _, n := range g.GetNode() {
			for _, x := range n.GetInput() {
				r[x] = true
			}
			for _, at := range n.GetAttribute() {
				if at.G != nil {
					walk(at.G, depth+1)
				}
				for _, sg := range at.GetGraphs() {
					walk(sg, depth+1)
				}
			}
		}
	}
	walk(g, 0)
	return r
}

func defaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

// attrInt returns the INT attribute name of n, or def.
func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name && a.I != nil {
			return a.GetI()
		}
	}
	return def
}

// attrInts returns the INTS attribute name of n.
func attrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetInts(), true
		}
	}
	return nil, false
}
