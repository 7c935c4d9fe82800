// The pre-tokenizer's character classes (data/unicode_class.h), from utf8proc: a few code points
// of each class, across scripts and Unicode versions.
#include "gannet/data/unicode_class.h"

#include <gtest/gtest.h>

#include <string>

using gannet::data::CharClass;
using gannet::data::char_class;

TEST(UnicodeClass, KnownCodePoints) {
  for (char32_t c : {U'a', U'Z', U'é', U'ß', U'ǅ' /* Lt */, U'ʰ' /* Lm */, U'Ω', U'Ж', U'א', U'ع', U'क', U'ก',
                     U'中', U'が', U'ア', U'한', U'ª', U'µ', U'𝐁', U'𠀀', U'\U00031350' /* CJK ext. H, Unicode 15 */})
    EXPECT_EQ(char_class(c), CharClass::letter) << "U+" << std::hex << (uint32_t)c;
  for (char32_t c : {U'0', U'9', U'²', U'½', U'٣', U'५', U'１', U'Ⅻ' /* Nl */, U'〇', U'①',
                     U'\U0001D2C0' /* Kaktovik numeral zero, Unicode 15 */})
    EXPECT_EQ(char_class(c), CharClass::number) << "U+" << std::hex << (uint32_t)c;
  for (char32_t c : {U' ', U'\t', U'\n', U'\v', U'\f', U'\r', U'\u0085', U'\u00A0', U'\u1680', U'\u2000', U'\u200A',
                     U'\u2028', U'\u2029', U'\u202F', U'\u205F', U'\u3000'})
    EXPECT_EQ(char_class(c), CharClass::space) << "U+" << std::hex << (uint32_t)c;
  for (char32_t c : {U'!', U'\'', U'_', U'\u0000', U'\u0301' /* Mn */, U'\u0903' /* Mc */, U'€', U'©', U'😀',
                     U'\u200B' /* ZWSP: Cf, not White_Space */, U'\u180E', U'\uFEFF', U'\uE000' /* Co */,
                     U'\U000E01EF' /* Mn */, (char32_t)0xD800 /* surrogate */, U'\U0010FFFF' /* Cn */,
                     (char32_t)0x110000, (char32_t)0xFFFFFFFF})
    EXPECT_EQ(char_class(c), CharClass::other) << "U+" << std::hex << (uint32_t)c;
}

TEST(UnicodeClass, TablesAreAtLeastUnicode15) {
  const std::string v = gannet::data::unicode_version();
  EXPECT_GE(std::stoi(v.substr(0, v.find('.'))), 15) << v;
}
