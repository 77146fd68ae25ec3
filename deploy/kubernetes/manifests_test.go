package kubernetes_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decode decodes every YAML document of file strictly into a new T each.
func decode[T any](t *testing.T, file string) []*T {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []*T
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		v := new(T)
		if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
			t.Fatalf("%s, document %d: %v", file, i+1, err)
		}
		out = append(out, v)
	}
	return out
}

// readmeCommands returns the pods' command lines documented in the
// README's "Past one machine" section: the line of its code blocks that
// starts with shardPrefix and uses $(JOB_COMPLETION_INDEX) (the Indexed
// Job's pods), and the one that starts with mergePrefix (the merge Job's
// pod), e.g. "lmsparse eval " and "lmsparse merge-eval /parts/".
func readmeCommands(t *testing.T, shardPrefix, mergePrefix string) (shard, merge []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\n## Past one machine\n")
	if i < 0 {
		t.Fatal(`README.md has no section "## Past one machine"`)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, shardPrefix) && strings.Contains(line, "$(JOB_COMPLETION_INDEX)"):
			if shard != nil {
				t.Fatalf("README: two shard command lines starting %q", shardPrefix)
			}
			shard = f
		case strings.HasPrefix(line, mergePrefix):
			if merge != nil {
				t.Fatalf("README: two merge command lines starting %q", mergePrefix)
			}
			merge = f
		}
	}
	if shard == nil || merge == nil {
		t.Fatalf("README's Past one machine section lacks the pods' command lines (%q…: %q, %q…: %q)", shardPrefix, shard, mergePrefix, merge)
	}
	return shard, merge
}

// podCommand is the command line of a Job's only container, its program
// named by its base name.
func podCommand(t *testing.T, job *batchv1.Job) []string {
	t.Helper()
	cs := job.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Command) != 1 || cs[0].Image == "" {
		t.Fatalf("job %s: want one container with an image and command [/lmsparse], got %+v", job.Name, cs)
	}
	return append([]string{filepath.Base(cs[0].Command[0])}, cs[0].Args...)
}

// shards returns n of the job's "--shard $(JOB_COMPLETION_INDEX)/n".
func shards(t *testing.T, cmd []string) int {
	t.Helper()
	i := slices.Index(cmd, "--shard")
	if i < 0 || i+1 >= len(cmd) || !strings.HasPrefix(cmd[i+1], "$(JOB_COMPLETION_INDEX)/") {
		t.Fatalf("command %q has no --shard $(JOB_COMPLETION_INDEX)/N", cmd)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(cmd[i+1], "$(JOB_COMPLETION_INDEX)/"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sharded describes a sharded computation's two Jobs: the Indexed Job
// whose pod i runs shard i of n and writes part i, and the Job that
// merges the parts.
type sharded struct {
	name                     string // eval, sweep
	shardsFile, mergeFile    string
	shardPrefix, mergePrefix string // of the README's command lines (readmeCommands)
	part                     string // the parts' path, %d the index
}

// shardedJobs are the sharded computations of this directory.
var shardedJobs = []sharded{
	{"eval", "eval-shards.yaml", "eval-merge.yaml", "lmsparse eval ", "lmsparse merge-eval /parts/", "/parts/part-%d.json"},
	{"sweep", "sweep-shards.yaml", "sweep-merge.yaml", "lmsparse compress ", "lmsparse report --merge /parts/", "/parts/sweep-%d.json"},
}

type manifests struct {
	shards, merge *batchv1.Job
	pvcs          []*corev1.PersistentVolumeClaim
	n             int
}

func load(t *testing.T, s sharded) manifests {
	t.Helper()
	var m manifests
	m.shards = decode[batchv1.Job](t, s.shardsFile)[0]
	m.merge = decode[batchv1.Job](t, s.mergeFile)[0]
	m.pvcs = decode[corev1.PersistentVolumeClaim](t, "pvc.yaml")
	m.n = shards(t, podCommand(t, m.shards))
	return m
}

// checkJob checks what every Job here needs: its kind, a restart policy a
// Job takes, and volumes that exist (claims of pvc.yaml).
func checkJob(t *testing.T, j *batchv1.Job, pvcs []*corev1.PersistentVolumeClaim) {
	t.Helper()
	if j.APIVersion != "batch/v1" || j.Kind != "Job" || j.Name == "" {
		t.Errorf("%s: apiVersion %q, kind %q", j.Name, j.APIVersion, j.Kind)
	}
	if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
		t.Errorf("%s: restartPolicy %q: a Job needs Never or OnFailure", j.Name, p)
	}
	// Every mount names a volume of the pod, and every claim a PVC of pvc.yaml.
	vols := map[string]corev1.Volume{}
	for _, v := range j.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
		if c := v.PersistentVolumeClaim; c != nil && !slices.ContainsFunc(pvcs, func(p *corev1.PersistentVolumeClaim) bool { return p.Name == c.ClaimName }) {
			t.Errorf("%s: volume %s claims %s, which pvc.yaml does not define", j.Name, v.Name, c.ClaimName)
		}
	}
	for _, vm := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
		if _, ok := vols[vm.Name]; !ok {
			t.Errorf("%s: mount %s names no volume", j.Name, vm.Name)
		}
	}
}

