// Package onnx reads, checks and writes ONNX model files (.onnx): the
// initializers of the main graph (dense, sparse, inside the file or in
// external data files), the weight matrices worth pruning, and a writer that
// replaces initializers, stores them as sparse initializers or moves them to
// an external data file while preserving everything else byte for byte.
// Package [github.com/lmsparse/lmsparse/onnx/run] executes the models.
//
// # Schema and decoding
//
// The protobuf messages come from lmsparse's own schema (package
// [github.com/lmsparse/lmsparse/formats/onnx/onnxpb], onnx.proto written from
// the ONNX IR specification) and google.golang.org/protobuf. Fields the
// schema does not declare are kept as unknown fields, so a read-modify-write
// round trip preserves the whole model. onnx-go was rejected: its protobuf
// package is internal, it cannot write models, it panics on boolean
// constants of standard GPT-2 exports and rejects FP16 initializers and
// external data.
//
// [Open] reads the whole file (at most [MaxProtoBytes], protobuf's 2 GiB
// limit) and checks every initializer of the main graph: at most
// tensor.MaxDims dimensions, none negative, element and byte counts
// overflow-checked; a known data type; data in exactly one place — raw_data
// of exactly the size the shape needs, one typed field (float_data,
// int32_data for INT32/INT16/INT8/UINT16/UINT8/BOOL/FLOAT16/BFLOAT16/FLOAT8,
// int64_data, double_data, uint64_data for UINT32/UINT64) with exactly one
// value per element, or external data; distinct, non-empty names across
// dense and sparse initializers. [Model.Check] adds the structural checks
// of the graph (single assignment, topological order, imported domains).
//
// # Data types
//
// ONNX data types map to lmsparse dtypes ([DType]): FLOAT F32, FLOAT16 F16,
// BFLOAT16 BF16, DOUBLE F64, FLOAT8E4M3FN F8_E4M3, FLOAT8E5M2 F8_E5M2, the
// signed and unsigned integers I8…U64 and BOOL. Other types (STRING,
// COMPLEX64/128, the FNUZ FP8 variants, 4-bit types) get passthrough dtypes
// named as in onnx.proto: they are listed and copied, and their raw bytes
// returned as stored.
//
// # External data
//
// A tensor with data_location EXTERNAL names a file ("location", required),
// an "offset" and a "length" (decimal, optional; "checksum" and unknown keys
// are ignored). The location must be a relative POSIX path: absolute paths,
// drive letters, backslashes, NUL bytes, and paths that leave the model's
// directory — after cleaning ("a/../../x") or through a symbolic link — are
// rejected, as are ranges beyond the end of the file and lengths that differ
// from the tensor's size. External data is read when [Model.InitializerBytes]
// asks for it; [Decode] (from memory) accepts no external data.
//
// # Pruning targets
//
// [Model.PruneTargets] finds the initializers that are weight matrices: the
// B input of MatMul or Gemm, directly or through Identity, Cast and 2-D
// Transpose nodes, 2-D and floating point. It reports the stored layout —
// [out, in] (Transposed) or [in, out] — following Gemm's transB and each
// Transpose on the way, and the other operators that read the same tensor
// (a tied embedding's Gather).
//
// # Writing
//
// [Model.Write] writes through a temporary file renamed into place. Known
// fields are written in field-number order and unknown fields after them,
// which is how protobuf's C++, Python and Go runtimes serialize; so a model
// written by any of them and written back unchanged is byte-identical (the
// tests check it on an ONNX Runtime export). Options:
//
//   - Replace: new dense data for initializers (raw_data; the TensorProto's
//     other fields are kept).
//   - Sparse: store initializers as sparse_initializers (values [NNZ], int64
//     linear indices [NNZ] ascending, dense dims). The metadata_props entry
//     [MetaSparsePositions] records their former positions, so that Dense
//     puts them back where they were: writing a model sparse and then dense
//     gives the same bytes as writing it dense.
//   - ExternalData: tensors of at least [ExternalMinBytes] go to one file
//     named after the model plus ".data", at offsets aligned to
//     [ExternalAlign], written (atomically too) before the model. Without
//     it, data the input kept externally is written inside the model, and a
//     result over 2 GiB is an error wrapping [ErrTooLarge].
//
// Output is deterministic: the same model and options give the same bytes.
//
// # Errors
//
// Malformed input wraps [ErrFormat], valid ONNX this package cannot handle
// wraps [ErrUnsupported]; both name the file and the tensor, node or graph.
package onnx
