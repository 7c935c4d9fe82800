// Errors with context. Library code throws gannet::Error; the CLI prints its message as one line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace gannet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from its pieces: str("shape ", s, " expected ", e).
template <class... A>
std::string str(const A&... a) {
  std::ostringstream os;
  detail::append(os, a...);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& what) { throw Error(what); }

}  // namespace gannet

// Checks a condition at an API boundary; the message is built only on failure.
#define GANNET_CHECK(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) ::gannet::fail(::gannet::str(__VA_ARGS__));     \
  } while (0)
