package checkpoint

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Reopen opens the checkpoint m was opened from again: an independent
// handle with its own file descriptors, the same sparse expansion
// ([Model.ExpandSparse]) and a config parsed again from disk, so that a
// reader outliving m — a streaming model.Model that reads weights on every
// pass — does not depend on m staying open. It fails with an error
// wrapping [ErrFormat] when the files no longer hold the tensors m
// describes (same names, dtypes, shapes and offsets).
func (m *Model) Reopen() (*Model, error) {
	n, err := Open(m.Path)
	if err != nil {
		return nil, err
	}
	if m.virtual != nil {
		if _, err := n.ExpandSparse(); err != nil {
			n.Close()
			return nil, err
		}
	}
	same := len(n.names) == len(m.names)
	for _, name := range m.names {
		a, _ := m.Tensor(name)
		b, ok := n.Tensor(name)
		if !same || !ok || a.File != b.File || a.DType != b.DType || !a.Shape.Equal(b.Shape) || a.Offset != b.Offset || a.Size != b.Size {
			n.Close()
			return nil, fmt.Errorf("%s: %w: tensor %q changed on disk since the checkpoint was opened", m.Path, ErrFormat, name)
		}
	}
	return n, nil
}

// ReadAt reads len(buf) bytes of a tensor's raw data, starting off bytes
// into it, through the file descriptor rather than the mapping (so the
// memory in use is buf, not the mapped file). A tensor expanded by
// [Model.ExpandSparse] has no bytes of its own: it is decoded whole first,
// which makes partial reads of it as costly as [Model.ReadInto].
func (m *Model) ReadAt(name string, buf []byte, off int64) error {
	info, ok := m.Tensor(name)
	if !ok {
		return fmt.Errorf("%s: tensor %q not found", m.Path, name)
	}
	if off < 0 || off > info.Size || int64(len(buf)) > info.Size-off {
		return fmt.Errorf("%s: tensor %q: bytes [%d, %d) are outside its %d bytes", info.File, name, off, off+int64(len(buf)), info.Size)
	}
	if len(buf) == 0 {
		return nil
	}
	if m.shards == nil {
		return fmt.Errorf("%s: tensor %q: %w", info.File, name, os.ErrClosed)
	}
	if st := m.virtual[name]; st != nil {
		return m.readExpanded(st, buf, off)
	}
	r, err := m.lookup(name)
	if err != nil {
		return err
	}
	sec, err := m.shards[r.shard].Section(name)
	if err != nil {
		return err
	}
	if n, err := sec.ReadAt(buf, off); err != nil && !(err == io.EOF && n == len(buf)) {
		return fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
	}
	return nil
}

// expandScratch is the memory readExpanded decodes with.
type expandScratch struct {
	parts [][]byte // one per part
	// bw has the buffer size of package sparse's Decoded.WriteTo, which
	// then writes through it instead of allocating its own.
	bw *bufio.Writer
}

// maxExpandFree bounds the scratch sets a Model keeps.
const maxExpandFree = 4

// readExpanded is ReadAt of the expanded tensor st: its parts are read
// into recycled buffers and decoded straight into buf, keeping the bytes
// [off, off+len(buf)) of the dense tensor.
func (m *Model) readExpanded(st *SparseTensor, buf []byte, off int64) error {
	m.expandMu.Lock()
	var s *expandScratch
	if n := len(m.expandFree); n > 0 {
		s, m.expandFree = m.expandFree[n-1], m.expandFree[:n-1]
	}
	m.expandMu.Unlock()
	if s == nil {
		s = &expandScratch{bw: bufio.NewWriterSize(io.Discard, 1<<20)}
	}
	defer func() {
		// A buffer much larger than this tensor needed (grown by a larger
		// tensor, such as an LM head read once) is dropped rather than
		// kept for the smaller ones that follow.
		for i, b := range s.parts {
			if cap(b) > 4*len(b)+1<<20 {
				s.parts[i] = nil
			}
		}
		s.bw.Reset(io.Discard)
		m.expandMu.Lock()
		if len(m.expandFree) < maxExpandFree {
			m.expandFree = append(m.expandFree, s)
		}
		m.expandMu.Unlock()
	}()
	if len(s.parts) < len(st.Parts) {
		s.parts = append(s.parts, make([][]byte, len(st.Parts)-len(s.parts))...)
	}
	d, err := m.decodeInto(st, s.parts[:len(st.Parts)])
	if err != nil {
		return err
	}
	w := &windowWriter{dst: buf, off: off}
	s.bw.Reset(w)
	if _, err := d.WriteTo(s.bw); err != nil {
		return err
	}
	return s.bw.Flush()
}

// windowWriter keeps the bytes [off, off+len(dst)) of what is written
// to it in dst and discards the rest.
type windowWriter struct {
	dst []byte
	off int64 // stream position of dst[0]
	pos int64 // bytes written so far
}

func (w *windowWriter) Write(p []byte) (int, error) {
	lo, hi := max(w.pos, w.off), min(w.pos+int64(len(p)), w.off+int64(len(w.dst)))
	if lo < hi {
		copy(w.dst[lo-w.off:hi-w.off], p[lo-w.pos:hi-w.pos])
	}
	w.pos += int64(len(p))
	return len(p), nil
}
