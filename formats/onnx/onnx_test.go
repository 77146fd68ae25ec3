package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/tensor"
)

const (
	pastPath    = "fixtures/onnx-tiny-random-gpt2/past.onnx"
	storiesPath = "models/stories260k-onnx/model.onnx"
)

func open(t *testing.T, path string) *Model {
	t.Helper()
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoundTripByteIdentical: reading and writing a model without changes
// reproduces the file byte for byte.
func TestRoundTripByteIdentical(t *testing.T) {
	for _, rel := range []string{pastPath, storiesPath} {
		src := sharedtest.Path(t, rel)
		m := open(t, src)
		if err := m.Check(); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.onnx")
		if err := m.Write(out, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if a, b := readFile(t, src), readFile(t, out); !bytes.Equal(a, b) {
			t.Errorf("%s: written file differs (%d bytes, original %d)", rel, len(b), len(a))
		}
		if _, err := os.Stat(out + ".data"); !os.IsNotExist(err) {
			t.Errorf("%s: unexpected external data file", rel)
		}
	}
}

func TestPastInitializers(t *testing.T) {
	m := open(t, sharedtest.Path(t, pastPath))
	ins := m.Initializers()
	if len(ins) != 27 {
		t.Fatalf("%d initializers, want 27", len(ins))
	}
	want := map[string]string{
		"transformer.wte.weight":             "F32 [1000 32]",
		"transformer.wpe.weight":             "F32 [512 32]",
		"transformer.h.0.ln_1.weight":        "F32 [32]",
		"transformer.h.0.attn.c_attn.weight": "F32 [32 96]",
		"transformer.h.0.attn.c_attn.bias":   "F32 [96]",
		"transformer.h.4.mlp.c_proj.weight":  "F32 [128 32]",
		"onnx::MatMul_1400":                  "F32 [32 1000]",
	}
	var total int64
	for _, in := range ins {
		if w, ok := want[in.Name]; ok {
			if got := string(in.DType) + " " + in.Shape.String(); got != w {
				t.Errorf("%s: %s, want %s", in.Name, got, w)
			}
			delete(want, in.Name)
		}
		if in.Storage != StorageRaw || in.DataType != TypeFloat {
			t.Errorf("%s: storage %s, data type %d", in.Name, in.Storage, in.DataType)
		}
		b, err := m.InitializerBytes(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != in.Bytes {
			t.Errorf("%s: %d bytes, listed %d", in.Name, len(b), in.Bytes)
		}
		total += in.Bytes
	}
	if len(want) > 0 {
		t.Errorf("missing initializers %v", want)
	}
	t.Logf("%d initializers, %d bytes", len(ins), total)
	if m.Opset("") != 11 || m.Opset("com.microsoft") != 1 {
		t.Errorf("opsets %d, %d", m.Opset(""), m.Opset("com.microsoft"))
	}
}

func TestPruneTargetsRealModels(t *testing.T) {
	m := open(t, sharedtest.Path(t, storiesPath))
	ts := m.PruneTargets()
	if len(ts) != 36 {
		t.Fatalf("%d targets, want 36 (35 projections and the tied embedding)", len(ts))
	}
	for _, tg := range ts {
		if !tg.Transposed || tg.Op != "MatMul" || tg.Uses != 1 {
			t.Errorf("%+v: want a transposed MatMul weight", tg)
		}
		if tg.Name == "model.embed_tokens.weight" {
			if !slices.Equal(tg.OtherUses, []string{"Gather"}) || tg.Out != 512 || tg.In != 64 {
				t.Errorf("embedding target %+v", tg)
			}
		} else if !strings.HasPrefix(tg.Name, "model.layers.") || len(tg.OtherUses) != 0 {
			t.Errorf("unexpected target %+v", tg)
		}
		if tg.Name == "model.layers.0.mlp.down_proj.weight" && (tg.Out != 64 || tg.In != 172) {
			t.Errorf("down_proj: out %d in %d", tg.Out, tg.In)
		}
	}
	p := open(t, sharedtest.Path(t, pastPath))
	ts = p.PruneTargets()
	if len(ts) != 16 {
		t.Fatalf("past.onnx: %d targets, want 16", len(ts))
	}
	for _, tg := range ts {
		if tg.Transposed {
			t.Errorf("past.onnx %s: Conv1D/MatMul weights are [in, out]", tg.Name)
		}
	}
	if tg := ts[len(ts)-1]; tg.Name != "onnx::MatMul_1400" || tg.In != 32 || tg.Out != 1000 {
		t.Errorf("LM head target %+v", tg)
	}
}

// pruneHalf zeroes a seeded random half of a float32 tensor.
func pruneHalf(b []byte, rng *rand.Rand) []byte {
	out := slices.Clone(b)
	n := len(out) / 4
	for _, i := range rng.Perm(n)[:n/2] {
		binary.LittleEndian.PutUint32(out[4*i:], 0)
	}
	return out
}

// prunedStories returns the stories model and pruned data for its 35 block
// projections.
func prunedStories(t *testing.T) (*Model, map[string][]byte) {
	m := open(t, sharedtest.Path(t, storiesPath))
	rng := rand.New(rand.NewPCG(1, 2))
	rep := map[string][]byte{}
	for _, tg := range m.PruneTargets() {
		if len(tg.OtherUses) > 0 {
			continue
		}
		b, err := m.InitializerBytes(tg.Name)
		if err != nil {
			t.Fatal(err)
		}
		rep[tg.Name] = pruneHalf(b, rng)
	}
	return m, rep
}

func TestReplaceDense(t *testing.T) {
	m, rep := prunedStories(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "dense.onnx")
	if err := m.Write(out, WriteOptions{Replace: rep}); err != nil {
		t.Fatal(err)
	}
	d := open(t, out)
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	for _, in := range m.Initializers() {
		want, _ := m.InitializerBytes(in.Name)
		if r, ok := rep[in.Name]; ok {
			want = r
		}
		got, err := d.InitializerBytes(in.Name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, data equal %v", in.Name, err, bytes.Equal(got, want))
		}
	}
	if len(d.Initializers()) != len(m.Initializers()) {
		t.Errorf("%d initializers, want %d", len(d.Initializers()), len(m.Initializers()))
	}
	// Replacing with the same bytes changes nothing.
	same := map[string][]byte{}
	for n := range rep {
		same[n], _ = m.InitializerBytes(n)
	}
	out2 := filepath.Join(dir, "same.onnx")
	if err := m.Write(out2, WriteOptions{Replace: same}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, out2), readFile(t, m.Path())) {
		t.Error("replacing initializers with their own data changed the file")
	}
	// Bad replacements.
	if err := m.Write(filepath.Join(dir, "x.onnx"), WriteOptions{Replace: map[string][]byte{"nope": nil}}); err == nil {
		t.Error("unknown initializer accepted")
	}
	if err := m.Write(filepath.Join(dir, "x.onnx"), WriteOptions{Replace: map[string][]byte{"model.norm.weight": make([]byte, 3)}}); err == nil {
		t.Error("wrong size accepted")
	}
}

func TestSparseRoundTrip(t *testing.T) {
	m, rep := prunedStories(t)
	dir := t.TempDir()
	dense := filepath.Join(dir, "dense.onnx")
	if err := m.Write(dense, WriteOptions{Replace: rep}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range rep {
		names = append(names, n)
	}
	slices.Sort(names)
	sparse := filepath.Join(dir, "sparse.onnx")
	if err := m.Write(sparse, WriteOptions{Replace: rep, Sparse: names}); err != nil {
		t.Fatal(err)
	}
	s := open(t, sparse)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// COO with int64 indices costs 12 bytes per stored F32 value: at 50%
	// sparsity the file grows (it pays off above 2/3).
	t.Logf("sparse model %d bytes, dense %d", s.Size(), m.Size())
	for _, in := range s.Initializers() {
		r, pruned := rep[in.Name]
		if pruned != (in.Storage == StorageSparse) {
			t.Errorf("%s: storage %s", in.Name, in.Storage)
		}
		got, err := s.InitializerBytes(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.InitializerBytes(in.Name)
		if pruned {
			want = r
			if in.NNZ != int64(len(r)/4-len(r)/8) {
				t.Errorf("%s: nnz %d of %d", in.Name, in.NNZ, len(r)/4)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: data differs", in.Name)
		}
	}
	// Back to dense: the same bytes as writing the pruned model dense.
	back := filepath.Join(dir, "back.onnx")
	if err := s.Write(back, WriteOptions{Dense: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, back), readFile(t, dense)) {
		t.Error("sparse → dense differs from the dense write")
	}
	// A sparse model written unchanged is byte-identical too.
	again := filepath.Join(dir, "again.onnx")
	if err := s.Write(again, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, again), readFile(t, sparse)) {
		t.Error("sparse model round trip differs")
	}
	// Sparsifying a few more from the sparse model keeps the recorded order.
	more := filepath.Join(dir, "more.onnx")
	if err := s.Write(more, WriteOptions{Sparse: []string{"model.norm.weight"}}); err != nil {
		t.Fatal(err)
	}
	mm := open(t, more)
	back2 := filepath.Join(dir, "back2.onnx")
	if err := mm.Write(back2, WriteOptions{Dense: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, back2), readFile(t, dense)) {
		t.Error("sparse (twice) → dense differs from the dense write")
	}
}

func TestExternalData(t *testing.T) {
	m, rep := prunedStories(t)
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext.onnx")
	var names []string
	for n := range rep {
		names = append(names, n)
		break
	}
	if err := m.Write(ext, WriteOptions{ExternalData: true, Replace: rep, Sparse: names}); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, ext+".data")
	e := open(t, ext)
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	var external int
	for _, in := range e.Initializers() {
		switch {
		case in.Storage == StorageExternal:
			external++
			if in.Location != "ext.onnx.data" || in.Offset%ExternalAlign != 0 || in.Bytes < ExternalMinBytes {
				t.Errorf("%s: %s at %d (%d bytes)", in.Name, in.Location, in.Offset, in.Bytes)
			}
		case in.Storage == StorageSparse:
		case in.Bytes >= ExternalMinBytes:
			t.Errorf("%s: %d bytes left inside the model", in.Name, in.Bytes)
		}
		got, err := e.InitializerBytes(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.InitializerBytes(in.Name)
		if r, ok := rep[in.Name]; ok {
			want = r
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: data differs", in.Name)
		}
	}
	if external < 30 || int64(len(data)) > 2*m.Size() {
		t.Errorf("%d external tensors, data file %d bytes", external, len(data))
	}
	// A sparse initializer's values and indices both go to the data file
	// (ONNX external data: data_location EXTERNAL, location/offset/length
	// keys, offsets aligned); nothing large stays inside the model.
	sps := e.pb.GetGraph().GetSparseInitializer()
	if len(sps) != len(names) {
		t.Fatalf("%d sparse initializers, want %d", len(sps), len(names))
	}
	for _, s := range sps {
		for what, pt := range map[string]*onnxpb.TensorProto{"values": s.GetValues(), "indices": s.GetIndices()} {
			kv := map[string]string{}
			for _, e := range pt.GetExternalData() {
				kv[e.GetKey()] = e.GetValue()
			}
			off, _ := strconv.ParseInt(kv["offset"], 10, 64)
			if pt.GetDataLocation() != LocationExternal || kv["location"] != "ext.onnx.data" || off%ExternalAlign != 0 ||
				kv["length"] == "" || len(pt.GetRawData()) != 0 {
				t.Errorf("sparse %s of %q: location %d, %v, %d raw bytes inside the model", what, s.GetValues().GetName(), pt.GetDataLocation(), kv, len(pt.GetRawData()))
			}
		}
	}
	if e.Size() > 200_000 {
		t.Errorf("model file is %d bytes with external data", e.Size())
	}
	t.Logf("%d tensors in %d bytes of external data; model %d bytes", external, len(data), e.Size())
	// Writing the unchanged original with external data and back inline
	// restores the original bytes.
	ext2 := filepath.Join(dir, "ext2.onnx")
	if err := m.Write(ext2, WriteOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back.onnx") // another directory
	if err := open(t, ext2).Write(back, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, back), readFile(t, m.Path())) {
		t.Error("external → inline differs from the original")
	}
	// Deterministic output.
	ext3 := filepath.Join(dir, "ext3.onnx")
	if err := m.Write(ext3, WriteOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, ext2+".data"), readFile(t, ext3+".data")) {
		t.Error("external data differs between two writes")
	}
}

func TestTooLarge(t *testing.T) {
	m := open(t, sharedtest.Path(t, storiesPath))
	dir := t.TempDir()
	limit := m.Size() / 2
	err := m.write(filepath.Join(dir, "big.onnx"), WriteOptions{}, limit)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "external data") {
		t.Errorf("error %v, want ErrTooLarge suggesting external data", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "big.onnx")); !os.IsNotExist(err) {
		t.Error("a file was written")
	}
	if err := m.write(filepath.Join(dir, "big.onnx"), WriteOptions{ExternalData: true}, limit); err != nil {
		t.Errorf("with external data: %v", err)
	}
}

func TestDTypeMapping(t *testing.T) {
	for dt := TypeFloat; dt <= TypeFloat4E2M1; dt++ {
		d := DType(dt)
		back, ok := DataType(d)
		if !ok || back != dt {
			t.Errorf("%d -> %s -> %d", dt, d, back)
		}
	}
	if DType(99) != "ONNX_TYPE_99" {
		t.Errorf("unknown type: %s", DType(99))
	}
}

// tp builds a TensorProto.
func tp(name string, dt int32, dims ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(dt), Dims: dims}
}

// miniModel wraps initializers in a model whose graph multiplies input x
// by initializer "w".
func miniModel(inits ...*onnxpb.TensorProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("g"),
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{{Name: proto.String("x")}},
			Output:      []*onnxpb.ValueInfoProto{{Name: proto.String("y")}},
			Node:        []*onnxpb.NodeProto{{OpType: proto.String("MatMul"), Input: []string{"x", "w"}, Output: []string{"y"}}},
		},
	}
}

