package kubernetes_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// calibReadme returns the pods' command lines documented in the README's
// "### Calibration pruning" subsection of "## Past one machine": the line
// of its code blocks that starts with "lmsparse prune" and uses
// $(JOB_COMPLETION_INDEX), and the one that starts with "lmsparse
// merge-shards /parts/".
func calibReadme(t *testing.T) (shard, merge []string) {
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
	i = strings.Index(s, "\n### Calibration pruning\n")
	if i < 0 {
		t.Fatal(`README.md's "Past one machine" has no subsection "### Calibration pruning"`)
	}
	s = s[i+1:]
	if j := strings.Index(s[4:], "\n### "); j >= 0 {
		s = s[:j+4]
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "lmsparse prune ") && strings.Contains(line, "$(JOB_COMPLETION_INDEX)"):
			if shard != nil {
				t.Fatal("README: two calibration shard command lines")
			}
			shard = f
		case strings.HasPrefix(line, "lmsparse merge-shards /parts/"):
			if merge != nil {
				t.Fatal("README: two merge-shards command lines")
			}
			merge = f
		}
	}
	if shard == nil || merge == nil {
		t.Fatalf("README's Calibration pruning subsection lacks the pods' command lines (shard %q, merge %q)", shard, merge)
	}
	return shard, merge
}

type calibManifests struct {
	shards, merge *batchv1.Job
	n             int
}

func loadCalib(t *testing.T) calibManifests {
	t.Helper()
	var m calibManifests
	m.shards = decode[batchv1.Job](t, "calib-shards.yaml")[0]
	m.merge = decode[batchv1.Job](t, "calib-merge.yaml")[0]
	m.n = shards(t, podCommand(t, m.shards))
	return m
}

// TestCalibManifests: calib-shards.yaml is an Indexed Job of n pods, n the
// N of its "--shard $(JOB_COMPLETION_INDEX)/N", with JOB_COMPLETION_INDEX
// from the completion-index annotation; calib-merge.yaml merges every
// part; both mount claims pvc.yaml defines and run the README's command
// lines.
func TestCalibManifests(t *testing.T) {
	m := loadCalib(t)
	pvcs := decode[corev1.PersistentVolumeClaim](t, "pvc.yaml")
	for _, j := range []*batchv1.Job{m.shards, m.merge} {
		if j.APIVersion != "batch/v1" || j.Kind != "Job" || j.Name == "" {
			t.Errorf("%s: apiVersion %q, kind %q", j.Name, j.APIVersion, j.Kind)
		}
		if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
			t.Errorf("%s: restartPolicy %q: a Job needs Never or OnFailure", j.Name, p)
		}
		vols := map[string]bool{}
		for _, v := range j.Spec.Template.Spec.Volumes {
			vols[v.Name] = true
			if c := v.PersistentVolumeClaim; c != nil && !slices.ContainsFunc(pvcs, func(p *corev1.PersistentVolumeClaim) bool { return p.Name == c.ClaimName }) {
				t.Errorf("%s: volume %s claims %s, which pvc.yaml does not define", j.Name, v.Name, c.ClaimName)
			}
		}
		mounts := map[string]bool{}
		for _, vm := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
			if !vols[vm.Name] {
				t.Errorf("%s: mount %s names no volume", j.Name, vm.Name)
			}
			mounts[vm.MountPath] = true
		}
		// Both read the model (the merge copies its untouched tensors) and use /parts.
		if !mounts["/in"] || !mounts["/parts"] {
			t.Errorf("%s: mounts %v, want /in and /parts", j.Name, mounts)
		}
	}
	s := m.shards.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("calib-shards: completionMode %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || int(*s.Completions) != m.n || int(*s.Parallelism) != m.n {
		t.Errorf("calib-shards: completions %v, parallelism %v, want both %d as --shard …/%d", s.Completions, s.Parallelism, m.n, m.n)
	}
	env := m.shards.Spec.Template.Spec.Containers[0].Env
	if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
	}) {
		t.Errorf("calib-shards: no JOB_COMPLETION_INDEX from the completion-index annotation in %+v", env)
	}
	if c := m.merge.Spec.CompletionMode; c != nil && *c != batchv1.NonIndexedCompletion {
		t.Errorf("calib-merge: completionMode %v", *c)
	}

	shard, merge := calibReadme(t)
	if got := podCommand(t, m.shards); !slices.Equal(got, shard) {
		t.Errorf("calib-shards runs\n%q\nthe README documents\n%q", got, shard)
	}
	if got := podCommand(t, m.merge); !slices.Equal(got, merge) {
		t.Errorf("calib-merge runs\n%q\nthe README documents\n%q", got, merge)
	}
	// The shard writes part $(JOB_COMPLETION_INDEX); the merge reads parts 0…n−1, each once.
	cmd := podCommand(t, m.shards)
	if k := slices.Index(cmd, "-o"); k < 0 || k+1 >= len(cmd) || cmd[k+1] != "/parts/calib-part-$(JOB_COMPLETION_INDEX).safetensors" {
		t.Errorf("calib-shards: -o is not /parts/calib-part-$(JOB_COMPLETION_INDEX).safetensors in %q", cmd)
	}
	var want []string
	for i := range m.n {
		want = append(want, fmt.Sprintf("/parts/calib-part-%d.safetensors", i))
	}
	mc := podCommand(t, m.merge)
	if got := slices.DeleteFunc(slices.Clone(mc), func(a string) bool { return !strings.HasPrefix(a, "/parts/calib-part-") }); !slices.Equal(got, want) {
		t.Errorf("calib-merge reads %q, want %q", got, want)
	}
}

