package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestForceWriteAllOrNothing runs the lmsparse binary on a generated
// checkpoint of over 100 MB and checks the all-or-nothing commit of an
// output directory: prune --force into an existing output, SIGKILLed at
// random moments, always leaves either the complete old or the complete
// new output (sha256 of every file against outputs made without
// interruption), with the user's files; two concurrent writers of one
// output leave one of their outputs. LMSPARSE_KILL_SEED replays a run.
func TestForceWriteAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the binary and writes a 100 MB checkpoint many times")
	}
	if runtime.GOOS != "linux" {
		t.Skip("skipping: the atomic exchange of directories is Linux's renameat2")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	model := bigCheckpoint(t, tmp)
	lms := func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }

	// The old output: 3 shards with an index, plus the user's files.
	pristine := filepath.Join(tmp, "old")
	if out, err := lms("prune", model, "-o", pristine, "--sparsity", "0.3", "--max-shard-size", "40MB").CombinedOutput(); err != nil {
		t.Fatalf("old output: %v\n%s", err, out)
	}
	user := map[string]string{
		"NOTES.md":              "# notes on this run\n",
		".keep":                 "",
		"mine/data.txt":         "kept\n",
		"mine/sub/results.json": `{"ppl": 6.1}`,
	}
	for name, content := range user {
		p := filepath.Join(pristine, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldTree := forceHashTree(t, pristine)
	if _, ok := oldTree["model.safetensors.index.json"]; !ok {
		t.Fatalf("old output is not sharded: %v", forceKeys(oldTree))
	}

	// The new outputs, made without interruption, timed.
	newTree, took := map[string]map[string]string{}, map[string]time.Duration{}
	for _, format := range []string{"dense", "auto"} {
		ref := filepath.Join(tmp, "ref-"+format)
		start := time.Now()
		if out, err := lms("prune", model, "-o", ref, "--sparsity", "0.7", "--format", format).CombinedOutput(); err != nil {
			t.Fatalf("reference %s: %v\n%s", format, err, out)
		}
		took[format] = time.Since(start)
		tr := forceHashTree(t, ref)
		for name, content := range user {
			tr[name] = fmt.Sprintf("%x", sha256.Sum256([]byte(content)))
		}
		tr["mine"], tr["mine/sub"] = "dir", "dir"
		newTree[format] = tr
	}
	if newTree["dense"]["model.safetensors"] == newTree["auto"]["model.safetensors"] {
		t.Fatal("dense and auto outputs are the same")
	}
	t.Logf("uninterrupted prune --sparsity 0.7: --format dense %v, auto %v", took["dense"].Round(time.Millisecond), took["auto"].Round(time.Millisecond))

	parent := filepath.Join(tmp, "work")
	out := filepath.Join(parent, "out")
	restore := func() {
		t.Helper()
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
		if err := forceCopyTree(pristine, out); err != nil {
			t.Fatal(err)
		}
	}
	// classify names what out holds: "old", "new <format>", or an error.
	classify := func(formats ...string) (string, error) {
		got := forceHashTree(t, out)
		if forceSameMap(got, oldTree) {
			return "old", nil
		}
		for _, f := range formats {
			if forceSameMap(got, newTree[f]) {
				return "new " + f, nil
			}
		}
		return "", fmt.Errorf("output is neither the old nor a new one: %v", forceDescribe(got, oldTree, newTree[formats[0]]))
	}
	leftovers := func() []string {
		ents, _ := os.ReadDir(parent)
		var names []string
		for _, e := range ents {
			if e.Name() != "out" {
				names = append(names, e.Name())
			}
		}
		return names
	}

	t.Run("sigkill", func(t *testing.T) {
		seed := killSeed(t)
		rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
		restore()
		counts := map[string]int{}
		// 20 trials killed after a delay spread over the whole run (a
		// little past its measured end), then 6 killed within 4 ms after
		// the run's staging directory holds lmsparse.json, the file
		// written last before the commit.
		for i := range 26 {
			format := []string{"dense", "auto"}[i%2]
			atCommit := i >= 20
			trialStart := time.Now()
			c := lms("prune", model, "-o", out, "--force", "--sparsity", "0.7", "--format", format)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- c.Wait() }()
			var delay time.Duration
			if atCommit {
				delay = time.Duration(rng.Float64() * float64(4*time.Millisecond))
				pattern := filepath.Join(parent, fmt.Sprintf(".out.tmp-%d-*", c.Process.Pid), "lmsparse.json")
			poll:
				for deadline := time.Now().Add(10 * took[format]); time.Now().Before(deadline); {
					select {
					case err := <-exited:
						exited <- err
						break poll
					default:
					}
					if m, _ := filepath.Glob(pattern); len(m) > 0 {
						break
					}
					time.Sleep(50 * time.Microsecond)
				}
			} else {
				delay = time.Duration(rng.Float64() * 1.15 * float64(took[format]))
			}
			select {
			case <-time.After(delay):
			case err := <-exited:
				exited <- err
			}
			c.Process.Kill()
			err := <-exited
			finished := c.ProcessState.Exited() && c.ProcessState.ExitCode() == 0
			if c.ProcessState.Exited() && !finished {
				t.Fatalf("trial %d: prune failed: %v", i, err)
			}
			state, err := classify(format)
			if err != nil {
				t.Fatalf("trial %d (%s, killed after %v): %v", i, format, delay, err)
			}
			if finished {
				state += " (finished before the kill)"
			}
			kind, outcome := "spread", "old"
			if atCommit {
				kind = "at commit"
			}
			if state != "old" {
				outcome = "new, killed"
				if finished {
					outcome = "new, finished before the kill"
				}
			}
			counts[kind+": "+outcome]++
			t.Logf("trial %2d: %-5s killed %-9s + %-10v → %s; beside it: %v (%v)", i, format, kind, delay.Round(time.Microsecond), state, leftovers(), time.Since(trialStart).Round(time.Millisecond))
			// At most the killed run's staging directory (and lock file):
			// each run removes those of dead runs before it.
			if l := leftovers(); len(l) > 2 {
				t.Errorf("trial %d: left beside the output: %v", i, l)
			}
			if state != "old" {
				restore()
			}
		}
		var summary []string
		for _, k := range forceKeys(counts) {
			summary = append(summary, fmt.Sprintf("%s: %d", k, counts[k]))
		}
		t.Logf("outcomes: %s", strings.Join(summary, ", "))
		// An uninterrupted run removes what the killed ones left.
		if b, err := lms("prune", model, "-o", out, "--force", "--sparsity", "0.7").CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if state, err := classify("dense"); err != nil || state != "new dense" {
			t.Errorf("after a full run: %s %v", state, err)
		}
		if l := leftovers(); len(l) > 0 {
			t.Errorf("left beside the output after a full run: %v", l)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		// Two writers, the second started after a random part of the
		// first's run (seeded like the kills).
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 0x636f6e63))
		for round := range 4 {
			restore()
			formats := []string{"dense", "auto"}
			if round%2 == 1 {
				formats[0], formats[1] = formats[1], formats[0]
			}
			offset := time.Duration(rng.Float64() * float64(took[formats[0]]))
			if round == 0 {
				offset = 0
			}
			codes := make([]int, 2)
			outs := make([]string, 2)
			var wg sync.WaitGroup
			for k, f := range formats {
				c := lms("prune", model, "-o", out, "--force", "--sparsity", "0.7", "--format", f)
				if k == 1 {
					time.Sleep(offset)
				}
				var b strings.Builder
				c.Stdout, c.Stderr = &b, &b
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.Wait()
					codes[k], outs[k] = c.ProcessState.ExitCode(), b.String()
				}()
			}
			wg.Wait()
			var ok []string
			for k, f := range formats {
				switch {
				case codes[k] == 0:
					ok = append(ok, f)
				case codes[k] == 2 && strings.Contains(outs[k], "another lmsparse run is writing it"):
				default:
					t.Fatalf("round %d: %s exited %d:\n%s", round, f, codes[k], outs[k])
				}
			}
			if len(ok) == 0 {
				t.Fatalf("round %d: both writers failed:\n%s\n%s", round, outs[0], outs[1])
			}
			state, err := classify(ok...)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			t.Logf("round %d: %s, then %s after %v: exit codes %d, %d → %s", round, formats[0], formats[1], offset.Round(time.Millisecond), codes[0], codes[1], state)
			if l := leftovers(); len(l) > 0 {
				t.Errorf("round %d: left beside the output: %v", round, l)
			}
		}
	})
}

// forceHashTree maps every path under dir to the sha256 of its content ("dir"
// for a directory).
func forceHashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			m[filepath.ToSlash(rel)] = "dir"
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = fmt.Sprintf("%x", h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func forceSameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// forceDescribe tells which files of got are from old, from new, or neither.
func forceDescribe(got, old, new map[string]string) string {
	var parts []string
	for _, k := range forceKeys(got) {
		switch v := got[k]; {
		case old[k] == v && new[k] == v:
		case old[k] == v:
			parts = append(parts, k+" (old)")
		case new[k] == v:
			parts = append(parts, k+" (new)")
		default:
			parts = append(parts, k+" (neither)")
		}
	}
	for _, k := range forceKeys(old) {
		if _, ok := got[k]; !ok {
			parts = append(parts, k+" (missing, in old)")
		}
	}
	return strings.Join(parts, ", ")
}

func forceKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// forceCopyTree copies the tree src to dst as hard links (lmsparse never
// writes into an existing file, and every check hashes the content).
func forceCopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return os.Link(p, target)
	})
}
