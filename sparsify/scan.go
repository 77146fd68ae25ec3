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
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
)

// background is the work done beside pruning, on another goroutine: the
// sha256 of the input files and the nonzero counts of the tensors that are
// not pruned (for the size report), both in one sequential pass over each
// safetensors file. When pruning writes dense tensors in file order, the
// prefetcher lends the scan each target's original bytes as it loads them
// (see shareLink), so the targets are read from disk once, not twice.
type background struct {
	done    chan struct{}
	inputs  []manifest.Input
	nonzero map[string]int64 // untouched tensors with a known dtype
	skip    map[string]bool  // the targets: not counted
	lent    int              // targets whose bytes came from the prefetcher
	err     error
	cancel  context.CancelFunc
}

// shareLink passes loaded targets from the prefetcher to the scan: each is
// lent before its weights are zeroed, and the prefetcher waits for the scan
// to have hashed it before changing the bytes.
type shareLink struct {
	feed chan lent     // prefetcher → scan, in the scan's order; closed when the prefetcher stops
	gone chan struct{} // closed when the scan returns
}

type lent struct {
	t    *target
	raw  []byte // t's bytes as stored in the input file
	done chan struct{}
}

// lend hands raw, target t's original bytes, to the scan and returns a
// function that waits until the scan no longer needs them. It does nothing
// on a nil link.
func (s *shareLink) lend(t *target, raw []byte) (wait func()) {
	if s == nil {
		return func() {}
	}
	l := lent{t: t, raw: raw, done: make(chan struct{})}
	select {
	case s.feed <- l:
	case <-s.gone:
		return func() {}
	}
	return func() {
		select {
		case <-l.done:
		case <-s.gone:
		}
	}
}

// startBackground starts hashing m's inputs and counting the nonzeros of
// every tensor not in targets. With a prefetcher that has planned its
// order but not started (pf.plan), the scan takes the dense targets' bytes
// from it when both go through them in the same order; pf may be nil.
func startBackground(ctx context.Context, m *checkpoint.Model, targets []*target, pf *prefetcher) *background {
	skip := map[string]bool{}
	for _, t := range targets {
		skip[t.name] = true
	}
	regions, err := scanRegions(m, skip)
	ctx, cancel := context.WithCancel(ctx)
	b := &background{done: make(chan struct{}), nonzero: map[string]int64{}, skip: skip, cancel: cancel}
	if err != nil {
		b.err = err
		close(b.done)
		return b
	}
	var link *shareLink
	if pf != nil && sameOrder(regions, pf.order) {
		link = &shareLink{feed: make(chan lent), gone: make(chan struct{})}
		pf.share = link
		for _, rs := range regions {
			for i := range rs {
				rs[i].shared = rs[i].target != nil
			}
		}
	}
	go func() {
		defer close(b.done)
		if link != nil {
			defer close(link.gone)
		}
		b.inputs, b.err = protect(func() ([]manifest.Input, error) { return b.scan(ctx, m, regions, link) })
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
	count  bool    // count its nonzeros (an untouched tensor of known dtype)
	target *target // set for pruning targets
	shared bool    // its bytes come from the prefetcher
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

// sameOrder reports whether order, the prefetcher's targets, is exactly
// the targets met walking regions, and marks them.
func sameOrder(regions [][]region, order []*target) bool {
	if regions == nil || len(order) == 0 {
		return false
	}
	byName := map[string]*target{}
	for _, t := range order {
		byName[t.name] = t
	}
	k := 0
	for _, rs := range regions {
		for i := range rs {
			t := byName[rs[i].name]
			if t == nil {
				continue
			}
			if k >= len(order) || order[k] != t {
				return false
			}
			rs[i].target = t
			k++
		}
	}
	return k == len(order)
}

// scan hashes every input file and counts the untouched tensors' nonzeros.
func (b *background) scan(ctx context.Context, m *checkpoint.Model, regions [][]region, link *shareLink) ([]manifest.Input, error) {
	if regions == nil {
		// Tensors that are not plain file ranges: hash the files, then
		// count tensor by tensor.
		return b.scanSlow(m)
	}
	buf := make([]byte, 1<<20)
	var out []manifest.Input
	for fi, path := range m.Files {
		in, err := b.scanFile(ctx, path, regions[fi], link, buf)
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

func (b *background) scanFile(ctx context.Context, path string, rs []region, link *shareLink, buf []byte) (manifest.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifest.Input{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return manifest.Input{}, fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	// read hashes [off, off+n) of the file and, with stats, adds its
	// elements to them (n is then a multiple of the element size, and so
	// is every chunk).
	read := func(off, n int64, dt tensor.DType, stats *tensor.Stats) error {
		for n > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := buf[:min(n, int64(len(buf)))]
			if _, err := f.ReadAt(c, off); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("%s: %w", path, err)
			}
			h.Write(c)
			if stats != nil {
				if err := stats.Add(dt, c); err != nil {
					return err
				}
			}
			off += int64(len(c))
			n -= int64(len(c))
		}
		return nil
	}
	pos := int64(0)
	for _, r := range rs {
		if err := read(pos, r.off-pos, "", nil); err != nil {
			return manifest.Input{}, err
		}
		pos = r.off + r.size
		if r.shared {
			l, ok := <-link.feed
			if ok {
				if l.t != r.target || int64(len(l.raw)) != r.size {
					close(l.done)
					return manifest.Input{}, fmt.Errorf("%s: tensor %q: internal error: the prefetcher lent %q out of order", path, r.name, l.t.name)
				}
				h.Write(l.raw)
				close(l.done)
				b.lent++
				continue
			}
			// The prefetcher stopped: read the rest ourselves.
		}
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
