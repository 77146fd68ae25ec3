package sparsify

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// tensorBuffers reads targets one at a time into reused buffers, so the
// memory in use is bounded by the largest target. For F32 the float32
// values and the raw bytes are the same memory.
type tensorBuffers struct {
	m    *checkpoint.Model
	raw  []byte    // the loaded tensor's bytes: F32Bytes(vals) or own
	own  []byte    // raw bytes of non-F32 tensors
	vals []float32 // decoded values
	mask []bool
	keep []bool // elements a sparse encoding stores

	// maskedT is the target whose masked matrix is maskedM, still valid
	// in the buffers: its sparse parts are written one after another.
	maskedT *target
	maskedM *sparse.Matrix
}

func (b *tensorBuffers) load(t *target) (*prune.Matrix, error) {
	b.maskedT, b.maskedM = nil, nil
	n := t.sRows * t.sCols
	if int64(cap(b.vals)) < n {
		b.vals = make([]float32, n)
		b.mask = make([]bool, n)
	}
	b.vals, b.mask = b.vals[:n], b.mask[:n]
	x := &prune.Matrix{Name: t.name, Vals: b.vals, Rows: t.rows, Cols: t.cols, Transposed: t.transposed}
	read := b.m.ReadInto // t.fromInput() unless one of these
	if t.spill != nil {
		read = func(_ string, buf []byte) ([]byte, error) { return t.spill.read(t, buf) }
	} else if t.part != nil {
		read = func(_ string, buf []byte) ([]byte, error) { return readPart(t, buf) }
	}
	if t.info.DType == tensor.F32 && tensor.LittleEndianHost() {
		raw, err := read(t.name, tensor.F32Bytes(b.vals))
		if err != nil {
			return nil, err
		}
		b.raw = raw
		return x, nil
	}
	raw, err := read(t.name, b.own)
	if err != nil {
		return nil, err
	}
	b.own, b.raw = raw, raw
	if err := tensor.DecodeF32(b.vals, raw, t.info.DType); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", t.info.File, t.name, err)
	}
	return x, nil
}

// masked loads t and applies its plan: the raw bytes and the pruned mask.
// Asked for the same target again, it returns the same matrix without
// reading it again.
func (b *tensorBuffers) masked(t *target) (*sparse.Matrix, error) {
	if b.maskedT == t {
		return b.maskedM, nil
	}
	x, err := b.load(t)
	if err != nil {
		return nil, err
	}
	t.plan.Mask(x.Vals, b.mask)
	sm := &sparse.Matrix{DType: t.info.DType, Rows: t.sRows, Cols: t.sCols, Raw: b.raw, Pruned: b.mask,
		DropNegZero: t.enc.CompressedTensors()}
	if err := sm.ComputeKeep(b.keep); err != nil {
		return nil, err
	}
	b.keep = sm.Keep
	b.maskedT, b.maskedM = t, sm
	return sm, nil
}

// fromInput reports whether t's values are read from the input checkpoint,
// not from a calibration's spill file or a merged part (tensorBuffers.load
// and prefetcher.mappedView read them from where this says).
func (t *target) fromInput() bool { return t.spill == nil && t.part == nil }

// pruneDense loads t, plans it if planning was skipped, zeroes the pruned
// weights in the raw bytes and counts what remains. It returns the bytes of
// the dense pruned tensor.
func (b *tensorBuffers) pruneDense(sel *prune.Selector, t *target) ([]byte, error) {
	x, err := b.load(t)
	if err != nil {
		return nil, err
	}
	return b.pruneLoaded(sel, t, x)
}

// pruneLoaded is pruneDense once t is loaded as x.
func (b *tensorBuffers) pruneLoaded(sel *prune.Selector, t *target, x *prune.Matrix) ([]byte, error) {
	var err error
	if t.plan == nil {
		if t.plan, err = sel.NewPlan(t.method, x); err != nil {
			return nil, fmt.Errorf("%s: %w", t.info.File, err)
		}
	}
	zeroPruned(t, x.Vals, b.raw, b.mask)
	return b.raw, nil
}

