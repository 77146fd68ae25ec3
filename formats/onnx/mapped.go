package onnx

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
)

// aliasMinBytes is the smallest raw_data payload that decodeAliased leaves
// in the file's bytes instead of copying.
const aliasMinBytes = 4096

// Field numbers of onnx.proto used by stripRaw.
const (
	fieldModelGraph       = 7 // ModelProto.graph
	fieldGraphInitializer = 5 // GraphProto.initializer
	fieldTensorRawData    = 9 // TensorProto.raw_data
)

// stripRaw returns a copy of the encoded ModelProto data without the
// raw_data payloads of aliasMinBytes or more of the main graph's
// initializers, and those payloads — subslices of data, not copies — in
// initializer order (nil for an initializer that keeps its raw_data). ok
// is false when the encoding is not the plain one this expects (a graph
// or a raw_data field given twice); the caller then decodes normally.
func stripRaw(data []byte) (out []byte, raws [][]byte, ok bool) {
	out = make([]byte, 0, 1<<16)
	graphs := 0
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, nil, false
		}
		if num == fieldModelGraph && typ == protowire.BytesType {
			graphs++
			g, _ := protowire.ConsumeBytes(b[n:])
			sg, r, ok := stripGraph(g)
			if !ok || graphs > 1 {
				return nil, nil, false
			}
			raws = r
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, sg)
		} else {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out, raws, true
}

func stripGraph(g []byte) (out []byte, raws [][]byte, ok bool) {
	for b := g; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, nil, false
		}
		if num == fieldGraphInitializer && typ == protowire.BytesType {
			t, _ := protowire.ConsumeBytes(b[n:])
			st, raw, ok := stripTensor(t)
			if !ok {
				return nil, nil, false
			}
			raws = append(raws, raw)
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, st)
		} else {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out, raws, true
}

func stripTensor(t []byte) (out, raw []byte, ok bool) {
	seen := false
	for b := t; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, nil, false
		}
		if num == fieldTensorRawData && typ == protowire.BytesType {
			if seen {
				return nil, nil, false
			}
			seen = true
			v, _ := protowire.ConsumeBytes(b[n:])
			if len(v) >= aliasMinBytes {
				raw = v
				b = b[n+m:]
				continue
			}
		}
		out = append(out, b[:n+m]...)
		b = b[n+m:]
	}
	return out, raw, true
}

// decodeAliased decodes data as decode does, except that large raw_data
// payloads of the main graph's initializers stay in data (aliased, not
// copied): data must not change while the model is used. It falls back
// to decode (aliased false: nothing points into data) when stripRaw
// cannot handle the encoding.
func decodeAliased(name string, data []byte, dir string) (m *Model, aliased bool, err error) {
	stripped, raws, ok := stripRaw(data)
	if !ok {
		m, err = decode(name, data, dir)
		return m, false, err
	}
	pb := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(stripped, pb); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrFormat, name, err)
	}
	inits := pb.GetGraph().GetInitializer()
	if len(inits) != len(raws) {
		m, err = decode(name, data, dir)
		return m, false, err
	}
	for i, r := range raws {
		if r != nil {
			inits[i].RawData = r
		}
	}
	m = &Model{name: name, dir: dir, size: int64(len(data)), pb: pb, index: map[string]int{}, files: map[string]int64{}}
	if err := m.index1(); err != nil {
		return nil, false, err
	}
	return m, true, nil
}
