// Package match matches tensor names against globs and suggests the
// nearest names when a glob or a name matches nothing.
package match