func TestTypedFields(t *testing.T) {
	f := tp("f", TypeFloat, 2)
	f.FloatData = []float32{1.5, -2}
	h := tp("h", TypeFloat16, 2)
	h.Int32Data = []int32{int32(tensor.F32ToF16(1)), int32(tensor.F32ToF16(-0.5))}
	bf := tp("bf", TypeBfloat16, 1)
	bf.Int32Data = []int32{int32(tensor.F32ToBF16(3))}
	i := tp("i", TypeInt64, 2)
	i.Int64Data = []int64{-1, 1 << 40}
	i8 := tp("i8", TypeInt8, 2)
	i8.Int32Data = []int32{-1, 127}
	b := tp("b", TypeBool, 3)
	b.Int32Data = []int32{1, 0, 1}
	d := tp("d", TypeDouble)
	d.DoubleData = []float64{0.25}
	u := tp("u", TypeUint32, 1)
	u.Uint64Data = []uint64{0xfffffffe}
	raw := tp("r", TypeUint8, 2, 2)
	raw.RawData = []byte{1, 2, 3, 4}
	empty := tp("e", TypeFloat, 0, 3)
	data, err := proto.Marshal(miniModel(f, h, bf, i, i8, b, d, u, raw, empty))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := map[string][]byte{
		"f":  le.AppendUint32(le.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-2)),
		"h":  le.AppendUint16(le.AppendUint16(nil, tensor.F32ToF16(1)), tensor.F32ToF16(-0.5)),
		"bf": le.AppendUint16(nil, tensor.F32ToBF16(3)),
		"i":  le.AppendUint64(le.AppendUint64(nil, math.MaxUint64), 1<<40),
		"i8": {0xff, 0x7f},
		"b":  {1, 0, 1},
		"d":  le.AppendUint64(nil, math.Float64bits(0.25)),
		"u":  le.AppendUint32(nil, 0xfffffffe),
		"r":  {1, 2, 3, 4},
		"e":  {},
	}
	dtypes := map[string]tensor.DType{"f": tensor.F32, "h": tensor.F16, "bf": tensor.BF16, "i": tensor.I64,
		"i8": tensor.I8, "b": tensor.BOOL, "d": tensor.F64, "u": tensor.U32, "r": tensor.U8, "e": tensor.F32}
	for _, in := range m.Initializers() {
		got, err := m.InitializerBytes(in.Name)
		if err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		if !bytes.Equal(got, want[in.Name]) || in.DType != dtypes[in.Name] || int64(len(got)) != in.Bytes {
			t.Errorf("%s (%s, %d bytes): % x, want % x (%s)", in.Name, in.DType, in.Bytes, got, want[in.Name], dtypes[in.Name])
		}
	}
	// Typed tensors replaced and written come back as raw_data.
	out := filepath.Join(t.TempDir(), "typed.onnx")
	if err := m.Write(out, WriteOptions{Replace: map[string][]byte{"f": make([]byte, 8)}}); err != nil {
		t.Fatal(err)
	}
	in, _ := open(t, out).Initializer("f")
	if in.Storage != StorageRaw {
		t.Errorf("replaced typed tensor stored as %s", in.Storage)
	}
}

