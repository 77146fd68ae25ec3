package sparsify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
)

// background is the work done beside pruning: the sha256 of the input
// files and the nonzero counts of the tensors that are not pruned (for the
// size report). It starts before the first tensor is pruned and never
// waits for the pruning. The hash is one goroutine (SHA-256 is sequential:
// about 1.8 GB/s with SHA-NI, as long as the rest of the job on a two-core
// machine), the counts another. The hash goes through its own read-only
// mapping of each file a window at a time, copying nothing, and drops each
// window's pages from the resident set when done with it (the kernel maps
// a whole page-cache folio per fault, so about one folio, up to 2 MiB,
// stays mapped ahead of it); where a file cannot be mapped it reads it.
// The counts, off the hash's core, read the untouched tensors into one
// reused buffer.
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
	if regions == nil {
		// Tensors that are not plain file ranges: hash the files, then
		// count tensor by tensor.
		go func() {
			defer close(b.done)
			b.inputs, b.err = protect(func() ([]manifest.Input, error) { return b.scanSlow(m) })
		}()
		return b
	}
	counted := make(chan error, 1)
	go func() {
		_, err := protect(func() (struct{}, error) { return struct{}{}, b.count(ctx, m, regions) })
		if err != nil {
			cancel() // stop the hash too
		}
		counted <- err
	}()
	go func() {
		defer close(b.done)
		inputs, err := protect(func() ([]manifest.Input, error) { return b.hash(ctx, m) })
		cerr := <-counted
		if err == nil || cerr != nil && errors.Is(err, context.Canceled) {
			err = cerr // the count's error is the cause of a cancelled hash
		}
		b.inputs, b.err = inputs, err
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

// hash hashes every input file: m's files, then the configuration and
// tokenizer files beside them (as manifest.HashFiles does).
func (b *background) hash(ctx context.Context, m *checkpoint.Model) ([]manifest.Input, error) {
	var out []manifest.Input
	for _, path := range m.Files {
		h := sha256.New()
		size, err := readMapped(path, func() (int64, error) {
			return b.walk(ctx, path, !b.noMap, []region{{off: 0, size: -1}}, func(_ region, c []byte) error {
				h.Write(c)
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		out = append(out, manifest.Input{File: manifest.Rel(m.Dir, path), Bytes: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	aux, err := manifest.HashFiles(m.Dir, nil)
	if err != nil {
		return nil, err
	}
	return append(out, aux...), nil
}

// count counts the nonzeros of the untouched tensors (regions marked
// count) into b.nonzero.
func (b *background) count(ctx context.Context, m *checkpoint.Model, regions [][]region) error {
	for fi, path := range m.Files {
		var rs []region
		for _, r := range regions[fi] {
			if r.count {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		stats := make([]tensor.Stats, len(rs))
		k := 0
		_, err := b.walk(ctx, path, false, rs, func(r region, c []byte) error {
			for rs[k].off != r.off {
				k++
			}
			if err := stats[k].Add(r.dtype, c); err != nil {
				return fmt.Errorf("%s: tensor %q: %w", path, r.name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, r := range rs {
			b.nonzero[r.name] = r.params - stats[i].Zeros
		}
	}
	return nil
}

// scanChunk is how much of a file the scan passes on at a time: it stays
// in a core's L2 cache.
const scanChunk = 256 << 10

// walk passes the bytes of each region of file path (in file order; size
// -1: to the end of the file) to f in chunks of at most scanChunk bytes,
// a whole number of the region's elements each, and returns the file's
// size. With useMap it reads through a mapping of the file where the file
// can be mapped, dropping the pages behind it; otherwise it reads the
// file into a buffer.
func (b *background) walk(ctx context.Context, path string, useMap bool, rs []region, f func(region, []byte) error) (int64, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	size := st.Size()
	var mapped, buf []byte
	if useMap {
		mapped = mmap.File(file, size)
	}
	if mapped != nil {
		defer mmap.Unmap(mapped)
	} else {
		buf = make([]byte, scanChunk)
	}
	dropped := int64(0) // mapped[:dropped] is out of the resident set
	for _, r := range rs {
		off, n := r.off, r.size
		if n < 0 {
			n = size - off
		}
		if off < 0 || n > size-off {
			return 0, fmt.Errorf("%s: %w: tensor %q: bytes %d..%d beyond the file's %d", path, io.ErrUnexpectedEOF, r.name, off, off+n, size)
		}
		for n > 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			var c []byte
			if mapped != nil {
				c = mapped[off : off+min(n, scanChunk)]
			} else {
				c = buf[:min(n, scanChunk)]
				if _, err := file.ReadAt(c, off); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return 0, fmt.Errorf("%s: %w", path, err)
				}
			}
			if err := f(r, c); err != nil {
				return 0, err
			}
			off += int64(len(c))
			n -= int64(len(c))
			if mapped != nil && off-dropped >= scanChunk {
				mmap.DropPages(mapped[dropped:off])
				dropped = off &^ 4095
			}
		}
	}
	if mapped != nil && dropped < size {
		mmap.DropPages(mapped[dropped:])
	}
	return size, nil
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
