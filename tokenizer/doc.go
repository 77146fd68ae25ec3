// Package tokenizer encodes text to token ids from a Hugging Face
// tokenizer.json, exactly as Hugging Face's tokenizers.js (the reference of
// the token ids in ../shared) does, for the tokenizer families lmsparse
// measures models with. It uses only the standard library.
//
// # Supported tokenizers
//
// [Load] reads a tokenizer.json (and the tokenizer_config.json beside it).
// Three kinds are supported ([Tokenizer.Kind]):
//
//   - "bpe-bytelevel": GPT-2 style byte-level BPE. The ByteLevel
//     pre-tokenizer splits text with the GPT-2 pattern (below, matched by
//     hand, lookahead included; add_prefix_space and use_regex are
//     honoured), maps each byte to its byte-to-unicode character and merges
//     by rank.
//   - "bpe-sentencepiece": Llama style BPE over "▁"-marked text: the legacy
//     normalizer (Sequence of Prepend "▁" and Replace " " → "▁") or the
//     Metaspace pre-tokenizer (prepend_scheme always, first or never; split),
//     merges by rank, byte_fallback to "<0xXX>" tokens, unk_token and
//     fuse_unk.
//   - "wordpiece": BERT's WordPiece: BertNormalizer (clean_text,
//     handle_chinese_chars, lowercase, strip_accents), BertPreTokenizer,
//     greedy longest-match-first with the "##" continuing prefix and
//     max_input_chars_per_word. The older serialization whose model has no
//     "type" is recognized from its fields.
//
// The GPT-2 pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// The components implemented are: normalizers Sequence, Prepend, Replace
// (String patterns), BertNormalizer, Lowercase, NFD and Strip;
// pre-tokenizers ByteLevel, BertPreTokenizer and Metaspace; models BPE and
// WordPiece; post-processors TemplateProcessing (single sequence),
// BertProcessing, RobertaProcessing, ByteLevel and Sequence; decoders
// ByteLevel, WordPiece, Metaspace, Replace (String patterns), ByteFallback,
// Fuse, Strip and Sequence. Anything else — a Unigram or WordLevel model, a
// Split or Sequence pre-tokenizer, a Regex pattern, BPE dropout or
// continuing_subword_prefix, an added token with single_word — makes Load
// fail with an error wrapping [ErrUnsupported] that names the component
// (an unsupported decoder only makes [Tokenizer.Decode] fail). Malformed
// files fail with [ErrFormat]. Errors name the file.
//
// # Encoding
//
// [Tokenizer.Encode] runs the pipeline of Hugging Face tokenizers:
//
//  1. Ill-formed UTF-8 is replaced (see Invalid UTF-8).
//  2. Added tokens (added_tokens, special or not) are found in the text,
//     leftmost-longest; lstrip and rstrip remove the whitespace beside them.
//     Tokens with "normalized" are matched in the normalized text instead.
//  3. Each piece of text between added tokens is normalized on its own
//     (so Llama's "▁" is prepended to each piece), pre-tokenized into words
//     and encoded by the model. BPE results are cached per word in a bounded
//     cache that belongs to the Tokenizer.
//  4. Special tokens are added around the result: by the post-processor
//     when it adds any (TemplateProcessing, BertProcessing,
//     RobertaProcessing), else as tokenizer_config.json's add_bos_token and
//     add_eos_token say. So Llama tokenizers put BOS <s> (id 1) first, GPT-2
//     adds nothing and BERT wraps the text in [CLS] ... [SEP].
//     [Tokenizer.EncodeOptions] can leave them out.
//
// The truncation and padding sections of tokenizer.json are ignored, as a
// transformers tokenizer call ignores them by default: the whole text is
// encoded.
//
// # Invalid UTF-8
//
// Text that is not valid UTF-8 is first made valid by replacing each
// maximal ill-formed subsequence with one U+FFFD: a byte that cannot start
// a sequence is one subsequence, and a truncated or broken sequence is
// replaced as far as it is a valid prefix (so "\xe2\x80" is one U+FFFD,
// "\xff\xfe" two). This is the rule of the WHATWG Encoding Standard and of
// Unicode's best practice, and it is what reading the file with Python's
// errors="replace" or with Node.js gives, so ids match the reference tools
// on such input. U+FFFD then encodes like any character: as bytes EF BF BD
// in byte-level BPE, as its own token or byte fallback in SentencePiece
// BPE; BERT's clean_text drops it.
//
// # Decoding
//
// [Tokenizer.Decode] runs the tokenizer.json decoder. For byte-level BPE it
// is the exact inverse of Encode: Decode(Encode(s)) returns s byte for byte
// (with ill-formed UTF-8 replaced as above), and a list of ids that splits
// a character decodes to bytes that are not valid UTF-8. For the other
// kinds it is best effort, as in Hugging Face: normalization is not undone
// and special tokens are kept; see [Tokenizer.Decode].
//
// # Compatibility
//
// The token ids are those of tokenizers.js (npm @huggingface/tokenizers
// 0.2.0), which produced the reference ids in ../shared; the tests compare
// against them on the shared texts and on golden cases generated with it
// (testdata/mkgolden.mjs). Hugging Face's Rust tokenizers give the same ids
// on ordinary text but differ from tokenizers.js, and so from this package,
// in corner cases:
//
//   - \s in the GPT-2 pattern and whitespace in general are JavaScript's:
//     U+FEFF is whitespace and U+0085 is not (the reverse in Rust).
//   - BertNormalizer's handle_chinese_chars only spaces out the ideographs of
//     the Basic Multilingual Plane (U+3400–U+4DBF, U+4E00–U+9FFF,
//     U+F900–U+FAFF); Rust also spaces out the supplementary-plane
//     extensions (U+20000 and up).
//   - tokenizers.js ignores Metaspace's split flag; this package follows
//     Rust and cuts before every "▁" when split is true (the default).
//
// Character properties (letters, numbers, punctuation, case mappings,
// nonspacing marks) come from Go's unicode package, Unicode 15.0; the
// canonical decompositions and combining classes used for NFD and accent
// stripping are generated from Unicode 17.0 by mktables.mjs. Characters
// assigned after Unicode 15.0 may therefore be classified differently from
// tokenizers.js.
//
// # Limits
//
// Everything read from files is bounded: tokenizer.json and
// tokenizer_config.json at 64 MiB, token ids below 2^21, at most 2^22
// merges and 65,536 added tokens, token strings of at most 64 KiB,
// components nested at most 16 deep. When encoding, BPE merges words of up
// to 256 MiB as a whole; a longer word (text without spaces that nothing
// pre-tokenizes) is encoded in 256 MiB pieces.
//
// # Concurrency
//
// A [Tokenizer] is safe for concurrent use. Its only mutable state is the
// word caches (65,536 words each, emptied when full), guarded by a mutex;
// the package has no mutable package-level state.
package tokenizer
