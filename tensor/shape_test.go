package tensor

import (
	"errors"
	"math"
	"testing"
)

func TestShapeElems(t *testing.T) {
	tests := []struct {
		shape Shape
		want  int64
		err   bool
	}{
		{nil, 1, false},
		{Shape{0}, 0, false},
		{Shape{512, 64}, 32768, false},
		{Shape{3, 0, 7}, 0, false},
		{Shape{-1}, 0, true},
		{Shape{2, -3}, 0, true},
		{Shape{1 << 32, 1 << 31}, 0, true},
		{Shape{math.MaxInt64, 1}, math.MaxInt64, false},
		{Shape{math.MaxInt64, 2}, 0, true},
		{make(Shape, MaxDims+1), 0, true},
	}
	for _, tt := range tests {
		got, err := tt.shape.Elems()
		if (err != nil) != tt.err {
			t.Errorf("%v.Elems() error = %v, want error %v", tt.shape, err, tt.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrShape) {
			t.Errorf("%v.Elems() error %v does not wrap ErrShape", tt.shape, err)
		}
		if err == nil && got != tt.want {
			t.Errorf("%v.Elems() = %d, want %d", tt.shape, got, tt.want)
		}
	}
}

func TestShapeBytes(t *testing.T) {
	if b, err := (Shape{512, 64}).Bytes(F32); err != nil || b != 131072 {
		t.Errorf("[512 64] F32 = %d, %v; want 131072", b, err)
	}
	if b, err := (Shape{7}).Bytes(BF16); err != nil || b != 14 {
		t.Errorf("[7] BF16 = %d, %v; want 14", b, err)
	}
	if _, err := (Shape{1 << 62}).Bytes(F32); !errors.Is(err, ErrShape) {
		t.Errorf("[2^62] F32: err = %v, want ErrShape", err)
	}
	if _, err := (Shape{4}).Bytes(DType("F4")); !errors.Is(err, ErrDType) {
		t.Errorf("passthrough dtype: err = %v, want ErrDType", err)
	}
}

func TestDTypeSize(t *testing.T) {
	want := map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
		I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, "C64": 0, "F8_E8M0": 0}
	for d, n := range want {
		if got := d.Size(); got != n {
			t.Errorf("%s.Size() = %d, want %d", d, got, n)
		}
	}
	for _, s := range []string{"", "F32 ", "a\"b", "x/y"} {
		if DType(s).Valid() {
			t.Errorf("DType(%q).Valid() = true", s)
		}
	}
	if !DType("F8_E8M0").Valid() {
		t.Error("F8_E8M0 should be a valid passthrough name")
	}
}

func TestMulAdd(t *testing.T) {
	if _, err := MulInt64(math.MaxInt64/2+1, 2); err == nil {
		t.Error("MulInt64 overflow not detected")
	}
	if v, err := MulInt64(1<<31, 1<<31); err != nil || v != 1<<62 {
		t.Errorf("MulInt64(2^31,2^31) = %d, %v", v, err)
	}
	if _, err := AddInt64(math.MaxInt64, 1); err == nil {
		t.Error("AddInt64 overflow not detected")
	}
}
