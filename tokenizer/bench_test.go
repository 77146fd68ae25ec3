package tokenizer

import (
	"testing"
)

var benchTokenizers = []struct{ name, path string }{
	{"stories260k", stories260kPath},
	{"llama2", llama2Path},
	{"gpt2", gpt2Path},
	{"bert", minilmPath},
}

// BenchmarkEncodeWikiText encodes the whole wiki.test.raw (1.29 MB) per
// iteration; MB/s is over its bytes. The word caches are warm after the
// first iteration.
func BenchmarkEncodeWikiText(b *testing.B) {
	text := string(readShared(b, wikiPath))
	for _, c := range benchTokenizers {
		b.Run(c.name, func(b *testing.B) {
			tk := loadShared(b, c.path)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for b.Loop() {
				tk.Encode(text)
			}
		})
	}
}

// BenchmarkEncodeWikiTextCold is BenchmarkEncodeWikiText with the word
// caches emptied before each iteration.
func BenchmarkEncodeWikiTextCold(b *testing.B) {
	text := string(readShared(b, wikiPath))
	for _, c := range benchTokenizers {
		b.Run(c.name, func(b *testing.B) {
			tk := loadShared(b, c.path)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				tk.resetCaches()
				b.StartTimer()
				tk.Encode(text)
			}
		})
	}
}

// BenchmarkLoad measures Load of each tokenizer.json.
func BenchmarkLoad(b *testing.B) {
	for _, c := range benchTokenizers {
		b.Run(c.name, func(b *testing.B) {
			loadShared(b, c.path)
			for b.Loop() {
				loadShared(b, c.path)
			}
		})
	}
}
