// Package safetensors reads and writes the safetensors format of Hugging
// Face: an 8-byte little-endian header length N, N bytes of JSON header,
// then the data section.
//
// # Reading
//
// [Open] memory-maps a file on Linux, so [File.Bytes] returns tensor data
// without copying; [NewReader] works over any io.ReaderAt. Both validate the
// whole header before returning ([ParseHeader]):
//
//   - the header length is at most [MaxHeaderSize] (100 MB) and fits in the
//     file; the header is UTF-8 and one JSON object with no duplicate keys;
//   - __metadata__, if present, maps strings to strings;
//   - every tensor has a dtype, a shape of at most 16 non-negative dimensions
//     and data_offsets [begin, end]; for a known dtype, end-begin equals
//     the element count times the element size, all computed with overflow
//     checks;
//   - the ranges lie inside the data section, do not overlap and together
//     cover it exactly.
//
// Every validation error wraps [ErrFormat] and says which tensor and which
// rule; [Open] adds the path.
//
// A dtype this package does not know (say "F8_E8M0") is accepted as a
// passthrough type: its bytes are kept and copied, never interpreted.
//
// # Writing
//
// [WriteFile] streams: it computes the header from the entries' names,
// dtypes and shapes, then asks each [Entry] to write its bytes, one tensor
// at a time, so a model never has to fit in memory. [File.Entry] copies a
// tensor from an open file in-kernel (copy_file_range) where possible. On
// Linux, files of 64 MiB or more go to the disk with O_DIRECT through two
// aligned 8 MiB buffers, one filling while the other is written, instead
// of being copied into the page cache (whose copy was slower and erratic
// on the machines measured; see direct.go), on transparent huge pages
// where the kernel allows. That writer is a [BufferWriter]: an Entry can
// produce its bytes in the buffer itself — copied tensors are read straight
// into it ([ReadFull], which can also show each piece to a function on the
// way, as prune counts zeros), and prune zeroes its tensors there. File
// systems that refuse O_DIRECT get ordinary writes. Memory stays at the
// two buffers. [Write] writes the same bytes to any io.Writer through a
// [Buffer], a BufferWriter over it. The
// output is deterministic — tensors are laid out by element size (largest
// first) and then name, metadata keys are sorted, and the header is padded
// with spaces to a multiple of 8 — so every tensor is aligned to its
// element size and the same input always gives the same bytes. Files are
// written atomically: a temporary file in the target directory is synced
// and renamed into place.
package safetensors
