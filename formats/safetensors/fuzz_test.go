package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// FuzzReader feeds arbitrary files to the reader. It is seeded with the
// generated checkpoints of testdata/gen and every corruption of them; the
// seeds run as ordinary tests. Invariants: no panic; any error wraps
// ErrFormat; an accepted file's tensors tile its data section and can be
// read, and writing them back gives a file that parses to the same header.
func FuzzReader(f *testing.F) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
		good, _ := goodFile(f, dt)
		f.Add(good)
		for _, c := range gen.Corruptions() {
			f.Add(c.Apply(good))
		}
	}
	gp := gen.Weights(gen.GPT2(tensor.F16, 1))
	f.Add(gen.Pack(gp[:4], nil).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		var sum int64
		var es []Entry
		for _, info := range r.Tensors() {
			data, err := r.Bytes(info.Name)
			if err != nil || int64(len(data)) != info.Size {
				t.Fatalf("%s: %d bytes, err %v", info.Name, len(data), err)
			}
			sum += info.Size
			es = append(es, BytesEntry(info.Name, info.DType, info.Shape, data))
		}
		if sum != r.Size()-8-r.HeaderSize() {
			t.Fatalf("tensors hold %d bytes, data section %d", sum, r.Size()-8-r.HeaderSize())
		}
		header, _, err := Layout(r.Metadata(), es)
		if err != nil {
			t.Fatalf("Layout of an accepted file: %v", err)
		}
		h2, err := ParseHeader(header, sum)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if len(h2.Tensors) != len(es) {
			t.Fatalf("re-encoded header has %d tensors, want %d", len(h2.Tensors), len(es))
		}
	})
}

// FuzzParseHeader fuzzes the JSON header parser alone.
func FuzzParseHeader(f *testing.F) {
	good, _ := goodFile(f, tensor.F16)
	n := binary.LittleEndian.Uint64(good)
	f.Add(good[8:8+n], int64(len(good))-8-int64(n))
	for _, c := range gen.Corruptions() {
		b := c.Apply(good)
		if len(b) >= 8 {
			if m := binary.LittleEndian.Uint64(b); m <= uint64(len(b)-8) {
				f.Add(b[8:8+m], int64(len(b))-8-int64(m))
			}
		}
	}
	f.Fuzz(func(t *testing.T, header []byte, dataSize int64) {
		h, err := ParseHeader(header, dataSize)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		var end int64
		for _, ti := range h.Tensors {
			if ti.Offset != end || ti.Size < 0 {
				t.Fatalf("accepted a header whose ranges do not tile: %+v", h.Tensors)
			}
			end += ti.Size
		}
		if end != dataSize {
			t.Fatalf("accepted ranges covering %d of %d bytes", end, dataSize)
		}
	})
}
