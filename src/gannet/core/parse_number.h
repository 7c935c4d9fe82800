// Strict reading of numbers written as text (checkpoint metadata, environment variables, names):
// the whole text must be the number and the number must fit the type. Errors are one line naming
// the field and quoting the text ("checkpoint step: expected an integer, got '12x'"), never the
// bare "stoll" of the standard library's converters.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace gannet {

int64_t parse_int64(std::string_view text, std::string_view field);
uint64_t parse_uint64(std::string_view text, std::string_view field);
double parse_double(std::string_view text, std::string_view field);  // finite only

// The text as an error message quotes it: at most 64 characters, other bytes than printable
// ASCII written as \xNN.
std::string quote_text(std::string_view text);

}  // namespace gannet
