#include "gannet/core/nm_pattern.h"

#include "gannet/core/error.h"
#include "gannet/core/escape.h"

namespace gannet {

NmPattern NmPattern::parse(const std::string& text, const std::string& what) {
  auto number = [&](const std::string& s) -> int {
    GANNET_CHECK(!s.empty() && s.size() <= 2 && s.find_first_not_of("0123456789") == std::string::npos, what,
                 ": N:M pattern '", escape_bytes(text), "' is not two numbers such as 2:4");
    return std::stoi(s);
  };
  const size_t colon = text.find(':');
  GANNET_CHECK(colon != std::string::npos, what, ": N:M pattern '", escape_bytes(text),
               "' is not two numbers such as 2:4");
  NmPattern p{number(text.substr(0, colon)), number(text.substr(colon + 1))};
  p.validate(what);
  return p;
}

void NmPattern::validate(const std::string& what) const {
  GANNET_CHECK(m >= 2 && m <= kMaxNmRun && n >= 1 && n < m, what, ": N:M pattern ", n, ":", m,
               " must keep 1 to M - 1 of every M, with M from 2 to ", kMaxNmRun);
}

int NmPattern::index_bits() const {
  int b = 0;
  while ((1 << b) < m) ++b;
  return b;
}

std::string NmPattern::describe() const { return std::to_string(n) + ":" + std::to_string(m); }

}  // namespace gannet
