package safetensors

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/testdata/gen"
)

// benchFile writes a synthetic F32 file of total bytes in tensors of
// tensorBytes once per benchmark run.
func benchFile(b *testing.B, total, tensorBytes int64) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), fmt.Sprintf("synthetic-%d.safetensors", total))
	if err := gen.WriteSynthetic(p, total, tensorBytes); err != nil {
		b.Fatal(err)
	}
	// Flush the new file to disk so that background writeback does not
	// disturb the timings that follow.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkOpen compares opening (validating the header, mapping the file)
// a 1 MB and a 1 GB file with the same number of tensors: the cost should
// be set by the header, not the data.
func BenchmarkOpen(b *testing.B) {
	// Both files are made before either is timed.
	files := map[string]string{
		"1MB": benchFile(b, 1<<20, 1<<16),
		"1GB": benchFile(b, 1<<30, 1<<26),
	}
	for _, name := range []string{"1MB", "1GB"} {
		p := files[name]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f, err := Open(p)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkCopy1GB compares a streaming re-write of a 1 GB file (header
// recomputed, every tensor copied) with cp of the same file, in one run.
func BenchmarkCopy1GB(b *testing.B) {
	src := benchFile(b, 1<<30, 1<<26)
	dir := b.TempDir()
	b.Run("lmsparse", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for b.Loop() {
			f, err := Open(src)
			if err != nil {
				b.Fatal(err)
			}
			var es []Entry
			for _, t := range f.Tensors() {
				e, _ := f.Entry(t.Name)
				es = append(es, e)
			}
			if err := WriteFile(filepath.Join(dir, "out.safetensors"), f.Metadata(), es); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("cp", func(b *testing.B) {
		b.SetBytes(1 << 30)
		dst := filepath.Join(dir, "cp.safetensors")
		for b.Loop() {
			// cp's output is fsynced too, so both sides pay for durability.
			if out, err := exec.Command("sh", "-c", `cp "$1" "$2" && sync "$2"`, "sh", src, dst).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v %s", err, out)
			}
		}
		os.Remove(dst)
	})
}
