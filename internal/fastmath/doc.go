// Package fastmath holds the float32 elementary functions the forward and
// backward passes share: an exp accurate to a few ulp that is several
// times faster than math.Exp through float64.
package fastmath
