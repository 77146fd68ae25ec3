package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/safeio"
	"github.com/lmsparse/lmsparse/tensor"
)

var (
	// ErrFormat reports a checkpoint that is malformed: a bad config.json
	// or index, a missing file, tensors inconsistent with the index.
	ErrFormat = errors.New("invalid checkpoint")
	// ErrUnsupported reports a well-formed checkpoint lmsparse cannot
	// handle, such as an unknown model_type.
	ErrUnsupported = errors.New("unsupported checkpoint")
)

// Standard file names of a Hugging Face checkpoint.
const (
	ConfigFile      = "config.json"
	SingleFile      = "model.safetensors"
	IndexFile       = "model.safetensors.index.json"
	maxIndexSize    = 64 << 20
	maxIndexEntries = 1 << 20
)

// Tensor describes one tensor of a model and where it is stored.
type Tensor struct {
	safetensors.TensorInfo
	File string // path of the safetensors file holding it
}

// Model is an opened checkpoint. Tensors are read lazily from
// memory-mapped files. A Model is safe for concurrent reads.
type Model struct {
	// Path is what was opened: a directory or a .safetensors file.
	Path string
	// Dir is the checkpoint directory (for a single file, its directory).
	Dir string
	// Config is the parsed config.json, or nil for a lone .safetensors
	// file with no config.json beside it.
	Config *Config
	// Files are the safetensors files, in shard order.
	Files []string

	shards  []*safetensors.File
	tensors map[string]ref
	names   []string
	virtual map[string]*SparseTensor // set by ExpandSparse
	// expandMu guards expandFree, the memory ReadAt decodes expanded
	// tensors with, recycled so that reading them pass after pass makes
	// no garbage.
	expandMu   sync.Mutex
	expandFree []*expandScratch
}

type ref struct {
	shard int
	info  safetensors.TensorInfo
}

// Open opens a checkpoint: a directory holding config.json and either
// model.safetensors or model.safetensors.index.json with its shards, or a
// single .safetensors file (config.json beside it is used when present).
// Every file is validated before Open returns.
func Open(path string) (m *Model, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	m = &Model{Path: path, tensors: map[string]ref{}}
	opened := m
	defer func() {
		if err != nil {
			opened.Close()
			m = nil
		}
	}()
	if !st.IsDir() {
		if strings.HasSuffix(strings.ToLower(path), ".onnx") {
			return nil, fmt.Errorf("%s: %w: an ONNX model is read by inspect, prune, decompress and eval; this needs a Hugging Face checkpoint (a directory or a .safetensors file)", path, ErrUnsupported)
		}
		if !strings.HasSuffix(path, ".safetensors") {
			return nil, fmt.Errorf("%s: %w: not a directory or a .safetensors file", path, ErrUnsupported)
		}
		m.Dir = filepath.Dir(path)
		cfgPath := filepath.Join(m.Dir, ConfigFile)
		if _, err := os.Stat(cfgPath); err == nil {
			if m.Config, err = readConfig(cfgPath); err != nil {
				return nil, err
			}
		}
		return m, m.finishOpen(m.addShards([]string{path}, nil))
	}
	m.Dir = path
	if m.Config, err = readConfig(filepath.Join(path, ConfigFile)); err != nil {
		return nil, err
	}
	single := filepath.Join(path, SingleFile)
	if _, err := os.Stat(single); err == nil {
		return m, m.finishOpen(m.addShards([]string{single}, nil))
	}
	index := filepath.Join(path, IndexFile)
	if _, err := os.Stat(index); err != nil {
		return nil, fmt.Errorf("%s: %w: no %s or %s", path, ErrFormat, SingleFile, IndexFile)
	}
	files, weightMap, err := readIndex(index)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		files[i] = filepath.Join(path, f)
	}
	return m, m.finishOpen(m.addShards(files, weightMap))
}

