package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// manifestFile is written into every output directory.
const (
	manifestFile   = "lmsparse.json"
	manifestSchema = "lmsparse.manifest/v1"
)

// manifest is lmsparse.json: what produced an output directory, from what,
// and how big each tensor is before and after. prune --json prints it.
type manifest struct {
	Schema  string           `json:"schema"`
	Tool    string           `json:"tool"`
	Command string           `json:"command"`
	Method  string           `json:"method,omitempty"`
	Flags   map[string]any   `json:"flags"`
	Inputs  []manifestInput  `json:"inputs"`
	Tensors []manifestTensor `json:"tensors"`
	Totals  manifestTotals   `json:"totals"`
}

type manifestInput struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

type manifestTensor struct {
	Name       string  `json:"name"`
	Pruned     bool    `json:"pruned"`
	Encoding   string  `json:"encoding"`
	DType      string  `json:"dtype"`
	Shape      []int64 `json:"shape"`
	Parameters int64   `json:"parameters"`
	// Nonzeros counts values that are not zero after pruning (null for a
	// dtype lmsparse does not decode); Stored counts the elements a sparse
	// encoding keeps (nonzero bits, so -0.0 too).
	Nonzeros    *int64  `json:"nnz"`
	Stored      int64   `json:"stored,omitempty"`
	Sparsity    float64 `json:"sparsity"`
	BytesBefore int64   `json:"bytes_before"`
	BytesAfter  int64   `json:"bytes_after"`
}

type manifestTotals struct {
	Tensors        int     `json:"tensors"`
	PrunedTensors  int     `json:"pruned_tensors"`
	Parameters     int64   `json:"parameters"`
	Nonzeros       int64   `json:"nnz"`
	Sparsity       float64 `json:"sparsity"`
	TargetSparsity float64 `json:"pruned_tensors_sparsity"`
	BytesBefore    int64   `json:"bytes_before"`
	BytesAfter     int64   `json:"bytes_after"`
	Ratio          float64 `json:"ratio"`
}

// hashInputs returns every input file (weights, config, tokenizer) with
// its size and sha256, in a stable order.
func hashInputs(m *checkpoint.Model) ([]manifestInput, error) {
	return hashFiles(m.Dir, m.Files)
}

// hashFiles hashes files and the config and tokenizer files of dir,
// naming them relative to dir.
func hashFiles(dir string, files []string) ([]manifestInput, error) {
	files = append([]string(nil), files...)
	for _, aux := range []string{checkpoint.ConfigFile, "tokenizer.json", "tokenizer_config.json"} {
		p := filepath.Join(dir, aux)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	var out []manifestInput
	buf := make([]byte, 1<<20)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		// Hide File.WriteTo, which would copy through a 32 KiB buffer.
		n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, manifestInput{File: rel(dir, p), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// readFileBounded reads a small file (config.json), refusing huge ones.
func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const max = 16 << 20
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, checkpoint.ErrFormat, max)
	}
	return b, nil
}

// outputOptions are the flags of every command that writes a checkpoint.
type outputOptions struct {
	Dir          string
	MaxShardSize int64
	Force        bool
	shard        byteSize
}

func (o *outputOptions) register(fs *pflag.FlagSet) {
	o.shard = byteSize(checkpoint.DefaultMaxShardSize)
	fs.StringVarP(&o.Dir, "output", "o", "", "output checkpoint directory (required)")
	fs.Var(&o.shard, "max-shard-size", "largest shard, e.g. 5GB, 500MB, 2GiB (decimal units are powers of 1000)")
	fs.BoolVar(&o.Force, "force", false, "write into a non-empty output directory")
}

func (o *outputOptions) check(cmd string) error {
	if o.Dir == "" {
		return usageErrorf("%s: -o/--output is required", cmd)
	}
	o.MaxShardSize = int64(o.shard)
	return nil
}
