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
	ok = eachField(data, func(f field) bool {
		if f.num != fieldModelGraph || f.typ != protowire.BytesType {
			out = append(out, f.all...)
			return true
		}
		graphs++
		sg, r, ok := stripGraph(f.payload)
		if !ok || graphs > 1 {
			return false
		}
		raws = r
		out = protowire.AppendTag(out, f.num, f.typ)
		out = protowire.AppendBytes(out, sg)
		return true
	})
	return out, raws, ok
}

func stripGraph(g []byte) (out []byte, raws [][]byte, ok bool) {
	ok = eachField(g, func(f field) bool {
		if f.num != fieldGraphInitializer || f.typ != protowire.BytesType {
			out = append(out, f.all...)
			return true
		}
		st, raw, ok := stripTensor(f.payload)
		if !ok {
			return false
		}
		raws = append(raws, raw)
		out = protowire.AppendTag(out, f.num, f.typ)
		out = protowire.AppendBytes(out, st)
		return true
	})
	return out, raws, ok
}

func stripTensor(t []byte) (out, raw []byte, ok bool) {
	seen := false
	ok = eachField(t, func(f field) bool {
		if f.num == fieldTensorRawData && f.typ == protowire.BytesType {
			if seen {
				return false
			}
			seen = true
			if len(f.payload) >= aliasMinBytes {
				raw = f.payload
				return true
			}
		}
		out = append(out, f.all...)
		return true
	})
	return out, raw, ok
}

// field is one encoded field of a message: its number and wire type, all
// its bytes (tag included) and, when length-delimited, its payload.
type field struct {
	num     protowire.Number
	typ     protowire.Type
	all     []byte
	payload []byte
}

// eachField passes each field of the encoded message b to f in order. It
// returns false when b is not a valid encoding or f returns false.
func eachField(b []byte, f func(field) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		fl := field{num: num, typ: typ, all: b[:n+m]}
		if typ == protowire.BytesType {
			fl.payload, _ = protowire.ConsumeBytes(b[n:])
		}
		if !f(fl) {
			return false
		}
		b = b[n+m:]
	}
	return true
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
