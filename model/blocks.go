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

// Blocks runs a fixed batch of windows through the model one block at a
// time, each block with projection weights the caller gives (the rest of
// the model — embeddings, norms, biases — is the model's): the forward
// pass of pruning methods that look at activations, which prune block i
// on the outputs of the blocks before it, already pruned. The results
// equal those of the model's own forward pass with the same weights.
type Blocks struct {
	m    *Model
	p    pass
	x    []float32 // residual stream before the next block [rows, dim]
	next int       // the block Run runs next
}

// NewBlocks embeds the windows (token ids, validated) and readies them
// for block 0.
func (m *Model) NewBlocks(wins [][]int) (*Blocks, error) {
	for _, w := range wins {
		if err := m.checkIDs(w); err != nil {
			return nil, err
		}
	}
	b := &Blocks{m: m}
	maxT := m.setup(&b.p, wins)
	if err := m.embedRows(&b.p); err != nil {
		return nil, err
	}
	m.ropeFor(&b.p, maxT)
	b.x = append([]float32(nil), b.p.x...)
	return b, nil
}

// Rows returns the number of token rows of the batch.
func (b *Blocks) Rows() int { return len(b.p.tok) }

// Next returns the block Run runs.
func (b *Blocks) Next() int { return b.next }

// Run runs the next block on the current residual stream with the given
// projection tensors (every tensor of Projections(layer), by name, as
// stored in the checkpoint), calling probe, when not nil, with each
// projection group's input. The result is kept apart: Advance makes it
// the input of the following block; another Run of the same block
// replaces it.
func (b *Blocks) Run(ctx context.Context, weights map[string][]float32, probe Probe) error {
	if err := ctx.Err(); err != nil {
		return err
	}
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
	copy(b.p.x, b.x)
	m.block(&b.p, L, w, probe)
	return nil
}

// Advance makes the last Run's output the next block's input.
func (b *Blocks) Advance() {
	b.x, b.p.x = b.p.x, b.x
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
	b.m.logits(&b.p.s, h, rows, out)
	return nil
}
