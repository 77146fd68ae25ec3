package run

import (
	"fmt"
	"unsafe"

	"github.com/lmsparse/lmsparse/tensor"
)

// buffer is one allocation of the memory plan: a float32, int64 or bool
// array that computed tensors of a run borrow, and return when the last
// value holding it dies.
type buffer struct {
	k      kind
	f      []float32
	i      []int64
	b      []bool
	lo, hi uintptr // address range of the array, to recognise views into it
	refs   int     // graph values (slots) holding the buffer
	used   bool    // handed out during the current run
}

func (b *buffer) cap() int {
	switch b.k {
	case kindFloat:
		return cap(b.f)
	case kindInt:
		return cap(b.i)
	}
	return cap(b.b)
}

// arena recycles the buffers of one run state from node to node and from
// run to run: buffers whose values are dead go to a free list, from which
// later allocations of a fitting size are served (best fit among those of
// the same kind holding between n and 2n elements). With the same shapes
// run after run, the steady state allocates no tensor memory at all.
type arena struct {
	free [4][]*buffer // by kind
	live []*buffer    // handed out and not yet returned
	// Counters for tests and benchmarks: buffers made and reused, outputs
	// written in place over an operand.
	made, reused, inplace int
}

// dataPtr returns the address of t's first element, 0 when it has none.
func dataPtr(t *Tensor) uintptr {
	switch {
	case len(t.F32) > 0:
		return uintptr(unsafe.Pointer(unsafe.SliceData(t.F32)))
	case len(t.I64) > 0:
		return uintptr(unsafe.Pointer(unsafe.SliceData(t.I64)))
	case len(t.Bool) > 0:
		return uintptr(unsafe.Pointer(unsafe.SliceData(t.Bool)))
	}
	return 0
}

// get returns a buffer of n > 0 elements of kind k, not zeroed.
func (a *arena) get(k kind, n int) *buffer {
	fl := a.free[k]
	best := -1
	for j, b := range fl {
		c := b.cap()
		if c >= n && c <= 2*n && (best < 0 || c < fl[best].cap()) {
			best = j
		}
	}
	var b *buffer
	if best >= 0 {
		b = fl[best]
		fl[best] = fl[len(fl)-1]
		a.free[k] = fl[:len(fl)-1]
		a.reused++
	} else {
		b = &buffer{k: k}
		var p unsafe.Pointer
		var size uintptr
		switch k {
		case kindFloat:
			b.f = make([]float32, n)
			p, size = unsafe.Pointer(unsafe.SliceData(b.f)), 4
		case kindInt:
			b.i = make([]int64, n)
			p, size = unsafe.Pointer(unsafe.SliceData(b.i)), 8
		default:
			b.b = make([]bool, n)
			p, size = unsafe.Pointer(unsafe.SliceData(b.b)), 1
		}
		b.lo = uintptr(p)
		b.hi = b.lo + uintptr(n)*size
		a.made++
	}
	b.refs, b.used = 0, true
	a.live = append(a.live, b)
	return b
}

// find returns the index in live of the buffer holding address p, -1 if
// none does (constants, graph inputs, arrays an operator made itself).
func (a *arena) find(p uintptr) int {
	if p == 0 {
		return -1
	}
	for j, b := range a.live {
		if p >= b.lo && p < b.hi {
			return j
		}
	}
	return -1
}

// retain counts one more value holding t's buffer.
func (a *arena) retain(t *Tensor) {
	if j := a.find(dataPtr(t)); j >= 0 {
		a.live[j].refs++
	}
}

// release counts one value fewer holding t's buffer, returning the buffer
// to the free list when no value holds it.
func (a *arena) release(t *Tensor) {
	if j := a.find(dataPtr(t)); j >= 0 {
		b := a.live[j]
		if b.refs--; b.refs <= 0 {
			a.drop(j)
		}
	}
}

// drop moves live[j] to the free list.
func (a *arena) drop(j int) {
	b := a.live[j]
	a.live[j] = a.live[len(a.live)-1]
	a.live = a.live[:len(a.live)-1]
	a.free[b.k] = append(a.free[b.k], b)
}

