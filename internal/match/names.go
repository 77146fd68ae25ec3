package match

import "path"

// ValidGlob reports a malformed glob.
func ValidGlob(glob string) error {
	_, err := path.Match(glob, "")
	return err
}

// Match reports whether glob matches the whole name (* matches any run of
// characters, dots included).
func Match(glob, name string) bool {
	ok, _ := path.Match(glob, name)
	return ok
}

// AnyMatch reports whether glob matches any of names.
func AnyMatch(glob string, names []string) bool {
	for _, n := range names {
		if Match(glob, n) {
			return true
		}
	}
	return false
}

// Nearest returns the k names closest to s by edit distance (a * in s
// matches any run of characters at no cost), closest first, ties in the
// order given.
func Nearest(s string, names []string, k int) []string {
	type scored struct {
		name string
		d    int
	}
	var best []scored
	for _, n := range names {
		d := EditDistance(s, n)
		i := len(best)
		for i > 0 && best[i-1].d > d {
			i--
		}
		if i < k {
			best = append(best[:i], append([]scored{{n, d}}, best[i:]...)...)
			if len(best) > k {
				best = best[:k]
			}
		}
	}
	out := make([]string, len(best))
	for i, b := range best {
		out[i] = b.name
	}
	return out
}

// EditDistance is the Levenshtein distance between a glob and a name, where
// a * in the glob matches any run of characters at no cost.
func EditDistance(glob, name string) int {
	prev := make([]int, len(name)+1)
	cur := make([]int, len(name)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(glob); i++ {
		star := glob[i-1] == '*'
		cur[0] = prev[0]
		if !star {
			cur[0] = i
		}
		for j := 1; j <= len(name); j++ {
			if star {
				cur[j] = min(prev[j], cur[j-1])
				continue
			}
			cost := 1
			if glob[i-1] == name[j-1] || glob[i-1] == '?' {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(name)]
}
