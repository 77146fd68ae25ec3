package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// goodFile returns a small valid file: a tiny llama in dtype dt.
func goodFile(t testing.TB, dt tensor.DType) ([]byte, []gen.Tensor) {
	t.Helper()
	ws := gen.Weights(gen.Llama(dt, 1))
	return gen.Pack(ws, map[string]string{"format": "pt"}).Encode(), ws
}

func TestReadGenerated(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		b, ws := goodFile(t, dt)
		f, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		if got := f.Metadata()["format"]; got != "pt" {
			t.Errorf("%s: metadata format = %q", dt, got)
		}
		if len(f.Tensors()) != len(ws) {
			t.Fatalf("%s: %d tensors, want %d", dt, len(f.Tensors()), len(ws))
		}
		for _, w := range ws {
			info, ok := f.Lookup(w.Name)
			if !ok {
				t.Fatalf("%s: %s missing", dt, w.Name)
			}
			if info.DType != dt || !info.Shape.Equal(w.Shape) {
				t.Errorf("%s: %s is %s %v, want %s %v", dt, w.Name, info.DType, info.Shape, dt, w.Shape)
			}
			got, err := f.Bytes(w.Name)
			if err != nil || !bytes.Equal(got, w.Data) {
				t.Errorf("%s: %s bytes differ (err %v)", dt, w.Name, err)
			}
		}
	}
}

func TestOpenMapsFile(t *testing.T) {
	b, ws := goodFile(t, tensor.F32)
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Mapped() {
		t.Log("file not memory-mapped on this platform; Bytes copies")
	}
	for _, w := range ws {
		got, _ := f.Bytes(w.Name)
		if !bytes.Equal(got, w.Data) {
			t.Errorf("%s differs", w.Name)
		}
		sec, _ := f.Section(w.Name)
		var buf bytes.Buffer
		buf.ReadFrom(sec)
		if !bytes.Equal(buf.Bytes(), w.Data) {
			t.Errorf("%s: Section differs", w.Name)
		}
	}
	if _, err := f.Bytes("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor error = %v", err)
	}
}

// TestCorruptFiles is the table of bad inputs: every corruption of a good
// file must be rejected with ErrFormat and a message naming the problem,
// whether read from memory or opened by path (the path must be named).
func TestCorruptFiles(t *testing.T) {
	good, _ := goodFile(t, tensor.F32)
	dir := t.TempDir()
	for _, c := range gen.Corruptions() {
		t.Run(c.Name, func(t *testing.T) {
			bad := c.Apply(good)
			if bytes.Equal(bad, good) {
				t.Fatal("corruption changed nothing")
			}
			_, err := NewReader(bytes.NewReader(bad), int64(len(bad)))
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("NewReader error = %v, want ErrFormat", err)
			}
			if !strings.Contains(err.Error(), c.Want) {
				t.Errorf("error %q does not contain %q", err, c.Want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			p := filepath.Join(dir, strings.ReplaceAll(c.Name, " ", "_")+".safetensors")
			os.WriteFile(p, bad, 0o644)
			if _, err := Open(p); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), p) {
				t.Errorf("Open error = %v, want ErrFormat naming %s", err, p)
			}
		})
	}
}

func TestHeaderEdgeCases(t *testing.T) {
	tests := []struct {
		name, header string
		data         int64
		err          string // "" for valid
	}{
		{"empty object", `{}`, 0, ""},
		{"metadata only", `{"__metadata__":{"a":"b"}}`, 0, ""},
		{"null metadata", `{"__metadata__":null}`, 0, ""},
		{"scalar", `{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, 4, ""},
		{"zero-size tensors share an offset", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]}}`, 0, ""},
		{"passthrough dtype", `{"x":{"dtype":"F8_E8M0","shape":[3],"data_offsets":[0,3]}}`, 3, ""},
		{"leading whitespace", ` {}`, 0, ""},
		{"empty header", ``, 0, "JSON object"},
		{"empty name", `{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4, "empty name"},
		{"duplicate metadata", `{"__metadata__":{},"__metadata__":{}}`, 0, "duplicate"},
		{"duplicate metadata key", `{"__metadata__":{"a":"1","a":"2"}}`, 0, "duplicate"},
		{"metadata not object", `{"__metadata__":[]}`, 0, "object of strings"},
		{"tensor not object", `{"a":3}`, 0, "expected"},
		{"dtype number", `{"a":{"dtype":4,"shape":[],"data_offsets":[0,4]}}`, 4, "invalid dtype"},
		{"three offsets", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1, "more than 2"},
		{"one offset", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[1]}}`, 1, "2 numbers"},
		{"too many dims", `{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}`, 1, "more than 16"},
		{"negative offset", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, 1, "negative"},
		{"exponent", `{"a":{"dtype":"U8","shape":[1e2],"data_offsets":[0,100]}}`, 100, "not an integer"},
		{"duplicate shape", `{"a":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}`, 1, "duplicate"},
		{"passthrough overflow", `{"x":{"dtype":"C64","shape":[4611686018427387904,4],"data_offsets":[0,3]}}`, 3, "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader([]byte(tt.header), tt.data)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want ErrFormat containing %q", err, tt.err)
			}
		})
	}
}
