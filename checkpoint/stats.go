package checkpoint

import (
	"io"

	"github.com/lmsparse/lmsparse/tensor"
)

// Stats counts the zeros, NaNs and Infs of tensor name, reading it through
// buf (any size; 1 MiB is a good choice) so memory stays bounded. The
// tensor's dtype must be one lmsparse decodes (DType.Known).
func (m *Model) Stats(name string, buf []byte) (tensor.Stats, error) {
	var st tensor.Stats
	info, _ := m.Tensor(name)
	sec, err := m.Section(name)
	if err != nil {
		return st, err
	}
	if es := info.DType.Size(); es > 0 {
		if len(buf) < es {
			buf = make([]byte, 1<<16) // an empty buf would never advance
		}
		buf = buf[:len(buf)/es*es] // whole elements per chunk
	}
	for {
		n, err := io.ReadFull(sec, buf)
		if n > 0 {
			if aerr := st.Add(info.DType, buf[:n]); aerr != nil {
				return st, aerr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}
