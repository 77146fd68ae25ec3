package report

import (
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/manifest"
)

// TestGrowthWarning: a warning names the tensors a layout made larger than
// dense, and none is given when every layout is smaller or equal.
func TestGrowthWarning(t *testing.T) {
	rep := &manifest.Manifest{Tensors: []manifest.Tensor{
		{Name: "a", Pruned: true, Encoding: "sparse", BytesBefore: 100, BytesAfter: 130},
		{Name: "b", Pruned: true, Encoding: "csr", BytesBefore: 100, BytesAfter: 101},
		{Name: "c", Pruned: true, Encoding: "bitmask", BytesBefore: 100, BytesAfter: 60},
		{Name: "d", Encoding: "dense", BytesBefore: 100, BytesAfter: 100},
	}}
	g := GrowthWarning(rep)
	if !strings.HasPrefix(g, "warning: 2 pruned tensors (1 csr, 1 sparse)") || !strings.Contains(g, "31 bytes more") {
		t.Errorf("warning %q", g)
	}
	rep.Tensors = rep.Tensors[2:]
	if g := GrowthWarning(rep); g != "" {
		t.Errorf("no tensor grew, warning %q", g)
	}
}
