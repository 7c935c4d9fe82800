#include "gannet/data/unicode_class.h"

#include <utf8proc.h>

namespace gannet::data {

namespace {

// White_Space (PropList.txt). utf8proc has no such property; the list has been fixed since
// Unicode 6.3 (which removed U+180E), and a new white-space character is not expected.
bool is_white_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

}  // namespace

CharClass char_class(char32_t c) {
  if (is_white_space(c)) return CharClass::space;
  if (c > 0x10FFFF) return CharClass::other;  // utf8proc_category takes a valid code point
  switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return CharClass::letter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return CharClass::number;
    default:
      return CharClass::other;
  }
}

const char* unicode_version() { return utf8proc_unicode_version(); }

}  // namespace gannet::data
