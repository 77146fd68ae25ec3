// mkgolden.mjs writes golden.json: token ids (and decoded text) of
// tokenizers.js — Hugging Face's JavaScript tokenizers, which produced the
// reference ids in ../shared — for fixed edge cases and seeded random
// strings, on the tokenizers in ../shared. golden_test.go compares the Go
// package with them.
//
// Run from this directory, with the npm package @huggingface/tokenizers
// 0.2.0 installed somewhere (it is not a dependency of lmsparse):
//
//	npm install --prefix /tmp/tjs @huggingface/tokenizers@0.2.0
//	TOKENIZERS_JS=/tmp/tjs/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs node mkgolden.mjs
import fs from "fs";

const { Tokenizer } = await import(process.env.TOKENIZERS_JS ?? "@huggingface/tokenizers");
const S = process.env.SHARED ?? new URL("../../../shared/", import.meta.url).pathname;

// Tokenizer name → [tokenizer.json, tokenizer_config.json or null], paths
// inside ../shared. golden_test.go has the same table.
const files = {
  stories260k: ["models/stories260k/tokenizer.json", "models/stories260k/tokenizer_config.json"],
  llama2: ["tokenizers/llama2/tokenizer.json", "tokenizers/llama2/tokenizer_config.json"],
  gpt2: ["tokenizers/gpt2/hf/tokenizer.json", "tokenizers/gpt2/hf/tokenizer_config.json"],
  bert: ["tokenizers/bert-base-uncased/all-minilm-l6-v2.tokenizer.json", null],
  "onnx-gpt2": ["fixtures/onnx-tiny-random-gpt2/tokenizer.json", "fixtures/onnx-tiny-random-gpt2/tokenizer_config.json"],
};
const decoded = ["gpt2", "llama2", "bert"];
const T = {};
for (const [k, [j, c]] of Object.entries(files)) {
  T[k] = new Tokenizer(JSON.parse(fs.readFileSync(S + j)), c ? JSON.parse(fs.readFileSync(S + c)) : {});
}

const fixed = [
  "", " ", "  ", "\n", "\n\n", " \n ", "a", "Hello world", "Hello  world", "Hello\tworld\n",
  "<|endoftext|>", "a<|endoftext|>b", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
  "<s>", "</s>", "<unk>", "hello<s>world", "<s> hello </s>", "[CLS] x [SEP] [MASK] [UNK] [PAD]",
  "it's I'm we're they've I'll he'd don't 'S 'LL", "1,234.56 and 2024-11-29", "@-@ @,@ @.@ = = Heading = =",
  "naïve café Ünïcödé façade Łódź Øresund ßtraße", "ΣΑΣ ΌΣΟΣ ὈΔΥΣΣΕΎΣ σς aΣ aΣb", "İstanbul İ", "e\u0301 e\u0308\u0301 a\u0316\u0301",
  "한국어 가각 \u1100\u1161", "漢字中文 日本語 カタカナ ひらがな 𠀀𠀁", "Привет, мир!", "مرحبا بالعالم",
  "😀🎉👍🏽🇺🇸 𝔘𝔫𝔦", "–—’“”°₱¥£€™©®…•·", "¹²³½ ٣٤ Ⅻ", "\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u0085",
  "\u200b\u200c\u200d\u00ad\u0000\u0001\u001f\u007f\u0080\u009f\ue000\ufffd", "▁▁ ▁ Ġthe Ċ", "<0x41> <0xFF>",
  "x".repeat(100), "x".repeat(101), "ab".repeat(60), "    indented\n\t\ttabs  \n",
];
const fixedBytes = [[0xff], [0xfe, 0xff], [0xc3], [0x61, 0xe2, 0x80, 0x62], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0x80, 0x20, 0xbf], [0x68, 0x69, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x21]];

let state = 20241129;
const rnd = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 4294967296; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const pools = [
  "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "          \n\n\t\r",
  "'.,;:!?\"()[]{}<>-_/\\|@#$%^&*+=~`", "éèêëàáâäãåçñöóòôõüúùûıİŁłßÆæØøŒœ", "ΑΒΓΔΣσςαβγδεΠπωΩ", "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГД",
  "漢字中文日本語カタカナひらがな한국어가각갂", "\u0300\u0301\u0302\u0308\u0327\u0345\u05b0\u093c", "\u00a0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u0085\u000b\u000c",
  "\u200b\u200c\u200d\u00ad\u0000\u0001\u001f\u007f\u0080\u009f\ue000\ufffd", "😀🎉👍🏽🇺🇸𝔘𝔫𝔦𠀀𠀁", "–—’“”°₱¥£€™©®…•·", "¹²³½¼¾٣٤Ⅻ", "\u2581\u0120\u010a",
];
const words = ["<|endoftext|>", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]", "[UNK]", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  "don't", "hello", " world", "Once upon a time", "  ", "\n\n", " \n ", "ΣΑΣ", "İstanbul", "naïve café", "x".repeat(120),
  "@-@", " @,@ ", "1,234.56", "    indented", "a\u0301", "<0x41>", "▁▁", "Ġthe"];
const bad = fixedBytes;

const inputs = fixed.map((s) => Buffer.from(s)).concat(fixedBytes.map((b) => Buffer.from(b)));
for (let n = 0; n < 150; n++) {
  const parts = [];
  const len = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < len; i++) {
    const r = rnd();
    if (r < 0.25) parts.push(Buffer.from(pick(words)));
    else if (r < 0.3) parts.push(Buffer.from(pick(bad)));
    else {
      const p = [...pick(pools)];
      let s = "";
      const k = 1 + Math.floor(rnd() * 8);
      for (let j = 0; j < k; j++) s += pick(p);
      parts.push(Buffer.from(s));
    }
  }
  inputs.push(Buffer.concat(parts));
}

const cases = inputs.map((buf) => {
  const text = buf.toString("utf8"); // ill-formed UTF-8 → U+FFFD per maximal subpart
  const c = { bytes: buf.toString("base64"), ids: {}, decoded: {} };
  for (const [k, t] of Object.entries(T)) c.ids[k] = t.encode(text).ids;
  for (const k of decoded) {
    c.decoded[k] = c.ids[k].length ? T[k].decode(c.ids[k], { clean_up_tokenization_spaces: false }) : "";
  }
  return c;
});
const out = { generator: "tokenizers.js (@huggingface/tokenizers 0.2.0) via mkgolden.mjs", files, cases };
fs.writeFileSync("golden.json", JSON.stringify(out) + "\n");
console.log(`golden.json: ${cases.length} cases`);
