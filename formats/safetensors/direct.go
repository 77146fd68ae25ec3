package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// Writing large files with O_DIRECT.
//
// On Linux, WriteFile writes a file of at least directMin bytes through a
// second descriptor opened with O_DIRECT: the bytes are gathered in two
// aligned 8 MiB buffers and each full buffer goes to the disk from a
// goroutine while the other one fills. The kernel does not copy them into
// the page cache first, which on some machines costs more than the disk
// write itself and makes the time erratic (measured on the development VM:
// dd of a 498 MB file with buffered writes 0.95–1.8 s, with O_DIRECT
// 0.30–0.32 s, cp 0.35 s). The last partial block is written padded and
// the file truncated to its size. If the file system refuses direct I/O
// (EINVAL), the same buffers are written through the ordinary descriptor.

const (
	directAlign = 4096
	directChunk = 8 << 20
	directMin   = 64 << 20 // files smaller than this are written through the page cache
)

// BufferWriter is implemented by a writer that gathers the bytes in a
// buffer of its own before writing them out, as WriteFile does for large
// files (the writer it passes to Entry.Write). An Entry can then produce
// its bytes in place — read a file range into it, or transform values as
// it copies them there — instead of in a buffer of its own that Write
// copies again.
type BufferWriter interface {
	io.Writer
	// Next returns the free part of the buffer, never empty. In WriteFile's
	// writers its address is congruent to the output position modulo 4 KiB
	// (the buffers are page-aligned), so a tensor that Layout places at a
	// multiple of its element size is aligned in memory too.
	Next() []byte
	// Commit appends the first n bytes of what Next returned (n ≤ its
	// length) to the output.
	Commit(n int) error
}

// directWriter is an io.Writer over a file opened twice: direct (O_DIRECT)
// and plain. It writes every byte at the position following the previous
// ones, from offset 0.
type directWriter struct {
	direct, plain *os.File
	bufs          [2][]byte
	free          func() // releases bufs
	cur, n        int    // buffer being filled and its length
	off           int64  // file offset of bufs[cur][0]
	inflight      chan error
	fallback      bool // direct I/O refused: write through plain
	wrote         bool // a direct write succeeded
	err           error
}

// newDirectWriter opens plain's file again with O_DIRECT, or returns nil
// where that is not possible.
func newDirectWriter(plain *os.File) *directWriter {
	direct := openDirect(plain.Name())
	if direct == nil {
		return nil
	}
	d := &directWriter{direct: direct, plain: plain}
	var b []byte
	b, d.free = allocDirect(2 * directChunk)
	d.bufs[0], d.bufs[1] = b[:directChunk:directChunk], b[directChunk:]
	return d
}

// heapAligned returns n bytes of the Go heap aligned to directAlign (the
// buffers where huge pages cannot be had).
func heapAligned(n int) ([]byte, func()) {
	b := make([]byte, n+directAlign)
	skip := int((directAlign - uintptr(unsafe.Pointer(&b[0]))%directAlign) % directAlign)
	return b[skip : skip+n : skip+n], func() {}
}

// pos is the number of bytes written so far.
func (d *directWriter) pos() int64 { return d.off + int64(d.n) }

func (d *directWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	total := len(p)
	for len(p) > 0 {
		k := copy(d.bufs[d.cur][d.n:], p)
		d.n += k
		p = p[k:]
		if d.n == directChunk {
			if err := d.flushFull(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// Next returns the free part of the buffer being filled.
func (d *directWriter) Next() []byte { return d.bufs[d.cur][d.n:] }

// Commit appends the first n bytes of Next's slice.
func (d *directWriter) Commit(n int) error {
	if d.err != nil {
		return d.err
	}
	if n < 0 || n > directChunk-d.n {
		return fmt.Errorf("committing %d bytes of a buffer with %d free", n, directChunk-d.n)
	}
	d.n += n
	if d.n == directChunk {
		return d.flushFull()
	}
	return nil
}

// ReadFull appends n bytes of r at offset off, read straight into w's
// buffer when w is a BufferWriter and through a buffer of its own
// otherwise, passing each piece to inspect (when not nil) as it goes. The
// pieces are whole multiples of unit bytes (unit ≥ 1), so inspect can
// scan them as elements of a tensor of that element size.
func ReadFull(w io.Writer, r io.ReaderAt, off, n int64, unit int, inspect func([]byte)) error {
	if unit < 1 || n < 0 || n%int64(unit) != 0 {
		return fmt.Errorf("%d bytes is not a whole number of %d-byte elements", n, unit)
	}
	read := func(b []byte) error {
		if k, err := r.ReadAt(b, off); k < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if inspect != nil {
			inspect(b)
		}
		off += int64(len(b))
		n -= int64(len(b))
		return nil
	}
	bw, _ := w.(BufferWriter)
	var own []byte
	for n > 0 {
		if bw != nil {
			if b := bw.Next(); len(b) >= unit {
				b = b[:min(int64(len(b)), n)/int64(unit)*int64(unit)]
				if err := read(b); err != nil {
					return err
				}
				if err := bw.Commit(len(b)); err != nil {
					return err
				}
				continue
			}
		}
		if own == nil {
			own = make([]byte, max(copyBufSize/unit, 1)*unit)
		}
		b := own[:min(int64(len(own)), n)/int64(unit)*int64(unit)]
		if bw != nil {
			b = b[:unit] // an element across the end of w's buffer
		}
		if err := read(b); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// flushFull starts writing the full current buffer and switches to the
// other one once its own write has finished.
func (d *directWriter) flushFull() error {
	if err := d.wait(); err != nil {
		return err
	}
	buf, off := d.bufs[d.cur][:d.n], d.off
	d.inflight = make(chan error, 1)
	go func(ch chan error) { ch <- d.writeAt(buf, off) }(d.inflight)
	d.cur ^= 1
	d.off += int64(d.n)
	d.n = 0
	return nil
}

// release closes the direct descriptor and frees the buffers, once no
// write is in flight.
func (d *directWriter) release() {
	d.direct.Close()
	d.free()
}

// wait waits for the write in flight, if any.
func (d *directWriter) wait() error {
	if d.inflight != nil {
		if err := <-d.inflight; err != nil && d.err == nil {
			d.err = err
		}
		d.inflight = nil
	}
	return d.err
}

// writeAt writes an aligned buffer at an aligned offset (only one runs at a
// time: flushFull waits for the previous one).
func (d *directWriter) writeAt(b []byte, off int64) error {
	if !d.fallback {
		_, err := d.direct.WriteAt(b, off)
		if err == nil {
			d.wrote = true
			return nil
		}
		if d.wrote || !errors.Is(err, syscall.EINVAL) {
			return err
		}
		d.fallback = true
	}
	_, err := d.plain.WriteAt(b, off)
	return err
}

// finish writes what is left — the last block padded to the alignment,
// then the file cut to its size — and closes the direct descriptor.
func (d *directWriter) finish() error {
	defer d.release()
	if err := d.wait(); err != nil {
		return err
	}
	size := d.pos()
	if d.n > 0 {
		padded := (d.n + directAlign - 1) / directAlign * directAlign
		clear(d.bufs[d.cur][d.n:padded])
		if err := d.writeAt(d.bufs[d.cur][:padded], d.off); err != nil {
			return err
		}
	}
	if err := d.plain.Truncate(size); err != nil {
		return fmt.Errorf("truncating to %d bytes: %w", size, err)
	}
	return nil
}
