#include "gannet/cli/number_options.h"

#include <charconv>
#include <cmath>
#include <type_traits>

#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

template <class T>
CLI::Validator number_in(const NumberRange& range) {
  auto check = [range](std::string& text) -> std::string {
    const char* end = text.data() + text.size();
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec == std::errc() && ptr == end && !text.empty())
      return range.contains((double)value) ? "" : out_of_range_message(range, text);
    // Not a T: say why, by the range where the text is a number outside it ("-1" for a seed).
    const char* kind = std::is_integral_v<T> ? "an integer" : std::is_same_v<T, float> ? "a float" : "a number";
    double d = 0;
    auto [dptr, dec] = std::from_chars(text.data(), end, d);
    const bool number = dec == std::errc() && dptr == end && !text.empty();
    if (number && !range.contains(d)) return out_of_range_message(range, text);
    if (dec == std::errc::result_out_of_range || (number && (!std::is_integral_v<T> || d == std::floor(d))))
      return str(quote_text(text), " is out of range for ", kind);
    return str("expected ", kind, ", got ", quote_text(text));
  };
  return CLI::Validator(check, range.interval());
}

template CLI::Validator number_in<int>(const NumberRange&);
template CLI::Validator number_in<int64_t>(const NumberRange&);
template CLI::Validator number_in<uint64_t>(const NumberRange&);
template CLI::Validator number_in<float>(const NumberRange&);
template CLI::Validator number_in<double>(const NumberRange&);

CLI::Option* add_threads_option(CLI::App* cmd, int& threads) {
  return cmd->add_option("--threads,-t", threads, "threads (0 = all cores)")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(0, kernels::kMaxThreads)));
}

}  // namespace gannet::cli