// checkIndexed checks an Indexed Job of n pods: completionMode Indexed,
// completions = parallelism = n, and JOB_COMPLETION_INDEX read from the
// pod's completion-index annotation.
func checkIndexed(t *testing.T, j *batchv1.Job, n int) {
	t.Helper()
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("%s: completionMode %v, want Indexed", j.Name, s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || int(*s.Completions) != n || int(*s.Parallelism) != n {
		t.Errorf("%s: completions %v, parallelism %v, want both %d as --shard …/%d", j.Name, s.Completions, s.Parallelism, n, n)
	}
	env := s.Template.Spec.Containers[0].Env
	if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
	}) {
		t.Errorf("%s: no JOB_COMPLETION_INDEX from the completion-index annotation in %+v", j.Name, env)
	}
}

// TestManifests decodes the Jobs of every sharded computation and
// pvc.yaml strictly, and checks the Indexed Job's shape, the merge Job,
// that every pod runs the README's command line, and that the merge reads
// every part.
func TestManifests(t *testing.T) {
	for _, sj := range shardedJobs {
		t.Run(sj.name, func(t *testing.T) {
			m := load(t, sj)
			checkJob(t, m.shards, m.pvcs)
			checkJob(t, m.merge, m.pvcs)
			checkIndexed(t, m.shards, m.n)
			if c := m.merge.Spec.CompletionMode; c != nil && *c != batchv1.NonIndexedCompletion {
				t.Errorf("%s: completionMode %v", sj.mergeFile, *c)
			}
			// The pods run the README's command lines, and the merge reads every part.
			shard, merge := readmeCommands(t, sj.shardPrefix, sj.mergePrefix)
			if got := podCommand(t, m.shards); !slices.Equal(got, shard) {
				t.Errorf("%s runs\n%q\nthe README documents\n%q", sj.shardsFile, got, shard)
			}
			if got := podCommand(t, m.merge); !slices.Equal(got, merge) {
				t.Errorf("%s runs\n%q\nthe README documents\n%q", sj.mergeFile, got, merge)
			}
			for i := range m.n {
				if part := fmt.Sprintf(sj.part, i); !slices.Contains(merge, part) {
					t.Errorf("%s does not read %s", sj.mergeFile, part)
				}
			}
			if part := strings.ReplaceAll(sj.part, "%d", "$(JOB_COMPLETION_INDEX)"); !slices.Contains(shard, part) {
				t.Errorf("%s does not write %s", sj.shardsFile, part)
			}
		})
	}
	for _, p := range decode[corev1.PersistentVolumeClaim](t, "pvc.yaml") {
		if p.APIVersion != "v1" || p.Kind != "PersistentVolumeClaim" || len(p.Spec.AccessModes) == 0 {
			t.Errorf("pvc %s: apiVersion %q, kind %q, access modes %v", p.Name, p.APIVersion, p.Kind, p.Spec.AccessModes)
		}
	}
	// Strictness: an unknown field is an error.
	var j batchv1.Job
	if err := yaml.UnmarshalStrict([]byte("apiVersion: batch/v1\nkind: Job\nspec:\n  completionz: 3\n"), &j); err == nil {
		t.Error("an unknown field decoded without error")
	}
}

// TestDockerfile: the image is a static binary built with CGO_ENABLED=0
// on an empty base.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"RUN CGO_ENABLED=0 go build ", "./cmd/lmsparse", "FROM scratch", `ENTRYPOINT ["/lmsparse"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// expand replaces $(NAME) by env's value, as the kubelet does in a
// container's command and args ($$ escapes, unknown names stay).
func expand(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// buildStatic builds lmsparse into dir as the Dockerfile builds it and
// checks that it is a static binary; it returns its path.
func buildStatic(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "lmsparse")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", bin, "./cmd/lmsparse")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Static: no program interpreter (dynamic loader) in the ELF file.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s needs a dynamic loader: not a static binary", bin)
		}
	}
	return bin
}

// pods runs the pods of a sharded computation as processes: /in and
// /parts mapped to directories, the Indexed Job's command once per index
// with JOB_COMPLETION_INDEX set and $(JOB_COMPLETION_INDEX) expanded.
type pods struct {
	t         *testing.T
	bin       string
	in, parts string
	m         manifests
}

func newPods(t *testing.T, bin string, m manifests) *pods {
	dir := t.TempDir()
	p := &pods{t: t, bin: bin, in: filepath.Join(dir, "in"), parts: filepath.Join(dir, "parts"), m: m}
	os.MkdirAll(p.in, 0o755)
	os.MkdirAll(p.parts, 0o755)
	return p
}

// run runs lmsparse with args and the environment additions env and
// returns its stdout and exit code; an exit code other than 0 and okCode
// fails the test.
func (p *pods) run(env []string, okCode int, args ...string) ([]byte, int) {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code != okCode {
		p.t.Fatalf("lmsparse %q: %v\n%s", args, err, stderr.String())
	}
	return out, code
}

