// Package safeio opens the files lmsparse reads under one rule, so that a
// hostile checkpoint, text or recipe cannot make it read outside the model
// directory, block on a FIFO or device, or read without bound:
//
//   - a file of a model directory is opened by its path with every
//     symbolic link resolved, and the target must lie inside the
//     directory (itself resolved): a link to /etc/passwd, or a shard under
//     a linked subdirectory pointing elsewhere, is refused;
//   - every input is opened non-blocking and checked with fstat on the
//     open descriptor: only regular files are read (a FIFO, device,
//     socket or directory is refused at once, never waited on);
//   - a file read whole is read up to a cap given by the caller; a larger
//     one is refused.
//
// Refusals wrap [ErrInput]; a missing file wraps fs.ErrNotExist. Errors
// name the path. The package prints nothing.
package safeio
