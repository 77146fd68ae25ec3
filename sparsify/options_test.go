package sparsify

import (
	"testing"

	"github.com/lmsparse/lmsparse/prune"
)

// TestMethodStringOverrides: the description of a job (the write line,
// lmsparse.json's method) names the overrides' sparsities.
func TestMethodStringOverrides(t *testing.T) {
	o := Options{Method: prune.Method{Sparsity: 0.2, Scope: prune.ScopeTensor}, Algorithm: Magnitude,
		Overrides: []Override{{Match: "*mlp*", Sparsity: 0.25}, {Match: "*q_proj*", Sparsity: 0.1}}}
	want := "magnitude 20% per tensor (overrides: *mlp* 25%, *q_proj* 10%)"
	if got := o.methodString(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	o.Overrides = nil
	if got := o.methodString(); got != "magnitude 20% per tensor" {
		t.Errorf("without overrides: %q", got)
	}
}
