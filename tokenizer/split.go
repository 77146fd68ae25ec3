package tokenizer

// SplitGPT2 returns the words that [Tokenizer.Encode] hands to the BPE
// model for text when the tokenizer is byte-level BPE with a ByteLevel
// pre-tokenizer (use_regex true, add_prefix_space false), no normalizer
// and no added tokens that occur in text: ill-formed UTF-8 is replaced
// first (see Invalid UTF-8 in the package comment), then the GPT-2 pattern
// cuts the text into words that tile it, in order. Their concatenation is
// the text (after replacement).
//
// It is the pre-tokenizer that Encode uses, exported so that a BPE trainer
// learns its merges on exactly the words they will be applied to.
func SplitGPT2(text string) []string {
	return newByteLevelPre(false, true).split(nil, sanitizeUTF8(text), 0)
}

// ByteToUnicode returns GPT-2's byte-to-unicode table, with which
// byte-level BPE spells bytes in its vocabulary: the printable Latin-1
// bytes ('!'–'~', '¡'–'¬', '®'–'ÿ') map to themselves and the other bytes,
// in order, to U+0100, U+0101, ... (so ' ' is 'Ġ' and '\n' is 'Ċ'). The
// map is one to one.
func ByteToUnicode() [256]rune { return byteToUnicode() }
