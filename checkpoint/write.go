package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/internal/safeio"
	"github.com/lmsparse/lmsparse/tensor"
)

// DefaultMaxShardSize is Hugging Face's default shard size, 5 GB.
const DefaultMaxShardSize = 5_000_000_000

// ErrOutput reports an output directory lmsparse refuses to write: the
// input directory itself, a file, a non-empty directory without Force, or
// one another lmsparse run is writing.
var ErrOutput = errors.New("refusing to write output")

// AuxFiles are the files copied unchanged from the input directory: the
// configuration, tokenizer and generation files of a Hugging Face checkpoint.
var auxFiles = []string{
	ConfigFile, "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"tokenizer.model", "special_tokens_map.json", "added_tokens.json",
	"vocab.json", "merges.txt", "vocab.txt", "LICENSE", "LICENSE.txt", "LICENSE.md", "NOTICE",
}

// WriteOptions control WriteDir.
type WriteOptions struct {
	// MaxShardSize is the most tensor bytes per shard; tensors are never
	// split, so a larger tensor gets a shard of its own. 0 means
	// DefaultMaxShardSize.
	MaxShardSize int64
	// Force allows replacing a non-empty directory: its lmsparse files
	// are replaced by the new output (those the new output does not write
	// are dropped); its other files and directories are kept.
	Force bool
	// Metadata is written to every shard's __metadata__; nil means
	// {"format": "pt"}.
	Metadata map[string]string
	// Config, when non-nil, replaces config.json.
	Config []byte
	// Extra files (name → content) written beside the checkpoint, such as
	// lmsparse.json.
	Extra map[string][]byte
	// After, when set, is called once every tensor and auxiliary file is
	// written, with the staging directory (which can be opened as a
	// checkpoint); the files it returns are written like Extra (for reports
	// of what was written) and committed with the rest.
	After func(dir string) (map[string][]byte, error)
}

// CheckOutput verifies that out may receive a checkpoint read from inDir,
// without writing anything: out must not be inDir or inside it ("" = no
// input), must not be a file or a dangling symbolic link, must be absent
// or empty unless force is set, and no other lmsparse run may be writing
// it (holding its lock, see [Create]).
func CheckOutput(out, inDir string, force bool) error {
	if err := checkOutput(out, inDir, force); err != nil {
		return err
	}
	if target, err := outputTarget(out); err == nil {
		if err := probeLock(layoutOf(target).lock); err != nil {
			return fmt.Errorf("%s: %w: %v", out, ErrOutput, err)
		}
	}
	return nil
}