// zeroPruned applies t's plan to a loaded tensor: the pruned elements of
// raw (its bytes, in its dtype) become all-zero bits, kept ones stay bit
// for bit; vals are its decoded values (overwritten) and mask scratch of
// the same length. It sets t.stored and t.nonzero.
func zeroPruned(t *target, vals []float32, raw []byte, mask []bool) {
	switch t.info.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
		// Pruned elements become +0 in vals; decoding keeps every other
		// value exactly (and the sign of zero), so a zero bit pattern in
		// vals marks exactly the elements whose raw bytes must be zeroed.
		_, t.stored, t.nonzero = t.plan.ApplyCount(vals)
		if t.info.DType == tensor.F32 && !sameMemory(vals, raw) {
			tensor.EncodeF32(raw, vals, tensor.F32) // exact: vals are raw's values
		} else if t.info.DType != tensor.F32 {
			es := t.info.DType.Size()
			for i, v := range vals {
				if math.Float32bits(v) == 0 {
					clear(raw[i*es : (i+1)*es])
				}
			}
		}
	default:
		t.plan.Mask(vals, mask)
		es := t.info.DType.Size()
		for i, p := range mask {
			if p {
				clear(raw[i*es : (i+1)*es])
			}
		}
		countValues(t, vals, mask, raw)
	}
}

// sameMemory reports whether raw is the byte view of vals (F32 loaded in
// place by tensorBuffers).
func sameMemory(vals []float32, raw []byte) bool {
	return len(vals) > 0 && len(raw) > 0 && &tensor.F32Bytes(vals)[0] == &raw[0]
}

// planTargets computes every target's plan and counts, reading each target
// (three times for global scope) before anything is written.
func planTargets(ctx context.Context, m *checkpoint.Model, method prune.Method, targets []*target, buf *tensorBuffers, st *progress.Stage) error {
	wrap := func(t *target, err error) error {
		return fmt.Errorf("%s: %w", t.info.File, err)
	}
	if method.Scope == prune.ScopeGlobal && !method.IsNM() && method.Structured == prune.StructNone {
		var total int64
		for _, t := range targets {
			total += t.sRows * t.sCols
		}
		g, err := prune.NewGlobal(method, total)
		if err != nil {
			return err
		}
		for pass := 0; pass < 2; pass++ {
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return err
				}
				x, err := buf.load(t)
				if err != nil {
					return err
				}
				if pass == 0 {
					if err := g.Observe(x); err != nil {
						return wrap(t, err)
					}
				} else {
					g.Refine(x)
				}
			}
		}
		for _, t := range targets {
			x, err := buf.load(t)
			if err != nil {
				return err
			}
			t.plan = g.Plan(x)
			countAfter(t, x, buf)
			st.Add(1)
		}
		return nil
	}
	var sel prune.Selector
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		x, err := buf.load(t)
		if err != nil {
			return err
		}
		if t.plan, err = sel.NewPlan(t.method, x); err != nil {
			return wrap(t, err)
		}
		countAfter(t, x, buf)
		st.Add(1)
	}
	return nil
}

// countAfter applies t's plan to the loaded x and counts what remains.
func countAfter(t *target, x *prune.Matrix, buf *tensorBuffers) {
	switch t.info.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
		// Decoding is exact: a kept value that is not zero has bits set.
		if t.plan.KeepsOnlyNonzero() {
			t.stored = int64(len(x.Vals)) - t.plan.Pruned
			t.nonzero = t.stored
			return
		}
	}
	t.plan.Mask(x.Vals, buf.mask)
	countValues(t, x.Vals, buf.mask, buf.raw)
}

// countValues sets t.stored (elements with any bit set) and t.nonzero
// (elements whose value is not zero) over the elements not in pruned
// (nil: vals and raw are already pruned).
func countValues(t *target, vals []float32, pruned []bool, raw []byte) {
	t.stored, t.nonzero = 0, 0
	switch dt := t.info.DType; {
	case pruned == nil && (dt == tensor.F32 || dt == tensor.F16 || dt == tensor.BF16):
		// Decoding these is exact and keeps the sign of zero, so the
		// float32 bits tell both counts.
		// Branch-free: (x | -x) >> 31 is 1 exactly when x != 0.
		var stored, nonzero uint64
		for _, v := range vals {
			b := math.Float32bits(v)
			a := b &^ (1 << 31)
			stored += uint64((b | -b) >> 31)
			nonzero += uint64((a | -a) >> 31)
		}
		t.stored, t.nonzero = int64(stored), int64(nonzero)
	default:
		es := dt.Size()
		for i, v := range vals {
			if pruned != nil && pruned[i] {
				continue
			}
			if sparse.NonZeroBits(raw, es, int64(i)) {
				t.stored++
			}
			if v != 0 {
				t.nonzero++
			}
		}
	}
}

