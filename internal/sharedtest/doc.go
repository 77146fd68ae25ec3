// Package sharedtest locates the test assets in ../shared (real models,
// fixtures, tokenizers, held-out text, reference numbers) for tests.
//
// The assets are never copied into the repository. A test that needs one
// calls [Path]: when ../shared is absent (a fresh clone elsewhere) the test
// is skipped with a message; when the CI environment variable is set, a
// missing asset fails the test instead, so CI can never pass by skipping.
package sharedtest