func TestResolveLocation(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for _, f := range []string{filepath.Join(dir, "w.data"), filepath.Join(outside, "secret.data")} {
		if err := os.WriteFile(f, []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.data"), filepath.Join(dir, "link.data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	for loc, ok := range map[string]bool{
		"w.data":                     true,
		"./w.data":                   true,
		"sub/../w.data":              true,
		"../w.data":                  false,
		"sub/../../w.data":           false,
		"..":                         false,
		".":                          false,
		"":                           false,
		"/etc/passwd":                false,
		filepath.Join(dir, "w.data"): false,
		"C:/w.data":                  false,
		`..\w.data`:                  false,
		"w.data\x00":                 false,
		"link.data":                  false,
		"linkdir/secret.data":        false,
		"missing.data":               false,
	} {
		_, err := resolveLocation(dir, loc)
		if (err == nil) != ok {
			t.Errorf("location %q: error %v, want ok=%v", loc, err, ok)
		}
	}
}

// TestCorrupt: malformed models and external data references are errors
// wrapping ErrFormat that name the tensor.
func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.data"), make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-outside.data")
	if err := os.WriteFile(outside, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(outside) })
	if err := os.Symlink(outside, filepath.Join(dir, "link.data")); err != nil {
		t.Fatal(err)
	}
	ext := func(kv ...string) *onnxpb.TensorProto {
		w := tp("w", TypeFloat, 4)
		w.DataLocation = proto.Int32(LocationExternal)
		for i := 0; i+1 < len(kv); i += 2 {
			w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
		}
		return w
	}
	raw := func(n int, dims ...int64) *onnxpb.TensorProto {
		w := tp("w", TypeFloat, dims...)
		w.RawData = make([]byte, n)
		return w
	}
	dims17 := make([]int64, 17)
	for i := range dims17 {
		dims17[i] = 1
	}
	cases := map[string]*onnxpb.ModelProto{
		"external escaping":         miniModel(ext("location", "../"+filepath.Base(outside))),
		"external escaping cleaned": miniModel(ext("location", "sub/../../"+filepath.Base(outside))),
		"external absolute":         miniModel(ext("location", outside)),
		"external backslash":        miniModel(ext("location", `..\`+filepath.Base(outside))),
		"external missing":          miniModel(ext("location", "nope.data")),
		"external no location":      miniModel(ext("offset", "0")),
		"external beyond file":      miniModel(ext("location", "w.data", "offset", "56", "length", "16")),
		"external offset beyond":    miniModel(ext("location", "w.data", "offset", "65", "length", "0")),
		"external offset overflow":  miniModel(ext("location", "w.data", "offset", "9223372036854775807", "length", "16")),
		"external length mismatch":  miniModel(ext("location", "w.data", "offset", "0", "length", "12")),
		"external implicit length":  miniModel(ext("location", "w.data", "offset", "8")),
		"external bad offset":       miniModel(ext("location", "w.data", "offset", "abc")),
		"external negative offset":  miniModel(ext("location", "w.data", "offset", "-4", "length", "16")),
		"external duplicate key":    miniModel(ext("location", "w.data", "location", "w.data")),
		"unknown data_location":     miniModel(func() *onnxpb.TensorProto { w := raw(16, 4); w.DataLocation = proto.Int32(2); return w }()),
		"raw_data short":            miniModel(raw(15, 4)),
		"raw_data for huge dims":    miniModel(raw(16, 1<<40, 1<<40)),
		"dims overflow":             miniModel(raw(16, 1<<62, 4)),
		"negative dim":              miniModel(raw(16, -4)),
		"too many dims":             miniModel(raw(4, dims17...)),
		"typed count":               miniModel(func() *onnxpb.TensorProto { w := tp("w", TypeFloat, 3); w.FloatData = []float32{1}; return w }()),
		"typed wrong field":         miniModel(func() *onnxpb.TensorProto { w := tp("w", TypeFloat, 1); w.Int64Data = []int64{1}; return w }()),
		"raw and typed":             miniModel(func() *onnxpb.TensorProto { w := raw(4, 1); w.FloatData = []float32{1}; return w }()),
		"no data":                   miniModel(tp("w", TypeFloat, 2)),
		"undefined data type":       miniModel(func() *onnxpb.TensorProto { w := raw(4, 1); w.DataType = proto.Int32(0); return w }()),
		"duplicate initializer":     miniModel(raw(4, 1), raw(4, 1)),
		"unnamed initializer":       miniModel(func() *onnxpb.TensorProto { w := raw(4, 1); w.Name = nil; return w }()),
		"no graph":                  {IrVersion: proto.Int64(8)},
		"sparse nnz over elements":  sparseModel(3, []int64{2}, []int64{0, 1, 2}),
		"sparse indices shape":      sparseModel(2, []int64{4}, []int64{0}),
		"sparse index out of range": sparseModel(2, []int64{4}, []int64{0, 4}),
		"sparse indices not sorted": sparseModel(2, []int64{4}, []int64{2, 1}),
		"sparse coordinate range":   sparseModel(1, []int64{2, 2}, []int64{0, 2}),
		"sparse huge dense shape":   sparseModel(0, []int64{1 << 40, 1 << 40}, nil),
	}
	for name, mp := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := proto.Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "m.onnx")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Open(path)
			if err == nil {
				// Some problems surface when the data is read or checked.
				if _, err = m.InitializerBytes("w"); err == nil {
					err = m.Check()
				}
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "m.onnx") {
				t.Errorf("error %q does not name the file", err)
			}
			if mp.Graph != nil && !strings.Contains(err.Error(), `"w"`) && !strings.Contains(err.Error(), "initializer") {
				t.Errorf("error %q does not name the tensor", err)
			}
		})
	}
}

// sparseModel builds a model with sparse initializer "w" of nnz values,
// dense dims and the given indices ([nnz] linear or [nnz, rank]).
func sparseModel(nnz int64, dims, idx []int64) *onnxpb.ModelProto {
	vals := tp("w", TypeFloat, nnz)
	vals.RawData = make([]byte, 4*nnz)
	ind := tp("", TypeInt64)
	ind.Name = nil
	ind.Dims = []int64{int64(len(idx))}
	if int64(len(idx)) != nnz && nnz > 0 && int64(len(idx)) == nnz*int64(len(dims)) {
		ind.Dims = []int64{nnz, int64(len(dims))}
	}
	for _, v := range idx {
		ind.RawData = binary.LittleEndian.AppendUint64(ind.RawData, uint64(v))
	}
	if ind.RawData == nil {
		ind.RawData = []byte{}
	}
	mp := miniModel()
	mp.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{Values: vals, Indices: ind, Dims: dims}}
	return mp
}

// TestTruncated: every cut of a real model that breaks a message is an
// error wrapping ErrFormat.
func TestTruncated(t *testing.T) {
	data := readFile(t, sharedtest.Path(t, pastPath))
	for _, n := range []int{1, 2, 10, 100, 1000, len(data) / 3, len(data) / 2, len(data) - 100, len(data) - 1} {
		if _, err := Decode(data[:n], ""); !errors.Is(err, ErrFormat) {
			t.Errorf("first %d bytes: error %v, want ErrFormat", n, err)
		}
	}
	path := filepath.Join(t.TempDir(), "cut.onnx")
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open: error %v, want ErrFormat naming the file", err)
	}
}

// TestCheckGraph: structural errors found by Check.
func TestCheckGraph(t *testing.T) {
	w := tp("w", TypeFloat, 1)
	w.RawData = make([]byte, 4)
	cases := map[string]func(mp *onnxpb.ModelProto){
		"undefined input": func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].Input[0] = "nope" },
		"not topological": func(mp *onnxpb.ModelProto) {
			mp.Graph.Node = append([]*onnxpb.NodeProto{{OpType: proto.String("Neg"), Input: []string{"y"}, Output: []string{"z"}}}, mp.Graph.Node...)
		},
		"output defined twice": func(mp *onnxpb.ModelProto) {
			mp.Graph.Node = append(mp.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("Neg"), Input: []string{"x"}, Output: []string{"y"}})
		},
		"graph output undefined": func(mp *onnxpb.ModelProto) { mp.Graph.Output[0].Name = proto.String("q") },
		"domain not imported":    func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].Domain = proto.String("com.microsoft") },
		"no op_type":             func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].OpType = nil },
		"repeated attribute": func(mp *onnxpb.ModelProto) {
			a := &onnxpb.AttributeProto{Name: proto.String("a"), I: proto.Int64(1)}
			mp.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{a, a}
		},
		"old IR": func(mp *onnxpb.ModelProto) { mp.IrVersion = proto.Int64(2) },
		"duplicate opset": func(mp *onnxpb.ModelProto) {
			mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx"), Version: proto.Int64(13)})
		},
		"subgraph reads undefined": func(mp *onnxpb.ModelProto) {
			sub := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{{OpType: proto.String("Neg"), Input: []string{"nope"}, Output: []string{"s"}}}}
			mp.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("body"), G: sub}}
		},
	}
	for name, mutate := range cases {
		mp := miniModel(proto.Clone(w).(*onnxpb.TensorProto))
		mutate(mp)
		data, _ := proto.Marshal(mp)
		m, err := Decode(data, "")
		if err == nil {
			err = m.Check()
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error %v, want ErrFormat", name, err)
		}
	}
	// The unmodified model and one whose subgraph reads outer values pass.
	mp := miniModel(w)
	sub := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{{OpType: proto.String("Neg"), Input: []string{"x"}, Output: []string{"s"}}},
		Output: []*onnxpb.ValueInfoProto{{Name: proto.String("s")}}}
	mp.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("body"), G: sub}}
	data, _ := proto.Marshal(mp)
	m, err := Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Error(err)
	}
}

// TestPruneTargetLayouts covers Gemm's transB, Transpose chains, Cast, and
// what is not a target.
func TestPruneTargetLayouts(t *testing.T) {
	mk := func(name string, dt int32, dims ...int64) *onnxpb.TensorProto {
		w := tp(name, dt, dims...)
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		w.RawData = make([]byte, n*int64(elemBits(dt)/8))
		return w
	}
	node := func(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs}
	}
	transB := &onnxpb.AttributeProto{Name: proto.String("transB"), I: proto.Int64(1)}
	mp := miniModel(mk("a", TypeFloat, 2, 3), mk("b", TypeFloat, 2, 3), mk("c", TypeFloat, 2, 3), mk("d", TypeFloat16, 2, 3),
		mk("e", TypeFloat, 3), mk("f", TypeInt64, 2, 3), mk("g", TypeFloat, 2, 3), mk("h", TypeFloat, 2, 3), mk("w", TypeFloat, 3, 4))
	mp.Graph.Node = append(mp.Graph.Node,
		node("Gemm", []string{"x", "a"}, "ya"),          // [in, out]
		node("Gemm", []string{"x", "b"}, "yb", transB),  // [out, in]
		node("Transpose", []string{"c"}, "ct"),          // perm absent: 2-D swap
		node("Gemm", []string{"x", "ct"}, "yc", transB), // back to [in, out]
		node("Cast", []string{"d"}, "dc"),               // F16 weight cast to F32
		node("Identity", []string{"dc"}, "di"),          //
		node("MatMul", []string{"x", "di"}, "yd"),       // [in, out]
		node("MatMul", []string{"x", "e"}, "ye"),        // 1-D: not a target
		node("MatMul", []string{"x", "f"}, "yf"),        // integer: not a target
		node("MatMul", []string{"x", "g"}, "yg"),        // [in, out] ...
		node("Gemm", []string{"x", "g"}, "yg2", transB), // ... and [out, in]: conflict
		node("MatMul", []string{"h", "x"}, "yh"),        // A operand: not a target
		node("Gather", []string{"w", "x"}, "yw"),        // w also gathered
	)
	data, _ := proto.Marshal(mp)
	m, err := Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Target{}
	for _, tg := range m.PruneTargets() {
		got[tg.Name] = tg
	}
	want := map[string]bool{"a": false, "b": true, "c": false, "d": false, "w": false}
	if len(got) != len(want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	for n, tr := range want {
		tg, ok := got[n]
		if !ok || tg.Transposed != tr {
			t.Errorf("%s: %+v, want Transposed %v", n, tg, tr)
		}
	}
	if tg := got["b"]; tg.Out != 2 || tg.In != 3 || tg.Op != "Gemm" {
		t.Errorf("b: %+v", tg)
	}
	if tg := got["w"]; !slices.Equal(tg.OtherUses, []string{"Gather"}) {
		t.Errorf("w: other uses %v", tg.OtherUses)
	}
}

// TestOnnxChecker runs onnx.checker on written models where Debian's
// python3-onnx is installed (skipped elsewhere).
func TestOnnxChecker(t *testing.T) {
	py := "/usr/bin/python3"
	if err := pyExec(py, "import onnx"); err != nil {
		t.Skip("python3-onnx is not installed")
	}
	m, rep := prunedStories(t)
	var names []string
	for n := range rep {
		names = append(names, n)
	}
	slices.Sort(names)
	dir := t.TempDir()
	// onnx 1.12's shape inference (full_check) takes a sparse initializer's
	// shape from its values tensor and rejects even models made with its own
	// helper.make_sparse_tensor; sparse models get the structural check.
	for name, o := range map[string]WriteOptions{
		"dense":      {Replace: rep},
		"sparse":     {Replace: rep, Sparse: names},
		"ext":        {Replace: rep, ExternalData: true},
		"ext+sparse": {Replace: rep, Sparse: names[:3], ExternalData: true},
	} {
		out := filepath.Join(dir, name+".onnx")
		if err := m.Write(out, o); err != nil {
			t.Fatal(err)
		}
		full := "True"
		if len(o.Sparse) > 0 {
			full = "False"
		}
		script := "import onnx, sys\nonnx.checker.check_model(" + strconv.Quote(out) + ", full_check=" + full + ")\n" +
			"m = onnx.load(" + strconv.Quote(out) + ")\nprint(len(m.graph.initializer), len(m.graph.sparse_initializer))"
		if err := pyExec(py, script); err != nil {
			t.Errorf("%s: onnx.checker: %v", name, err)
		}
	}
	past := sharedtest.Path(t, pastPath)
	out := filepath.Join(dir, "past.onnx")
	if err := open(t, past).Write(out, WriteOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	if err := pyExec(py, "import onnx\nonnx.checker.check_model("+strconv.Quote(out)+")"); err != nil {
		t.Errorf("past.onnx with external data: %v", err)
	}
}

// TestOpenMappedSameAsDecode: a model opened from a file (memory-mapped,
// large raw_data aliasing the mapping) is the same protobuf as one
// decoded from the file's bytes, and Release leaves it readable.
func TestOpenMappedSameAsDecode(t *testing.T) {
	path := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(data, filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a.Proto(), b.Proto()) {
		t.Fatal("the mapped model differs from the decoded one")
	}
	for _, in := range a.Initializers() {
		x, err := a.InitializerBytes(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		a.Release(in.Name)
		y, err := a.InitializerBytes(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Fatalf("%s: bytes differ after Release", in.Name)
		}
	}
	// The stripped encoding decodes to the same model too.
	stripped, raws, ok := stripRaw(data)
	if !ok || len(stripped) >= len(data)/4 {
		t.Fatalf("stripRaw: ok %v, %d of %d bytes kept", ok, len(stripped), len(data))
	}
	n := 0
	for _, r := range raws {
		if r != nil {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no raw_data aliased")
	}
}

// TestDecodeAliasedFallback: an encoding stripRaw does not handle (the
// graph field twice, which protobuf merges) is decoded normally and not
// marked as aliasing the input, so Release never drops heap pages; the
// plain encoding aliases its large raw_data.
func TestDecodeAliasedFallback(t *testing.T) {
	raw := bytes.Repeat([]byte{1, 2, 3, 4}, 4096)
	pb := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: &onnxpb.GraphProto{
		Name: proto.String("g"),
		Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), DataType: proto.Int32(TypeFloat),
			Dims: []int64{4096}, RawData: raw}},
	}}
	data, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	m, aliased, err := decodeAliased("x", data, "")
	if err != nil || !aliased {
		t.Fatalf("plain encoding: aliased %v, error %v", aliased, err)
	}
	if got := m.Proto().GetGraph().GetInitializer()[0].GetRawData(); &got[0] != &data[len(data)-len(raw)] {
		t.Error("raw_data was copied, not aliased")
	}
	twice, err := proto.Marshal(&onnxpb.ModelProto{Graph: &onnxpb.GraphProto{DocString: proto.String("more")}})
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, twice...)
	m, aliased, err = decodeAliased("x", data, "")
	if err != nil || aliased {
		t.Fatalf("graph twice: aliased %v, error %v", aliased, err)
	}
	want := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(data, want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto(), want) {
		t.Error("fallback decode differs from proto.Unmarshal")
	}
}