// pruneEntries returns the output tensors in natural name order: copies of
// untouched tensors and the parts of pruned ones. A dense target is loaded,
// pruned and written in one go — by the returned prefetcher, one tensor
// ahead of the writer on another goroutine, once the caller starts it with
// the final list of entries; a sparse one is reloaded for each part.
func pruneEntries(ctx context.Context, m *checkpoint.Model, targets []*target, buf *tensorBuffers) ([]safetensors.Entry, *prefetcher, error) {
	byName := map[string]*target{}
	for _, t := range targets {
		byName[t.name] = t
	}
	var sel prune.Selector
	pf := &prefetcher{m: m, targets: byName, nonzero: map[string]int64{}}
	files := map[string]bool{}
	for _, f := range m.Files {
		files[f] = true
	}
	var entries []safetensors.Entry
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		t := byName[name]
		if t == nil {
			e, err := m.Entry(name)
			if err != nil {
				return nil, nil, err
			}
			if info.DType.Known() && files[info.File] {
				e.Write = pf.countingWrite(name, info)
			}
			entries = append(entries, e)
			continue
		}
		if t.enc == sparse.Dense {
			entries = append(entries, safetensors.Entry{Name: name, DType: info.DType, Shape: info.Shape.Clone(), Size: info.Size,
				Write: func(w io.Writer) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					if pf.ready != nil {
						return pf.write(w, t)
					}
					raw, err := buf.pruneDense(&sel, t)
					if err != nil {
						return err
					}
					_, err = w.Write(raw)
					return err
				}})
			continue
		}
		parts, err := sparse.Parts(t.enc, info.DType, t.sRows, t.sCols, sparse.Count(t.enc, t.stored, t.nonzero))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
		}
		prefix := name
		if t.enc.CompressedTensors() {
			prefix, _ = sparse.ModulePrefix(name) // chooseEncoding checked it
		}
		for _, p := range parts {
			entries = append(entries, safetensors.Entry{Name: prefix + p.Suffix, DType: p.DType, Shape: p.Shape, Size: p.Size,
				Write: func(w io.Writer) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					sm, err := buf.masked(t)
					if err != nil {
						return err
					}
					return p.Write(w, sm)
				}})
		}
	}
	return entries, pf, nil
}

// prefetcher prunes the dense targets on its own goroutines, ahead of the
// writer, in the order the writer will ask for them; two to four sets of
// buffers rotate (see depth), so memory stays within twice the largest
// tensor.
type prefetcher struct {
	m       *checkpoint.Model
	targets map[string]*target
	order   []*target     // set by plan
	exited  chan struct{} // closed when run's goroutine returns
	ready   chan prefetched
	free    chan *tensorBuffers
	cancel  context.CancelFunc
	parent  context.Context // the context run was given
	scratch []float32       // writeApplied's chunk
	noMap   bool            // never prune in place of the mapping (tests)

	mu      sync.Mutex
	nonzero map[string]int64 // of the untouched tensors written so far
}

// countingWrite returns the Write of an untouched tensor stored in one of
// the model's files: it copies the tensor's bytes (into the writer's
// buffer when it has one) and counts its nonzeros on the way, in cache,
// rather than in a second read of the input.
func (p *prefetcher) countingWrite(name string, info checkpoint.Tensor) func(io.Writer) error {
	return func(w io.Writer) error {
		sec, err := p.m.Section(name)
		if err != nil {
			return err
		}
		var st tensor.Stats
		err = safetensors.ReadFull(w, sec, 0, sec.Size(), info.DType.Size(), func(b []byte) { st.Add(info.DType, b) })
		if err != nil {
			return fmt.Errorf("%s: %w", info.File, err)
		}
		params, _ := info.Shape.Elems()
		p.mu.Lock()
		p.nonzero[name] = params - st.Zeros
		p.mu.Unlock()
		return nil
	}
}

