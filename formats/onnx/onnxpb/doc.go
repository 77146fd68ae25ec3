// Package onnxpb holds lmsparse's protocol buffer schema for ONNX model files
// (onnx.proto) and the Go code generated from it (onnx.pb.go). Application
// code uses package [github.com/lmsparse/lmsparse/formats/onnx] instead.
//
// # Schema
//
// onnx.proto declares ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto (with its external data, data location and segment),
// SparseTensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
// TensorAnnotation, OperatorSetIdProto and StringStringEntryProto, with the
// field numbers and packing of the ONNX IR specification. Every declared
// message lists all of its fields; fields of messages that are not declared
// (functions, training information, device configurations) are kept as
// unknown fields and written back unchanged. Enum-typed fields are declared
// int32 (same varint encoding) so that values unknown to this schema stay in
// place instead of moving to the unknown fields.
//
// # Serialization order
//
// The Go protobuf runtime writes known fields in field-number order and then
// the unknown fields in the order they were read, as protobuf's C++ and
// Python runtimes do. A file written by those runtimes therefore decodes and
// re-encodes byte for byte (the formats/onnx tests check it on a real export).
//
// # Regenerating
//
// onnx.pb.go is committed; building and testing never need the generator. To
// regenerate it after editing onnx.proto, install protoc (Debian:
// apt-get install protobuf-compiler) and protoc-gen-go at the version of
// google.golang.org/protobuf in go.mod
// (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12), then
// run go generate in this directory:
//
//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
package onnxpb
