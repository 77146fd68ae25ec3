package checkpoint

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// tree describes everything under dir: relative path → "file <sha256>",
// "dir <mode>" or "link <target>".
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %x", sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if keys(got) != keys(want) {
		t.Errorf("%s: files\n  %s\nwant\n  %s", what, keys(got), keys(want))
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %s, want %s", what, k, got[k], v)
		}
	}
}

// onlyEntries fails unless dir holds exactly the names given: no staging
// directory, backup or lock file is left beside an output.
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(names)
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// outputFixture is an input checkpoint and its entries.
type outputFixture struct {
	base, in string
	entries  []safetensors.Entry
	m        *Model
}

func newOutputFixture(t *testing.T) *outputFixture {
	t.Helper()
	base := t.TempDir()
	in := filepath.Join(base, "in")
	if err := gen.WriteCheckpoint(in, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	m, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	es, err := m.Entries()
	if err != nil {
		t.Fatal(err)
	}
	return &outputFixture{base: base, in: in, entries: es, m: m}
}

// total returns the tensor bytes of the fixture.
func (f *outputFixture) total() int64 {
	var n int64
	for _, e := range f.entries {
		n += e.Size
	}
	return n
}

// oldOutput writes an earlier lmsparse output at out: three shards with an
// index, lmsparse.json and report.html, plus files that are not
// lmsparse's: a README, a subdirectory with files, a symbolic link, and a
// temporary file an older version left.
func (f *outputFixture) oldOutput(t *testing.T, out string) {
	t.Helper()
	err := WriteDir(out, f.in, f.entries, WriteOptions{MaxShardSize: f.total()/3 + 1,
		Extra: map[string][]byte{"lmsparse.json": []byte(`{"old": true}`), "report.html": []byte("<p>old</p>")}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := Open(out); err != nil || len(m.Files) < 3 {
		t.Fatalf("old output: %v", err)
	} else {
		m.Close()
	}
	must(t, os.WriteFile(filepath.Join(out, "README.md"), []byte("# my notes\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(out, "eval", "deeper"), 0o750))
	must(t, os.WriteFile(filepath.Join(out, "eval", "ppl.txt"), []byte("6.1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(out, "eval", "deeper", "x.bin"), []byte{1, 2, 3}, 0o644))
	must(t, os.Symlink("README.md", filepath.Join(out, "readme-link")))
	must(t, os.WriteFile(filepath.Join(out, ".model.safetensors.tmp-123"), []byte("partial"), 0o644))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(out, "eval"), old, old))
	must(t, os.Chmod(out, 0o750))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// unrelated returns the part of tree tr that is not lmsparse's.
func unrelated(tr map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range tr {
		if top, _, _ := strings.Cut(k, string(filepath.Separator)); top != k || !ownFile(k) || strings.HasPrefix(v, "dir") {
			out[k] = v
		}
	}
	return out
}

func TestOutputAbsentAndEmptyDirectory(t *testing.T) {
	f := newOutputFixture(t)
	ref := filepath.Join(f.base, "ref")
	if err := WriteDir(ref, f.in, f.entries, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := tree(t, ref)
	if keys(want) != "config.json generation_config.json model.safetensors tokenizer_config.json" {
		t.Fatalf("reference output holds %s", keys(want))
	}
	// An existing empty directory (issue: "rename: file exists"), one
	// absent with absent parents, one given through a symbolic link.
	empty := filepath.Join(f.base, "empty")
	must(t, os.Mkdir(empty, 0o700))
	real := filepath.Join(f.base, "real")
	must(t, os.Mkdir(real, 0o755))
	link := filepath.Join(f.base, "link")
	must(t, os.Symlink("real", link))
	for _, out := range []string{empty, filepath.Join(f.base, "a", "b", "new"), link} {
		if err := WriteDir(out, f.in, f.entries, WriteOptions{}); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		sameTree(t, out, tree(t, out+"/"), want)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the empty directory's mode is not kept: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the output's symbolic link was replaced")
	}
	onlyEntries(t, f.base, "a", "empty", "in", "link", "real", "ref")
	onlyEntries(t, filepath.Join(f.base, "a", "b"), "new")
}

func TestOutputNonEmptyRefused(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	f.oldOutput(t, out)
	before := tree(t, out)
	for _, try := range []func() error{
		func() error { return WriteDir(out, f.in, f.entries, WriteOptions{}) },
		func() error { _, err := Create(out, OutputOptions{InputDir: f.in}); return err },
	} {
		if err := try(); !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("err = %v, want ErrOutput asking for --force", err)
		}
	}
	sameTree(t, "refused output", tree(t, out), before)
	onlyEntries(t, f.base, "in", "out")
}

func TestOutputForceKeepsUnrelated(t *testing.T) {
	for _, mode := range []string{"exchange", "renames", "no hard links"} {
		t.Run(strings.ReplaceAll(mode, " ", "_"), func(t *testing.T) {
			switch mode {
			case "renames":
				withoutRenameFlags(t)
			case "no hard links":
				linkFile = func(a, b string) error { return &os.LinkError{Op: "link", Old: a, New: b, Err: fs.ErrPermission} }
				defer func() { linkFile = os.Link }()
			}
			f := newOutputFixture(t)
			out := filepath.Join(f.base, "out")
			f.oldOutput(t, out)
			before := tree(t, out)
			readme, _ := os.Stat(filepath.Join(out, "README.md"))
			ref := filepath.Join(f.base, "ref")
			opts := WriteOptions{Extra: map[string][]byte{"lmsparse.json": []byte(`{"new": true}`)}}
			must(t, WriteDir(ref, f.in, f.entries, opts))
			want := tree(t, ref)
			for k, v := range unrelated(before) {
				want[k] = v
			}
			// At each step the output is complete: old, then new (in the
			// fallback, absent between the two renames, with the old
			// output whole under the backup name).
			var steps []string
			commitHook = func(step string) {
				steps = append(steps, step)
				switch step {
				case "carried":
					sameTree(t, step, tree(t, out), before)
				case "moved aside":
					if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s: output exists: %v", step, err)
					}
					backups, _ := filepath.Glob(filepath.Join(f.base, ".out.old-*"))
					if len(backups) != 1 {
						t.Fatalf("%s: backups %v", step, backups)
					}
					sameTree(t, step, tree(t, backups[0]), before)
				case "switched":
					sameTree(t, step, tree(t, out), want)
				}
			}
			defer func() { commitHook = nil }()
			opts.Force = true
			if err := WriteDir(out, f.in, f.entries, opts); err != nil {
				t.Fatal(err)
			}
			wantSteps := "carried switched"
			if mode == "renames" {
				wantSteps = "carried moved aside switched"
			}
			if strings.Join(steps, " ") != wantSteps {
				t.Errorf("steps %v, want %s", steps, wantSteps)
			}
			sameTree(t, "forced output", tree(t, out), want)
			st, _ := os.Stat(filepath.Join(out, "README.md"))
			if os.SameFile(st, readme) == (mode == "no hard links") {
				t.Errorf("README.md: same file %v", os.SameFile(st, readme))
			}
			if st.Mode().Perm() != 0o600 || !st.ModTime().Equal(readme.ModTime()) {
				t.Errorf("README.md: mode %v, time %v, want 0600, %v", st.Mode(), st.ModTime(), readme.ModTime())
			}
			if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o750 {
				t.Errorf("output mode %v, want 0750", fi.Mode().Perm())
			}
			if fi, _ := os.Stat(filepath.Join(out, "eval")); fi.ModTime().Year() != 2020 {
				t.Errorf("eval/ modification time %v not kept", fi.ModTime())
			}
			onlyEntries(t, f.base, "in", "out", "ref")
		})
	}
}

// withoutRenameFlags makes Commit take the fallback without renameat2.
func withoutRenameFlags(t *testing.T) {
	exchangeDirs = func(a, b string) error { return errRenameUnsupported }
	renameNew = func(a, b string) error { return errRenameUnsupported }
	t.Cleanup(func() { exchangeDirs, renameNew = renameExchange, renameNoReplace })
}

func TestOutputAbort(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	f.oldOutput(t, out)
	before := tree(t, out)
	o, err := Create(out, OutputOptions{Force: true, InputDir: f.in})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.WriteTensors(f.entries, TensorOptions{}); err != nil {
		t.Fatal(err)
	}
	must(t, o.CopyAux(f.in, nil))
	must(t, o.WriteFile("lmsparse.json", []byte("{}")))
	if m, err := Open(o.Staging()); err != nil {
		t.Errorf("the staging directory does not open as a checkpoint: %v", err)
	} else {
		m.Close()
	}
	if o.Dir() != out || filepath.Dir(o.Path("x")) != o.Staging() {
		t.Errorf("Dir %s, Path %s, Staging %s", o.Dir(), o.Path("x"), o.Staging())
	}
	if _, err := Create(out, OutputOptions{Force: true}); !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "another lmsparse run") ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second writer: err = %v, want ErrOutput naming the lock holder", err)
	}
	if err := CheckOutput(out, f.in, true); !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "another lmsparse run") {
		t.Errorf("CheckOutput while another writes: err = %v", err)
	}
	must(t, o.Abort())
	must(t, o.Abort())
	must(t, CheckOutput(out, f.in, true))
	if err := o.Commit(context.Background()); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if err := o.WriteFile("x", nil); err == nil {
		t.Error("WriteFile after Abort succeeded")
	}
	sameTree(t, "aborted output", tree(t, out), before)
	onlyEntries(t, f.base, "in", "out")
	// The lock is free again.
	o2, err := Create(out, OutputOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	must(t, o2.Abort())
}

// TestOutputLateFailure: a failure after every tensor is written (in
// WriteDir's After, where reports are made) leaves the old output byte for
// byte, and nothing beside it.
func TestOutputLateFailure(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	f.oldOutput(t, out)
	before := tree(t, out)
	boom := errors.New("evaluation failed")
	var staged map[string]string
	err := WriteDir(out, f.in, f.entries, WriteOptions{Force: true, After: func(dir string) (map[string][]byte, error) {
		staged = tree(t, dir)
		return nil, boom
	}})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the callback's", err)
	}
	if _, ok := staged["model.safetensors"]; !ok {
		t.Errorf("After ran before the weights were written: %s", keys(staged))
	}
	sameTree(t, "output after a late failure", tree(t, out), before)
	onlyEntries(t, f.base, "in", "out")
	// Also with a cancelled commit.
	o, err := Create(out, OutputOptions{Force: true})
	must(t, err)
	must(t, o.WriteFile("lmsparse.json", nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled commit: %v", err)
	}
	sameTree(t, "output after a cancelled commit", tree(t, out), before)
	onlyEntries(t, f.base, "in", "out")
}

func TestOutputInsideInputRefused(t *testing.T) {
	f := newOutputFixture(t)
	before := tree(t, f.in)
	for _, out := range []string{f.in, filepath.Join(f.in, "out"), filepath.Join(f.in, "a", "b")} {
		_, err := Create(out, OutputOptions{Force: true, InputDir: f.in})
		if !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "input directory") {
			t.Errorf("%s: err = %v", out, err)
		}
		if err := WriteDir(out, f.in, f.entries, WriteOptions{Force: true}); !errors.Is(err, ErrOutput) {
			t.Errorf("WriteDir %s: err = %v", out, err)
		}
	}
	sameTree(t, "input", tree(t, f.in), before)
	onlyEntries(t, f.base, "in")
}

// TestOutputStaleTemporaries: temporary directories of dead runs on the
// same output are removed (with a note); others are left.
func TestOutputStaleTemporaries(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	must(t, cmd.Run())
	dead := cmd.Process.Pid
	stale := []string{
		fmt.Sprintf(".out.tmp-%d-42", dead),         // dead run: removed
		fmt.Sprintf(".out.tmp-%d-43", os.Getppid()), // live process: kept
		".out.tmp-987654",                           // older lmsparse: kept, noted
		fmt.Sprintf(".out.old-%d-44", dead),         // fallback backup: kept, noted
		fmt.Sprintf(".other.tmp-%d-45", dead),       // another output's: kept
		fmt.Sprintf(".out.tmp-%d-x.tmp-1-2", dead),  // not ours: kept
	}
	for _, s := range stale {
		must(t, os.MkdirAll(filepath.Join(f.base, s, "sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(f.base, s, "model.safetensors"), []byte("x"), 0o644))
	}
	o, err := Create(out, OutputOptions{InputDir: f.in})
	if err != nil {
		t.Fatal(err)
	}
	must(t, o.WriteFile("a.txt", []byte("a")))
	must(t, o.Commit(context.Background()))
	notes := strings.Join(o.Notes(), "\n")
	t.Logf("notes:\n%s", notes)
	for _, want := range []string{"removed " + filepath.Join(f.base, stale[0]), "older lmsparse", stale[3]} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q", want)
		}
	}
	onlyEntries(t, f.base, append([]string{"in", "out"}, stale[1:]...)...)
}

// TestOutputOddCases: refusals and unusual output directories.
func TestOutputOddCases(t *testing.T) {
	type fixture struct {
		f   *outputFixture
		out string
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, x fixture)
		force bool
		// run replaces the default WriteDir; nil uses it.
		run  func(t *testing.T, x fixture) error
		want string // error text (wrapping ErrOutput unless noOut); "" = success
		// check after a success
		check func(t *testing.T, x fixture)
	}{
		{name: "file", setup: func(t *testing.T, x fixture) { must(t, os.WriteFile(x.out, []byte("x"), 0o644)) },
			force: true, want: "not a directory"},
		{name: "dangling link", setup: func(t *testing.T, x fixture) { must(t, os.Symlink("missing", x.out)) },
			force: true, want: "symbolic link to a missing"},
		{name: "link to a full directory", force: true,
			setup: func(t *testing.T, x fixture) {
				real := filepath.Join(x.f.base, "real")
				x.f.oldOutput(t, real)
				must(t, os.Symlink("real", x.out))
			},
			check: func(t *testing.T, x fixture) {
				if fi, err := os.Lstat(x.out); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("link replaced")
				}
				tr := tree(t, filepath.Join(x.f.base, "real"))
				if _, ok := tr["README.md"]; !ok || tr["model-00001-of-00003.safetensors"] != "" {
					t.Errorf("link target: %s", keys(tr))
				}
			}},
		{name: "directory named like a file lmsparse writes", force: true,
			setup: func(t *testing.T, x fixture) { must(t, os.MkdirAll(filepath.Join(x.out, "config.json"), 0o755)) },
			want:  "config.json is a directory"},
		{name: "directories with lmsparse names are kept", force: true,
			setup: func(t *testing.T, x fixture) {
				must(t, os.MkdirAll(filepath.Join(x.out, "old.safetensors", "model.safetensors"), 0o755))
			},
			check: func(t *testing.T, x fixture) {
				if _, err := os.Stat(filepath.Join(x.out, "old.safetensors", "model.safetensors")); err != nil {
					t.Error(err)
				}
			}},
		{name: "symbolic link named config.json is replaced, its target kept", force: true,
			setup: func(t *testing.T, x fixture) {
				must(t, os.WriteFile(filepath.Join(x.f.base, "mine.json"), []byte("{}"), 0o644))
				must(t, os.MkdirAll(x.out, 0o755))
				must(t, os.Symlink("../mine.json", filepath.Join(x.out, "config.json")))
			},
			check: func(t *testing.T, x fixture) {
				if fi, err := os.Lstat(filepath.Join(x.out, "config.json")); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("config.json: %v", err)
				}
				if b, _ := os.ReadFile(filepath.Join(x.f.base, "mine.json")); string(b) != "{}" {
					t.Errorf("link target changed")
				}
			}},
		{name: "read-only subdirectory kept", force: true,
			setup: func(t *testing.T, x fixture) {
				ro := filepath.Join(x.out, "ro")
				must(t, os.MkdirAll(ro, 0o755))
				must(t, os.WriteFile(filepath.Join(ro, "f"), []byte("f"), 0o444))
				must(t, os.Chmod(ro, 0o555))
				t.Cleanup(func() { os.Chmod(ro, 0o755) })
			},
			check: func(t *testing.T, x fixture) {
				if fi, err := os.Stat(filepath.Join(x.out, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
					t.Errorf("ro: %v %v", fi, err)
				}
				os.Chmod(filepath.Join(x.out, "ro"), 0o755)
			}},
		{name: "root directory", force: true,
			run:  func(t *testing.T, x fixture) error { _, err := Create("/", OutputOptions{Force: true}); return err },
			want: "root directory"},
		{name: "empty path",
			run:  func(t *testing.T, x fixture) error { _, err := Create("", OutputOptions{}); return err },
			want: "empty output path"},
		{name: "duplicate tensor", want: "duplicate name",
			run: func(t *testing.T, x fixture) error {
				es := append(x.f.entries[:1:1], x.f.entries[0])
				return WriteDir(x.out, x.f.in, es, WriteOptions{})
			}},
		{name: "file name with a directory", want: "not a file name",
			run: func(t *testing.T, x fixture) error {
				return WriteDir(x.out, x.f.in, x.f.entries, WriteOptions{Extra: map[string][]byte{"../escape": nil}})
			}},
		{name: "tensors written twice", want: "already written",
			run: func(t *testing.T, x fixture) error {
				o, err := Create(x.out, OutputOptions{})
				must(t, err)
				defer o.Abort()
				o.WriteTensors(x.f.entries, TensorOptions{})
				_, err = o.WriteTensors(x.f.entries, TensorOptions{})
				return err
			}},
		{name: "directory created before the commit",
			run: func(t *testing.T, x fixture) error {
				o, err := Create(x.out, OutputOptions{})
				must(t, err)
				defer o.Abort()
				must(t, o.WriteFile("a", []byte("a")))
				must(t, os.Mkdir(x.out, 0o755))
				return o.Commit(context.Background())
			},
			check: func(t *testing.T, x fixture) {
				if keys(tree(t, x.out)) != "a" {
					t.Errorf("output holds %s", keys(tree(t, x.out)))
				}
			}},
		{name: "directory filled before the commit", want: "not empty",
			run: func(t *testing.T, x fixture) error {
				o, err := Create(x.out, OutputOptions{})
				must(t, err)
				defer o.Abort()
				must(t, o.WriteFile("a", []byte("a")))
				must(t, os.Mkdir(x.out, 0o755))
				must(t, os.WriteFile(filepath.Join(x.out, "mine"), nil, 0o644))
				return o.Commit(context.Background())
			}},
		{name: "file created before the commit", want: "no longer a directory",
			run: func(t *testing.T, x fixture) error {
				o, err := Create(x.out, OutputOptions{})
				must(t, err)
				defer o.Abort()
				must(t, os.WriteFile(x.out, nil, 0o644))
				return o.Commit(context.Background())
			}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			x := fixture{f: newOutputFixture(t)}
			x.out = filepath.Join(x.f.base, "out")
			if c.setup != nil {
				c.setup(t, x)
			}
			before := tree(t, x.f.base)
			run := c.run
			if run == nil {
				run = func(t *testing.T, x fixture) error {
					return WriteDir(x.out, x.f.in, x.f.entries, WriteOptions{Force: c.force})
				}
			}
			err := run(t, x)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.check != nil {
					c.check(t, x)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				if strings.Contains(c.name, "before the commit") {
					return // the test itself changed the directory
				}
				sameTree(t, "after a refusal", tree(t, x.f.base), before)
			}
			// Nothing is left beside the output.
			ents, _ := os.ReadDir(x.f.base)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

func TestOwnFile(t *testing.T) {
	for name, want := range map[string]bool{
		"model.safetensors": true, "model-00001-of-00002.safetensors": true, "model.safetensors.index.json": true,
		"lmsparse.json": true, "report.json": true, "report.md": true, "report.html": true,
		"config.json": true, "generation_config.json": true, "tokenizer.json": true, "tokenizer_config.json": true,
		"tokenizer.model": true, "special_tokens_map.json": true, "added_tokens.json": true, "vocab.json": true,
		"merges.txt": true, "vocab.txt": true, "LICENSE": true, "LICENSE.txt": true, "LICENSE-APACHE": true, "NOTICE": true,
		"model.onnx": true, "model.onnx.data": true, ".model.safetensors.tmp-123": true, ".lmsparse.json.tmp-9": true,
		"README.md": false, "notes.txt": false, "report.pdf": false, "model.bin": false, "NOTICE.txt": false,
		".model.safetensors": false, ".x.onnx": false, ".git": false, ".tmp-1": false, ".README.md.tmp-1": false, "x.data": false,
	} {
		if ownFile(name) != want {
			t.Errorf("ownFile(%q) = %v", name, !want)
		}
	}
}

// TestStageReplaces: Stage (used for ONNX outputs) gets the same commit.
func TestStageReplaces(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "out")
	must(t, os.MkdirAll(out, 0o755))
	for _, n := range []string{"model.onnx", "model.onnx.data", "lmsparse.json", "keep.txt"} {
		must(t, os.WriteFile(filepath.Join(out, n), []byte("old "+n), 0o644))
	}
	boom := errors.New("boom")
	before := tree(t, out)
	if err := Stage(out, func(dir string) error {
		must(t, os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("half"), 0o644))
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	sameTree(t, "failed stage", tree(t, out), before)
	must(t, Stage(out, func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("new"), 0o644)
	}))
	got := tree(t, out)
	if keys(got) != "keep.txt model.onnx" {
		t.Errorf("after Stage: %s", keys(got))
	}
	if b, _ := os.ReadFile(filepath.Join(out, "model.onnx")); string(b) != "new" {
		t.Errorf("model.onnx = %q", b)
	}
	onlyEntries(t, base, "out")
}

// TestOutputMountPoint: an output directory that is a mount point cannot
// be replaced as a whole; it is staged and committed from inside (here a
// mount point pretended; TestOutputRealMountPoint mounts one when it can).
func TestOutputMountPoint(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	must(t, os.Mkdir(out, 0o755))
	isMountPoint = func(p string) bool { return p == out }
	defer func() { isMountPoint = mountPoint }()
	ref := filepath.Join(f.base, "ref")
	opts := WriteOptions{Extra: map[string][]byte{"lmsparse.json": []byte(`{"new": true}`)}}
	must(t, WriteDir(ref, f.in, f.entries, opts))
	want := tree(t, ref)

	// Empty.
	must(t, WriteDir(out, f.in, f.entries, opts))
	sameTree(t, "empty mount point", tree(t, out), want)
	onlyEntries(t, f.base, "in", "out", "ref")

	// Full, without and with --force; aborted.
	must(t, os.RemoveAll(out))
	must(t, os.Mkdir(out, 0o755))
	isMountPoint = func(p string) bool { return false }
	f.oldOutput(t, out)
	isMountPoint = func(p string) bool { return p == out }
	before := tree(t, out)
	if err := WriteDir(out, f.in, f.entries, WriteOptions{}); !errors.Is(err, ErrOutput) {
		t.Errorf("non-empty without force: %v", err)
	}
	o, err := Create(out, OutputOptions{Force: true, InputDir: f.in})
	must(t, err)
	if filepath.Dir(o.Staging()) != out {
		t.Errorf("staging %s not inside the mount point", o.Staging())
	}
	if err := CheckOutput(out, f.in, true); !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), "another lmsparse run") {
		t.Errorf("CheckOutput while another writes: %v", err)
	}
	must(t, o.WriteFile("lmsparse.json", nil))
	must(t, o.Abort())
	sameTree(t, "aborted", tree(t, out), before)

	for k, v := range unrelated(before) {
		want[k] = v
	}
	var steps []string
	commitHook = func(step string) {
		steps = append(steps, step)
		got := tree(t, out)
		for k := range got {
			if top, _, _ := strings.Cut(k, string(filepath.Separator)); bookkeeping(top) {
				delete(got, k)
			}
		}
		switch step {
		case "carried":
			sameTree(t, step, got, before)
		case "moved aside":
			// No lmsparse file in OUT: old ones in the backup, new ones staged.
			for k := range got {
				if ownFile(k) {
					t.Errorf("%s: %s in the output", step, k)
				}
			}
		case "switched":
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s is %q, want %q", step, k, got[k], v)
				}
			}
		}
	}
	defer func() { commitHook = nil }()
	readme, _ := os.Stat(filepath.Join(out, "README.md"))
	opts.Force = true
	must(t, WriteDir(out, f.in, f.entries, opts))
	if strings.Join(steps, " ") != "carried moved aside switched" {
		t.Errorf("steps %v", steps)
	}
	sameTree(t, "full mount point", tree(t, out), want)
	if st, _ := os.Stat(filepath.Join(out, "README.md")); !os.SameFile(st, readme) {
		t.Errorf("README.md is not the same file")
	}
	onlyEntries(t, f.base, "in", "out", "ref")
}