func readConfig(path string) (*Config, error) {
	data, err := readFileIn(filepath.Dir(path), path, maxConfigSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: missing %s", filepath.Dir(path), ErrFormat, ConfigFile)
		}
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// readIndex parses model.safetensors.index.json. It returns the shard file
// names in sorted order and the weight map (tensor → shard file name).
func readIndex(path string) ([]string, map[string]string, error) {
	data, err := readFileIn(filepath.Dir(path), path, maxIndexSize)
	if err != nil {
		return nil, nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: invalid JSON: %v", path, ErrFormat, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, nil, fmt.Errorf("%s: %w: empty or missing weight_map", path, ErrFormat)
	}
	if len(idx.WeightMap) > maxIndexEntries {
		return nil, nil, fmt.Errorf("%s: %w: %d weight_map entries (at most %d)", path, ErrFormat, len(idx.WeightMap), maxIndexEntries)
	}
	seen := map[string]bool{}
	var files []string
	for name, file := range idx.WeightMap {
		if !filepath.IsLocal(file) || strings.ContainsRune(file, '\\') {
			return nil, nil, fmt.Errorf("%s: %w: tensor %q: shard %q is outside the checkpoint directory", path, ErrFormat, name, file)
		}
		file = filepath.Clean(file)
		idx.WeightMap[name] = file
		if !seen[file] {
			seen[file] = true
			files = append(files, file)
		}
	}
	sort.Strings(files)
	return files, idx.WeightMap, nil
}

// addShards opens the files and registers their tensors. With a weight map,
// each tensor must be in the shard the map names, and every tensor of a
// shard must be listed.
func (m *Model) addShards(files []string, weightMap map[string]string) error {
	for i, path := range files {
		open := path
		if m.Dir == m.Path { // a directory: its shards must stay inside it
			var err error
			if open, err = safeio.Resolve(m.Dir, path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%w (%w)", err, ErrFormat)
			} else if err != nil {
				open = path
			}
		}
		f, err := safetensors.Open(open)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s: %w: missing shard %s named in %s", path, ErrFormat, filepath.Base(path), IndexFile)
			}
			return err
		}
		m.shards = append(m.shards, f)
		m.Files = append(m.Files, path)
		base, _ := filepath.Rel(m.Dir, path)
		for _, t := range f.Tensors() {
			if prev, dup := m.tensors[t.Name]; dup {
				return fmt.Errorf("%s: %w: tensor %q is also in %s", path, ErrFormat, t.Name, m.Files[prev.shard])
			}
			if weightMap != nil {
				if want, ok := weightMap[t.Name]; !ok {
					return fmt.Errorf("%s: %w: tensor %q is not in %s", path, ErrFormat, t.Name, IndexFile)
				} else if want != base {
					return fmt.Errorf("%s: %w: tensor %q is in %s but %s says %s", path, ErrFormat, t.Name, base, IndexFile, want)
				}
			}
			m.tensors[t.Name] = ref{shard: i, info: t}
			m.names = append(m.names, t.Name)
		}
	}
	for name, file := range weightMap {
		if _, ok := m.tensors[name]; !ok {
			return fmt.Errorf("%s: %w: %s lists tensor %q in %s, which does not hold it", m.Dir, ErrFormat, IndexFile, name, file)
		}
	}
	SortNames(m.names)
	return nil
}

// Close closes every file. Slices from Bytes must not be used afterwards.
func (m *Model) Close() error {
	var err error
	for _, s := range m.shards {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}
	m.shards = nil
	return err
}

// Names returns the tensor names in natural order ("layers.2" before
// "layers.10"). Do not modify the slice.
func (m *Model) Names() []string { return m.names }

// Tensor returns the description of a tensor.
func (m *Model) Tensor(name string) (Tensor, bool) {
	if st := m.virtual[name]; st != nil {
		return m.virtualInfo(st), true
	}
	r, ok := m.tensors[name]
	if !ok {
		return Tensor{}, false
	}
	return Tensor{TensorInfo: r.info, File: m.Files[r.shard]}, true
}

func (m *Model) lookup(name string) (ref, error) {
	r, ok := m.tensors[name]
	if !ok {
		return r, fmt.Errorf("%s: tensor %q not found", m.Path, name)
	}
	return r, nil
}

// Bytes returns the raw bytes of a tensor: a read-only view of the mapped
// file when possible.
func (m *Model) Bytes(name string) ([]byte, error) {
	if st := m.virtual[name]; st != nil {
		return m.denseBytes(st, nil)
	}
	r, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	b, err := m.shards[r.shard].Bytes(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Files[r.shard], err)
	}
	return b, nil
}