// untouchedNonzero returns the nonzero counts of every tensor of a known
// dtype not in targets: those counted as they were written, and the rest
// (stored sparse in the input, or replaced by Job.Replace) read now.
func (p *prefetcher) untouchedNonzero(targets []*target) (map[string]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := maps.Clone(p.nonzero)
	var buf []byte
	for _, name := range p.m.Names() {
		info, _ := p.m.Tensor(name)
		if _, ok := out[name]; ok || p.targets[name] != nil || !info.DType.Known() {
			continue
		}
		if buf == nil {
			buf = make([]byte, 1<<20)
		}
		st, err := p.m.Stats(name, buf)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
		}
		params, _ := info.Shape.Elems()
		out[name] = params - st.Zeros
	}
	return out, nil
}

type prefetched struct {
	t   *target
	raw []byte
	buf *tensorBuffers
	err error
	// A target pruned in place of the mapped input (see mappedView): its
	// bytes there and the plan's applier, which the writer runs chunk by
	// chunk on a copy.
	view []byte
	ap   *prune.ChunkApplier
}

// applyChunk is how many bytes of a mapped target the writer copies and
// prunes at a time (in L2 between the two).
const applyChunk = 64 << 10

// mappedView returns target t's bytes and values as read-only views of the
// mapped input when the prefetcher can select there, without reading the
// tensor into a buffer first, and apply the plan as the writer copies the
// bytes out: F32 on a little-endian host, read from the input (not from a
// calibration's spill file or a merged part), a plan
// that is one threshold over the tensor (tensor scope, unstructured, or
// already planned so), a mapped file and a 4-byte-aligned tensor.
func (p *prefetcher) mappedView(t *target) ([]byte, []float32, bool) {
	if p.noMap || t.info.DType != tensor.F32 || !tensor.LittleEndianHost() || !t.fromInput() {
		return nil, nil, false
	}
	m := t.method
	if t.plan == nil && (m.Scope != prune.ScopeTensor || m.IsNM() || m.Structured != prune.StructNone) {
		return nil, nil, false
	}
	if t.plan != nil && t.plan.ChunkApplier() == nil {
		return nil, nil, false
	}
	raw, ok := p.m.MappedBytes(t.name)
	if !ok || len(raw) == 0 || len(raw)%4 != 0 || uintptr(unsafe.Pointer(&raw[0]))%4 != 0 {
		return nil, nil, false
	}
	return raw, unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), len(raw)/4), true
}

// writeApplied writes a target pruned in place of the mapped input:
// applyChunk bytes at a time copied out and pruned there — in the
// writer's own buffer when it is a BufferWriter (one copy), else in
// scratch then written — with the pages of the mapping dropped behind;
// then its counts.
func (p *prefetcher) writeApplied(w io.Writer, r prefetched) error {
	bw, _ := w.(safetensors.BufferWriter)
	dropped := 0
	for off := 0; off < len(r.view); {
		k := min(len(r.view)-off, applyChunk)
		var dst []byte
		if bw != nil {
			dst = bw.Next()
		}
		inPlace := len(dst) >= 4 && uintptr(unsafe.Pointer(&dst[0]))%4 == 0
		if inPlace {
			k = min(k, len(dst)) &^ 3
		} else {
			if p.scratch == nil {
				p.scratch = make([]float32, applyChunk/4)
			}
			dst = tensor.F32Bytes(p.scratch)
		}
		c := dst[:k]
		copy(c, r.view[off:off+k])
		r.ap.Apply(unsafe.Slice((*float32)(unsafe.Pointer(&c[0])), k/4))
		var err error
		if inPlace {
			err = bw.Commit(k)
		} else {
			_, err = w.Write(c)
		}
		if err != nil {
			return err
		}
		off += k
		if off-dropped >= 16*applyChunk {
			mmap.DropPages(r.view[dropped:off])
			dropped = off
		}
	}
	mmap.DropPages(r.view)
	_, r.t.stored, r.t.nonzero = r.ap.Counts()
	return nil
}

