// The Unicode character classes GPT-2's pre-tokenizer splits on: letters (\p{L}), numbers
// (\p{N}), white space (\s: the White_Space property) and everything else.
#pragma once
#include <cstdint>

namespace gannet::data {

enum class CharClass : uint8_t { other, letter, number, space };

// Exact for Unicode 14.0 general categories (the letter and number ranges are a table generated
// from it); unassigned code points and values past U+10FFFF are `other`.
CharClass char_class(char32_t c);

}  // namespace gannet::data
