package model

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// streamer reads the block projections of a streaming model (see
// Options.Stream) for every pass, into buffer sets reused from layer to
// layer and from pass to pass.
type streamer struct {
	src    source
	handle *checkpoint.Model // the model's own checkpoint handle; nil for New
	// embed names the token embedding when its rows are read on demand
	// (untied, or tied to a CSR head), else "".
	embed string

	mu      sync.Mutex
	bufs    []*projBufs // free buffer sets
	stagers []*stager   // free staging buffers
}

// projBufs holds the four projections of one layer.
type projBufs [4]weightBuf

// stager is the staging memory a projection is read and decoded through.
type stager struct {
	buf []float32
	raw []byte
}

// maxFree bounds the buffer sets a streamer keeps between passes: the two
// a pass uses (one running, one being read), and two more for a second
// pass running concurrently.
const maxFree = 4

func newStreamer(src source, handle *checkpoint.Model) *streamer {
	st := &streamer{src: src, handle: handle}
	if handle != nil {
		// A model dropped without Close still releases its files.
		runtime.AddCleanup(st, func(h *checkpoint.Model) { h.Close() }, handle)
	}
	return st
}

func (st *streamer) close() error {
	st.mu.Lock()
	st.bufs, st.stagers = nil, nil
	st.mu.Unlock()
	if st.handle == nil {
		return nil
	}
	return st.handle.Close()
}

func (st *streamer) getBufs() *projBufs {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.bufs); n > 0 {
		b := st.bufs[n-1]
		st.bufs = st.bufs[:n-1]
		return b
	}
	return new(projBufs)
}

func (st *streamer) putBufs(b *projBufs) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.bufs) < maxFree {
		st.bufs = append(st.bufs, b)
	}
}

func (st *streamer) getStager() *stager {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.stagers); n > 0 {
		s := st.stagers[n-1]
		st.stagers = st.stagers[:n-1]
		return s
	}
	return new(stager)
}

func (st *streamer) putStager(s *stager) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.stagers) < maxFree/2 {
		st.stagers = append(st.stagers, s)
	}
}

// loadLayer reads layer li's projections from the checkpoint into b,
// through the staging buffers of s, packing dense ones with threads
// goroutines.
func (m *Model) loadLayer(li int, b *projBufs, s *stager, threads int) (projs, error) {
	L := &m.layers[li]
	var w projs
	for p := range L.spec {
		var err error
		if s.buf, err = readProj(m.stream.src, &L.spec[p], s.buf, &s.raw); err != nil {
			return projs{}, err
		}
		w[p] = m.proj(&b[p], s.buf, &L.spec[p], threads, true)
	}
	return w, nil
}

// feed hands a forward pass each layer's projections in order: those of a
// resident model directly; for a streaming one, read by a goroutine that
// works one layer ahead of the pass, with two buffer sets in turn.
type feed struct {
	m     *Model
	next  int // layer the pass asks for next
	ready chan loaded
	free  chan *projBufs
	stop  chan struct{}
	done  chan struct{} // closed when the reader has returned
	sets  []*projBufs
	cur   *projBufs // set of the layer running
}

type loaded struct {
	w   projs
	b   *projBufs
	err error
}

// startFeed starts the feed of a pass; release it with close.
func (m *Model) startFeed() *feed {
	f := &feed{m: m}
	if m.stream == nil {
		return f
	}
	n := min(2, len(m.layers))
	f.ready = make(chan loaded, 1)
	f.free = make(chan *projBufs, n)
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	for range n {
		b := m.stream.getBufs()
		f.sets = append(f.sets, b)
		f.free <- b
	}
	s := m.stream.getStager()
	go func() {
		defer close(f.done)
		defer m.stream.putStager(s)
		for li := range m.layers {
			var b *projBufs
			select {
			case b = <-f.free:
			case <-f.stop:
				return
			}
			w, err := func() (w projs, err error) {
				// A panic here (a bug) becomes an error, so it reaches
				// the caller instead of ending the process.
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("internal error (a bug in lmsparse; please report it): %v", r)
					}
				}()
				return m.loadLayer(li, b, s, m.threads)
			}()
			select {
			case f.ready <- loaded{w, b, err}:
			case <-f.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return f
}

// layer returns the projections of the next layer; the previous layer's
// buffers go back to the reader.
func (f *feed) layer() (projs, error) {
	li := f.next
	f.next++
	if f.m.stream == nil {
		return f.m.layers[li].w, nil
	}
	if f.cur != nil {
		f.free <- f.cur
		f.cur = nil
	}
	ld := <-f.ready
	f.cur = ld.b
	return ld.w, ld.err
}

// close stops the reader and returns the buffer sets to the model.
func (f *feed) close() {
	if f.m.stream == nil {
		return
	}
	close(f.stop)
	<-f.done
	for _, b := range f.sets {
		f.m.stream.putBufs(b)
	}
}
