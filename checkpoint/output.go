package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/manifest"
)

// OutputOptions control [Create].
type OutputOptions struct {
	// Force allows replacing a non-empty output directory: lmsparse's files
	// there (see [Create]) are replaced by the new output, everything else
	// is kept.
	Force bool
	// InputDir is the directory the output is made from; the output may be
	// neither that directory nor inside it. "" means no input to check.
	InputDir string
}

// TensorOptions control [Output.WriteTensors].
type TensorOptions struct {
	// MaxShardSize is the most tensor bytes per shard; tensors are never
	// split, so a larger tensor gets a shard of its own. 0 means
	// DefaultMaxShardSize.
	MaxShardSize int64
	// Metadata is written to every shard's __metadata__; nil means
	// {"format": "pt"}.
	Metadata map[string]string
}

// Output is an output directory being written: files go to a staging
// directory beside it (inside it for a mount point), and [Output.Commit]
// makes them appear at the final path at once. See the package documentation ("Writing") for the
// guarantees. An Output is used by one goroutine.
type Output struct {
	dir     string // as given to Create, cleaned
	target  string // absolute, final symbolic link resolved
	lay     layout
	staging string
	force   bool
	lock    *outputLock
	tensors bool // WriteTensors was called
	done    bool // committed or aborted
	notes   []string
}

// layout is where an output's lock, staging and backup directories go:
// beside OUT (.OUT.lmsparse-lock, .OUT.tmp-PID-N, .OUT.old-PID-N), or,
// when OUT cannot be replaced as a whole (a mount point, or in a directory
// this process cannot write), inside it (.lmsparse-lock,
// .lmsparse-tmp-PID-N, .lmsparse-old-PID-N).
type layout struct {
	inside   bool
	dir      string // holds the three
	tmp, old string // name prefixes, before PID-N
	lock     string // path
}

// Bookkeeping names inside an output directory (the inside layout).
const (
	insideTmp  = ".lmsparse-tmp-"
	insideOld  = ".lmsparse-old-"
	insideLock = ".lmsparse-lock"
)

// layoutOf returns the layout for the output at target (absolute).
func layoutOf(target string) layout {
	if fi, err := os.Stat(target); err == nil && fi.IsDir() &&
		(isMountPoint(target) || !writable(filepath.Dir(target))) {
		return layout{inside: true, dir: target, tmp: insideTmp, old: insideOld, lock: filepath.Join(target, insideLock)}
	}
	parent, base := filepath.Dir(target), "."+filepath.Base(target)
	return layout{dir: parent, tmp: base + ".tmp-", old: base + ".old-", lock: filepath.Join(parent, base+".lmsparse-lock")}
}

// bookkeeping reports whether name, in an output directory, is one of
// lmsparse's lock, staging or backup entries of the inside layout, which
// do not make the directory non-empty.
func bookkeeping(name string) bool {
	if name == insideLock {
		return true
	}
	for _, p := range []string{insideTmp, insideOld} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if _, ok := parseTempSuffix(rest); ok {
				return true
			}
		}
	}
	return false
}

var (
	// errLocked: another process holds the output's lock.
	errLocked = errors.New("another lmsparse run is writing it")
	// errRenameUnsupported: the system cannot exchange two directories or
	// rename without replacing (an old kernel, some file systems).
	errRenameUnsupported = errors.New("rename flags not supported")
)

// The renames Commit uses; tests replace them to exercise the fallbacks.
var (
	exchangeDirs = renameExchange
	renameNew    = renameNoReplace
	isMountPoint = mountPoint
	linkFile     = os.Link
	// commitHook, when set, is called at the steps of a commit over an
	// existing directory: "carried" (before the switch), "moved aside" (in
	// the fallbacks, the old output moved away) and "switched".
	commitHook func(step string)
)

func hook(step string) {
	if commitHook != nil {
		commitHook(step)
	}
}

