// The Unicode character classes GPT-2's pre-tokenizer splits on: letters (\p{L}), numbers
// (\p{N}), white space (\s: the White_Space property) and everything else.
#pragma once
#include <cstdint>

namespace gannet::data {

enum class CharClass : uint8_t { other, letter, number, space };

// Letters and numbers by general category (L*, N*) as utf8proc's tables give it (Debian's
// libutf8proc: Unicode 15.0 in 2.8), white space by the White_Space property; unassigned code
// points, surrogates and values past U+10FFFF are `other`.
CharClass char_class(char32_t c);

// The Unicode version of utf8proc's tables, e.g. "15.0.0".
const char* unicode_version();

}  // namespace gannet::data