// sweep returns the buffers no value holds: temporaries of the node just
// run and outputs nothing reads.
func (a *arena) sweep() {
	for j := 0; j < len(a.live); {
		if a.live[j].refs <= 0 {
			a.drop(j)
			continue
		}
		j++
	}
}

// detach gives t's buffer away (a graph output returned to the caller):
// the arena forgets it.
func (a *arena) detach(t *Tensor) {
	if j := a.find(dataPtr(t)); j >= 0 {
		a.live[j] = a.live[len(a.live)-1]
		a.live = a.live[:len(a.live)-1]
	}
}

// endRun returns every buffer still live to the free list and drops the
// free buffers the run did not use (so a run with other shapes does not
// leave the previous run's buffers behind for good).
func (a *arena) endRun() {
	for len(a.live) > 0 {
		a.drop(len(a.live) - 1)
	}
	for k := range a.free {
		fl := a.free[k][:0]
		for _, b := range a.free[k] {
			if b.used {
				b.used = false
				fl = append(fl, b)
			}
		}
		clear(a.free[k][len(fl):])
		a.free[k] = fl
	}
}

// pooledBytes returns the bytes held by the free lists.
func (a *arena) pooledBytes() int {
	n := 0
	for k, fl := range a.free {
		for _, b := range fl {
			switch kind(k) {
			case kindFloat:
				n += 4 * b.cap()
			case kindInt:
				n += 8 * b.cap()
			default:
				n += b.cap()
			}
		}
	}
	return n
}

// allocFrom returns a tensor of dtype d and shape whose elements come from
// the arena when there is one (zeroed only if zero is set); without an
// arena (constant folding at load) it is a fresh zeroed allocation.
func (e *exec) allocFrom(d tensor.DType, shape []int, zero bool) (*Tensor, error) {
	n, err := elems(shape, e.maxElems)
	if err != nil {
		return nil, err
	}
	k := kindOf(d)
	if k == kindNone {
		return nil, fmt.Errorf("%w: dtype %s", ErrUnsupported, d)
	}
	if e.arena == nil || n == 0 {
		return e.allocNew(d, shape)
	}
	b := e.arena.get(k, n)
	t := &Tensor{DType: d, Shape: shape}
	switch k {
	case kindFloat:
		t.F32 = b.f[:n]
		if zero {
			clear(t.F32)
		}
	case kindInt:
		t.I64 = b.i[:n]
		if zero {
			clear(t.I64)
		}
	default:
		t.Bool = b.b[:n]
		if zero {
			clear(t.Bool)
		}
	}
	return t, nil
}

// reuse returns a tensor of dtype d and shape written over input j when
// the operator may compute in place: input j has the same dtype and
// element count, its value dies at this node, and no other value holds
// its buffer. It returns nil otherwise (the operator then allocates).
// Only element-wise operators, which read element i before writing
// element i, call it.
func (c *call) reuse(j int, d tensor.DType, shape []int) *Tensor {
	ar := c.e.arena
	if ar == nil || j >= len(c.n.dies) || !c.n.dies[j] {
		return nil
	}
	t := c.input(j)
	if t == nil || t.DType != d || !shapeEq(t.Shape, shape) {
		return nil
	}
	k := ar.find(dataPtr(t))
	if k < 0 || ar.live[k].refs != 1 {
		return nil
	}
	// No other operand may read the array while it is written (a fused
	// kernel reading its mask from the scores' array, say).
	for i, o := range c.in {
		if i != j && o != nil && ar.find(dataPtr(o)) == k {
			return nil
		}
	}
	ar.inplace++
	return &Tensor{DType: d, Shape: shape, F32: t.F32, I64: t.I64, Bool: t.Bool}
}

// outFor returns the output of an element-wise operator: input j's buffer
// when reuse allows, else a new tensor (not zeroed: the operator writes
// every element).
func (c *call) outFor(d tensor.DType, shape []int, js ...int) (*Tensor, error) {
	for _, j := range js {
		if t := c.reuse(j, d, shape); t != nil {
			return t, nil
		}
	}
	return c.e.allocRaw(d, shape)
}