// Create prepares writing a checkpoint directory at dir. It checks dir as
// [CheckOutput] does (refusals wrap [ErrOutput]), takes the output's lock
// (a second writer of the same directory fails at once with an error
// wrapping [ErrOutput]), removes temporary directories left beside dir by
// interrupted runs whose process is gone (see [Output.Notes]) and creates
// the staging directory. Nothing else is written, and dir is not touched
// until [Output.Commit]. Call [Output.Abort] (deferred) to release the
// staging directory and the lock when the output is not committed.
func Create(dir string, opts OutputOptions) (*Output, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty output path", ErrOutput)
	}
	dir = filepath.Clean(dir)
	if err := checkOutput(dir, opts.InputDir, opts.Force); err != nil {
		return nil, err
	}
	target, err := outputTarget(dir)
	if err != nil {
		return nil, err
	}
	if filepath.Dir(target) == target {
		return nil, fmt.Errorf("%s: %w: the root directory cannot be replaced", dir, ErrOutput)
	}
	o := &Output{dir: dir, target: target, lay: layoutOf(target), force: opts.Force}
	if err := os.MkdirAll(o.lay.dir, 0o755); err != nil {
		return nil, err
	}
	if o.lock, err = lockOutput(o.lay.lock); err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%s: %w: %v", dir, ErrOutput, err)
		}
		return nil, fmt.Errorf("%s: locking the output: %w", dir, err)
	}
	// Checked again under the lock: another run may have committed since.
	if err := checkOutput(dir, opts.InputDir, opts.Force); err != nil {
		o.lock.release()
		return nil, err
	}
	o.sweep()
	stage, err := os.MkdirTemp(o.lay.dir, o.lay.tmp+strconv.Itoa(os.Getpid())+"-*")
	if err == nil {
		if err = os.Chmod(stage, 0o755); err != nil {
			os.Remove(stage)
		}
	}
	if err != nil {
		o.lock.release()
		return nil, err
	}
	o.staging = stage
	return o, nil
}

// outputTarget returns the absolute path the output is committed to: dir,
// or the directory it links to when dir is a symbolic link.
func outputTarget(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return filepath.EvalSymlinks(abs)
	}
	return abs, nil
}

// sweep removes the staging directories of earlier runs on this output
// whose process no longer exists (.OUT.tmp-PID-N; with the lock held no
// live lmsparse writes them) and records a note for each, and for what it
// leaves: temporary directories of older versions (no PID in the name) and
// backups of the fallback commits.
func (o *Output) sweep() {
	ents, err := os.ReadDir(o.lay.dir)
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(o.lay.dir, name)
		if rest, ok := strings.CutPrefix(name, o.lay.old); ok {
			if _, ok := parseTempSuffix(rest); ok {
				o.note("%s holds the output an interrupted run had moved aside; remove it when it is no longer needed", p)
			}
			continue
		}
		rest, ok := strings.CutPrefix(name, o.lay.tmp)
		if !ok {
			continue
		}
		pid, ok := parseTempSuffix(rest)
		switch {
		case !ok:
			if allDigits(rest) {
				o.note("left %s: a temporary directory of an older lmsparse; remove it if no lmsparse writes %s", p, o.dir)
			}
		case pid != self && !pidAlive(pid):
			if err := removeTree(p); err != nil {
				o.note("could not remove %s, left by an interrupted run (pid %d): %v", p, pid, err)
			} else {
				o.note("removed %s, left by an interrupted run (pid %d)", p, pid)
			}
		}
	}
}

// RemoveStale removes what interrupted runs whose process is gone left
// beside the output dir — staging directories (.DIR.tmp-PID-N) and an
// unheld lock file — and returns notes saying what it removed or left, as
// [Output.Notes]. It takes no lock: a live run's directories are kept.
func RemoveStale(dir string) []string {
	target, err := outputTarget(filepath.Clean(dir))
	if err != nil {
		return nil
	}
	o := &Output{dir: dir, target: target, lay: layoutOf(target)}
	o.sweep()
	if _, err := os.Lstat(o.lay.lock); err == nil && probeLock(o.lay.lock) == nil {
		if l, err := lockOutput(o.lay.lock); err == nil {
			l.release() // removes the file while holding the lock
		}
	}
	return o.notes
}

