package onnx

import (
	"fmt"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
)

// maxGraphDepth bounds the nesting of subgraphs (If, Loop, Scan bodies).
const maxGraphDepth = 64

// Check validates the model's structure beyond what [Open] checks, as a
// reader such as ONNX Runtime relies on it:
//
//   - ir_version is at least 3 and opset_import lists each domain once,
//     with a positive version; every node's domain is imported;
//   - in the main graph and every subgraph: graph inputs, initializers and
//     node outputs are each defined once (single assignment); every node
//     input is empty (an omitted optional input) or defined earlier — by a
//     graph input, an initializer, an earlier node, or an enclosing graph —
//     so nodes are topologically sorted; every graph output is defined;
//   - every node has an op_type and attributes with distinct, non-empty
//     names; every tensor attribute and subgraph initializer is well formed;
//   - sparse initializers need IR version 6; their indices are in range and
//     strictly increasing.
//
// Errors wrap [ErrFormat] and name the graph, node or tensor.
func (m *Model) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrFormat, m.name, fmt.Sprintf(format, args...))
	}
	ir := m.pb.GetIrVersion()
	if ir < 3 {
		return bad("ir_version %d: at least 3 is needed (operator set imports)", ir)
	}
	domains := map[string]bool{}
	for _, o := range m.pb.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if domains[d] {
			return bad("opset_import lists domain %q twice", o.GetDomain())
		}
		if o.GetVersion() <= 0 {
			return bad("opset_import: domain %q has version %d", o.GetDomain(), o.GetVersion())
		}
		domains[d] = true
	}
	if len(domains) == 0 {
		return bad("no opset_import")
	}
	if len(m.pb.GetGraph().GetSparseInitializer()) > 0 && ir < 6 {
		return bad("sparse initializers need IR version 6; the model has %d", ir)
	}
	for i, s := range m.sparse {
		if s != nil {
			if err := m.checkSparse(s, fmt.Sprintf("sparse initializer %q", m.inits[i].Name)); err != nil {
				return err
			}
		}
	}
	return m.checkGraph(m.pb.GetGraph(), "main graph", nil, domains, 0)
}

// checkGraph checks one graph; outer holds the names visible from
// enclosing graphs.
func (m *Model) checkGraph(g *onnxpb.GraphProto, gname string, outer map[string]bool, domains map[string]bool, depth int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrFormat, m.name, gname, fmt.Sprintf(format, args...))
	}
	if depth > maxGraphDepth {
		return bad("subgraphs nested deeper than %d", maxGraphDepth)
	}
	defined := map[string]bool{}
	visible := func(x string) bool { return defined[x] || outer[x] }
	define := func(x, what string, allowInput bool) error {
		if x == "" {
			return bad("%s has an empty name", what)
		}
		if defined[x] && !allowInput {
			return bad("%s %q is defined twice", what, x)
		}
		defined[x] = true
		return nil
	}
	inputs := map[string]bool{}
	for _, vi := range g.GetInput() {
		if err := define(vi.GetName(), "graph input", false); err != nil {
			return err
		}
		inputs[vi.GetName()] = true
	}
	// IR < 4 lists initializers among the inputs too.
	for _, t := range g.GetInitializer() {
		if err := define(t.GetName(), "initializer", inputs[t.GetName()]); err != nil {
			return err
		}
		if depth > 0 {
			if _, err := m.meta(t, gname+" initializer "+fmt.Sprintf("%q", t.GetName())); err != nil {
				return err
			}
		}
	}
	for _, s := range g.GetSparseInitializer() {
		if err := define(s.GetValues().GetName(), "sparse initializer", inputs[s.GetValues().GetName()]); err != nil {
			return err
		}
		if depth > 0 {
			if _, err := m.sparseMeta(s, gname+" sparse initializer"); err != nil {
				return err
			}
		}
	}
	for i, n := range g.GetNode() {
		nname := fmt.Sprintf("node %d (%s %q)", i, n.GetOpType(), n.GetName())
		if n.GetOpType() == "" {
			return bad("%s has no op_type", nname)
		}
		d := n.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if !domains[d] {
			return bad("%s: domain %q is not in opset_import", nname, n.GetDomain())
		}
		for _, x := range n.GetInput() {
			if x != "" && !visible(x) {
				return bad("%s reads %q, which no graph input, initializer or earlier node defines", nname, x)
			}
		}
		attrs := map[string]bool{}
		for _, a := range n.GetAttribute() {
			an := a.GetName()
			if an == "" || attrs[an] {
				return bad("%s: attribute name %q is empty or repeated", nname, an)
			}
			attrs[an] = true
			what := fmt.Sprintf("%s attribute %q", nname, an)
			if t := a.GetT(); t != nil {
				if _, err := m.meta(t, what); err != nil {
					return err
				}
			}
			for _, t := range a.GetTensors() {
				if _, err := m.meta(t, what); err != nil {
					return err
				}
			}
			if s := a.GetSparseTensor(); s != nil {
				if err := m.checkSparse(s, what); err != nil {
					return err
				}
			}
			subs := a.GetGraphs()
			if a.GetG() != nil {
				subs = append([]*onnxpb.GraphProto{a.GetG()}, subs...)
			}
			for _, sg := range subs {
				scope := map[string]bool{}
				for k := range outer {
					scope[k] = true
				}
				for k := range defined {
					scope[k] = true
				}
				if err := m.checkGraph(sg, gname+" > "+what, scope, domains, depth+1); err != nil {
					return err
				}
			}
		}
		for _, x := range n.GetOutput() {
			if x == "" {
				continue // an omitted optional output
			}
			if err := define(x, nname+" output", false); err != nil {
				return err
			}
		}
	}
	for _, vi := range g.GetOutput() {
		if !visible(vi.GetName()) {
			return bad("graph output %q is not defined", vi.GetName())
		}
	}
	return nil
}
