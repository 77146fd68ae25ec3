package sparsify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/manifest"
)

// background hashes the input files beside the pruning: it starts before
// the first tensor is pruned and never waits for it. SHA-256 is
// sequential (about 1.8 GB/s with SHA-NI, as long as the rest of the job
// on a two-core machine), so it is one goroutine that keeps a core to
// itself: the nonzero counts of the untouched tensors are taken as the
// writer copies them (see prefetcher.countingWrite), not here. The hash
// goes through its own read-only mapping of each file, copying nothing,
// and drops the pages behind it from the resident set every dropWindow
// bytes (the kernel maps a whole page-cache folio per fault, so up to
// about two windows are mapped at a time); where a file cannot be mapped
// it reads it.
type background struct {
	done   chan struct{}
	inputs []manifest.Input
	noMap  bool // read the files instead of mapping them (tests)
	err    error
	cancel context.CancelFunc
}

// startBackground starts hashing m's inputs.
func startBackground(ctx context.Context, m *checkpoint.Model) *background {
	return startScan(ctx, m, false)
}

// startScan is startBackground, reading the files through their
// descriptors when noMap is set.
func startScan(ctx context.Context, m *checkpoint.Model, noMap bool) *background {
	ctx, cancel := context.WithCancel(ctx)
	b := &background{done: make(chan struct{}), noMap: noMap, cancel: cancel}
	go func() {
		defer close(b.done)
		b.inputs, b.err = protect(func() ([]manifest.Input, error) { return b.hash(ctx, m) })
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

// hash hashes every input file: m's files, then the configuration and
// tokenizer files beside them (as manifest.HashFiles does).
func (b *background) hash(ctx context.Context, m *checkpoint.Model) ([]manifest.Input, error) {
	var out []manifest.Input
	for _, path := range m.Files {
		h := sha256.New()
		size, err := readMapped(path, func() (int64, error) {
			return walk(ctx, path, !b.noMap, func(c []byte) { h.Write(c) })
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

// scanChunk is how much of a file the scan passes on at a time: it stays
// in a core's L2 cache.
const scanChunk = 256 << 10

// dropWindow is how much of the mapping the hash lets accumulate before
// dropping it from the resident set: each drop flushes the TLB of every
// core running the process, interrupting the writer's, so it is done per
// 2 MiB rather than per chunk (measured on prune of a 498 MB checkpoint,
// 9 alternating rounds: 0.40 s → 0.37 s median, peak RSS 61 → 63 MB).
const dropWindow = 2 << 20

// walk passes the bytes of file path to f in order, in chunks of at most
// scanChunk bytes, and returns the file's size. With useMap it reads
// through a mapping of the file where the file can be mapped, dropping the
// pages behind it; otherwise it reads the file into a buffer.
func walk(ctx context.Context, path string, useMap bool, f func([]byte)) (int64, error) {
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
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var c []byte
		if mapped != nil {
			c = mapped[off : off+min(size-off, scanChunk)]
		} else {
			c = buf[:min(size-off, scanChunk)]
			if _, err := file.ReadAt(c, off); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, fmt.Errorf("%s: %w", path, err)
			}
		}
		f(c)
		off += int64(len(c))
		if mapped != nil && off-dropped >= dropWindow {
			mmap.DropPages(mapped[dropped:off])
			dropped = off &^ 4095
		}
	}
	if mapped != nil && dropped < size {
		mmap.DropPages(mapped[dropped:])
	}
	return size, nil
}