// MappedBytes returns a tensor's raw bytes as a read-only view of the
// mapped file (writing to it faults), or false when its file is not
// mapped or the tensor is virtual. Pages touched through the view stay
// resident until dropped (internal/mmap.DropPages) or unmapped.
func (m *Model) MappedBytes(name string) ([]byte, bool) {
	if m.virtual[name] != nil {
		return nil, false
	}
	r, ok := m.tensors[name]
	if !ok || !m.shards[r.shard].Mapped() {
		return nil, false
	}
	b, err := m.shards[r.shard].Bytes(name)
	return b, err == nil
}

// Float32 decodes a floating-point tensor to a new float32 slice. It reads
// through the file descriptor, not the mapping, so that loading every
// weight of a model does not also keep the mapped file resident.
func (m *Model) Float32(name string) ([]float32, error) {
	info, ok := m.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q not found", m.Path, name)
	}
	n, err := info.Shape.Elems()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if info.DType == tensor.F32 && tensor.LittleEndianHost() && m.virtual[name] == nil {
		if _, err := m.ReadInto(name, tensor.F32Bytes(out)); err != nil {
			return nil, err
		}
		return out, nil
	}
	b, err := m.ReadInto(name, nil)
	if err != nil {
		return nil, err
	}
	if err := tensor.DecodeF32(out, b, info.DType); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
	}
	return out, nil
}

// Section returns a streaming reader of a tensor's bytes that does not go
// through the memory mapping (so it does not grow resident memory).
func (m *Model) Section(name string) (*io.SectionReader, error) {
	if st := m.virtual[name]; st != nil {
		b, err := m.denseBytes(st, nil)
		if err != nil {
			return nil, err
		}
		return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))), nil
	}
	r, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	return m.shards[r.shard].Section(name)
}

// Entry returns a writer entry copying the tensor unchanged.
func (m *Model) Entry(name string) (safetensors.Entry, error) {
	if st := m.virtual[name]; st != nil {
		return m.virtualEntry(st), nil
	}
	r, err := m.lookup(name)
	if err != nil {
		return safetensors.Entry{}, err
	}
	return m.shards[r.shard].Entry(name)
}

// Metadata returns the __metadata__ of the first file.
func (m *Model) Metadata() map[string]string {
	if len(m.shards) == 0 {
		return nil
	}
	return m.shards[0].Metadata()
}

// ReadInto reads a tensor's raw bytes into buf (grown when too small)
// through the file descriptor rather than the mapping, so the memory in
// use is buf and not the mapped file; it returns the filled slice.
func (m *Model) ReadInto(name string, buf []byte) ([]byte, error) {
	if st := m.virtual[name]; st != nil {
		return m.denseBytes(st, buf)
	}
	r, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if int64(cap(buf)) < r.info.Size {
		buf = make([]byte, r.info.Size)
	}
	buf = buf[:r.info.Size]
	sec, err := m.shards[r.shard].Section(name)
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(sec, buf); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", m.Files[r.shard], name, err)
	}
	return buf, nil
}

// finishOpen checks, after the tensors are registered (err is theirs),
// that no tensor belongs to a block beyond the config's layer count: a
// num_hidden_layers smaller than the blocks present would make the forward
// pass ignore them.
func (m *Model) finishOpen(err error) error {
	if err != nil || m.Config == nil {
		return err
	}
	for _, name := range m.names {
		if l, ok := blockIndex(name); ok && l >= m.Config.NumLayers {
			key := "num_hidden_layers"
			if m.Config.ModelType == "gpt2" {
				key = "n_layer"
			}
			return fmt.Errorf("%s: %w: tensor %q is in block %d, but config.json's %s is %d", m.Path, ErrFormat, name, l, key, m.Config.NumLayers)
		}
	}
	return nil
}

// blockIndex returns N for a tensor of a transformer block, named like
// "model.layers.N.…", "transformer.h.N.…" or "h.N.…".
func blockIndex(name string) (int, bool) {
	for _, p := range []string{"model.layers.", "layers.", "transformer.h.", "h."} {
		i := strings.Index(name, p)
		if i < 0 || (i > 0 && name[i-1] != '.') {
			continue
		}
		rest := name[i+len(p):]
		n, j := 0, 0
		for j < len(rest) && j < 9 && rest[j] >= '0' && rest[j] <= '9' {
			n = n*10 + int(rest[j]-'0')
			j++
		}
		if j > 0 && j < len(rest) && rest[j] == '.' {
			return n, true
		}
	}
	return 0, false
}
