//go:build !unix

package compress

func peakRSS() int64 { return 0 }
