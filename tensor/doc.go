// Package tensor holds the element types, shapes and number conversions that
// every other lmsparse package builds on. It imports nothing of lmsparse.
//
// # Element types
//
// A [DType] is spelled as in safetensors headers: F64, F32, F16, BF16,
// F8_E4M3, F8_E5M2, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL. Any other
// dtype string is a passthrough type: lmsparse copies such tensors byte for
// byte but cannot decode them ([DType.Size] is 0 and [DType.Known] false).
//
// # Shapes
//
// A [Shape] lists dimensions outermost first. [Shape.Elems] and
// [Shape.Bytes] check for negative dimensions and for products that do not
// fit in an int64, so a count read from a file can never wrap around.
//
// # Conversions
//
// F16, BF16, F8_E4M3 and F8_E5M2 decode to float32 exactly. float32 encodes
// to F16 and BF16 with round-to-nearest-even, the rounding of IEEE 754 and of
// PyTorch's tensor.to(dtype). [DecodeF32] and [EncodeF32] convert whole
// little-endian buffers as stored in safetensors files.
package tensor
