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
// README's "Past one machine" section: the lines of its code blocks that
// start with "lmsparse eval" and use $(JOB_COMPLETION_INDEX), and those
// that start with "lmsparse merge-eval /parts/".
func readmeCommands(t *testing.T) (shard, merge []string) {
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
		case strings.HasPrefix(line, "lmsparse eval ") && strings.Contains(line, "$(JOB_COMPLETION_INDEX)"):
			if shard != nil {
				t.Fatal("README: two shard command lines")
			}
			shard = f
		case strings.HasPrefix(line, "lmsparse merge-eval /parts/"):
			if merge != nil {
				t.Fatal("README: two merge command lines")
			}
			merge = f
		}
	}
	if shard == nil || merge == nil {
		t.Fatalf("README's Past one machine section lacks the pods' command lines (shard %q, merge %q)", shard, merge)
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

type manifests struct {
	shards, merge *batchv1.Job
	pvcs          []*corev1.PersistentVolumeClaim
	n             int
}

func load(t *testing.T) manifests {
	t.Helper()
	var m manifests
	m.shards = decode[batchv1.Job](t, "eval-shards.yaml")[0]
	m.merge = decode[batchv1.Job](t, "eval-merge.yaml")[0]
	m.pvcs = decode[corev1.PersistentVolumeClaim](t, "pvc.yaml")
	m.n = shards(t, podCommand(t, m.shards))
	return m
}

func TestManifests(t *testing.T) {
	m := load(t)
	for _, j := range []*batchv1.Job{m.shards, m.merge} {
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
			if c := v.PersistentVolumeClaim; c != nil && !slices.ContainsFunc(m.pvcs, func(p *corev1.PersistentVolumeClaim) bool { return p.Name == c.ClaimName }) {
				t.Errorf("%s: volume %s claims %s, which pvc.yaml does not define", j.Name, v.Name, c.ClaimName)
			}
		}
		for _, vm := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
			if _, ok := vols[vm.Name]; !ok {
				t.Errorf("%s: mount %s names no volume", j.Name, vm.Name)
			}
		}
	}
	for _, p := range m.pvcs {
		if p.APIVersion != "v1" || p.Kind != "PersistentVolumeClaim" || len(p.Spec.AccessModes) == 0 {
			t.Errorf("pvc %s: apiVersion %q, kind %q, access modes %v", p.Name, p.APIVersion, p.Kind, p.Spec.AccessModes)
		}
	}

	s := m.shards.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("eval-shards: completionMode %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || int(*s.Completions) != m.n || int(*s.Parallelism) != m.n {
		t.Errorf("eval-shards: completions %v, parallelism %v, want both %d as --shard …/%d", s.Completions, s.Parallelism, m.n, m.n)
	}
	// The index reaches the command through JOB_COMPLETION_INDEX, read
	// from the pod's completion-index annotation.
	env := m.shards.Spec.Template.Spec.Containers[0].Env
	if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
	}) {
		t.Errorf("eval-shards: no JOB_COMPLETION_INDEX from the completion-index annotation in %+v", env)
	}
	if c := m.merge.Spec.CompletionMode; c != nil && *c != batchv1.NonIndexedCompletion {
		t.Errorf("eval-merge: completionMode %v", *c)
	}

	// The pods run the README's command lines, and the merge reads every part.
	shard, merge := readmeCommands(t)
	if got := podCommand(t, m.shards); !slices.Equal(got, shard) {
		t.Errorf("eval-shards runs\n%q\nthe README documents\n%q", got, shard)
	}
	if got := podCommand(t, m.merge); !slices.Equal(got, merge) {
		t.Errorf("eval-merge runs\n%q\nthe README documents\n%q", got, merge)
	}
	for i := range m.n {
		if !slices.Contains(merge, fmt.Sprintf("/parts/part-%d.json", i)) {
			t.Errorf("eval-merge does not read /parts/part-%d.json", i)
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

// TestPodsAsProcesses runs the manifests' command lines as the pods would
// — a static binary built as the Dockerfile builds it, one process per
// index with JOB_COMPLETION_INDEX set and $(JOB_COMPLETION_INDEX) expanded,
// /in and /parts mapped to directories here — on a pruned demo model
// against the demo model, and checks that the merge Job's report is the one
// "lmsparse eval --json" prints on one machine, timings apart.
func TestPodsAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lmsparse and runs the pods' commands")
	}
	m := load(t)
	dir := t.TempDir()
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
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s needs a dynamic loader: not a static binary", bin)
		}
	}
	f.Close()
	run := func(env []string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("lmsparse %q: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	in, parts := filepath.Join(dir, "in"), filepath.Join(dir, "parts")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(parts, 0o755)
	demo, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(demo, "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(in, "heldout.txt"), text[:10000], 0o644)
	os.Symlink(filepath.Join(demo, "model"), filepath.Join(in, "base"))
	run(nil, "prune", filepath.Join(in, "base"), "-o", filepath.Join(in, "model"), "--sparsity", "0.5")
	paths := strings.NewReplacer("/in/", in+"/", "/parts/", parts+"/")
	mapArgs := func(cmd []string, env map[string]string) []string {
		out := make([]string, len(cmd)-1)
		for i, a := range cmd[1:] {
			out[i] = paths.Replace(expand(a, env))
		}
		return out
	}
	for i := range m.n {
		idx := strconv.Itoa(i)
		run([]string{"JOB_COMPLETION_INDEX=" + idx}, mapArgs(podCommand(t, m.shards), map[string]string{"JOB_COMPLETION_INDEX": idx})...)
	}
	run(nil, mapArgs(podCommand(t, m.merge), nil)...)
	merged, err := os.ReadFile(filepath.Join(parts, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The one-machine run: the shard command without --shard and --partial.
	one := mapArgs(podCommand(t, m.shards), map[string]string{"JOB_COMPLETION_INDEX": "0"})
	k := slices.Index(one, "--shard")
	single := run(nil, append(slices.Delete(one, k, k+4), "--json")...)
	timing := regexp.MustCompile(`(?m)^  "(seconds|tokens_per_second)": .*\n`)
	if a, b := timing.ReplaceAllString(string(merged), ""), timing.ReplaceAllString(string(single), ""); a != b || !strings.Contains(a, `"kl"`) {
		t.Fatalf("merged report\n%s\ndiffers from one run's\n%s", a, b)
	}
}