// args maps a pod's command line to the processes here: $(NAME) expanded
// from env, /in/ and /parts/ replaced by the directories.
func (p *pods) args(cmd []string, env map[string]string) []string {
	paths := strings.NewReplacer("/in/", p.in+"/", "/parts/", p.parts+"/")
	out := make([]string, len(cmd)-1)
	for i, a := range cmd[1:] {
		out[i] = paths.Replace(expand(a, env))
	}
	return out
}

// runAll runs every pod of the Indexed Job (last index first), then the
// merge Job's pod, and returns the merge's stdout and exit code.
func (p *pods) runAll(okCode int) ([]byte, int) {
	p.t.Helper()
	for i := p.m.n - 1; i >= 0; i-- {
		idx := strconv.Itoa(i)
		p.run([]string{"JOB_COMPLETION_INDEX=" + idx}, 0, p.args(podCommand(p.t, p.m.shards), map[string]string{"JOB_COMPLETION_INDEX": idx})...)
	}
	return p.run(nil, okCode, p.args(podCommand(p.t, p.m.merge), nil)...)
}

// single is the one-machine run: the shard pod's command line without
// --shard and --partial.
func (p *pods) single() []string {
	one := p.args(podCommand(p.t, p.m.shards), map[string]string{"JOB_COMPLETION_INDEX": "0"})
	k := slices.Index(one, "--shard")
	return slices.Delete(one, k, k+4)
}

// demoInputs puts the demo model at /in/base and the first 10,000 bytes
// of its held-out text at /in/heldout.txt.
func (p *pods) demoInputs() {
	p.t.Helper()
	demo, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		p.t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(demo, "heldout.txt"))
	if err != nil {
		p.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p.in, "heldout.txt"), text[:10000], 0o644)
	os.Symlink(filepath.Join(demo, "model"), filepath.Join(p.in, "base"))
}

// timing matches what differs between two runs in their outputs: the
// timing lines of an eval JSON report, and the stages' seconds, the peak
// RSS and the line listing them in a compress output's reports.
var timing = regexp.MustCompile(`(?m)^  "(seconds|tokens_per_second)": .*\n|^ *"(seconds|peak_rss_bytes)": .*\n|^<sub>.*</sub>\n|^<p class="muted">.*</p>\n`)

// TestPodsAsProcesses runs every sharded computation's command lines as
// the pods would — a static binary built as the Dockerfile builds it, one
// process per index with JOB_COMPLETION_INDEX set and
// $(JOB_COMPLETION_INDEX) expanded, /in and /parts mapped to directories
// here — on the demo model, and checks that the merge Job's output is the
// one-machine run's, timings apart: for eval, the report of "lmsparse eval
// --json" of a pruned demo model against the demo model; for the sweep,
// the checkpoint pod 0 wrote and the reports the merge wrote beside it.
func TestPodsAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lmsparse and runs the pods' commands")
	}
	bin := buildStatic(t, t.TempDir())
	for _, c := range []struct {
		sharded
		check func(t *testing.T, p *pods)
	}{
		{shardedJobs[0], func(t *testing.T, p *pods) {
			p.demoInputs()
			p.run(nil, 0, "prune", filepath.Join(p.in, "base"), "-o", filepath.Join(p.in, "model"), "--sparsity", "0.5")
			p.runAll(0)
			merged, err := os.ReadFile(filepath.Join(p.parts, "eval.json"))
			if err != nil {
				t.Fatal(err)
			}
			single, _ := p.run(nil, 0, append(p.single(), "--json")...)
			if a, b := timing.ReplaceAllString(string(merged), ""), timing.ReplaceAllString(string(single), ""); a != b || !strings.Contains(a, `"kl"`) {
				t.Fatalf("merged report\n%s\ndiffers from one run's\n%s", a, b)
			}
		}},
		{shardedJobs[1], func(t *testing.T, p *pods) {
			p.demoInputs()
			out := filepath.Join(p.parts, "out")
			one := filepath.Join(p.parts, "one")
			headline, code := p.run(nil, 3, p.single()...)
			if err := os.Rename(out, one); err != nil {
				t.Fatal(err)
			}
			merged, mcode := p.runAll(3)
			if mcode != code || !bytes.Equal(merged, headline) {
				t.Errorf("merge: exit %d, headline\n%s\none machine: exit %d, headline\n%s", mcode, merged, code, headline)
			}
			ents, err := os.ReadDir(one)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				a, errA := os.ReadFile(filepath.Join(out, e.Name()))
				b, errB := os.ReadFile(filepath.Join(one, e.Name()))
				if errA != nil || errB != nil {
					t.Fatalf("%v, %v", errA, errB)
				}
				if x, y := timing.ReplaceAllString(string(a), ""), timing.ReplaceAllString(string(b), ""); x != y {
					t.Errorf("%s of the pods differs from the one-machine run's:\n%.2000s\nvs\n%.2000s", e.Name(), x, y)
				}
			}
			if got, _ := os.ReadDir(out); len(got) != len(ents) || len(ents) < 7 {
				t.Errorf("the pods wrote %d files, the one-machine run %d", len(got), len(ents))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) { c.check(t, newPods(t, bin, load(t, c.sharded))) })
	}
}
