package safetensors

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
)

// TestWriteFileDirect writes the same entries through the O_DIRECT writer
// (threshold 0) and through the page cache: the files must be identical.
// The entries span several 8 MiB buffers, have odd sizes (so the last block
// is partial) and half of them are copied from an open file (read into the writer's buffer
// through BufferWriter).
func TestWriteFileDirect(t *testing.T) {
	seed := uint64(20261130)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()
	entries := copyEntries(t, dir, []int{3, 5<<20 + 7, 1, 9<<20 + 1, 4093}, []string{"b", "d", "e"}, func(int, int) byte { return byte(r.Uint32()) })
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

// TestReadFull reads a range into BufferWriters whose free space ends
// inside an element and into a plain writer: the output is the range, and
// inspect sees it all, in whole elements, in order.
func TestReadFull(t *testing.T) {
	src := make([]byte, 1000)
	for i := range src {
		src[i] = byte(i*7 + 3)
	}
	r := bytes.NewReader(src)
	for _, c := range []struct {
		size, unit int
		off, n     int64
	}{{10, 4, 8, 400}, {4, 4, 0, 1000}, {3, 4, 4, 96}, {7, 2, 1, 998}, {64, 1, 5, 0}} {
		for _, plain := range []bool{false, true} {
			var out bytes.Buffer
			sb := NewBuffer(&out, c.size)
			var w io.Writer = sb
			if plain {
				w = &out
			}
			var seen []byte
			err := ReadFull(w, r, c.off, c.n, c.unit, func(b []byte) {
				if len(b)%c.unit != 0 {
					t.Errorf("%+v: inspect got %d bytes, not whole %d-byte elements", c, len(b), c.unit)
				}
				seen = append(seen, b...)
			})
			if err != nil {
				t.Fatalf("%+v plain %v: %v", c, plain, err)
			}
			if err := sb.Flush(); err != nil {
				t.Fatal(err)
			}
			got := out.Bytes()
			want := src[c.off : c.off+c.n]
			if !bytes.Equal(got, want) || !bytes.Equal(seen, want) {
				t.Errorf("%+v plain %v: wrote %d bytes, inspected %d, want %d equal ones", c, plain, len(got), len(seen), len(want))
			}
		}
	}
	if err := ReadFull(io.Discard, r, 990, 20, 1, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading past the end: %v, want io.ErrUnexpectedEOF", err)
	}
	if err := ReadFull(NewBuffer(io.Discard, 64), r, 0, 3, 4, nil); err == nil {
		t.Errorf("3 bytes of 4-byte elements into a buffer: no error")
	}
	if err := ReadFull(io.Discard, r, 0, 10, 4, nil); err == nil {
		t.Errorf("10 bytes of 4-byte elements: no error")
	}
}

// copyEntries returns U8 entries named a, b, … of the given sizes, filled
// by fill(entry, byte), followed by copies (named copy-NAME) of the named
// ones read from a file in dir that holds them: the two kinds of entry the
// writers take.
func copyEntries(t *testing.T, dir string, sizes []int, copies []string, fill func(i, j int) byte) []Entry {
	t.Helper()
	var mem []Entry
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = fill(i, j)
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
	t.Cleanup(func() { f.Close() })
	entries := append([]Entry(nil), mem...)
	for _, name := range copies {
		e, err := f.Entry(name)
		if err != nil {
			t.Fatal(err)
		}
		e.Name = "copy-" + name
		entries = append(entries, e)
	}
	return entries
}