// checkOutput is CheckOutput without the lock.
func checkOutput(out, inDir string, force bool) error {
	if inDir != "" {
		if inside, err := within(out, inDir); err != nil {
			return err
		} else if inside {
			return fmt.Errorf("%s: %w: it is the input directory %s or inside it", out, ErrOutput, inDir)
		}
	}
	st, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		if _, lerr := os.Lstat(out); lerr == nil {
			return fmt.Errorf("%s: %w: it is a symbolic link to a missing directory", out, ErrOutput)
		}
		// It is created beside its nearest existing ancestor.
		if abs, err := filepath.Abs(out); err == nil {
			for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
				if st, err := os.Stat(d); err == nil {
					if st.IsDir() && !writable(d) {
						return fmt.Errorf("%s: %w: cannot create it: %s is not writable", out, ErrOutput, d)
					}
					break
				}
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %w: it is a file, not a directory", out, ErrOutput)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return bookkeeping(e.Name()) })
	if len(ents) > 0 && !force {
		return fmt.Errorf("%s: %w: directory is not empty (use --force to overwrite)", out, ErrOutput)
	}
	return nil
}

// within reports whether path is dir or lies inside it, resolving symbolic
// links of the longest existing prefix of path.
func within(path, dir string) (bool, error) {
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || filepath.IsLocal(rel), nil
}

// resolve returns the absolute, symlink-free form of path; components that
// do not exist yet are appended as written.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// Shard is one planned output file.
type Shard struct {
	File    string // base name
	Entries []safetensors.Entry
	Bytes   int64
}

// PlanShards groups entries, in the order given, into shards of at most
// maxSize tensor bytes (a larger tensor gets a shard of its own) and names
// them as Hugging Face does: model.safetensors for one shard, else
// model-00001-of-0000N.safetensors.
func PlanShards(entries []safetensors.Entry, maxSize int64) []Shard {
	if maxSize <= 0 {
		maxSize = DefaultMaxShardSize
	}
	var shards []Shard
	for _, e := range entries {
		n := len(shards)
		if n == 0 || (shards[n-1].Bytes > 0 && shards[n-1].Bytes+e.Size > maxSize) {
			shards = append(shards, Shard{})
			n++
		}
		shards[n-1].Entries = append(shards[n-1].Entries, e)
		shards[n-1].Bytes += e.Size
	}
	if len(shards) == 0 {
		shards = []Shard{{}}
	}
	for i := range shards {
		if len(shards) == 1 {
			shards[i].File = SingleFile
		} else {
			shards[i].File = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		}
	}
	return shards
}

// WriteDir writes a Hugging Face checkpoint directory at out: the entries
// as safetensors (sharded per opts.MaxShardSize, with an index when there
// is more than one shard), the auxiliary files of the input directory
// inDir (config, tokenizer, generation) and opts.Extra, then opts.After's
// files. Tensors stream one at a time. Everything is assembled in a staging
// directory beside out and committed at once (see [Output]): a failure at
// any point, including in After, leaves out as it was.
func WriteDir(out, inDir string, entries []safetensors.Entry, opts WriteOptions) error {
	o, err := Create(out, OutputOptions{Force: opts.Force, InputDir: inDir})
	if err != nil {
		return err
	}
	defer o.Abort()
	if _, err := o.WriteTensors(entries, TensorOptions{MaxShardSize: opts.MaxShardSize, Metadata: opts.Metadata}); err != nil {
		return err
	}
	if err := o.CopyAux(inDir, opts.Config); err != nil {
		return err
	}
	extra := opts.Extra
	if opts.After != nil {
		late, err := opts.After(o.Staging())
		if err != nil {
			return err
		}
		extra = make(map[string][]byte, len(opts.Extra)+len(late))
		for k, v := range opts.Extra {
			extra[k] = v
		}
		for k, v := range late {
			extra[k] = v
		}
	}
	for _, name := range sortedNames(extra) {
		if err := o.WriteFile(name, extra[name]); err != nil {
			return err
		}
	}
	return o.Commit(context.Background())
}

// Stage fills the output directory out through fill, which writes into a
// staging directory beside out; the result is committed (see [Output]) only
// when fill succeeds, so a failure or an interruption leaves out as it was.
// Stage does not refuse a non-empty out (its files that are not lmsparse's
// are kept, as with Force): check the output location with CheckOutput
// first.
func Stage(out string, fill func(dir string) error) error {
	o, err := Create(out, OutputOptions{Force: true})
	if err != nil {
		return err
	}
	defer o.Abort()
	if err := fill(o.Staging()); err != nil {
		return err
	}
	return o.Commit(context.Background())
}

// CopyAux copies the configuration, tokenizer, generation and licence files
// of a checkpoint directory (those present) from inDir to outDir.
func CopyAux(inDir, outDir string) error {
	for _, name := range auxFiles {
		if err := copyFile(inDir, filepath.Join(inDir, name), filepath.Join(outDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func writeIndex(path string, shards []Shard) error {
	var total int64
	wm := map[string]string{}
	for _, s := range shards {
		for _, e := range s.Entries {
			wm[e.Name] = s.File
		}
		var err error
		if total, err = tensor.AddInt64(total, s.Bytes); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": wm,
	}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(b, '\n'))
}

// copyFile copies src, a file of the input directory inDir, to dst
// atomically under the input rule of package safeio: src's symbolic links
// must resolve inside inDir, and only a regular file is copied (a link out
// of the directory, a FIFO, device or directory is an error wrapping
// ErrFormat). The copy gets at most src's permissions (0644 masked by
// them), and exactly the size src had when opened. A missing src is
// reported as os.ErrNotExist so callers can skip optional files.
func copyFile(inDir, src, dst string) error {
	in, st, err := safeio.OpenIn(inDir, src)
	if err != nil {
		if errors.Is(err, safeio.ErrInput) {
			return fmt.Errorf("%w (%w)", err, ErrFormat)
		}
		return err
	}
	defer in.Close()
	return atomicfile.WriteMode(dst, st.Mode().Perm()&0o644, func(f *os.File) error {
		n, err := io.Copy(f, io.LimitReader(in, st.Size()))
		if err == nil && n != st.Size() {
			err = fmt.Errorf("%s: %w: changed while copied", src, ErrFormat)
		}
		return err
	})
}

// Entries returns copy entries for every tensor of m, in natural name order.
func (m *Model) Entries() ([]safetensors.Entry, error) {
	es := make([]safetensors.Entry, 0, len(m.names))
	for _, n := range m.names {
		e, err := m.Entry(n)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, nil
}