// parseTempSuffix parses "PID-N" (both decimal).
func parseTempSuffix(s string) (int, bool) {
	p, n, ok := strings.Cut(s, "-")
	if !ok || !allDigits(p) || !allDigits(n) {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (o *Output) note(format string, args ...any) {
	o.notes = append(o.notes, fmt.Sprintf(format, args...))
}

// Notes returns what Create and Commit did beside writing the output that
// a user may want to know: temporary directories of interrupted runs
// removed or left, old content that could not be removed.
func (o *Output) Notes() []string { return slices.Clone(o.notes) }

// Dir returns the final directory, as given to Create.
func (o *Output) Dir() string { return o.dir }

// Staging returns the directory being assembled. It can be read (opened as
// a checkpoint, evaluated) before Commit.
func (o *Output) Staging() string { return o.staging }

// Path returns the path of the file name inside the staging directory, for
// writers that create files themselves. name is a file name, not a path.
func (o *Output) Path(name string) string { return filepath.Join(o.staging, name) }

func (o *Output) usable() error {
	if o.done {
		return fmt.Errorf("%s: output already committed or aborted", o.dir)
	}
	return nil
}

// WriteTensors writes the entries as safetensors into the staging
// directory: model.safetensors, or shards of at most opts.MaxShardSize
// tensor bytes with model.safetensors.index.json (see [PlanShards]).
// Tensors stream one at a time. It returns the shards written and may be
// called once.
func (o *Output) WriteTensors(entries []safetensors.Entry, opts TensorOptions) ([]Shard, error) {
	if err := o.usable(); err != nil {
		return nil, err
	}
	if o.tensors {
		return nil, fmt.Errorf("%s: tensors already written", o.dir)
	}
	o.tensors = true
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.Name] {
			return nil, fmt.Errorf("tensor %q: duplicate name", e.Name)
		}
		seen[e.Name] = true
	}
	meta := opts.Metadata
	if meta == nil {
		meta = map[string]string{"format": "pt"}
	}
	shards := PlanShards(entries, opts.MaxShardSize)
	for _, s := range shards {
		if err := safetensors.WriteFile(o.Path(s.File), meta, s.Entries); err != nil {
			return nil, err
		}
	}
	if len(shards) > 1 {
		if err := writeIndex(o.Path(IndexFile), shards); err != nil {
			return nil, err
		}
	}
	return shards, nil
}

