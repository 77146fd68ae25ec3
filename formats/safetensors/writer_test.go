package safetensors

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

func entriesOf(ws []gen.Tensor) []Entry {
	es := make([]Entry, len(ws))
	for i, w := range ws {
		es[i] = BytesEntry(w.Name, w.DType, w.Shape, w.Data)
	}
	return es
}

// TestRoundTrip reads generated files, writes them back, and reads the
// result: every tensor must be bit-identical, for each dtype, both when
// copying from an open file (copy_file_range) and from memory.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		b, ws := goodFile(t, dt)
		src := filepath.Join(dir, string(dt)+".in.safetensors")
		os.WriteFile(src, b, 0o644)
		f, err := Open(src)
		if err != nil {
			t.Fatal(err)
		}
		var es []Entry
		for _, info := range f.Tensors() {
			e, err := f.Entry(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		out1 := filepath.Join(dir, string(dt)+".file.safetensors")
		out2 := filepath.Join(dir, string(dt)+".mem.safetensors")
		if err := WriteFile(out1, f.Metadata(), es); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(out2, map[string]string{"format": "pt"}, entriesOf(ws)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		b1, _ := os.ReadFile(out1)
		b2, _ := os.ReadFile(out2)
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s: copying from a file and from memory give different bytes", dt)
		}
		g, err := Open(out1)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			got, err := g.Bytes(w.Name)
			if err != nil || !bytes.Equal(got, w.Data) {
				t.Errorf("%s: %s not bit-identical after round trip", dt, w.Name)
			}
		}
		g.Close()
	}
}

func TestWriteDeterministicAndAligned(t *testing.T) {
	dir := t.TempDir()
	es := []Entry{
		BytesEntry("z.u8", tensor.U8, tensor.Shape{3}, []byte{1, 2, 3}),
		BytesEntry("a.f16", tensor.F16, tensor.Shape{3}, []byte{1, 2, 3, 4, 5, 6}),
		BytesEntry("m.f32", tensor.F32, tensor.Shape{1}, []byte{9, 9, 9, 9}),
		BytesEntry("p.pass", tensor.DType("F8_E8M0"), tensor.Shape{2}, []byte{7, 7}),
		BytesEntry("e.empty", tensor.F64, tensor.Shape{0, 5}, nil),
		BytesEntry("s.scalar", tensor.I64, nil, []byte{1, 0, 0, 0, 0, 0, 0, 0}),
	}
	meta := map[string]string{"b": "2", "a": "<&>"}
	p1, p2 := filepath.Join(dir, "1.safetensors"), filepath.Join(dir, "2.safetensors")
	if err := WriteFile(p1, meta, es); err != nil {
		t.Fatal(err)
	}
	rev := make([]Entry, len(es))
	for i := range es {
		rev[i] = es[len(es)-1-i]
	}
	if err := WriteFile(p2, map[string]string{"a": "<&>", "b": "2"}, rev); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("same tensors in a different order gave different files")
	}
	if n := binary.LittleEndian.Uint64(b1); (8+n)%8 != 0 {
		t.Errorf("header length %d: data section not 8-aligned", n)
	}
	f, err := Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, info := range f.Tensors() {
		if a := int64(align(info.DType)); info.Offset%a != 0 {
			t.Errorf("%s at offset %d is not aligned to %d", info.Name, info.Offset, a)
		}
	}
	if f.Metadata()["a"] != "<&>" {
		t.Errorf("metadata = %v", f.Metadata())
	}
	if got, _ := f.Bytes("p.pass"); !bytes.Equal(got, []byte{7, 7}) {
		t.Errorf("passthrough tensor = %v", got)
	}
	if s, _ := f.Lookup("s.scalar"); s.Shape == nil || len(s.Shape) != 0 {
		t.Errorf("scalar shape = %#v", s.Shape)
	}
}

func TestWriteRejectsBadEntriesAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ok := BytesEntry("a", tensor.F32, tensor.Shape{1}, make([]byte, 4))
	tests := []struct {
		name string
		es   []Entry
		want string
	}{
		{"duplicate", []Entry{ok, ok}, "duplicate"},
		{"size mismatch", []Entry{BytesEntry("b", tensor.F32, tensor.Shape{2}, make([]byte, 4))}, "needs 8"},
		{"reserved name", []Entry{BytesEntry("__metadata__", tensor.U8, tensor.Shape{0}, nil)}, "invalid tensor name"},
		{"negative dim", []Entry{BytesEntry("c", tensor.U8, tensor.Shape{-1}, nil)}, "negative"},
		{"short writer", []Entry{{Name: "d", DType: tensor.U8, Shape: tensor.Shape{4}, Size: 4,
			Write: func(w io.Writer) error { _, err := w.Write([]byte{1}); return err }}}, "wrote 1 bytes, want 4"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, "out.safetensors")
		err := WriteFile(p, nil, tt.es)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming %s and containing %q", tt.name, err, p, tt.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: left files behind: %v", tt.name, ents)
		}
	}
}

// TestWriteStream writes the same entries with Write, to a plain writer
// and through Buffers of awkward sizes (with entries read from a file into
// them), and with WriteFile: the bytes must be the same.
func TestWriteStream(t *testing.T) {
	dir := t.TempDir()
	entries := copyEntries(t, dir, []int{3, 70001, 1, 4093}, []string{"b", "d"}, func(i, j int) byte { return byte(j*31 + i) })
	meta := map[string]string{"format": "pt"}
	path := filepath.Join(dir, "file.safetensors")
	if err := WriteFile(path, meta, entries); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 7, 4096 + 12, 1 << 20} {
		var out bytes.Buffer
		var w io.Writer = &out
		if size > 0 {
			w = NewBuffer(&out, size)
		}
		if err := Write(w, meta, entries); err != nil {
			t.Fatalf("buffer %d: %v", size, err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("buffer %d: Write gave %d bytes that differ from WriteFile's %d", size, out.Len(), len(want))
		}
	}
}
