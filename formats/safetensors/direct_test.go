package safetensors

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

// TestWriteFileDirect writes the same entries through the O_DIRECT writer
// (threshold 0) and through the page cache: the files must be identical.
// The entries span several 8 MiB buffers, have odd sizes (so the last block
// is partial) and half of them are copied from an open file (ReadRangeFrom).
func TestWriteFileDirect(t *testing.T) {
	seed := uint64(20261130)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()
	var mem []Entry
	for i, n := range []int{3, 5<<20 + 7, 1, 9<<20 + 1, 4093} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		mem = append(mem, BytesEntry(string(rune('a'+i)), tensor.U8, tensor.Shape{int64(n)}, b))
	}
	src := filepath.Join(dir, "src.safetensors")
	if err := writeFile(src, nil, mem, 1<<62); err != nil {
		t.Fatal(err)
	}
	f, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := append([]Entry(nil), mem...)
	for _, name := range []string{"b", "d", "e"} {
		e, err := f.Entry(name)
		if err != nil {
			t.Fatal(err)
		}
		e.Name = "copy-" + name
		entries = append(entries, e)
	}
	meta := map[string]string{"format": "pt"}
	direct, plain := filepath.Join(dir, "direct.safetensors"), filepath.Join(dir, "plain.safetensors")
	if err := writeFile(direct, meta, entries, 0); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(plain, meta, entries, 1<<62); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(direct)
	b, _ := os.ReadFile(plain)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("O_DIRECT file (%d bytes) differs from the page-cache one (%d bytes)", len(a), len(b))
	}
	if len(a)%directAlign == 0 || len(a) < 3*directChunk {
		t.Fatalf("test file of %d bytes does not cover a partial last block and three buffers", len(a))
	}
	if _, err := Open(direct); err != nil {
		t.Fatal(err)
	}
}
