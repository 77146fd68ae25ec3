// Package bpe trains a byte-level BPE tokenizer, as GPT-2's is, and writes
// it as a Hugging Face tokenizer.json that lmsparse's tokenizer package
// loads. The demo model's tokenizer is trained with it on the train split of
// the story corpus (../corpus).
//
// # Algorithm
//
// [Train] starts from the 256 bytes: token i is byte i, spelled in the
// vocabulary with GPT-2's byte-to-unicode characters
// ([tokenizer.ByteToUnicode]). The text is cut into words by the
// pre-tokenizer that lmsparse's tokenizer applies when it encodes
// ([tokenizer.SplitGPT2]: ByteLevel with the GPT-2 pattern, use_regex true,
// add_prefix_space false), and the distinct words are counted. Each word
// starts as its sequence of byte tokens; merges never cross words.
//
// Then, until the vocabulary has the size asked for, the adjacent pair of
// tokens that occurs most often — counting each word as often as it occurs
// in the text — is merged: its two tokens become one new token (appended to
// the vocabulary) in every word, left to right, and the merge is appended
// to the merge list, whose order is the merge's rank. (Should the merged
// bytes already be a token, the merge is recorded with that token as its
// result and the vocabulary does not grow.) Training fails when no pair is
// left — every word is one token — before the vocabulary is full. Pair counts are kept up to date incrementally: merging a pair
// recounts only the words that contain it.
//
// Ties are broken by bytes so that training is deterministic: among pairs
// of equal count, the one whose merged bytes are smallest (bytewise, as
// strings.Compare orders them) wins, and among those, the one whose left
// token is smallest. (Two distinct pairs cannot agree on both.)
//
// Encoding ([Model.Encode]) cuts text into words the same way and, in each
// word, repeatedly merges the adjacent pair of lowest rank, the leftmost
// when it occurs more than once, until no pair of the word has a merge: the
// rule of Hugging Face tokenizers, which lmsparse's tokenizer follows.
// Model.Encode is a plain reference implementation for tests; it gives the
// ids that tokenizer.Load of the written files gives.
//
// # Files
//
// [Model.WriteTokenizer] writes tokenizer.json (version 1.0, no added
// tokens, no normalizer, ByteLevel pre-tokenizer, post-processor and
// decoder, a BPE model with the vocabulary in id order and the merges as
// pairs of token strings, the format Hugging Face tokenizers writes since
// version 0.20) and tokenizer_config.json (no BOS or EOS token added,
// PreTrainedTokenizerFast). The output depends only on the model, byte for
// byte.
package bpe
