package model

import (
	"context"
	"fmt"
)

// Projection is one checkpoint tensor of a block's projections, as
// [Blocks.Run] takes it.
type Projection struct {
	Name string
	// Group is the Probe group whose input the projection reads (0 q|k|v
	// or c_attn, 1 o_proj or attn.c_proj, 2 gate|up or c_fc, 3 down_proj
	// or mlp.c_proj).
	Group int
	// Rows and Cols are the logical [out, in] matrix; Transposed is set
	// when the tensor is stored [in, out] (gpt2's Conv1D).
	Rows, Cols int
	Transposed bool
}

// Projections lists the projection tensors of block layer, in the order
// of their groups.
func (m *Model) Projections(layer int) []Projection {
	var out []Projection
	for g := range m.layers[layer].spec {
		s := &m.layers[layer].spec[g]
		for i, name := range s.parts {
			out = append(out, Projection{Name: name, Group: g, Rows: s.partRows[i], Cols: s.k, Transposed: s.si == 1 && s.sj != 1})
		}
	}
	return out
}

// Layers returns the number of transformer blocks.
func (m *Model) Layers() int { return len(m.layers) }

// Blocks runs a fixed set of windows through the model one block at a
// time, each block with projection weights the caller gives (the rest of
// the model — embeddings, norms, biases — is the model's): the forward
// pass of pruning methods that look at activations, which prune block i
// on the outputs of the blocks before it, already pruned. The results
// equal those of the model's own forward pass with the same weights. The
// residual stream of every row is kept (twice: before and after the
// block); the other activations take one batch of windows at a time.
type Blocks struct {
	m       *Model
	p       pass
	wins    [][]int
	batches [][2]int  // windows [lo, hi) run together
	rowOff  []int     // first row of each window
	x, out  []float32 // residual stream before the next block, and after the last Run [rows, dim]
	next    int       // the block Run runs next
}

// DefaultBlockBatchRows is the number of rows Blocks runs together when
// NewBlocks is given 0.
const DefaultBlockBatchRows = 4096

// NewBlocks embeds the windows (token ids, validated) and readies them
// for block 0. Windows run in batches of about batchRows rows (whole
// windows; 0 means DefaultBlockBatchRows): the results do not depend on
// it, the memory does.
func (m *Model) NewBlocks(wins [][]int, batchRows int) (*Blocks, error) {
	if batchRows <= 0 {
		batchRows = DefaultBlockBatchRows
	}
	b := &Blocks{m: m, wins: wins}
	rows := 0
	lo := 0
	for i, w := range wins {
		if err := m.checkIDs(w); err != nil {
			return nil, err
		}
		b.rowOff = append(b.rowOff, rows)
		rows += len(w)
		if rows-b.rowOff[lo] >= batchRows || i == len(wins)-1 {
			b.batches = append(b.batches, [2]int{lo, i + 1})
			lo = i + 1
		}
	}
	b.rowOff = append(b.rowOff, rows)
	D := m.cfg.HiddenSize
	b.x, b.out = make([]float32, rows*D), make([]float32, rows*D)
	for _, bt := range b.batches {
		b.setup(bt)
		if err := m.embedRows(&b.p); err != nil {
			return nil, err
		}
		copy(b.x[b.rowOff[bt[0]]*D:], b.p.x)
	}
	return b, nil
}

// setup readies the pass for a batch of windows.
func (b *Blocks) setup(bt [2]int) {
	maxT := b.m.setup(&b.p, b.wins[bt[0]:bt[1]])
	b.m.ropeFor(&b.p, maxT)
}

// Rows returns the number of token rows of the windows.
func (b *Blocks) Rows() int { return b.rowOff[len(b.rowOff)-1] }

// Next returns the block Run runs.
func (b *Blocks) Next() int { return b.next }

// Run runs the next block on the current residual stream with the given
// projection tensors (every tensor of Projections(layer), by name, as
// stored in the checkpoint), calling probe, when not nil, with each
// projection group's input (batch by batch). The result is kept apart:
// Advance makes it the input of the following block; another Run of the
// same block replaces it.
func (b *Blocks) Run(ctx context.Context, weights map[string][]float32, probe Probe) error {
	m := b.m
	if b.next >= len(m.layers) {
		return fmt.Errorf("%w: all %d blocks have run", ErrInput, len(m.layers))
	}
	L := &m.layers[b.next]
	var w projs
	for g := range L.spec {
		s := &L.spec[g]
		stage := make([]float32, 0, s.rows*s.k)
		for i, name := range s.parts {
			v, ok := weights[name]
			if !ok || len(v) != s.partRows[i]*s.k {
				return fmt.Errorf("%w: block %d: tensor %q: want %d values, got %d", ErrInput, b.next, name, s.partRows[i]*s.k, len(v))
			}
			stage = append(stage, v...)
		}
		w[g] = m.proj(new(weightBuf), stage, s, m.threads, false)
	}
	D := m.cfg.HiddenSize
	for _, bt := range b.batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.setup(bt)
		lo, hi := b.rowOff[bt[0]]*D, b.rowOff[bt[1]]*D
		copy(b.p.x, b.x[lo:hi])
		m.block(&b.p, L, w, probe)
		copy(b.out[lo:hi], b.p.x)
	}
	return nil
}

// Advance makes the last Run's output the next block's input.
func (b *Blocks) Advance() {
	b.x, b.out = b.out, b.x
	b.next++
}

// Hidden returns the residual stream before the next block, [rows, dim]
// (valid until the next Advance).
func (b *Blocks) Hidden() []float32 { return b.x }

// Logits writes the LM head's logits of every row, [rows, vocab], from
// the residual stream after the blocks run so far (all of them, for the
// model's output).
func (b *Blocks) Logits(out []float32) error {
	rows, V := b.Rows(), b.m.cfg.VocabSize
	if len(out) != rows*V {
		return fmt.Errorf("%w: logits buffer holds %d values, want %d", ErrInput, len(out), rows*V)
	}
	h := growF32(nil, len(b.x))
	b.m.norm(h, b.x, b.m.normW, b.m.normB, 0, rows)
	b.m.logits(&b.p.s, h, rows, out) // the head over every row at once
	return nil
}
