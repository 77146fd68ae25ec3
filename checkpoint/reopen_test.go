package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestReopenAndReadAt: a reopened handle reads the same tensors after the
// original is closed; ReadAt returns any byte range of a tensor, checks
// bounds, and fails cleanly on a closed model; Reopen notices a checkpoint
// rewritten with another layout.
func TestReopenAndReadAt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if err := gen.WriteCheckpoint(dir, gen.Llama(tensor.BF16, 3)); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, name := range m.Names() {
		if want[name], err = m.ReadInto(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := m.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	m.Close()
	if err := m.ReadAt(m.Names()[0], make([]byte, 2), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt on a closed model: %v, want os.ErrClosed", err)
	}
	for _, name := range n.Names() {
		w := want[name]
		for _, r := range [][2]int{{0, len(w)}, {2, len(w)}, {0, 2}, {len(w) / 2, len(w)/2 + 2}, {len(w), len(w)}} {
			got := make([]byte, r[1]-r[0])
			if err := n.ReadAt(name, got, int64(r[0])); err != nil {
				t.Fatalf("%s [%d, %d): %v", name, r[0], r[1], err)
			}
			if !bytes.Equal(got, w[r[0]:r[1]]) {
				t.Fatalf("%s [%d, %d): bytes differ", name, r[0], r[1])
			}
		}
		if err := n.ReadAt(name, make([]byte, 2), int64(len(w)-1)); err == nil {
			t.Fatalf("%s: read past the end succeeded", name)
		}
		if err := n.ReadAt(name, nil, -1); err == nil {
			t.Fatalf("%s: negative offset accepted", name)
		}
	}
	// Rewrite the checkpoint with other shapes: the handle notices.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	other := gen.Llama(tensor.BF16, 3)
	other.Hidden = 32
	if err := gen.WriteCheckpoint(dir, other); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reopen(); !errors.Is(err, ErrFormat) {
		t.Fatalf("Reopen of a rewritten checkpoint: %v, want ErrFormat", err)
	}
}

// TestReopenExpanded: a tensor stored as CSR parts keeps its expansion
// through Reopen, and ReadAt of any range decodes it.
func TestReopenExpanded(t *testing.T) {
	const rows, cols = 5, 7
	dense := make([]float32, rows*cols)
	var crow, col []int64
	var vals []byte
	crow = append(crow, 0)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			if (r*cols+c)%3 == 0 {
				v := float32(r*cols + c + 1)
				dense[r*cols+c] = v
				col = append(col, int64(c))
				vals = binary.LittleEndian.AppendUint32(vals, math.Float32bits(v))
			}
		}
		crow = append(crow, int64(len(col)))
	}
	parts, err := sparse.EncodeCSR(tensor.F32, rows, cols, crow, col, vals)
	if err != nil {
		t.Fatal(err)
	}
	var ts []gen.Tensor
	for _, p := range parts {
		ts = append(ts, gen.Tensor{Name: "w" + p.Suffix, DType: p.DType, Shape: p.Shape, Data: p.Data})
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(file, gen.Pack(ts, map[string]string{sparse.MetadataKey: sparse.CSRVersion}).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ExpandSparse(); err != nil {
		t.Fatal(err)
	}
	n, err := m.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if info, ok := n.Tensor("w"); !ok || info.Offset != -1 {
		t.Fatalf("reopened handle: tensor w %+v, %v; want the expanded tensor", info, ok)
	}
	full := make([]float32, rows*cols)
	if err := n.ReadAt("w", tensor.F32Bytes(full), 0); err != nil {
		t.Fatal(err)
	}
	part := make([]float32, 9)
	if err := n.ReadAt("w", tensor.F32Bytes(part), 4*11); err != nil {
		t.Fatal(err)
	}
	for i, v := range full {
		if v != dense[i] {
			t.Fatalf("element %d = %g, want %g", i, v, dense[i])
		}
	}
	for i, v := range part {
		if v != dense[11+i] {
			t.Fatalf("partial read: element %d = %g, want %g", 11+i, v, dense[11+i])
		}
	}
}