// CopyAux copies the configuration, tokenizer, generation and licence files
// present in inDir into the staging directory; config, when non-nil,
// replaces config.json.
func (o *Output) CopyAux(inDir string, config []byte) error {
	if err := o.usable(); err != nil {
		return err
	}
	for _, name := range auxFiles {
		if name == ConfigFile && config != nil {
			if err := atomicfile.WriteBytes(o.Path(name), config); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(inDir, filepath.Join(inDir, name), o.Path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// WriteFile writes data to the file name (a file name, not a path) in the
// staging directory.
func (o *Output) WriteFile(name string, data []byte) error {
	if err := o.usable(); err != nil {
		return err
	}
	if name != filepath.Base(name) || !filepath.IsLocal(name) {
		return fmt.Errorf("%s: %q is not a file name", o.dir, name)
	}
	return atomicfile.WriteBytes(o.Path(name), data)
}

// Abort removes the staging directory and releases the lock, leaving the
// output directory as it was. It does nothing after Commit or a previous
// Abort.
func (o *Output) Abort() error {
	if o.done {
		return nil
	}
	o.done = true
	defer o.lock.release()
	return removeTree(o.staging)
}

// Commit makes the staging directory the output directory at once, keeping
// the files of an existing output directory that are not lmsparse's (see
// the package documentation). On error the output directory is left as it
// was (or, in the fallback without an atomic exchange, the error names
// where the previous output is), and the staging directory is removed.
// ctx can cancel Commit until the output is switched.
func (o *Output) Commit(ctx context.Context) (err error) {
	if err := o.usable(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			o.Abort()
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := syncFiles(o.staging); err != nil {
		return err
	}
	// The output directory may appear or vanish meanwhile (not through
	// lmsparse, which holds the lock): look again a few times.
	for range 3 {
		fi, err := os.Lstat(o.target)
		if errors.Is(err, os.ErrNotExist) {
			err := renameNew(o.staging, o.target)
			if errors.Is(err, errRenameUnsupported) {
				err = os.Rename(o.staging, o.target) // refuses an existing directory
			}
			if errors.Is(err, fs.ErrExist) {
				continue // it appeared: replace it
			}
			if err != nil {
				return err
			}
			o.finish(false)
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w: it is no longer a directory", o.dir, ErrOutput)
		}
		if o.lay.inside {
			return o.replaceInside(ctx)
		}
		return o.replace(ctx, fi)
	}
	return fmt.Errorf("%s: the output directory keeps appearing and vanishing", o.dir)
}

// replace commits over the existing directory o.target (fi).
func (o *Output) replace(ctx context.Context, fi fs.FileInfo) error {
	ents, err := os.ReadDir(o.target)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return !bookkeeping(e.Name()) }) && !o.force {
		return fmt.Errorf("%s: %w: directory is not empty (use --force to overwrite)", o.dir, ErrOutput)
	}
	// Carry the files that are not lmsparse's into the staging directory
	// as hard links (directories are recreated around links to their
	// files; see linkTree for file systems without links): until the
	// exchange, the output directory is untouched.
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if !e.IsDir() && ownFile(name) {
			continue
		}
		dst := o.Path(name)
		if dfi, err := os.Lstat(dst); err == nil {
			if e.IsDir() || dfi.IsDir() {
				return fmt.Errorf("%s: %w: %s is a directory in the output directory or in the new output, and a file in the other", o.dir, ErrOutput, name)
			}
			continue // the new output's file replaces it
		}
		if err := linkTree(filepath.Join(o.target, name), dst); err != nil {
			return fmt.Errorf("%s: keeping %s in the new output: %w", o.dir, name, err)
		}
	}
	// The output directory keeps its permissions (and owner, when allowed).
	copyOwner(o.staging, fi)
	if err := os.Chmod(o.staging, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky)); err != nil {
		return err
	}
	syncDir(o.staging)
	if err := ctx.Err(); err != nil {
		return err
	}
	hook("carried")
	err = exchangeDirs(o.staging, o.target)
	if errors.Is(err, errRenameUnsupported) {
		return o.replaceByRenames()
	}
	if err != nil {
		return err
	}
	// The old output is now under the staging name.
	hook("switched")
	o.finish(true)
	return nil
}

// replaceByRenames is the commit over an existing directory where the two
// directories cannot be exchanged atomically: the old output is renamed to
// .OUT.old-PID-N, the staging directory to OUT, then the old one is
// removed. An interruption between the two renames leaves no OUT and the
// complete old output under the backup name.
func (o *Output) replaceByRenames() error {
	backup := o.backupPath()
	if err := os.Rename(o.target, backup); err != nil {
		return err
	}
	hook("moved aside")
	if err := os.Rename(o.staging, o.target); err != nil {
		if rerr := os.Rename(backup, o.target); rerr != nil {
			return fmt.Errorf("%s: %w; the previous output is in %s (moving it back failed: %v)", o.dir, err, backup, rerr)
		}
		return err
	}
	syncDir(o.lay.dir)
	hook("switched")
	o.done = true
	if err := removeTree(backup); err != nil {
		o.note("could not remove the previous output, moved to %s: %v", backup, err)
	}
	o.lock.release()
	return nil
}

// backupPath returns the name of the backup directory of this run:
// .OUT.old-PID-N (or .lmsparse-old-PID-N inside OUT), N as the staging
// directory's.
func (o *Output) backupPath() string {
	suffix := strings.TrimPrefix(filepath.Base(o.staging), o.lay.tmp)
	return filepath.Join(o.lay.dir, o.lay.old+suffix)
}

// replaceInside commits into an output directory that cannot be replaced
// as a whole (a mount point, or in a directory this process cannot
// write), from a staging directory inside it: lmsparse's old files are
// moved into .lmsparse-old-PID-N, the new ones moved in, then the backup
// removed. OUT never holds old and new files together, but an
// interruption between the moves leaves it incomplete, the rest being in
// .lmsparse-old-PID-N (old) and .lmsparse-tmp-PID-N (new).
func (o *Output) replaceInside(ctx context.Context) error {
	ents, err := os.ReadDir(o.target)
	if err != nil {
		return err
	}
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return bookkeeping(e.Name()) })
	if len(ents) > 0 && !o.force {
		return fmt.Errorf("%s: %w: directory is not empty (use --force to overwrite)", o.dir, ErrOutput)
	}
	staged, err := os.ReadDir(o.staging)
	if err != nil {
		return err
	}
	for _, s := range staged {
		if fi, err := os.Lstat(filepath.Join(o.target, s.Name())); err == nil && (fi.IsDir() || s.IsDir()) {
			return fmt.Errorf("%s: %w: %s is a directory in the output directory or in the new output, and a file in the other", o.dir, ErrOutput, s.Name())
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hook("carried")
	backup := o.backupPath()
	var moved []string
	undo := func(err error) error {
		for _, n := range moved {
			if rerr := os.Rename(filepath.Join(backup, n), filepath.Join(o.target, n)); rerr != nil {
				return fmt.Errorf("%s: %w; lmsparse's previous files are in %s (moving them back failed: %v)", o.dir, err, backup, rerr)
			}
		}
		os.Remove(backup)
		return err
	}
	for _, e := range ents {
		if e.IsDir() || !ownFile(e.Name()) {
			continue
		}
		if moved == nil {
			if err := os.Mkdir(backup, 0o700); err != nil {
				return err
			}
		}
		if err := os.Rename(filepath.Join(o.target, e.Name()), filepath.Join(backup, e.Name())); err != nil {
			return undo(err)
		}
		moved = append(moved, e.Name())
	}
	syncDir(o.target)
	hook("moved aside")
	var in []string
	for _, s := range staged {
		if err := os.Rename(filepath.Join(o.staging, s.Name()), filepath.Join(o.target, s.Name())); err != nil {
			for _, n := range in {
				os.Rename(filepath.Join(o.target, n), filepath.Join(o.staging, n))
			}
			return undo(err)
		}
		in = append(in, s.Name())
	}
	syncDir(o.target)
	hook("switched")
	o.done = true
	if moved != nil {
		if err := removeTree(backup); err != nil {
			o.note("could not remove the previous output, moved to %s: %v", backup, err)
		}
	}
	if err := removeTree(o.staging); err != nil {
		o.note("could not remove %s: %v", o.staging, err)
	}
	o.lock.release()
	return nil
}

// finish completes a successful commit: the parent directory is synced, the
// old content (under the staging name after an exchange) removed and the
// lock released.
func (o *Output) finish(old bool) {
	syncDir(o.lay.dir)
	o.done = true
	if old {
		if err := removeTree(o.staging); err != nil {
			o.note("could not remove the previous output, moved to %s: %v", o.staging, err)
		}
	}
	o.lock.release()
}

// ownFile reports whether a file (not a directory) named name in an output
// directory is one lmsparse writes, and so is replaced or dropped by a new
// output: weights, the index, lmsparse.json, the reports, the auxiliary
// files of [CopyAux], ONNX models and their external data, and temporary
// files of these (".NAME.tmp-*", left by an interrupted older version).
// Other hidden files are not lmsparse's.
func ownFile(name string) bool {
	if rest, ok := strings.CutPrefix(name, "."); ok {
		// Hidden files are not lmsparse's, but for its temporary files.
		i := strings.LastIndex(rest, ".tmp-")
		return i > 0 && ownFile(rest[:i])
	}
	switch {
	case strings.HasSuffix(name, ".safetensors"), strings.HasSuffix(name, ".onnx"), strings.HasSuffix(name, ".onnx.data"):
		return true
	case strings.HasPrefix(name, "tokenizer") && strings.HasSuffix(name, ".json"):
		return true
	case strings.HasPrefix(name, "LICENSE"):
		return true
	}
	switch name {
	case IndexFile, manifest.File, "report.json", "report.md", "report.html":
		return true
	}
	return slices.Contains(auxFiles, name)
}

// linkTree makes dst a hard link of src, or, for a directory, a new
// directory (same permissions, owner when allowed, and modification time)
// holding links to everything under src. Where a file cannot be linked
// (a file system without hard links, another user's file under
// fs.protected_hardlinks), a regular file is copied (content, permissions
// and modification time) and a symbolic link recreated.
func linkTree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		err := linkFile(src, dst)
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			return copyFileMeta(src, dst, fi)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, rerr := os.Readlink(src)
			if rerr != nil {
				return rerr
			}
			return os.Symlink(target, dst)
		}
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := linkTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	syncDir(dst)
	copyOwner(dst, fi)
	if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// copyFileMeta copies the regular file src (fi) to the new file dst with
// its permissions, owner (when allowed) and modification time, synced.
func copyFileMeta(src, dst string, fi fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = out.ReadFrom(in)
	if err == nil {
		copyOwner(dst, fi)
		err = out.Chmod(fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, fi.ModTime(), fi.ModTime())
	}
	return err
}

// removeTree removes path and everything under it, making directories
// writable where that is what stops it.
func removeTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// syncFiles flushes every regular file directly in dir, and dir itself.
// Files written through atomicfile are already on disk, making this cheap;
// it covers files writers created through Path.
func syncFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir persists the entries of dir; failures (file systems that cannot
// sync a directory) are not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
