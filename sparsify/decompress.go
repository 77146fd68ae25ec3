package sparsify

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
)

// Decompressed is what Decompress rebuilt.
type Decompressed struct {
	Manifest *manifest.Manifest
	// Tensors is the number of tensors written; Rebuilt counts the sparse
	// tensors rebuilt dense, by encoding (csr, bitmask, sae, and for ONNX
	// "sparse" for sparse_initializers).
	Tensors int
	Rebuilt map[sparse.Encoding]int
	// ONNX is set for an ONNX model.
	ONNX bool
}

// Decompress writes the model at path into out with every sparse tensor
// rebuilt dense: lmsparse CSR and SAE parts, compressed-tensors bitmask
// parts, ONNX sparse_initializers. Other tensors are copied unchanged; the
// CSR and SAE markers and the quantization_config lmsparse added are
// removed, so the checkpoint files equal those of a dense prune. It does
// not commit out. maxShard is the largest shard (0: 5 GB).
func Decompress(ctx context.Context, path string, out *checkpoint.Output, maxShard int64) (*Decompressed, error) {
	if file, ok := checkpoint.ONNXPath(path); ok {
		return decompressONNX(file, out)
	}
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	cfg, err := checkpoint.ReadConfigBytes(m)
	if err != nil {
		return nil, err
	}
	expanded, err := m.ExpandSparse()
	if err != nil {
		return nil, err
	}
	byName := map[string]*checkpoint.SparseTensor{}
	for i := range expanded {
		byName[expanded[i].Name] = &expanded[i]
	}
	entries, err := m.Entries()
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Write = withContext(ctx, entries[i].Write)
	}
	rep := manifest.New("decompress")
	rep.Flags = map[string]any{"max_shard_size": maxShard}
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		n, _ := info.Shape.Elems()
		row := manifest.Tensor{Name: name, Encoding: string(sparse.Dense), DType: string(info.DType),
			Shape: nonNilShape(info.Shape), Parameters: n, BytesBefore: info.Size, BytesAfter: info.Size}
		if st := byName[name]; st != nil {
			row.Encoding, row.BytesBefore = string(st.Encoding), st.PartBytes
		}
		rep.Add(row) // no sparsity or ratio: decompress records sizes only
	}
	if rep.Inputs, err = manifest.HashFiles(m.Dir, m.Files); err != nil {
		return nil, err
	}
	meta := CopyMetadata(m.Metadata())
	delete(meta, sparse.MetadataKey)
	delete(meta, sparse.SAEMetadataKey)
	var config []byte
	if cfg != nil {
		if config, err = checkpoint.RemoveQuantizationConfig(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Dir, err)
		}
	}
	if _, err := out.WriteTensors(entries, checkpoint.TensorOptions{MaxShardSize: maxShard, Metadata: meta}); err != nil {
		return nil, err
	}
	if err := out.CopyAux(m.Dir, config); err != nil {
		return nil, err
	}
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile(manifest.File, js); err != nil {
		return nil, err
	}
	d := &Decompressed{Manifest: rep, Tensors: len(entries), Rebuilt: map[sparse.Encoding]int{}}
	for _, st := range expanded {
		d.Rebuilt[st.Encoding]++
	}
	return d, nil
}

// withContext makes a tensor writer stop once ctx is done.
func withContext(ctx context.Context, write func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return write(w)
	}
}

// Copy writes the checkpoint at path into out unchanged, bit for bit,
// re-sharded to maxShard tensor bytes per file (0: 5 GB), with the
// configuration and tokenizer files. It returns the shards written. It
// does not commit out.
func Copy(ctx context.Context, path string, out *checkpoint.Output, maxShard int64) ([]checkpoint.Shard, error) {
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	es, err := m.Entries()
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].Write = withContext(ctx, es[i].Write)
	}
	shards, err := out.WriteTensors(es, checkpoint.TensorOptions{MaxShardSize: maxShard, Metadata: m.Metadata()})
	if err != nil {
		return nil, err
	}
	return shards, out.CopyAux(m.Dir, nil)
}

// decompressONNX writes every sparse initializer of an ONNX model dense.
func decompressONNX(file string, out *checkpoint.Output) (*Decompressed, error) {
	m, err := onnx.Open(file)
	if err != nil {
		return nil, err
	}
	d := &Decompressed{Tensors: len(m.Initializers()), Rebuilt: map[sparse.Encoding]int{}, ONNX: true}
	for _, in := range m.Initializers() {
		if in.Storage == onnx.StorageSparse {
			d.Rebuilt["sparse"]++
		}
	}
	rep := onnxManifest(m, nil, "decompress")
	rep.Flags = map[string]any{}
	written := out.Path(filepath.Base(file))
	if err := m.Write(written, onnx.WriteOptions{Dense: true}); err != nil {
		return nil, err
	}
	if err := out.CopyAux(filepath.Dir(file), nil); err != nil {
		return nil, err
	}
	if err := writeONNXManifest(out, written, rep, file); err != nil {
		return nil, err
	}
	d.Manifest = rep
	return d, nil
}