// TestOutputRealMountPoint writes into a tmpfs mounted on the output
// directory, where renaming it fails (EBUSY); it needs root.
func TestOutputRealMountPoint(t *testing.T) {
	f := newOutputFixture(t)
	out := filepath.Join(f.base, "out")
	must(t, os.Mkdir(out, 0o755))
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "lmsparse-test", out).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(b)))
	}
	t.Cleanup(func() { exec.Command("umount", out).Run() })
	if !mountPoint(out) {
		t.Fatalf("mountPoint(%s) = false on a tmpfs", out)
	}
	if mountPoint(f.in) {
		t.Errorf("mountPoint(%s) = true", f.in)
	}
	must(t, WriteDir(out, f.in, f.entries, WriteOptions{MaxShardSize: f.total() / 2}))
	must(t, os.WriteFile(filepath.Join(out, "mine.txt"), []byte("mine"), 0o644))
	must(t, WriteDir(out, f.in, f.entries, WriteOptions{Force: true}))
	got := tree(t, out)
	if keys(got) != "config.json generation_config.json mine.txt model.safetensors tokenizer_config.json" {
		t.Errorf("mount point holds %s", keys(got))
	}
	m, err := Open(out)
	must(t, err)
	checkWeights(t, m, gen.Weights(gen.Llama(tensor.F32, 1)))
	m.Close()
	onlyEntries(t, f.base, "in", "out")
}
