// Package atomicfile creates files so that readers never see a partial one:
// the content goes to a temporary file in the target directory, which is
// synced and then renamed over the target.
package atomicfile