// start plans and runs prefetching for entries (plan, then run).
func (p *prefetcher) start(ctx context.Context, entries []safetensors.Entry, maxShard int64) {
	p.plan(entries, maxShard)
	p.run(ctx)
}

// plan sets the order of the dense targets for entries, the final list
// given to checkpoint.WriteDir with maxShard: that of the files WriteDir writes
// and of safetensors.Layout within each.
func (p *prefetcher) plan(entries []safetensors.Entry, maxShard int64) {
	p.order = nil
	for _, sh := range checkpoint.PlanShards(entries, maxShard) {
		_, idx, err := safetensors.Layout(nil, sh.Entries)
		if err != nil {
			p.order = nil
			return // the writer reports it; prune without prefetching
		}
		for _, i := range idx {
			if t := p.targets[sh.Entries[i].Name]; t != nil && t.enc == sparse.Dense {
				p.order = append(p.order, t)
			}
		}
	}
}

// run begins prefetching in the planned order; stop releases it.
func (p *prefetcher) run(ctx context.Context) {
	if p.order == nil {
		return
	}
	p.parent = ctx
	ctx, p.cancel = context.WithCancel(ctx)
	depth := p.depth()
	p.ready = make(chan prefetched, 1)
	p.free = make(chan *tensorBuffers, depth)
	for range depth {
		p.free <- &tensorBuffers{m: p.m}
	}
	order := p.order
	p.exited = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		wg.Wait()
		close(p.exited)
	}()
	// Two stages: the reader loads targets as far ahead as the free
	// buffers allow; the pruner selects, zeroes and hands each to the
	// writer. A target mappedView accepts is not loaded: the pruner
	// selects on the mapped input and the writer applies the plan as it
	// copies the bytes out (its buffers are then only a token of the
	// depth).
	type loaded struct {
		t    *target
		buf  *tensorBuffers
		x    *prune.Matrix
		err  error
		view []byte
	}
	loadedCh := make(chan loaded, depth)
	go func() {
		defer wg.Done()
		defer close(loadedCh)
		for _, t := range order {
			var buf *tensorBuffers
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				return
			}
			var x *prune.Matrix
			var err error
			view, vals, mapped := p.mappedView(t)
			if mapped {
				x = &prune.Matrix{Name: t.name, Vals: vals, Rows: t.rows, Cols: t.cols, Transposed: t.transposed}
			} else {
				x, err = protect(func() (*prune.Matrix, error) { return buf.load(t) })
			}
			select {
			case loadedCh <- loaded{t, buf, x, err, view}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(p.ready)
		var sel prune.Selector
		for l := range loadedCh {
			r := prefetched{t: l.t, buf: l.buf, err: l.err, view: l.view}
			switch {
			case r.err != nil:
			case l.view != nil:
				r.ap, r.err = protect(func() (*prune.ChunkApplier, error) {
					return readMapped(l.t.info.File, func() (*prune.ChunkApplier, error) { return planMapped(&sel, l.t, l.x) })
				})
			default:
				r.raw, r.err = protect(func() ([]byte, error) { return l.buf.pruneLoaded(&sel, l.t, l.x) })
			}
			err := r.err
			select {
			case p.ready <- r:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// depth returns how many targets may be loaded at once: at least two (one
// being written, one being pruned), and more while their buffers together
// stay within twice the model's largest tensor (so within the memory bound
// prune keeps anyway), at most four.
func (p *prefetcher) depth() int {
	var largest, perTarget int64
	for _, name := range p.m.Names() {
		info, _ := p.m.Tensor(name)
		largest = max(largest, info.Size)
	}
	for _, t := range p.order {
		n := t.sRows * t.sCols
		need := 5 * n // float32 values and the bool mask
		if t.info.DType != tensor.F32 {
			need += t.info.Size
		}
		perTarget = max(perTarget, need)
	}
	if perTarget == 0 {
		return 2
	}
	return int(min(max(2*largest/perTarget, 2), 4))
}

// write writes target t, which must be the next one prefetched.
func (p *prefetcher) write(w io.Writer, t *target) error {
	r, ok := <-p.ready
	switch {
	case !ok && p.parent.Err() != nil:
		return p.parent.Err() // cancelled: the caller's error, as the writer would report it
	case !ok:
		return fmt.Errorf("tensor %q: pruning stopped early", t.name)
	case r.err != nil:
		return r.err
	case r.t != t:
		return fmt.Errorf("tensor %q: internal error: pruned %q out of order", t.name, r.t.name)
	}
	var err error
	if r.view != nil {
		_, err = readMapped(t.info.File, func() (struct{}, error) { return struct{}{}, p.writeApplied(w, r) })
	} else {
		_, err = w.Write(r.raw)
	}
	p.free <- r.buf
	return err
}

// planMapped plans target t, whose values x views in the mapped input,
// when planning was skipped, and returns the plan's applier.
func planMapped(sel *prune.Selector, t *target, x *prune.Matrix) (*prune.ChunkApplier, error) {
	if t.plan == nil {
		plan, err := sel.NewPlan(t.method, x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.info.File, err)
		}
		t.plan = plan
	}
	ap := t.plan.ChunkApplier()
	if ap == nil {
		return nil, fmt.Errorf("%s: tensor %q: internal error: its plan is not one threshold", t.info.File, t.name)
	}
	return ap, nil
}

// stop ends prefetching and waits for its goroutine to return, so the
// model can be closed after it (safe to call when it never started).
func (p *prefetcher) stop() {
	if p != nil && p.cancel != nil {
		p.cancel()
		<-p.exited
	}
}

// targetTotals returns the parameters of all targets and their sparsity
// after pruning (valid once every target is planned or written).
func targetTotals(targets []*target) (params int64, sparsity float64) {
	var nz int64
	for _, t := range targets {
		params += t.sRows * t.sCols
		nz += t.nonzero
	}
	if params > 0 {
		sparsity = 1 - float64(nz)/float64(params)
	}
	return params, sparsity
}

// chooseEncoding returns how target t is stored under --format f. Only 2-D
// tensors can be sparse, and only a module's weight (NAME.weight) in
// compressed-tensors' layouts (their parts are named by module), so other
// tensors stay dense under bitmask and 24bitmask; auto picks the smallest
// encoding, avoiding bitmask when config.json cannot take its
// sparsity_config or the tensor is not a module's weight.
func chooseEncoding(f Format, t *target, bitmaskOK bool) sparse.Encoding {
	if len(t.info.Shape) != 2 {
		return sparse.Dense
	}
	_, isWeight := sparse.ModulePrefix(t.name)
	switch f {
	case CSR:
		return sparse.CSR
	case Bitmask, Bitmask24:
		if !isWeight {
			return sparse.Dense
		}
		if f == Bitmask24 {
			return sparse.Bitmask24
		}
		return sparse.Bitmask
	case Auto:
		e := sparse.Choose(t.info.DType, t.sRows, t.sCols, t.stored, t.nonzero)
		if e == sparse.Bitmask && (!bitmaskOK || !isWeight) {
			s := sparse.Sizes(t.info.DType, t.sRows, t.sCols, t.stored, t.nonzero)
			if e = sparse.Dense; s[sparse.CSR] < s[sparse.Dense] {
				e = sparse.CSR
			}
		}
		return e
	}
	return sparse.Dense
}

// protect runs f, turning a panic in it (a bug) into an error, so that a
// panic in a pipeline goroutine reaches the caller — and the command line
// prints one line — instead of ending the process with a stack dump.
func protect[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (a bug in lmsparse; please report it): %v", r)
		}
	}()
	return f()
}

// readMapped runs f, which reads a mapping of file path, turning a fault
// on the mapping — the file truncated while mapped, an I/O error under the
// page cache — into an error naming the file, where it would otherwise end
// the process. Any other panic goes on (to protect).
func readMapped[T any](path string, f func() (T, error)) (v T, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = fmt.Errorf("%s: reading the mapped file failed (did it change or shrink while being read?): %v", path, r)
		}
	}()
	return f()
}
