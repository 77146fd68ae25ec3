package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestKillDuringCompressAndSAE SIGKILLs "compress" and "sae" of a
// generated checkpoint of over 100 MB at 10 random moments each (20 in
// all; prune has TestForceWriteAllOrNothing): after every kill the output
// is absent or complete (its checkpoint files those of an uninterrupted
// run), at most the killed run's staging directory and lock are beside
// it, and the next run removes them and says so. LMSPARSE_KILL_SEED
// replays a run.
func TestKillDuringCompressAndSAE(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the binary and writes a 100 MB checkpoint many times")
	}
	if runtime.GOOS != "linux" {
		t.Skip("skipping: the atomic rename of directories is Linux's renameat2")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	model := bigCheckpoint(t, tmp)
	seed := killSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c32))
	// checkpointFiles are the files compared with the uninterrupted run's
	// (report.json and friends hold timings; they must only exist).
	checkpointFiles := func(tree map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range tree {
			if !strings.HasPrefix(k, "report.") {
				m[k] = v
			}
		}
		return m
	}
	for _, verb := range []struct {
		name string
		args []string
	}{
		{"compress", []string{"compress", model, "--sparsity", "0.5", "--format", "auto", "--threads", "2"}},
		{"sae", []string{"sae", model, "--epochs", "2", "--seed", "3", "--threads", "2"}},
	} {
		t.Run(verb.name, func(t *testing.T) {
			parent := filepath.Join(tmp, verb.name)
			mustT(t, os.MkdirAll(parent, 0o755))
			out := filepath.Join(parent, "out")
			lms := func(args ...string) *exec.Cmd {
				return exec.Command(bin, append(append(append([]string(nil), verb.args[0], verb.args[1], "-o"), args...), verb.args[2:]...)...)
			}
			ref := filepath.Join(tmp, verb.name+"-ref")
			start := time.Now()
			if b, err := lms(ref).CombinedOutput(); err != nil {
				t.Fatalf("uninterrupted run: %v\n%s", err, b)
			}
			took := time.Since(start)
			refTree := forceHashTree(t, ref)
			want := checkpointFiles(refTree)
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
			counts := map[string]int{}
			for i := range 10 {
				os.RemoveAll(out)
				c := lms(out)
				mustT(t, c.Start())
				delay := time.Duration(rng.Float64() * 1.4 * float64(took))
				exited := make(chan error, 1)
				go func() { exited <- c.Wait() }()
				select {
				case <-time.After(delay):
				case err := <-exited:
					exited <- err
				}
				c.Process.Kill()
				<-exited
				state := "absent"
				if _, err := os.Stat(out); err == nil {
					got := forceHashTree(t, out)
					if !forceSameMap(checkpointFiles(got), want) || len(got) != len(refTree) {
						t.Fatalf("trial %d (killed after %v): output is incomplete: %v", i, delay, forceDescribe(got, want, want))
					}
					state = "complete"
				}
				counts[state]++
				if l := leftovers(); len(l) > 2 {
					t.Errorf("trial %d: left beside the output: %v", i, l)
				}
				t.Logf("trial %2d: killed after %-10v → %s; beside it: %v", i, delay.Round(time.Microsecond), state, leftovers())
			}
			t.Logf("%s: %d kills (uninterrupted run %v): %v", verb.name, 10, took.Round(time.Millisecond), counts)
			// The next run removes what the killed ones left, and says so.
			stale := leftovers()
			b, err := lms(out, "--force").CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			for _, s := range stale {
				if strings.Contains(s, ".tmp-") && !strings.Contains(string(b), "removed "+filepath.Join(parent, s)) {
					t.Errorf("the run after the kills did not say it removed %s:\n%s", s, b)
				}
			}
			if l := leftovers(); len(l) > 0 {
				t.Errorf("left beside the output after a full run: %v", l)
			}
			if got := checkpointFiles(forceHashTree(t, out)); !forceSameMap(got, want) {
				t.Errorf("after a full run: %s", fmt.Sprint(forceDescribe(got, want, want)))
			}
			// SIGINT: the run stops, says so (exit 1), removes its staging
			// directory and lock, and the output is absent or complete.
			for i := range 4 {
				os.RemoveAll(out)
				c := lms(out)
				var stderr strings.Builder
				c.Stderr = &stderr
				mustT(t, c.Start())
				delay := time.Duration(rng.Float64() * 1.2 * float64(took))
				time.Sleep(delay)
				c.Process.Signal(os.Interrupt)
				c.Wait()
				code := c.ProcessState.ExitCode()
				state := "absent"
				if _, err := os.Stat(out); err == nil {
					if got := checkpointFiles(forceHashTree(t, out)); !forceSameMap(got, want) {
						t.Fatalf("SIGINT %d: output is incomplete", i)
					}
					state = "complete"
				}
				switch {
				case code == 0 && state == "complete":
				case code == 1 && state == "absent" && strings.Contains(stderr.String(), "lmsparse: interrupted by a signal; nothing written to "):
				case code == -1 && state == "absent" && stderr.Len() == 0 && delay < 100*time.Millisecond:
					// The signal came before the runtime installed main's
					// handler (a loaded machine can take this long to start
					// a process): the default action killed it before it
					// wrote anything.
				default:
					t.Errorf("SIGINT %d after %v: exit %d, output %s, stderr %q", i, delay, code, state, stderr.String())
				}
				if l := leftovers(); len(l) > 0 {
					t.Errorf("SIGINT %d: left beside the output: %v", i, l)
				}
				t.Logf("SIGINT %d after %v: exit %d, output %s", i, delay.Round(time.Millisecond), code, state)
			}
		})
	}
}