// TestCalibPodsAsProcesses runs the calibration manifests' command lines
// as the pods would — one process per index with JOB_COMPLETION_INDEX set
// and $(JOB_COMPLETION_INDEX) expanded, /in and /parts mapped to
// directories here — on the demo model, calibrated on its held-out text,
// and checks that the merge Job's checkpoint is, file for file, the one
// the shard command writes on one machine without --shard (and with
// --independent).
func TestCalibPodsAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lmsparse and runs the pods' commands")
	}
	m := loadCalib(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "lmsparse")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", bin, "./cmd/lmsparse")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("lmsparse %q: %v\n%s", args, err, stderr.String())
		}
	}
	in, parts := filepath.Join(dir, "in"), filepath.Join(dir, "parts")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(parts, 0o755)
	demo, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(demo, "model"), filepath.Join(in, "model"))
	os.Symlink(filepath.Join(demo, "heldout.txt"), filepath.Join(in, "calib.txt"))
	paths := strings.NewReplacer("/in/", in+"/", "/parts/", parts+"/")
	mapArgs := func(cmd []string, env map[string]string) []string {
		out := make([]string, len(cmd)-1)
		for i, a := range cmd[1:] {
			out[i] = paths.Replace(expand(a, env))
		}
		return out
	}
	for i := m.n - 1; i >= 0; i-- {
		idx := strconv.Itoa(i)
		run([]string{"JOB_COMPLETION_INDEX=" + idx}, mapArgs(podCommand(t, m.shards), map[string]string{"JOB_COMPLETION_INDEX": idx})...)
	}
	run(nil, mapArgs(podCommand(t, m.merge), nil)...)
	mc := podCommand(t, m.merge)
	merged := paths.Replace(mc[slices.Index(mc, "-o")+1])

	// The one-machine run: the shard command without --shard, into its own directory.
	one := mapArgs(podCommand(t, m.shards), map[string]string{"JOB_COMPLETION_INDEX": "0"})
	k := slices.Index(one, "--shard")
	one = slices.Delete(one, k, k+2)
	k = slices.Index(one, "-o")
	single := filepath.Join(dir, "one")
	one[k+1] = single
	run(nil, append(one, "--independent")...)
	ents, err := os.ReadDir(single)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) < 4 {
		t.Fatalf("%s holds %d files", single, len(ents))
	}
	for _, e := range ents {
		a, err := os.ReadFile(filepath.Join(single, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(merged, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the merge Job's differs from the one-machine run's", e.Name())
		}
	}
}
