package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// FuzzDecode feeds arbitrary bytes to the decoder: it must return a model
// or an error, never panic or allocate beyond what the input justifies,
// and a decoded model must list, read, check and write back.
// The seed corpus holds the shared ONNX files and small crafted models.
func FuzzDecode(f *testing.F) {
	for _, rel := range []string{pastPath, storiesPath} {
		if root := sharedtest.Root(); root != "" {
			if b, err := os.ReadFile(filepath.Join(root, rel)); err == nil {
				f.Add(b)
			}
		}
	}
	w := tp("w", TypeFloat, 2)
	w.RawData = make([]byte, 8)
	for _, mp := range []proto.Message{
		miniModel(w),
		sparseModel(2, []int64{4}, []int64{0, 3}),
		sparseModel(1, []int64{2, 2}, []int64{1, 1}),
		sparseModel(0, []int64{1 << 40, 1 << 40}, nil),
	} {
		b, _ := proto.Marshal(mp)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x02, 0x2a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, "")
		if err != nil {
			return
		}
		for _, in := range m.Initializers() {
			// Sparse tensors expand to their dense size: bound it here.
			if in.Bytes > 1<<24 {
				continue
			}
			b, err := m.InitializerBytes(in.Name)
			if err == nil && in.Bytes >= 0 && int64(len(b)) != in.Bytes {
				t.Fatalf("%s: %d bytes, listed %d", in.Name, len(b), in.Bytes)
			}
		}
		_ = m.PruneTargets()
		_ = m.Check()
		if len(data) < 1<<16 {
			out := filepath.Join(t.TempDir(), "m.onnx")
			if err := m.Write(out, WriteOptions{}); err == nil {
				if _, err := Open(out); err != nil {
					t.Fatalf("written model does not open: %v", err)
				}
			}
		}
	})
}
