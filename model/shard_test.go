package model

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestOrderShards orders the parts of a run given in any order, and
// names a shard given twice, one out of range and the missing ones (at
// most ten, then how many more).
func TestOrderShards(t *testing.T) {
	label := func(i int) string { return fmt.Sprintf("part%d", i) }
	id := func(s int) int { return s }
	order, err := OrderShards([]int{2, 0, 1}, id, 3, label, nil)
	if err != nil || !slices.Equal(order, []int{0, 1, 2}) {
		t.Errorf("order %v, %v; want [0 1 2]", order, err)
	}
	for _, c := range []struct {
		shards []int
		n      int
		want   string
	}{
		{[]int{0, 1, 1}, 3, "shard 1/3 given twice: part1 and part2"},
		{[]int{0, 3}, 3, "part1: shard 3/3"},
		{[]int{0, -1}, 3, "part1: shard -1/3"},
		{[]int{0}, 3, "missing shard(s) <1>, <2> of 3"},
		{[]int{3}, 15, "missing shard(s) <0>, <1>, <2>, <4>, <5>, <6>, <7>, <8>, <9>, <10>, and 4 more of 15"},
	} {
		_, err := OrderShards(c.shards, id, c.n, label, func(s int) string { return fmt.Sprintf("<%d>", s) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v of %d: %v, want %q", c.shards, c.n, err, c.want)
		}
	}
	if _, err := OrderShards([]int{0}, id, 2, label, nil); err == nil || !strings.Contains(err.Error(), "missing shard(s) 1/2 of 2") {
		t.Errorf("default description: %v", err)
	}
}
