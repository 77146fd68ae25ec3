package sparsify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
)

// background is the work done beside pruning, on another goroutine: the
// sha256 of the input files and the nonzero counts of the tensors that are
// not pruned (for the size report), both in one sequential pass over each
// safetensors file. It starts before the first tensor is pruned and never
// waits for the pruning: on a two-core machine the hash (about 1.8 GB/s
// with SHA-NI) takes one core and everything else the other. Where the
// file can be mapped it hashes straight from the mapping, a window at a
// time, and drops each window's pages from the resident set once hashed,
// so it copies nothing and peak memory does not grow.
type background struct {
	done    chan struct{}
	inputs  []manifest.Input
	nonzero map[string]int64 // untouched tensors with a known dtype
	skip    map[string]bool  // the targets: not counted
	noMap   bool             // read the files instead of mapping them (tests)
	err     error
	cancel  context.CancelFunc
}

// startBackground starts hashing m's inputs and counting the nonzeros of
// every tensor not in targets.
func startBackground(ctx context.Context, m *checkpoint.Model, targets []*target) *background {
	return startScan(ctx, m, targets, false)
}

// startScan is startBackground, reading the files through their
// descriptors when noMap is set.
func startScan(ctx context.Context, m *checkpoint.Model, targets []*target, noMap bool) *background {
	skip := map[string]bool{}
	for _, t := range targets {
		skip[t.name] = true
	}
	regions, err := scanRegions(m, skip)
	ctx, cancel := context.WithCancel(ctx)
	b := &background{done: make(chan struct{}), nonzero: map[string]int64{}, skip: skip, noMap: noMap, cancel: cancel}
	if err != nil {
		b.err = err
		close(b.done)
		return b
	}
	go func() {
		defer close(b.done)
		b.inputs, b.err = protect(func() ([]manifest.Input, error) { return b.scan(ctx, m, regions) })
	}()
	return b
}

// wait returns the results (it may be called more than once).
func (b *background) wait() (*background, error) {
	<-b.done
	return b, b.err
}

// stop cancels the scan if it is still running and waits for it to end;
// deferred by its starter, after the results were used or not needed.
func (b *background) stop() {
	if b != nil {
		b.cancel()
		<-b.done
	}
}

// region is one tensor's byte range in a safetensors file.
type region struct {
	name   string
	off    int64 // absolute, in the file
	size   int64
	params int64
	dtype  tensor.DType
	count  bool // count its nonzeros (an untouched tensor of known dtype)
}

// scanRegions lists the tensors of each of m's files in file order.
func scanRegions(m *checkpoint.Model, skip map[string]bool) ([][]region, error) {
	fileIndex := map[string]int{}
	for i, f := range m.Files {
		fileIndex[f] = i
	}
	regions := make([][]region, len(m.Files))
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		fi, ok := fileIndex[info.File]
		if !ok {
			return nil, nil // not stored in one of m.Files (a virtual tensor): handled below
		}
		sec, err := m.Section(name)
		if err != nil {
			return nil, err
		}
		_, off, n := sec.Outer()
		params, _ := info.Shape.Elems()
		regions[fi] = append(regions[fi], region{name: name, off: off, size: n, params: params, dtype: info.DType,
			count: !skip[name] && info.DType.Known()})
	}
	for _, rs := range regions {
		slices.SortFunc(rs, func(a, b region) int { return cmp.Compare(a.off, b.off) })
		for i := 1; i < len(rs); i++ {
			if rs[i].off < rs[i-1].off+rs[i-1].size {
				return nil, fmt.Errorf("%s: %w: tensors %q and %q overlap", m.Path, checkpoint.ErrFormat, rs[i-1].name, rs[i].name)
			}
		}
	}
	return regions, nil
}

// scan hashes every input file and counts the untouched tensors' nonzeros.
func (b *background) scan(ctx context.Context, m *checkpoint.Model, regions [][]region) ([]manifest.Input, error) {
	if regions == nil {
		// Tensors that are not plain file ranges: hash the files, then
		// count tensor by tensor.
		return b.scanSlow(m)
	}
	var out []manifest.Input
	for fi, path := range m.Files {
		in, err := b.scanFile(ctx, path, regions[fi])
		if err != nil {
			return nil, err
		}
		in.File = manifest.Rel(m.Dir, path)
		out = append(out, in)
	}
	aux, err := manifest.HashFiles(m.Dir, nil)
	if err != nil {
		return nil, err
	}
	return append(out, aux...), nil
}

// scanChunk is how much of a file the scan hashes (and counts) at a time:
// it stays in the core's L2 cache between the two.
const scanChunk = 256 << 10

func (b *background) scanFile(ctx context.Context, path string, rs []region) (manifest.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifest.Input{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return manifest.Input{}, fmt.Errorf("%s: %w", path, err)
	}
	var mapped, buf []byte
	if !b.noMap {
		mapped = mmap.File(f, st.Size())
	}
	if mapped != nil {
		defer mmap.Unmap(mapped)
	} else {
		buf = make([]byte, scanChunk)
	}
	dropped := int64(0) // mapped[:dropped] is out of the resident set
	h := sha256.New()
	// read hashes [off, off+n) of the file and, with stats, adds its
	// elements to them (n is then a multiple of the element size, and so
	// is every chunk).
	read := func(off, n int64, dt tensor.DType, stats *tensor.Stats) error {
		for n > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			var c []byte
			if mapped != nil {
				c = mapped[off : off+min(n, scanChunk)]
			} else {
				c = buf[:min(n, int64(len(buf)))]
				if _, err := f.ReadAt(c, off); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			h.Write(c)
			if stats != nil {
				if err := stats.Add(dt, c); err != nil {
					return err
				}
			}
			off += int64(len(c))
			n -= int64(len(c))
			if mapped != nil && off-dropped >= 4*scanChunk {
				mmap.DropPages(mapped[dropped:off])
				dropped = off &^ 4095
			}
		}
		return nil
	}
	pos := int64(0)
	for _, r := range rs {
		if err := read(pos, r.off-pos, "", nil); err != nil {
			return manifest.Input{}, err
		}
		pos = r.off + r.size
		var stats *tensor.Stats
		if r.count {
			stats = &tensor.Stats{}
		}
		if err := read(r.off, r.size, r.dtype, stats); err != nil {
			return manifest.Input{}, fmt.Errorf("tensor %q: %w", r.name, err)
		}
		if stats != nil {
			b.nonzero[r.name] = r.params - stats.Zeros
		}
	}
	if err := read(pos, st.Size()-pos, "", nil); err != nil {
		return manifest.Input{}, err
	}
	if mapped != nil {
		mmap.DropPages(mapped[dropped:])
	}
	return manifest.Input{Bytes: st.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// scanSlow is the scan for models with virtual tensors: files hashed
// whole, then each untouched tensor read for its count.
func (b *background) scanSlow(m *checkpoint.Model) ([]manifest.Input, error) {
	inputs, err := manifest.HashFiles(m.Dir, m.Files)
	if err != nil {
		return nil, err
	}
	scan := make([]byte, 1<<20)
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		if !info.DType.Known() {
			continue
		}
		if b.skip[name] {
			continue
		}
		st, err := m.Stats(name, scan)
		if err != nil {
			return nil, err
		}
		params, _ := info.Shape.Elems()
		b.nonzero[name] = params - st.Zeros
	}
	return inputs, nil
}
