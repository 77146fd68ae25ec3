package onnx

import (
	"strconv"

	"github.com/lmsparse/lmsparse/tensor"
)

// ONNX TensorProto.DataType values (onnx.proto, TensorProto.DataType).
const (
	TypeUndefined   int32 = 0
	TypeFloat       int32 = 1
	TypeUint8       int32 = 2
	TypeInt8        int32 = 3
	TypeUint16      int32 = 4
	TypeInt16       int32 = 5
	TypeInt32       int32 = 6
	TypeInt64       int32 = 7
	TypeString      int32 = 8
	TypeBool        int32 = 9
	TypeFloat16     int32 = 10
	TypeDouble      int32 = 11
	TypeUint32      int32 = 12
	TypeUint64      int32 = 13
	TypeComplex64   int32 = 14
	TypeComplex128  int32 = 15
	TypeBfloat16    int32 = 16
	TypeFloat8E4M3  int32 = 17 // FLOAT8E4M3FN
	TypeFloat8E4M3Z int32 = 18 // FLOAT8E4M3FNUZ
	TypeFloat8E5M2  int32 = 19
	TypeFloat8E5M2Z int32 = 20 // FLOAT8E5M2FNUZ
	TypeUint4       int32 = 21
	TypeInt4        int32 = 22
	TypeFloat4E2M1  int32 = 23
)

// TensorProto.data_location values.
const (
	LocationDefault  int32 = 0
	LocationExternal int32 = 1
)

// DType returns the lmsparse dtype of an ONNX data type. Types lmsparse
// cannot decode get a passthrough dtype spelled as in onnx.proto ("STRING",
// "COMPLEX64", "FLOAT8E4M3FNUZ", "INT4", ...), whose [tensor.DType.Size] is
// 0; an unknown number gives "ONNX_TYPE_n".
func DType(dataType int32) tensor.DType {
	switch dataType {
	case TypeFloat:
		return tensor.F32
	case TypeUint8:
		return tensor.U8
	case TypeInt8:
		return tensor.I8
	case TypeUint16:
		return tensor.U16
	case TypeInt16:
		return tensor.I16
	case TypeInt32:
		return tensor.I32
	case TypeInt64:
		return tensor.I64
	case TypeString:
		return "STRING"
	case TypeBool:
		return tensor.BOOL
	case TypeFloat16:
		return tensor.F16
	case TypeDouble:
		return tensor.F64
	case TypeUint32:
		return tensor.U32
	case TypeUint64:
		return tensor.U64
	case TypeComplex64:
		return "COMPLEX64"
	case TypeComplex128:
		return "COMPLEX128"
	case TypeBfloat16:
		return tensor.BF16
	case TypeFloat8E4M3:
		return tensor.F8_E4M3
	case TypeFloat8E4M3Z:
		return "FLOAT8E4M3FNUZ"
	case TypeFloat8E5M2:
		return tensor.F8_E5M2
	case TypeFloat8E5M2Z:
		return "FLOAT8E5M2FNUZ"
	case TypeUint4:
		return "UINT4"
	case TypeInt4:
		return "INT4"
	case TypeFloat4E2M1:
		return "FLOAT4E2M1"
	case TypeUndefined:
		return "UNDEFINED"
	}
	return tensor.DType("ONNX_TYPE_" + strconv.Itoa(int(dataType)))
}

// DataType returns the ONNX data type of an lmsparse dtype, and false for a
// dtype ONNX has no number for in this package.
func DataType(d tensor.DType) (int32, bool) {
	for t := TypeFloat; t <= TypeFloat4E2M1; t++ {
		if DType(t) == d {
			return t, true
		}
	}
	return 0, false
}
